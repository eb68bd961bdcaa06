/**
 * Training data: text -> token ids with the project's SentencePiece tokenizer, in the two shapes
 * upstream's scripts train on.
 *
 * Pre-training (upstream run_clm_pt_with_peft.py: tokenize, concatenate, `group_texts` into
 * blocks): every non-empty line is a document, encoded as BOS + ids + EOS; the documents are
 * concatenated into one stream and cut into sequences of T inputs, each with the T following
 * ids as targets. Attention does not stop at document boundaries (neither does upstream's).
 * Whitespace-only lines are skipped; a document longer than T simply spans sequences; the tail
 * shorter than one sequence is dropped.
 *
 * Instruction tuning (upstream build_dataset.py, Alpaca-2): each JSONL record
 * {"instruction", "input", "output"} becomes source = BOS + encode(template(instruction +
 * "\n" + input)) and target = encode(output) + EOS; labels are -100 on the source (no loss on the
 * prompt). A sample longer than T tokens is truncated to its first T (upstream's
 * max_seq_length); shorter ones are padded on the right with ignored targets (causal attention
 * never looks right, so padding cannot change the other positions).
 *
 * Characters outside the vocabulary become byte pieces (the tokenizer's byte fallback).
 */
import { InvalidArgumentError } from "../errors.js";
import type { SentencePieceTokenizer } from "../tokenizer/index.js";
import type { TrainRng } from "./rng.js";

/** HF's IGNORE_INDEX: targets with this value carry no loss. */
export const IGNORE_INDEX = -100;

/** Alpaca-2's template and default system prompt (UPSTREAM.md section 3). */
export const ALPACA2_TEMPLATE = "[INST] <<SYS>>\n{system_prompt}\n<</SYS>>\n\n{instruction} [/INST]";
export const ALPACA2_SYSTEM_PROMPT = "You are a helpful assistant. 你是一个乐于助人的助手。";

export function alpaca2Prompt(instruction: string, systemPrompt = ALPACA2_SYSTEM_PROMPT): string {
  return ALPACA2_TEMPLATE.replace("{system_prompt}", () => systemPrompt).replace("{instruction}", () => instruction);
}

/** A set of fixed-length samples: sample i fills T inputs and T targets. */
export interface Dataset {
  readonly size: number;
  readonly seq: number;
  sample(i: number, ids: Int32Array, targets: Int32Array, at: number): void;
}

export interface TextStats {
  documents: number;
  skippedLines: number;
  tokens: number;
}

/** The documents of a text: its non-blank lines (trailing \r removed); `skipped` counts the blank ones. */
export function textDocuments(text: string): { documents: string[]; skipped: number } {
  const documents: string[] = [];
  let skipped = 0;
  const lines = text.split("\n");
  // A final newline ends the last line; it does not start a blank one.
  if (lines.length > 0 && lines[lines.length - 1] === "") lines.pop();
  for (const raw of lines) {
    const line = raw.endsWith("\r") ? raw.slice(0, -1) : raw;
    if (line.trim() === "") skipped++;
    else documents.push(line);
  }
  return { documents, skipped };
}

/** BOS + ids + EOS per document, concatenated. */
export function tokenizeDocuments(tokenizer: SentencePieceTokenizer, documents: readonly string[]): Int32Array {
  const parts: number[][] = [];
  let n = 0;
  for (const doc of documents) {
    const ids = tokenizer.encode(doc, { addBos: tokenizer.bosId >= 0, addEos: tokenizer.eosId >= 0 });
    parts.push(ids);
    n += ids.length;
  }
  const out = new Int32Array(n);
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

/** Sequences cut from one token stream: inputs stream[iT, iT+T), targets shifted by one. */
export class PackedDataset implements Dataset {
  readonly size: number;
  constructor(readonly stream: Int32Array, readonly seq: number) {
    this.size = Math.max(0, Math.floor((stream.length - 1) / seq));
    if (this.size === 0) throw new InvalidArgumentError(`the data holds ${stream.length} tokens, fewer than one sequence of ${seq} + 1`);
  }
  sample(i: number, ids: Int32Array, targets: Int32Array, at: number): void {
    const o = i * this.seq;
    ids.set(this.stream.subarray(o, o + this.seq), at);
    targets.set(this.stream.subarray(o + 1, o + this.seq + 1), at);
  }
}

export interface Instruction {
  instruction: string;
  input?: string;
  output: string;
}

/** Parses JSONL instruction records; blank lines skipped, bad lines named by number. */
export function parseInstructions(text: string, name = "instructions"): Instruction[] {
  const out: Instruction[] = [];
  text.split("\n").forEach((line, i) => {
    if (line.trim() === "") return;
    let rec: unknown;
    try {
      rec = JSON.parse(line);
    } catch (e) {
      throw new InvalidArgumentError(`${name}:${i + 1}: not JSON (${(e as Error).message})`);
    }
    const r = rec as Record<string, unknown>;
    if (typeof r !== "object" || r === null || typeof r.instruction !== "string" || typeof r.output !== "string" || (r.input !== undefined && r.input !== null && typeof r.input !== "string")) {
      throw new InvalidArgumentError(`${name}:${i + 1}: expected {"instruction": string, "input"?: string, "output": string}`);
    }
    out.push({ instruction: r.instruction, input: typeof r.input === "string" ? r.input : undefined, output: r.output });
  });
  return out;
}

export interface InstructionStats {
  samples: number;
  truncated: number;
}

/** Tokenized instruction samples, each padded or truncated to seq tokens. */
export class InstructionDataset implements Dataset {
  private readonly ids: Int32Array;
  private readonly targets: Int32Array;
  readonly size: number;
  readonly truncated: number;
  /** Samples whose prompt alone fills the sequence: no response token is left to learn. */
  readonly empty: number;

  constructor(tokenizer: SentencePieceTokenizer, records: readonly Instruction[], readonly seq: number, systemPrompt = ALPACA2_SYSTEM_PROMPT) {
    if (records.length === 0) throw new InvalidArgumentError("no instruction records");
    const pad = tokenizer.padId >= 0 ? tokenizer.padId : Math.max(0, tokenizer.eosId);
    this.size = records.length;
    this.ids = new Int32Array(records.length * seq).fill(pad);
    this.targets = new Int32Array(records.length * seq).fill(IGNORE_INDEX);
    let truncated = 0;
    let empty = 0;
    records.forEach((r, k) => {
      const instruction = r.input ? `${r.instruction}\n${r.input}` : r.instruction;
      const source = tokenizer.encode(alpaca2Prompt(instruction, systemPrompt), { addBos: tokenizer.bosId >= 0, addEos: false });
      const target = tokenizer.encode(r.output, { addBos: false, addEos: false });
      if (tokenizer.eosId >= 0) target.push(tokenizer.eosId);
      let all = source.concat(target);
      const labels = source.map(() => IGNORE_INDEX).concat(target);
      if (all.length > seq) {
        truncated++;
        all = all.slice(0, seq);
      }
      const o = k * seq;
      this.ids.set(all, o);
      // HF shifts inside the model: the input at t is trained to predict labels[t + 1].
      for (let t = 0; t + 1 < all.length; t++) this.targets[o + t] = labels[t + 1]!;
      if (source.length >= all.length) empty++;
    });
    this.truncated = truncated;
    this.empty = empty;
  }

  sample(i: number, ids: Int32Array, targets: Int32Array, at: number): void {
    const o = i * this.seq;
    ids.set(this.ids.subarray(o, o + this.seq), at);
    targets.set(this.targets.subarray(o, o + this.seq), at);
  }
}

/** Where a data loader stands: for checkpoints. */
export interface LoaderState {
  epoch: number;
  cursor: number;
  order: number[];
}

/** Micro-batches of `batch` samples in a seeded random order, reshuffled every epoch. */
export class DataLoader {
  readonly ids: Int32Array;
  readonly targets: Int32Array;
  private order: Int32Array;
  epoch = 0;
  cursor = 0;

  constructor(readonly dataset: Dataset, readonly batch: number, private readonly rng: TrainRng, private readonly shuffle = true) {
    this.ids = new Int32Array(batch * dataset.seq);
    this.targets = new Int32Array(batch * dataset.seq);
    this.order = Int32Array.from({ length: dataset.size }, (_, i) => i);
    if (shuffle) rng.shuffle(this.order);
  }

  /** Fills `ids` and `targets` with the next micro-batch. */
  next(): void {
    const T = this.dataset.seq;
    for (let b = 0; b < this.batch; b++) {
      if (this.cursor >= this.order.length) {
        this.epoch++;
        this.cursor = 0;
        if (this.shuffle) this.rng.shuffle(this.order);
      }
      this.dataset.sample(this.order[this.cursor++]!, this.ids, this.targets, b * T);
    }
  }

  getState(): LoaderState {
    return { epoch: this.epoch, cursor: this.cursor, order: Array.from(this.order) };
  }

  setState(s: LoaderState): void {
    if (s.order.length !== this.dataset.size) throw new InvalidArgumentError(`the checkpoint's data order has ${s.order.length} samples, this data set ${this.dataset.size} (different data?)`);
    this.order = Int32Array.from(s.order);
    this.epoch = s.epoch;
    this.cursor = s.cursor;
  }
}
