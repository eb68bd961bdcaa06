/**
 * LLaMA's (and Llama 2's) `tokenizer.model`, rebuilt from its 32000 pieces in id order
 * (e.g. as the MIT npm package `llama-tokenizer-js` ships them), so that nobody needs Meta's
 * file to run the tokenizer or to extend it with Chinese pieces.
 *
 * The pieces alone determine the model: scores are 0 for `<unk>`/`<s>`/`</s>` and the 256 byte
 * pieces, -1e9 for pieces made only of "▁", and -(id - 259) for every other piece; the trainer
 * and normalizer specs are the ones Meta's file carries (as printed by protobuf from it and
 * published in many places). The result is byte-identical to Meta's file
 * (sha256 9e556afd...d347, 499723 bytes), which the tests check.
 */
import { PieceType, SentencePieceModelType, type SentencePieceModelProto } from "../formats/sentencepiece.js";
import { TokenizerError } from "./errors.js";

export const LLAMA_VOCAB_SIZE = 32000;
/** sha256 of Meta's LLaMA / Llama 2 tokenizer.model. */
export const LLAMA_TOKENIZER_MODEL_SHA256 = "9e556afd44213b6bd1be2b850ebbbd98f5481437a8021afaf58ee7fb1818d347";

const FIRST_NORMAL_ID = 259;

export function buildLlamaTokenizerModel(pieces: readonly string[]): SentencePieceModelProto {
  if (pieces.length !== LLAMA_VOCAB_SIZE) throw new TokenizerError(`LLaMA vocabulary: ${pieces.length} pieces, expected ${LLAMA_VOCAB_SIZE}`);
  if (pieces[0] !== "<unk>" || pieces[1] !== "<s>" || pieces[2] !== "</s>" || pieces[3] !== "<0x00>" || pieces[258] !== "<0xFF>") {
    throw new TokenizerError("LLaMA vocabulary: expected <unk>, <s>, </s>, then <0x00>..<0xFF> at ids 0..258");
  }
  return {
    pieces: pieces.map((piece, id) => {
      if (id === 0) return { piece, score: 0, type: PieceType.Unknown };
      if (id < 3) return { piece, score: 0, type: PieceType.Control };
      if (id < FIRST_NORMAL_ID) return { piece, score: 0, type: PieceType.Byte };
      return { piece, score: /^\u2581+$/.test(piece) ? -1e9 : -(id - FIRST_NORMAL_ID) };
    }),
    trainerSpec: {
      input: ["/large_experiments/theorem/datasets/MERGED/all.test1.merged"],
      modelPrefix: "spm_model_32k_200M_charcov099995_allowWSO__v2",
      modelType: SentencePieceModelType.Bpe,
      vocabSize: LLAMA_VOCAB_SIZE,
      selfTestSampleSize: 0,
      inputFormat: "text",
      characterCoverage: 0.99995,
      inputSentenceSize: 200000000n,
      seedSentencepieceSize: 1000000,
      shrinkingFactor: 0.75,
      numThreads: 80,
      numSubIterations: 2,
      maxSentenceLength: 4192,
      shuffleInputSentence: true,
      maxSentencepieceLength: 16,
      splitByUnicodeScript: true,
      splitByWhitespace: true,
      splitByNumber: true,
      treatWhitespaceAsSuffix: false,
      splitDigits: true,
      allowWhitespaceOnlyPieces: true,
      vocabularyOutputPieceScore: true,
      hardVocabLimit: true,
      useAllVocab: false,
      byteFallback: true,
      requiredChars: "",
      unkId: 0,
      bosId: 1,
      eosId: 2,
      padId: -1,
      unkSurface: " \u2047 ",
      unkPiece: "<unk>",
      bosPiece: "<s>",
      eosPiece: "</s>",
      padPiece: "<pad>",
      trainExtremelyLargeCorpus: false,
      enableDifferentialPrivacy: false,
      differentialPrivacyNoiseLevel: 0,
      differentialPrivacyClippingThreshold: 0n,
    },
    normalizerSpec: {
      name: "identity",
      precompiledCharsmap: new Uint8Array(0),
      addDummyPrefix: true,
      removeExtraWhitespaces: false,
      normalizationRuleTsv: "",
    },
  };
}
