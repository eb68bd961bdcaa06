/** A tiny random-weight model whose vocabulary has JSON-shaped pieces (tests only). */
import { encodeGguf } from "../../src/formats/gguf/index.js";
import { LlamaModel } from "../../src/model/index.js";
import { syntheticModel } from "../../src/convert/synthetic.js";
import { tokenizerFromGgufMetadata, type SentencePieceTokenizer } from "../../src/tokenizer/index.js";

export const JSON_PIECES = [
  "{", "}", "[", "]", '"', ":", ",", "▁", "▁{", '▁"', '":', '",', '"}', "},", "],", "true", "false", "null", "▁true", "▁null",
  "0", "1", "2", "3", "4", "5", "6", "7", "8", "9", "10", "42", "-", ".", "e", "name", "age", "ok", "tags", "kind",
  "a", "b", "x", "ab", "▁a", "中", "文", "\\n", "\\", "n", "\n", "▁▁", "▁x",
];

export async function jsonModel(seed = 3): Promise<{ model: LlamaModel; tokenizer: SentencePieceTokenizer }> {
  const vocab = 259 + JSON_PIECES.length + 8;
  const spec = syntheticModel({ dim: 32, layers: 1, heads: 2, ffn: 64, vocab, ctx: 512, seed });
  const tokens = [...(spec.metadata["tokenizer.ggml.tokens"] as string[])];
  JSON_PIECES.forEach((p, i) => (tokens[259 + i] = p));
  spec.metadata["tokenizer.ggml.tokens"] = tokens;
  const model = await LlamaModel.load(await encodeGguf(spec), { nCtx: 512 });
  return { model, tokenizer: tokenizerFromGgufMetadata(model.file.metadata, "json-model") };
}
