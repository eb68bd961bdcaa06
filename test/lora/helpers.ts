/**
 * Fixtures for the LoRA / conversion tests: small HF checkpoints and PEFT adapters written by
 * tools/lora-hf-fixtures.py (numpy, Python's own pickle/zipfile: no zh-llama code), tokenizers
 * written with the project's SentencePiece serializer.
 */
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { afterAll } from "vitest";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PieceType, SentencePieceModelType, serializeSentencePieceModel, type SentencePieceModelProto } from "../../src/tokenizer/index.js";
import { repoRoot } from "../helpers/shared.js";

export const fixtureScript = join(repoRoot, "tools", "lora-hf-fixtures.py");

/** Runs the Python reference tool; returns stdout. Throws with stdout/stderr on failure. */
export function py(...args: (string | number)[]): string {
  try {
    return execFileSync("python3", [fixtureScript, ...args.map(String)], { encoding: "utf8", maxBuffer: 1 << 28 });
  } catch (error) {
    const e = error as { stdout?: string; stderr?: string; message: string };
    throw new Error(`python3 ${args.join(" ")} failed: ${e.message}\n${e.stdout ?? ""}\n${e.stderr ?? ""}`);
  }
}

/** Runs the reference merge check; returns its JSON (and whether it passed). */
export function checkMerge(args: (string | number)[]): { ok: boolean; result: { tensors: number; max_ulps: number; mismatched: string[]; shapes: Record<string, number[]> } } {
  try {
    const out = execFileSync("python3", [fixtureScript, "check-merge", ...args.map(String)], { encoding: "utf8", maxBuffer: 1 << 26 });
    return { ok: true, result: JSON.parse(out) };
  } catch (error) {
    const e = error as { stdout?: string; stderr?: string };
    if (e.stdout) return { ok: false, result: JSON.parse(e.stdout) };
    throw new Error(`check-merge crashed: ${e.stderr}`);
  }
}

const made: string[] = [];
afterAll(() => {
  for (const dir of made) rmSync(dir, { recursive: true, force: true });
});

/** A fresh directory under the OS temp dir, removed after the test file. */
export function tempDir(prefix = "zh-lora-"): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  made.push(dir);
  return dir;
}

/** A byte-fallback BPE tokenizer.model with exactly `size` pieces (LLaMA's id layout). */
export function tokenizerModel(size: number): SentencePieceModelProto {
  const pieces: SentencePieceModelProto["pieces"] = [
    { piece: "<unk>", score: 0, type: PieceType.Unknown },
    { piece: "<s>", score: 0, type: PieceType.Control },
    { piece: "</s>", score: 0, type: PieceType.Control },
  ];
  const byteFallback = size >= 3 + 256 + 26;
  for (let b = 0; byteFallback && b < 256; b++) pieces.push({ piece: `<0x${b.toString(16).toUpperCase().padStart(2, "0")}>`, score: 0, type: PieceType.Byte });
  const letters = "abcdefghijklmnopqrstuvwxyz";
  for (let i = 0; pieces.length < size; i++) {
    const piece = i < letters.length ? `▁${letters[i]}` : i < 2 * letters.length ? letters[i - letters.length]! : `▁w${i}`;
    pieces.push({ piece, score: -i });
  }
  return {
    pieces,
    trainerSpec: { modelType: SentencePieceModelType.Bpe, vocabSize: size, byteFallback, unkId: 0, bosId: 1, eosId: 2, padId: -1 },
    normalizerSpec: { name: "identity", addDummyPrefix: true, removeExtraWhitespaces: false, escapeWhitespaces: true },
  };
}

/** Writes tokenizer.model (+ added_tokens.json with "[PAD]" when `addedPad`) into `dir`. */
export function writeTokenizer(dir: string, pieces: number, addedPad = false): void {
  writeFileSync(join(dir, "tokenizer.model"), serializeSentencePieceModel(tokenizerModel(pieces)));
  writeFileSync(join(dir, "special_tokens_map.json"), JSON.stringify({ bos_token: "<s>", eos_token: "</s>", unk_token: "<unk>", ...(addedPad ? { pad_token: "[PAD]" } : {}) }));
  if (addedPad) writeFileSync(join(dir, "added_tokens.json"), JSON.stringify({ "[PAD]": pieces }));
}
