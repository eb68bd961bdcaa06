/**
 * Building a tokenizer from its two file forms, and writing it back:
 * - a SentencePiece `tokenizer.model` (ModelProto: pieces + trainer/normalizer specs);
 * - GGUF metadata (`tokenizer.ggml.*`, as llama.cpp's converter writes it).
 * A GGUF made from a tokenizer.model carries the same vocabulary and flags, so both paths
 * build the same tokenizer (tested).
 */
import {
  NORMALIZER_SPEC_DEFAULTS,
  PieceType,
  SentencePieceModelType,
  TRAINER_SPEC_DEFAULTS,
  parseSentencePieceModel,
  serializeSentencePieceModel,
  type SentencePieceModelProto,
} from "../formats/sentencepiece.js";
import type { GgufValue } from "../formats/gguf/index.js";
import { TokenizerError } from "./errors.js";
import { SentencePieceTokenizer, type TokenizerSettings } from "./tokenizer.js";

/** GGUF keys of the tokenizer (llama.cpp gguf-py constants). */
export const GGUF_TOKENIZER_KEYS = {
  model: "tokenizer.ggml.model",
  tokens: "tokenizer.ggml.tokens",
  scores: "tokenizer.ggml.scores",
  tokenType: "tokenizer.ggml.token_type",
  bosId: "tokenizer.ggml.bos_token_id",
  eosId: "tokenizer.ggml.eos_token_id",
  unkId: "tokenizer.ggml.unknown_token_id",
  padId: "tokenizer.ggml.padding_token_id",
  addBos: "tokenizer.ggml.add_bos_token",
  addEos: "tokenizer.ggml.add_eos_token",
  addSpacePrefix: "tokenizer.ggml.add_space_prefix",
  removeExtraWhitespaces: "tokenizer.ggml.remove_extra_whitespaces",
  precompiledCharsmap: "tokenizer.ggml.precompiled_charsmap",
} as const;

// ---------------------------------------------------------------------------------------------
// tokenizer.model

/** Builds a tokenizer from a parsed `tokenizer.model` (BPE models only). */
export function tokenizerFromSentencePieceModel(model: SentencePieceModelProto, fileName = "tokenizer.model"): SentencePieceTokenizer {
  const trainer = model.trainerSpec ?? {};
  const normalizer = model.normalizerSpec ?? {};
  const modelType = trainer.modelType ?? TRAINER_SPEC_DEFAULTS.modelType;
  if (modelType !== SentencePieceModelType.Bpe) {
    throw new TokenizerError(
      `${fileName}: trainer_spec.model_type is ${SentencePieceModelType[modelType] ?? modelType}; zh-llama encodes BPE models (LLaMA's kind) only. ` +
        `A unigram model can still be merged into a BPE one with merge-tokenizer.`,
    );
  }
  const n = model.pieces.length;
  const pieces = new Array<string>(n);
  const scores = new Float32Array(n);
  const types = new Uint8Array(n);
  let unkId = -1;
  for (let i = 0; i < n; i++) {
    const p = model.pieces[i];
    pieces[i] = p.piece;
    scores[i] = p.score ?? 0;
    types[i] = p.type ?? PieceType.Normal;
    if (types[i] === PieceType.Unknown && unkId < 0) unkId = i;
  }
  // SentencePiece finds bos/eos/pad by piece text (trainer_spec ids are training options).
  const idOf = (piece: string | undefined, fallback: string): number => {
    const text = piece ?? fallback;
    const id = pieces.indexOf(text);
    return id >= 0 && types[id] === PieceType.Control ? id : -1;
  };
  const bosId = idOf(trainer.bosPiece, "<s>");
  const settings: TokenizerSettings = {
    byteFallback: trainer.byteFallback ?? TRAINER_SPEC_DEFAULTS.byteFallback,
    addDummyPrefix: normalizer.addDummyPrefix ?? NORMALIZER_SPEC_DEFAULTS.addDummyPrefix,
    removeExtraWhitespaces: normalizer.removeExtraWhitespaces ?? NORMALIZER_SPEC_DEFAULTS.removeExtraWhitespaces,
    escapeWhitespaces: normalizer.escapeWhitespaces ?? NORMALIZER_SPEC_DEFAULTS.escapeWhitespaces,
    treatWhitespaceAsSuffix: trainer.treatWhitespaceAsSuffix ?? TRAINER_SPEC_DEFAULTS.treatWhitespaceAsSuffix,
    precompiledCharsmap: normalizer.precompiledCharsmap,
    unkSurface: trainer.unkSurface ?? TRAINER_SPEC_DEFAULTS.unkSurface,
    unkId,
    bosId,
    eosId: idOf(trainer.eosPiece, "</s>"),
    // Chinese-LLaMA-2 keeps "<pad>" as a NORMAL piece: any type counts for padding.
    padId: pieces.indexOf(trainer.padPiece ?? "<pad>"),
    // A tokenizer.model says nothing about BOS; LLaMA's HF tokenizer and llama.cpp add it.
    addBos: bosId >= 0,
    addEos: false,
  };
  return new SentencePieceTokenizer({ pieces, scores, types }, settings, { kind: "sentencepiece", name: fileName });
}

/** Parses and builds in one step. */
export function tokenizerFromSentencePieceBytes(bytes: Uint8Array, fileName = "tokenizer.model"): SentencePieceTokenizer {
  return tokenizerFromSentencePieceModel(parseSentencePieceModel(bytes, fileName), fileName);
}

/**
 * The tokenizer as a ModelProto. Settings SentencePiece keeps in the trainer and normalizer
 * specs go there; anything a GGUF cannot say (training options) is left absent.
 */
export function tokenizerToSentencePieceModel(tokenizer: SentencePieceTokenizer): SentencePieceModelProto {
  const { pieces, scores, types } = tokenizer.vocabulary();
  const s = tokenizer.settings;
  const pieceOr = (id: number): string | undefined => (id >= 0 ? pieces[id] : undefined);
  return {
    pieces: pieces.map((piece, i) => ({ piece, score: scores[i], type: types[i] === PieceType.Normal ? undefined : (types[i] as PieceType) })),
    trainerSpec: {
      modelType: SentencePieceModelType.Bpe,
      vocabSize: pieces.length,
      treatWhitespaceAsSuffix: s.treatWhitespaceAsSuffix,
      byteFallback: s.byteFallback,
      unkId: s.unkId,
      bosId: s.bosId,
      eosId: s.eosId,
      padId: s.padId,
      unkSurface: s.unkSurface,
      unkPiece: pieceOr(s.unkId),
      bosPiece: pieceOr(s.bosId),
      eosPiece: pieceOr(s.eosId),
      padPiece: pieceOr(s.padId),
    },
    normalizerSpec: {
      name: s.precompiledCharsmap && s.precompiledCharsmap.length > 0 ? "precompiled" : "identity",
      precompiledCharsmap: s.precompiledCharsmap ?? new Uint8Array(0),
      addDummyPrefix: s.addDummyPrefix,
      removeExtraWhitespaces: s.removeExtraWhitespaces,
      escapeWhitespaces: s.escapeWhitespaces,
    },
  };
}

/** The bytes of a `tokenizer.model` for this tokenizer. */
export function serializeTokenizer(tokenizer: SentencePieceTokenizer): Uint8Array {
  return serializeSentencePieceModel(tokenizerToSentencePieceModel(tokenizer));
}

// ---------------------------------------------------------------------------------------------
// GGUF metadata

function expectArray(metadata: Record<string, GgufValue>, key: string, where: string): GgufValue[] {
  const value = metadata[key];
  if (value === undefined) throw new TokenizerError(`${where}: metadata key ${key} is missing`);
  if (!Array.isArray(value)) throw new TokenizerError(`${where}: metadata key ${key} is ${typeof value}, expected an array`);
  return value;
}

function optionalId(metadata: Record<string, GgufValue>, key: string, n: number, where: string): number | undefined {
  const value = metadata[key];
  if (value === undefined) return undefined;
  const id = typeof value === "bigint" ? Number(value) : value;
  if (typeof id !== "number" || !Number.isInteger(id)) throw new TokenizerError(`${where}: ${key} is ${String(value)}, expected an integer token id`);
  // llama.cpp writes -1 (or u32 max) for "none".
  if (id === -1 || id === 0xffffffff) return -1;
  if (id < 0 || id >= n) throw new TokenizerError(`${where}: ${key} = ${id} is outside the vocabulary of ${n} tokens`);
  return id;
}

function optionalBool(metadata: Record<string, GgufValue>, key: string, fallback: boolean, where: string): boolean {
  const value = metadata[key];
  if (value === undefined) return fallback;
  if (typeof value !== "boolean") throw new TokenizerError(`${where}: ${key} is ${String(value)}, expected a boolean`);
  return value;
}

/**
 * Builds a tokenizer from GGUF metadata (`tokenizer.ggml.model` = "llama", i.e. SentencePiece
 * BPE). Byte fallback is on when the vocabulary has byte tokens, as in llama.cpp.
 */
export function tokenizerFromGgufMetadata(metadata: Record<string, GgufValue>, fileName = "GGUF metadata"): SentencePieceTokenizer {
  const where = fileName;
  const model = metadata[GGUF_TOKENIZER_KEYS.model];
  if (model !== "llama") {
    throw new TokenizerError(`${where}: ${GGUF_TOKENIZER_KEYS.model} is ${JSON.stringify(model)}, expected "llama" (SentencePiece BPE)`);
  }
  const tokens = expectArray(metadata, GGUF_TOKENIZER_KEYS.tokens, where);
  const n = tokens.length;
  const pieces = new Array<string>(n);
  for (let i = 0; i < n; i++) {
    const t = tokens[i];
    if (typeof t !== "string") throw new TokenizerError(`${where}: ${GGUF_TOKENIZER_KEYS.tokens}[${i}] is ${typeof t}, expected a string`);
    pieces[i] = t;
  }
  const scores = new Float32Array(n);
  if (metadata[GGUF_TOKENIZER_KEYS.scores] !== undefined) {
    const raw = expectArray(metadata, GGUF_TOKENIZER_KEYS.scores, where);
    if (raw.length !== n) throw new TokenizerError(`${where}: ${GGUF_TOKENIZER_KEYS.scores} has ${raw.length} entries but there are ${n} tokens`);
    for (let i = 0; i < n; i++) {
      const v = raw[i];
      if (typeof v !== "number") throw new TokenizerError(`${where}: ${GGUF_TOKENIZER_KEYS.scores}[${i}] is ${typeof v}, expected a number`);
      scores[i] = v;
    }
  }
  const types = new Uint8Array(n).fill(PieceType.Normal);
  if (metadata[GGUF_TOKENIZER_KEYS.tokenType] !== undefined) {
    const raw = expectArray(metadata, GGUF_TOKENIZER_KEYS.tokenType, where);
    if (raw.length !== n) throw new TokenizerError(`${where}: ${GGUF_TOKENIZER_KEYS.tokenType} has ${raw.length} entries but there are ${n} tokens`);
    for (let i = 0; i < n; i++) {
      const v = raw[i];
      if (typeof v !== "number" || !(v in PieceType)) {
        throw new TokenizerError(`${where}: ${GGUF_TOKENIZER_KEYS.tokenType}[${i}] is ${String(v)}, expected a token type 1..6`);
      }
      types[i] = v;
    }
  }
  let unkId = optionalId(metadata, GGUF_TOKENIZER_KEYS.unkId, n, where);
  if (unkId === undefined || unkId < 0) unkId = types.indexOf(PieceType.Unknown);
  if (unkId >= 0 && types[unkId] !== PieceType.Unknown) {
    throw new TokenizerError(`${where}: ${GGUF_TOKENIZER_KEYS.unkId} = ${unkId} names token ${JSON.stringify(pieces[unkId])} of type ${PieceType[types[unkId]]}, expected type UNKNOWN`);
  }
  const byteCount = types.reduce((count, t) => count + (t === PieceType.Byte ? 1 : 0), 0);
  const charsmap = metadata[GGUF_TOKENIZER_KEYS.precompiledCharsmap];
  let precompiledCharsmap: Uint8Array | undefined;
  if (charsmap !== undefined) {
    if (!Array.isArray(charsmap) || charsmap.some((b) => typeof b !== "number" || b < 0 || b > 255 || !Number.isInteger(b))) {
      throw new TokenizerError(`${where}: ${GGUF_TOKENIZER_KEYS.precompiledCharsmap} must be an array of bytes`);
    }
    precompiledCharsmap = Uint8Array.from(charsmap as number[]);
  }
  const bosId = optionalId(metadata, GGUF_TOKENIZER_KEYS.bosId, n, where) ?? -1;
  const eosId = optionalId(metadata, GGUF_TOKENIZER_KEYS.eosId, n, where) ?? -1;
  const settings: TokenizerSettings = {
    byteFallback: byteCount > 0,
    addDummyPrefix: optionalBool(metadata, GGUF_TOKENIZER_KEYS.addSpacePrefix, true, where),
    removeExtraWhitespaces: optionalBool(metadata, GGUF_TOKENIZER_KEYS.removeExtraWhitespaces, false, where),
    escapeWhitespaces: true,
    treatWhitespaceAsSuffix: false,
    precompiledCharsmap,
    unkSurface: TRAINER_SPEC_DEFAULTS.unkSurface,
    unkId,
    bosId,
    eosId,
    padId: optionalId(metadata, GGUF_TOKENIZER_KEYS.padId, n, where) ?? -1,
    // llama.cpp's defaults for SentencePiece vocabularies when the flags are absent.
    addBos: optionalBool(metadata, GGUF_TOKENIZER_KEYS.addBos, bosId >= 0, where),
    addEos: optionalBool(metadata, GGUF_TOKENIZER_KEYS.addEos, false, where),
  };
  return new SentencePieceTokenizer({ pieces, scores, types }, settings, { kind: "gguf", name: fileName });
}

/** The `tokenizer.ggml.*` metadata llama.cpp's converter would write for this tokenizer. */
export function tokenizerToGgufMetadata(tokenizer: SentencePieceTokenizer): Record<string, GgufValue> {
  const { pieces, scores, types } = tokenizer.vocabulary();
  const s = tokenizer.settings;
  const metadata: Record<string, GgufValue> = {
    [GGUF_TOKENIZER_KEYS.model]: "llama",
    [GGUF_TOKENIZER_KEYS.tokens]: pieces,
    [GGUF_TOKENIZER_KEYS.scores]: Array.from(scores),
    [GGUF_TOKENIZER_KEYS.tokenType]: Array.from(types),
    [GGUF_TOKENIZER_KEYS.unkId]: s.unkId,
    [GGUF_TOKENIZER_KEYS.addBos]: s.addBos,
    [GGUF_TOKENIZER_KEYS.addEos]: s.addEos,
  };
  if (s.bosId >= 0) metadata[GGUF_TOKENIZER_KEYS.bosId] = s.bosId;
  if (s.eosId >= 0) metadata[GGUF_TOKENIZER_KEYS.eosId] = s.eosId;
  if (s.padId >= 0) metadata[GGUF_TOKENIZER_KEYS.padId] = s.padId;
  if (!s.addDummyPrefix) metadata[GGUF_TOKENIZER_KEYS.addSpacePrefix] = false;
  if (s.removeExtraWhitespaces) metadata[GGUF_TOKENIZER_KEYS.removeExtraWhitespaces] = true;
  if (s.precompiledCharsmap && s.precompiledCharsmap.length > 0) metadata[GGUF_TOKENIZER_KEYS.precompiledCharsmap] = Array.from(s.precompiledCharsmap);
  if (s.treatWhitespaceAsSuffix || !s.escapeWhitespaces || s.unkSurface !== TRAINER_SPEC_DEFAULTS.unkSurface) {
    throw new TokenizerError(`${tokenizer.origin.name}: GGUF has no key for treat_whitespace_as_suffix, escape_whitespaces=false or a custom unk surface`);
  }
  return metadata;
}

// ---------------------------------------------------------------------------------------------
// Files

const GGUF_MAGIC_BYTES = [0x47, 0x47, 0x55, 0x46]; // "GGUF"

/**
 * Loads a tokenizer from a GGUF model or a SentencePiece `tokenizer.model`, told apart by the
 * GGUF magic. Node/Deno/Bun (reads the file system).
 */
export async function loadTokenizer(path: string): Promise<SentencePieceTokenizer> {
  const { readFile, open } = await import("node:fs/promises");
  let handle: import("node:fs/promises").FileHandle;
  try {
    handle = await open(path, "r");
  } catch (error) {
    throw new TokenizerError(`cannot open tokenizer ${path}: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
  }
  let isGguf = false;
  try {
    const head = new Uint8Array(4);
    const { bytesRead } = await handle.read(head, 0, 4, 0);
    isGguf = bytesRead === 4 && GGUF_MAGIC_BYTES.every((b, i) => head[i] === b);
  } finally {
    await handle.close();
  }
  if (isGguf) return loadTokenizerFromGguf(path);
  return tokenizerFromSentencePieceBytes(await readFile(path), path);
}

/** Reads only the GGUF header (metadata), never the tensors. */
export async function loadTokenizerFromGguf(source: string | Blob | ArrayBuffer | Uint8Array, name?: string): Promise<SentencePieceTokenizer> {
  const { openGguf } = await import("../formats/gguf/index.js");
  const file = await openGguf(source);
  try {
    return tokenizerFromGgufMetadata(file.metadata, name ?? (typeof source === "string" ? source : file.name));
  } finally {
    await file.close();
  }
}

/** Writes the tokenizer as a SentencePiece `tokenizer.model`. */
export async function saveTokenizerModel(tokenizer: SentencePieceTokenizer, path: string): Promise<void> {
  const { writeFile } = await import("node:fs/promises");
  await writeFile(path, serializeTokenizer(tokenizer));
}
