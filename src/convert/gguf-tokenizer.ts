/**
 * The tokenizer of an HF directory as GGUF `tokenizer.ggml.*` metadata, as llama.cpp's
 * converter builds it for SentencePiece models: the pieces of tokenizer.model, then the HF
 * added tokens of added_tokens.json (Chinese-Alpaca's "[PAD]" at 49953) as USER_DEFINED with
 * score -1000, then "[PADn]" UNUSED fillers up to the embedding's row count. More tokens than
 * embedding rows is a vocabulary mismatch and refused.
 */
import { FormatError } from "../formats/errors.js";
import type { GgufValue } from "../formats/gguf/index.js";
import { PieceType, tokenizerFromSentencePieceBytes, tokenizerToGgufMetadata, tokenizerFromGgufMetadata, tokenizerToSentencePieceModel, hfTokenizerFiles } from "../tokenizer/index.js";

export class VocabularyMismatchError extends FormatError {}

/** HF added tokens (added_tokens.json: token -> id), checked to continue the model's ids. */
export function parseAddedTokens(bytes: Uint8Array | undefined, modelSize: number, where: string): string[] {
  if (!bytes) return [];
  let map: unknown;
  try {
    map = JSON.parse(new TextDecoder().decode(bytes));
  } catch {
    throw new FormatError(`${where}: added_tokens.json is not valid JSON`);
  }
  if (typeof map !== "object" || map === null) throw new FormatError(`${where}: added_tokens.json is not an object`);
  const entries = Object.entries(map as Record<string, unknown>).sort((a, b) => Number(a[1]) - Number(b[1]));
  const out: string[] = [];
  for (const [token, id] of entries) {
    if (id === modelSize + out.length) out.push(token);
    else if (typeof id === "number" && id < modelSize) continue; // an added token that is already a piece
    else throw new FormatError(`${where}: added token ${JSON.stringify(token)} has id ${String(id)}, expected ${modelSize + out.length}`);
  }
  return out;
}

/** Number of tokens an HF tokenizer (tokenizer.model + added_tokens.json) has, or undefined without one. */
export function hfTokenizerSize(files: Record<string, Uint8Array>, where: string): number | undefined {
  const model = files["tokenizer.model"];
  if (!model) return undefined;
  const tokenizer = tokenizerFromSentencePieceBytes(model, `${where}/tokenizer.model`);
  return tokenizer.vocabSize + parseAddedTokens(files["added_tokens.json"], tokenizer.vocabSize, where).length;
}

/** GGUF tokenizer metadata for HF tokenizer files and an embedding of `vocabSize` rows. */
export function ggufTokenizerFromHfFiles(files: Record<string, Uint8Array>, vocabSize: number, where: string): Record<string, GgufValue> {
  const model = files["tokenizer.model"];
  if (!model) throw new FormatError(`${where}: no tokenizer.model; a GGUF needs the tokenizer in its metadata`);
  const tokenizer = tokenizerFromSentencePieceBytes(model, `${where}/tokenizer.model`);
  const metadata = tokenizerToGgufMetadata(tokenizer);
  const tokens = [...(metadata["tokenizer.ggml.tokens"] as string[])];
  const scores = [...(metadata["tokenizer.ggml.scores"] as number[])];
  const types = [...(metadata["tokenizer.ggml.token_type"] as number[])];
  for (const token of parseAddedTokens(files["added_tokens.json"], tokens.length, where)) {
    tokens.push(token);
    scores.push(-1000);
    types.push(PieceType.UserDefined);
  }
  if (tokens.length > vocabSize) {
    throw new VocabularyMismatchError(
      `${where}: the tokenizer has ${tokens.length} tokens but the embedding only ${vocabSize} rows; ` +
        `the tokenizer and the weights come from different vocabularies (e.g. an Alpaca tokenizer with LLaMA weights)`,
    );
  }
  for (let i = 1; tokens.length < vocabSize; i++) {
    tokens.push(`[PAD${i}]`);
    scores.push(-1000);
    types.push(PieceType.Unused);
  }
  // An added "[PAD]" token is the padding id, as the HF tokenizer's pad_token says.
  const special = files["special_tokens_map.json"];
  if (special) {
    try {
      const pad = (JSON.parse(new TextDecoder().decode(special)) as { pad_token?: unknown }).pad_token;
      const padText = typeof pad === "string" ? pad : pad && typeof pad === "object" && "content" in pad ? String((pad as { content: unknown }).content) : undefined;
      const padId = padText === undefined ? -1 : tokens.indexOf(padText);
      if (padId >= 0) metadata["tokenizer.ggml.padding_token_id"] = padId;
    } catch {
      // special_tokens_map.json is advisory; a broken one only loses the pad id.
    }
  }
  return { ...metadata, "tokenizer.ggml.tokens": tokens, "tokenizer.ggml.scores": scores, "tokenizer.ggml.token_type": types };
}

/** HF tokenizer files (tokenizer.model, configs) for a GGUF's tokenizer metadata. */
export function hfFilesFromGgufTokenizer(metadata: Record<string, GgufValue>, where: string): Record<string, Uint8Array> {
  const tokenizer = tokenizerFromGgufMetadata(metadata, where);
  return hfTokenizerFiles(tokenizerToSentencePieceModel(tokenizer));
}
