/** SentencePiece BPE tokenization and vocabulary merging (the Chinese LLaMA extension). */
export { TokenizerError } from "./errors.js";
export {
  SentencePieceTokenizer,
  StreamingDecoder,
  PieceType,
  pieceToByte,
  byteToPiece,
  type Vocabulary,
  type TokenizerSettings,
  type EncodeOptions,
  type TokenizerOrigin,
} from "./tokenizer.js";
export {
  GGUF_TOKENIZER_KEYS,
  tokenizerFromGgufMetadata,
  tokenizerToGgufMetadata,
  tokenizerFromSentencePieceModel,
  tokenizerFromSentencePieceBytes,
  tokenizerToSentencePieceModel,
  serializeTokenizer,
  loadTokenizer,
  loadTokenizerFromGguf,
  saveTokenizerModel,
} from "./load.js";
export { decodeBytesLikeSentencePiece, Utf8ByteRun } from "./utf8.js";
export {
  SentencePieceFormatError,
  SentencePieceModelType,
  parseSentencePieceModel,
  serializeSentencePieceModel,
  type SentencePieceModelProto,
  type SentencePieceProtoPiece,
  type TrainerSpec,
  type NormalizerSpec,
} from "../formats/sentencepiece.js";
export { mergeSentencePieceModels, hfTokenizerFiles, type MergeOptions, type MergeResult, type HfTokenizerFilesOptions } from "./merge.js";
export { buildLlamaTokenizerModel, LLAMA_TOKENIZER_MODEL_SHA256, LLAMA_VOCAB_SIZE } from "./llama.js";
