import { existsSync, readFileSync } from "node:fs";
import { spawnSync } from "node:child_process";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import llamaTokenizerJs from "llama-tokenizer-js";
import { buildLlamaTokenizerModel, serializeSentencePieceModel } from "../../src/tokenizer/index.js";

export const REPO = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
export const SHARED_TOKENIZER = join(REPO, "..", "shared", "tokenizer");
export const FIXTURES = join(REPO, "fixtures", "tokenizer");
export const hasShared = existsSync(join(SHARED_TOKENIZER, "llama.json"));

export function readJsonl<T>(path: string): T[] {
  return readFileSync(path, "utf8")
    .split("\n")
    .filter((line) => line.trim().length > 0)
    .map((line) => JSON.parse(line) as T);
}

/** Debian's python with the sentencepiece module, or undefined. */
export const python: string | undefined = (() => {
  for (const exe of ["/usr/bin/python3", "python3"]) {
    const r = spawnSync(exe, ["-c", "import sentencepiece"], { encoding: "utf8" });
    if (r.status === 0) return exe;
  }
  return undefined;
})();

export function skipNote(what: string, reason: string): void {
  console.warn(`[tokenizer tests] skipping ${what}: ${reason}`);
}

/** LLaMA's tokenizer.model, rebuilt from llama-tokenizer-js's vocabulary (test/tokenizer/llama.test.ts checks its SHA-256). */
export function llamaModelBytes(): Uint8Array {
  return (llamaBytesCache ??= serializeSentencePieceModel(buildLlamaTokenizerModel((llamaTokenizerJs as unknown as { vocabById: string[] }).vocabById)));
}
let llamaBytesCache: Uint8Array | undefined;
