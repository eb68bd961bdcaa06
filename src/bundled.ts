/**
 * The model shipped in the package: Chinese-Alpaca-tiny, Q4_0 (made by `npm run make-model`;
 * its card is fixtures/models/chinese-alpaca-tiny.md). A URL works everywhere (Node, Deno, Bun,
 * and a bundler that copies assets); `bundledModelPath()` gives the file path on a file system.
 */
export const BUNDLED_MODEL_FILE = "chinese-alpaca-tiny-q4_0.gguf";

export const bundledModelUrl: URL = new URL(`../fixtures/models/${BUNDLED_MODEL_FILE}`, import.meta.url);

/** The bundled model's path on disk (Node, Deno, Bun). */
export function bundledModelPath(): string {
  const url = bundledModelUrl;
  if (url.protocol !== "file:") throw new Error(`the bundled model is at ${url.href}, not on a file system`);
  // fileURLToPath without importing node:url, so browser bundles can include this module.
  const path = decodeURIComponent(url.pathname);
  return /^\/[A-Za-z]:\//.test(path) ? path.slice(1) : path;
}
