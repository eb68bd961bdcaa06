/**
 * llama.cpp's prebuilt CPU build, installed by tools/install-llama-cpp.sh (CI runs it). Tests
 * that use it as the independent reference skip with a message when it is absent.
 */
import { existsSync } from "node:fs";
import { execFileSync } from "node:child_process";
import { join } from "node:path";
import { repoRoot } from "./shared.js";

export const llamaCppDir = join(repoRoot, "tools", ".llama-cpp");
export const ggmlBaseLib = join(llamaCppDir, "node_modules/@node-llama-cpp/linux-x64/bins/linux-x64/libggml-base.so");
export const hasGgml = existsSync(ggmlBaseLib) && process.platform === "linux";

if (!hasGgml) {
  console.warn(`[zh-llama tests] ${ggmlBaseLib} not found (run tools/install-llama-cpp.sh): tests against llama.cpp's ggml are skipped`);
}

export interface GgmlGgufSummary {
  version: number;
  alignment: number;
  data_offset: number;
  kv: Array<{ key: string; type: number; arr_type?: number; n?: number; value?: unknown }>;
  tensors: Array<{ name: string; type: number; offset: number; size: number; ne: number[] }>;
}

/** How ggml's gguf_init_from_file sees `path` (throws if ggml refuses it). */
export function ggmlGgufSummary(path: string): GgmlGgufSummary {
  const out = execFileSync("python3", [join(repoRoot, "tools", "ggml-gguf-summary.py"), ggmlBaseLib, path], { encoding: "utf8", maxBuffer: 1 << 28 });
  return JSON.parse(out) as GgmlGgufSummary;
}
