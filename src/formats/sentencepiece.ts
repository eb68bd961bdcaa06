/**
 * SentencePiece `tokenizer.model`: a protobuf (proto2) `ModelProto` message, read and written
 * without a protobuf library.
 *
 * Schema: sentencepiece's src/sentencepiece_model.proto (v0.1.97). Wire format:
 *
 *   ModelProto      1: repeated SentencePiece pieces   2: TrainerSpec   3: NormalizerSpec
 *                   4: SelfTestData (kept as raw bytes) 5: NormalizerSpec denormalizer
 *   SentencePiece   1: string piece   2: float score (fixed32)   3: enum type (varint)
 *
 * proto2 fields have presence: a field that was absent reads back as `undefined` and is not
 * written again. Known fields are written in field-number order and unknown fields after them,
 * which is what protobuf's own serializers do, so a model that went through
 * read -> write comes out byte-identical (the upstream merge script depends on that order too).
 */
import { FormatError } from "./errors.js";

/** A `tokenizer.model` that breaks the protobuf wire format or SentencePiece's own rules. */
export class SentencePieceFormatError extends FormatError {}

/** `ModelProto.SentencePiece.Type`: the wire ids, shared with GGUF's `tokenizer.ggml.token_type`. */
export enum PieceType {
  Normal = 1,
  Unknown = 2,
  Control = 3,
  UserDefined = 4,
  Unused = 5,
  Byte = 6,
}

/** `TrainerSpec.ModelType`. */
export enum SentencePieceModelType {
  Unigram = 1,
  Bpe = 2,
  Word = 3,
  Char = 4,
}

export interface SentencePieceProtoPiece {
  piece: string;
  /** f32 on the wire; absent means 0. */
  score?: number;
  /** absent means NORMAL. */
  type?: PieceType;
  unknownFields?: RawField[];
}

/** A field this reader does not interpret, kept so that a rewrite loses nothing. */
export interface RawField {
  field: number;
  wireType: number;
  /** The field's payload without its tag (varint bytes, 4/8 fixed bytes, or the delimited body). */
  data: Uint8Array;
}

/** TrainerSpec, every field optional as in proto2 (absent = the proto default). */
export interface TrainerSpec {
  input?: string[];
  modelPrefix?: string;
  modelType?: SentencePieceModelType;
  vocabSize?: number;
  acceptLanguage?: string[];
  selfTestSampleSize?: number;
  inputFormat?: string;
  characterCoverage?: number;
  inputSentenceSize?: bigint;
  miningSentenceSize?: number;
  trainingSentenceSize?: number;
  seedSentencepieceSize?: number;
  shrinkingFactor?: number;
  numThreads?: number;
  numSubIterations?: number;
  maxSentenceLength?: number;
  shuffleInputSentence?: boolean;
  maxSentencepieceLength?: number;
  splitByUnicodeScript?: boolean;
  splitByWhitespace?: boolean;
  splitByNumber?: boolean;
  treatWhitespaceAsSuffix?: boolean;
  splitDigits?: boolean;
  allowWhitespaceOnlyPieces?: boolean;
  controlSymbols?: string[];
  userDefinedSymbols?: string[];
  vocabularyOutputPieceScore?: boolean;
  hardVocabLimit?: boolean;
  useAllVocab?: boolean;
  byteFallback?: boolean;
  requiredChars?: string;
  unkId?: number;
  bosId?: number;
  eosId?: number;
  padId?: number;
  unkSurface?: string;
  unkPiece?: string;
  bosPiece?: string;
  eosPiece?: string;
  padPiece?: string;
  trainExtremelyLargeCorpus?: boolean;
  enableDifferentialPrivacy?: boolean;
  differentialPrivacyNoiseLevel?: number;
  differentialPrivacyClippingThreshold?: bigint;
  unknownFields?: RawField[];
}

export interface NormalizerSpec {
  name?: string;
  precompiledCharsmap?: Uint8Array;
  addDummyPrefix?: boolean;
  removeExtraWhitespaces?: boolean;
  escapeWhitespaces?: boolean;
  normalizationRuleTsv?: string;
  unknownFields?: RawField[];
}

export interface SentencePieceModelProto {
  pieces: SentencePieceProtoPiece[];
  trainerSpec?: TrainerSpec;
  normalizerSpec?: NormalizerSpec;
  /** SelfTestData, never interpreted: kept as its encoded body. */
  selfTestData?: Uint8Array;
  denormalizerSpec?: NormalizerSpec;
  unknownFields?: RawField[];
}

/** The proto defaults SentencePiece applies when a field is absent. */
export const TRAINER_SPEC_DEFAULTS = {
  modelType: SentencePieceModelType.Unigram,
  treatWhitespaceAsSuffix: false,
  byteFallback: false,
  unkId: 0,
  bosId: 1,
  eosId: 2,
  padId: -1,
  unkSurface: " \u2047 ",
} as const;

export const NORMALIZER_SPEC_DEFAULTS = {
  addDummyPrefix: true,
  removeExtraWhitespaces: true,
  escapeWhitespaces: true,
} as const;

/** Refuse models beyond these sizes instead of allocating without bound. */
export const MAX_SENTENCEPIECE_PIECES = 4_000_000;
export const MAX_SENTENCEPIECE_FILE_BYTES = 1 << 30;

// ---------------------------------------------------------------------------------------------
// Field tables: one row per known field, in field-number order (the order they are written in).

type FieldKind = "string" | "bytes" | "bool" | "int32" | "uint64" | "float" | "enum";
interface FieldDef {
  number: number;
  name: string;
  kind: FieldKind;
  repeated?: boolean;
}

const TRAINER_SPEC_FIELDS: readonly FieldDef[] = [
  { number: 1, name: "input", kind: "string", repeated: true },
  { number: 2, name: "modelPrefix", kind: "string" },
  { number: 3, name: "modelType", kind: "enum" },
  { number: 4, name: "vocabSize", kind: "int32" },
  { number: 5, name: "acceptLanguage", kind: "string", repeated: true },
  { number: 6, name: "selfTestSampleSize", kind: "int32" },
  { number: 7, name: "inputFormat", kind: "string" },
  { number: 10, name: "characterCoverage", kind: "float" },
  { number: 11, name: "inputSentenceSize", kind: "uint64" },
  { number: 12, name: "miningSentenceSize", kind: "int32" },
  { number: 13, name: "trainingSentenceSize", kind: "int32" },
  { number: 14, name: "seedSentencepieceSize", kind: "int32" },
  { number: 15, name: "shrinkingFactor", kind: "float" },
  { number: 16, name: "numThreads", kind: "int32" },
  { number: 17, name: "numSubIterations", kind: "int32" },
  { number: 18, name: "maxSentenceLength", kind: "int32" },
  { number: 19, name: "shuffleInputSentence", kind: "bool" },
  { number: 20, name: "maxSentencepieceLength", kind: "int32" },
  { number: 21, name: "splitByUnicodeScript", kind: "bool" },
  { number: 22, name: "splitByWhitespace", kind: "bool" },
  { number: 23, name: "splitByNumber", kind: "bool" },
  { number: 24, name: "treatWhitespaceAsSuffix", kind: "bool" },
  { number: 25, name: "splitDigits", kind: "bool" },
  { number: 26, name: "allowWhitespaceOnlyPieces", kind: "bool" },
  { number: 30, name: "controlSymbols", kind: "string", repeated: true },
  { number: 31, name: "userDefinedSymbols", kind: "string", repeated: true },
  { number: 32, name: "vocabularyOutputPieceScore", kind: "bool" },
  { number: 33, name: "hardVocabLimit", kind: "bool" },
  { number: 34, name: "useAllVocab", kind: "bool" },
  { number: 35, name: "byteFallback", kind: "bool" },
  { number: 36, name: "requiredChars", kind: "string" },
  { number: 40, name: "unkId", kind: "int32" },
  { number: 41, name: "bosId", kind: "int32" },
  { number: 42, name: "eosId", kind: "int32" },
  { number: 43, name: "padId", kind: "int32" },
  { number: 44, name: "unkSurface", kind: "string" },
  { number: 45, name: "unkPiece", kind: "string" },
  { number: 46, name: "bosPiece", kind: "string" },
  { number: 47, name: "eosPiece", kind: "string" },
  { number: 48, name: "padPiece", kind: "string" },
  { number: 49, name: "trainExtremelyLargeCorpus", kind: "bool" },
  { number: 50, name: "enableDifferentialPrivacy", kind: "bool" },
  { number: 51, name: "differentialPrivacyNoiseLevel", kind: "float" },
  { number: 52, name: "differentialPrivacyClippingThreshold", kind: "uint64" },
];

const NORMALIZER_SPEC_FIELDS: readonly FieldDef[] = [
  { number: 1, name: "name", kind: "string" },
  { number: 2, name: "precompiledCharsmap", kind: "bytes" },
  { number: 3, name: "addDummyPrefix", kind: "bool" },
  { number: 4, name: "removeExtraWhitespaces", kind: "bool" },
  { number: 5, name: "escapeWhitespaces", kind: "bool" },
  { number: 6, name: "normalizationRuleTsv", kind: "string" },
];

const WIRE_VARINT = 0;
const WIRE_FIXED64 = 1;
const WIRE_DELIMITED = 2;
const WIRE_FIXED32 = 5;

// ---------------------------------------------------------------------------------------------
// Reading

const utf8Strict = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

/** A bounds-checked cursor over one message body; every error names the file and offset. */
class ProtoReader {
  pos: number;
  constructor(
    readonly bytes: Uint8Array,
    readonly fileName: string,
    readonly start: number,
    readonly end: number,
    readonly what: string,
  ) {
    this.pos = start;
  }

  fail(message: string, at = this.pos): never {
    throw new SentencePieceFormatError(`${this.fileName}: byte ${at} (in ${this.what}): ${message}`);
  }

  /** A varint as a JS number, for tags and lengths (anything past 2^53 is refused). */
  varint(): number {
    let result = 0;
    let scale = 1;
    const at = this.pos;
    for (let i = 0; i < 10; i++) {
      if (this.pos >= this.end) this.fail("truncated varint", at);
      const b = this.bytes[this.pos++];
      result += (b & 0x7f) * scale;
      if ((b & 0x80) === 0) {
        if (result > Number.MAX_SAFE_INTEGER) this.fail("varint exceeds 2^53", at);
        return result;
      }
      scale *= 128;
    }
    return this.fail("varint longer than 10 bytes", at);
  }

  /** A varint as an unsigned 64-bit bigint. */
  varint64(): bigint {
    let result = 0n;
    let shift = 0n;
    const at = this.pos;
    for (let i = 0; i < 10; i++) {
      if (this.pos >= this.end) this.fail("truncated varint", at);
      const b = this.bytes[this.pos++];
      result |= BigInt(b & 0x7f) << shift;
      if ((b & 0x80) === 0) return BigInt.asUintN(64, result);
      shift += 7n;
    }
    return this.fail("varint longer than 10 bytes", at);
  }

  /** int32 on the wire is a sign-extended 64-bit varint: keep the low 32 bits, signed. */
  int32(): number {
    return Number(BigInt.asIntN(32, this.varint64()));
  }

  fixed32Float(): number {
    if (this.pos + 4 > this.end) this.fail("truncated fixed32");
    const view = new DataView(this.bytes.buffer, this.bytes.byteOffset + this.pos, 4);
    this.pos += 4;
    return view.getFloat32(0, true);
  }

  /** The [start, end) of a length-delimited payload, checked against the enclosing message. */
  delimited(): [number, number] {
    const at = this.pos;
    const length = this.varint();
    if (length > this.end - this.pos) {
      this.fail(`length ${length} runs past the end of the enclosing message (${this.end - this.pos} bytes left)`, at);
    }
    const start = this.pos;
    this.pos += length;
    return [start, this.pos];
  }

  string(): string {
    const [start, end] = this.delimited();
    try {
      return utf8Strict.decode(this.bytes.subarray(start, end));
    } catch {
      return this.fail("string field is not valid UTF-8", start);
    }
  }

  /** Skips one field's payload, returning it raw. */
  raw(field: number, wireType: number): RawField {
    const start = this.pos;
    switch (wireType) {
      case WIRE_VARINT:
        this.varint64();
        return { field, wireType, data: this.bytes.slice(start, this.pos) };
      case WIRE_FIXED64:
        if (this.pos + 8 > this.end) this.fail("truncated fixed64");
        this.pos += 8;
        return { field, wireType, data: this.bytes.slice(start, this.pos) };
      case WIRE_DELIMITED: {
        const [s, e] = this.delimited();
        return { field, wireType, data: this.bytes.slice(s, e) };
      }
      case WIRE_FIXED32:
        if (this.pos + 4 > this.end) this.fail("truncated fixed32");
        this.pos += 4;
        return { field, wireType, data: this.bytes.slice(start, this.pos) };
      default:
        return this.fail(`field ${field} has unsupported wire type ${wireType}`, start);
    }
  }

  tag(): [field: number, wireType: number] {
    const at = this.pos;
    const tag = this.varint();
    const field = Math.floor(tag / 8);
    if (field === 0) this.fail("field number 0", at);
    return [field, tag & 7];
  }
}

const EXPECTED_WIRE: Record<FieldKind, number> = {
  string: WIRE_DELIMITED,
  bytes: WIRE_DELIMITED,
  bool: WIRE_VARINT,
  int32: WIRE_VARINT,
  uint64: WIRE_VARINT,
  float: WIRE_FIXED32,
  enum: WIRE_VARINT,
};

function readTable(r: ProtoReader, table: readonly FieldDef[]): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  const unknown: RawField[] = [];
  while (r.pos < r.end) {
    const [field, wireType] = r.tag();
    const def = table.find((d) => d.number === field);
    if (!def || EXPECTED_WIRE[def.kind] !== wireType) {
      unknown.push(r.raw(field, wireType));
      continue;
    }
    let value: unknown;
    switch (def.kind) {
      case "string":
        value = r.string();
        break;
      case "bytes": {
        const [s, e] = r.delimited();
        value = r.bytes.slice(s, e);
        break;
      }
      case "bool":
        value = r.varint64() !== 0n;
        break;
      case "int32":
      case "enum":
        value = r.int32();
        break;
      case "uint64":
        value = r.varint64();
        break;
      case "float":
        value = r.fixed32Float();
        break;
    }
    if (def.repeated) {
      const list = (out[def.name] as unknown[] | undefined) ?? [];
      list.push(value);
      out[def.name] = list;
    } else {
      out[def.name] = value;
    }
  }
  if (unknown.length > 0) out.unknownFields = unknown;
  return out;
}

function readPiece(r: ProtoReader, index: number): SentencePieceProtoPiece {
  let piece: string | undefined;
  let score: number | undefined;
  let type: number | undefined;
  let unknown: RawField[] | undefined;
  while (r.pos < r.end) {
    const [field, wireType] = r.tag();
    if (field === 1 && wireType === WIRE_DELIMITED) piece = r.string();
    else if (field === 2 && wireType === WIRE_FIXED32) score = r.fixed32Float();
    else if (field === 3 && wireType === WIRE_VARINT) {
      const at = r.pos;
      type = r.int32();
      if (!(type in PieceType)) r.fail(`piece ${index} has unknown type ${type} (expected 1..6)`, at);
    } else (unknown ??= []).push(r.raw(field, wireType));
  }
  if (piece === undefined || piece.length === 0) r.fail(`piece ${index} has no text (SentencePiece requires a non-empty piece)`, r.start);
  const out: SentencePieceProtoPiece = { piece };
  if (score !== undefined) out.score = score;
  if (type !== undefined) out.type = type as PieceType;
  if (unknown) out.unknownFields = unknown;
  return out;
}

/**
 * Parses a `tokenizer.model`. Checks the wire format only; the tokenizer checks SentencePiece's
 * own rules (one `<unk>`, unique pieces, 256 byte pieces when byte_fallback is on).
 */
export function parseSentencePieceModel(bytes: Uint8Array, fileName = "tokenizer.model"): SentencePieceModelProto {
  if (bytes.length > MAX_SENTENCEPIECE_FILE_BYTES) {
    throw new SentencePieceFormatError(`${fileName}: ${bytes.length} bytes is larger than the ${MAX_SENTENCEPIECE_FILE_BYTES}-byte limit for a tokenizer.model`);
  }
  const r = new ProtoReader(bytes, fileName, 0, bytes.length, "ModelProto");
  const model: SentencePieceModelProto = { pieces: [] };
  while (r.pos < r.end) {
    const tagAt = r.pos;
    const [field, wireType] = r.tag();
    if (field >= 1 && field <= 5 && wireType !== WIRE_DELIMITED) {
      r.fail(`ModelProto field ${field} has wire type ${wireType}, expected 2 (length-delimited)`, tagAt);
    }
    if (field === 1) {
      if (model.pieces.length >= MAX_SENTENCEPIECE_PIECES) r.fail(`more than ${MAX_SENTENCEPIECE_PIECES} pieces`);
      const [s, e] = r.delimited();
      model.pieces.push(readPiece(new ProtoReader(bytes, fileName, s, e, `piece ${model.pieces.length}`), model.pieces.length));
    } else if (field === 2) {
      const [s, e] = r.delimited();
      model.trainerSpec = readTable(new ProtoReader(bytes, fileName, s, e, "trainer_spec"), TRAINER_SPEC_FIELDS) as TrainerSpec;
    } else if (field === 3 || field === 5) {
      const [s, e] = r.delimited();
      const spec = readTable(new ProtoReader(bytes, fileName, s, e, field === 3 ? "normalizer_spec" : "denormalizer_spec"), NORMALIZER_SPEC_FIELDS) as NormalizerSpec;
      if (field === 3) model.normalizerSpec = spec;
      else model.denormalizerSpec = spec;
    } else if (field === 4) {
      const [s, e] = r.delimited();
      model.selfTestData = bytes.slice(s, e);
    } else {
      (model.unknownFields ??= []).push(r.raw(field, wireType));
    }
  }
  if (model.pieces.length === 0) {
    throw new SentencePieceFormatError(`${fileName}: no pieces (is this a SentencePiece tokenizer.model?)`);
  }
  return model;
}

// ---------------------------------------------------------------------------------------------
// Writing

const utf8 = new TextEncoder();

/** Growable byte sink. */
class ProtoWriter {
  buf = new Uint8Array(1 << 16);
  len = 0;

  private ensure(n: number): void {
    if (this.len + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.len + n) size *= 2;
    const next = new Uint8Array(size);
    next.set(this.buf.subarray(0, this.len));
    this.buf = next;
  }

  byte(b: number): void {
    this.ensure(1);
    this.buf[this.len++] = b;
  }

  varint(value: number): void {
    let v = value;
    while (v >= 0x80) {
      this.byte((v % 128) | 0x80);
      v = Math.floor(v / 128);
    }
    this.byte(v);
  }

  varint64(value: bigint): void {
    let v = BigInt.asUintN(64, value);
    while (v >= 0x80n) {
      this.byte(Number(v & 0x7fn) | 0x80);
      v >>= 7n;
    }
    this.byte(Number(v));
  }

  tag(field: number, wireType: number): void {
    this.varint(field * 8 + wireType);
  }

  bytes(data: Uint8Array): void {
    this.ensure(data.length);
    this.buf.set(data, this.len);
    this.len += data.length;
  }

  delimited(field: number, data: Uint8Array): void {
    this.tag(field, WIRE_DELIMITED);
    this.varint(data.length);
    this.bytes(data);
  }

  float(field: number, value: number): void {
    this.tag(field, WIRE_FIXED32);
    this.ensure(4);
    new DataView(this.buf.buffer, this.len, 4).setFloat32(0, value, true);
    this.len += 4;
  }

  raw(f: RawField): void {
    this.tag(f.field, f.wireType);
    if (f.wireType === WIRE_DELIMITED) this.varint(f.data.length);
    this.bytes(f.data);
  }

  finish(): Uint8Array {
    return this.buf.slice(0, this.len);
  }
}

function writeValue(w: ProtoWriter, def: FieldDef, value: unknown): void {
  switch (def.kind) {
    case "string":
      w.delimited(def.number, utf8.encode(value as string));
      break;
    case "bytes":
      w.delimited(def.number, value as Uint8Array);
      break;
    case "bool":
      w.tag(def.number, WIRE_VARINT);
      w.byte(value ? 1 : 0);
      break;
    case "int32":
    case "enum":
      w.tag(def.number, WIRE_VARINT);
      w.varint64(BigInt(value as number));
      break;
    case "uint64":
      w.tag(def.number, WIRE_VARINT);
      w.varint64(value as bigint);
      break;
    case "float":
      w.float(def.number, value as number);
      break;
  }
}

function writeTable(table: readonly FieldDef[], message: object): Uint8Array {
  const w = new ProtoWriter();
  const fields = message as Record<string, unknown>;
  for (const def of table) {
    const value = fields[def.name];
    if (value === undefined) continue;
    if (def.repeated) for (const item of value as unknown[]) writeValue(w, def, item);
    else writeValue(w, def, value);
  }
  for (const f of (fields.unknownFields as RawField[] | undefined) ?? []) w.raw(f);
  return w.finish();
}

function writePiece(p: SentencePieceProtoPiece): Uint8Array {
  const w = new ProtoWriter();
  w.delimited(1, utf8.encode(p.piece));
  if (p.score !== undefined) w.float(2, p.score);
  if (p.type !== undefined) {
    w.tag(3, WIRE_VARINT);
    w.varint(p.type);
  }
  for (const f of p.unknownFields ?? []) w.raw(f);
  return w.finish();
}

/** Encodes a ModelProto (the bytes of a `tokenizer.model`). */
export function serializeSentencePieceModel(model: SentencePieceModelProto): Uint8Array {
  const w = new ProtoWriter();
  for (const p of model.pieces) w.delimited(1, writePiece(p));
  if (model.trainerSpec) w.delimited(2, writeTable(TRAINER_SPEC_FIELDS, model.trainerSpec));
  if (model.normalizerSpec) w.delimited(3, writeTable(NORMALIZER_SPEC_FIELDS, model.normalizerSpec));
  if (model.selfTestData) w.delimited(4, model.selfTestData);
  if (model.denormalizerSpec) w.delimited(5, writeTable(NORMALIZER_SPEC_FIELDS, model.denormalizerSpec));
  for (const f of model.unknownFields ?? []) w.raw(f);
  return w.finish();
}
