/**
 * ../shared holds reference data made with llama.cpp and SentencePiece. It exists on
 * developer machines and in CI, never on a user's machine: tests that read it skip with a
 * message when it is absent.
 */
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { join } from "node:path";

export const repoRoot = fileURLToPath(new URL("../..", import.meta.url));
export const sharedDir = join(repoRoot, "..", "shared");
export const hasShared = existsSync(join(sharedDir, "reference"));

export function sharedPath(...parts: string[]): string {
  return join(sharedDir, ...parts);
}

if (!hasShared) {
  console.warn(`[zh-llama tests] ${sharedDir} not found: tests against ../shared reference data are skipped`);
}
