/** Tiny synthetic models for the chat, CFG and speculative tests. */
import { encodeGguf, type GgufWriteSpec } from "../../src/formats/gguf/index.js";
import { GGMLType } from "../../src/formats/ggml-types.js";
import { LlamaModel } from "../../src/model/index.js";
import { syntheticModel, type SyntheticModelOptions } from "../../src/convert/synthetic.js";
import { tokenizerFromGgufMetadata, type SentencePieceTokenizer } from "../../src/tokenizer/index.js";

export const TINY: SyntheticModelOptions = { dim: 32, layers: 2, heads: 4, kvHeads: 2, ffn: 64, vocab: 300, ctx: 256, seed: 11 };

/** Letters a..l and "▁" + each, so "▁a▁b" text re-encodes to the ids that produced it. */
export const LETTERS = "abcdefghijkl";

/**
 * The synthetic vocabulary with its first word pieces replaced by "▁", single letters and
 * "▁"-letters: a chat's answers (restricted to the "▁x" pieces by logit bias) then round-trip
 * through decode and encode, as real answers do with a real vocabulary.
 */
export function withLetterVocab(spec: GgufWriteSpec): GgufWriteSpec {
  const tokens = [...(spec.metadata["tokenizer.ggml.tokens"] as string[])];
  const letters = ["▁", ...LETTERS, ...[...LETTERS].map((c) => "▁" + c)];
  letters.forEach((piece, i) => (tokens[259 + i] = piece));
  return { ...spec, metadata: { ...spec.metadata, "tokenizer.ggml.tokens": tokens } };
}

export async function tinyModelBytes(options: Partial<SyntheticModelOptions> = {}, letters = false): Promise<Uint8Array> {
  const spec = syntheticModel({ ...TINY, ...options });
  return encodeGguf(letters ? withLetterVocab(spec) : spec);
}

export async function loadTiny(options: Partial<SyntheticModelOptions> = {}, nCtx = 256, letters = false): Promise<{ model: LlamaModel; tokenizer: SentencePieceTokenizer }> {
  const model = await LlamaModel.load(await tinyModelBytes(options, letters), { nCtx, kvCacheType: "f32" });
  return { model, tokenizer: tokenizerFromGgufMetadata(model.file.metadata) };
}

export { GGMLType };
