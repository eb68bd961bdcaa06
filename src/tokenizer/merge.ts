/**
 * Vocabulary extension as Chinese-LLaMA-Alpaca did it
 * (v1 scripts/merge_tokenizer/merge_tokenizers.py, see ../shared/UPSTREAM.md section 1):
 *
 *   seen = {every piece of the base model}
 *   for p in added_model.pieces:            # in order
 *       if p.piece not in seen:             # exact string match only
 *           append {piece: p.piece, score: 0}   # type left unset = NORMAL
 *
 * The base keeps its ids, its trainer_spec (BPE, byte_fallback) and its normalizer; the added
 * model's scores and normalizer are discarded. Because every appended piece scores 0, higher
 * than all of LLaMA's (<= 0), Chinese merges always win and, among them, the leftmost pair.
 * Pieces are written exactly as protobuf would write them, so the output is byte-identical to
 * the upstream script's (tested against it).
 */
import type { SentencePieceModelProto, SentencePieceProtoPiece } from "../formats/sentencepiece.js";
import { serializeSentencePieceModel } from "../formats/sentencepiece.js";
import { TokenizerError } from "./errors.js";

export interface MergeOptions {
  /**
   * Also add a padding piece (NORMAL, score 0), as Chinese-LLaMA-2 did with "<pad>". It goes
   * right after the base pieces when `padFirst` (Chinese-LLaMA-2's id 32000), else at the end.
   */
  padPiece?: string;
  padFirst?: boolean;
}

export interface MergeResult {
  model: SentencePieceModelProto;
  /** Pieces in the base model. */
  before: number;
  /** Pieces in the merged model. */
  after: number;
  /** Pieces taken from the added model. */
  added: number;
  /** Pieces of the added model the base already had. */
  alreadyPresent: number;
  /** Id of the padding piece, when one was added. */
  padId?: number;
}

export function mergeSentencePieceModels(base: SentencePieceModelProto, add: SentencePieceModelProto, options: MergeOptions = {}): MergeResult {
  const seen = new Set(base.pieces.map((p) => p.piece));
  const pieces: SentencePieceProtoPiece[] = [...base.pieces];
  let padId: number | undefined;
  const pad = options.padPiece;
  if (pad !== undefined && (seen.has(pad) || add.pieces.some((p) => p.piece === pad))) {
    throw new TokenizerError(`padding piece ${JSON.stringify(pad)} is already in one of the vocabularies`);
  }
  const addPad = (): void => {
    padId = pieces.length;
    pieces.push({ piece: pad!, score: 0 });
  };
  if (pad !== undefined && options.padFirst) addPad();
  let added = 0;
  let alreadyPresent = 0;
  for (const p of add.pieces) {
    if (seen.has(p.piece)) {
      alreadyPresent++;
      continue;
    }
    // Like upstream, `seen` is not updated: a SentencePiece model's pieces are already unique.
    pieces.push({ piece: p.piece, score: 0 });
    added++;
  }
  if (pad !== undefined && !options.padFirst) addPad();
  const model: SentencePieceModelProto = { ...base, pieces };
  return { model, before: base.pieces.length, after: pieces.length, added, alreadyPresent, padId };
}

export interface HfTokenizerFilesOptions {
  /**
   * An HF *added token* for padding, outside the SentencePiece model, as Chinese-Alpaca v1 did
   * ("[PAD]" at id 49953, making 49954). Written to added_tokens.json.
   */
  addedPadToken?: string;
  /** A padding piece already inside the model (Chinese-LLaMA-2's "<pad>"). */
  padPiece?: string;
}

/**
 * The files `LlamaTokenizer.save_pretrained` writes for a slow LLaMA tokenizer: the model
 * itself, special_tokens_map.json and tokenizer_config.json (+ added_tokens.json).
 */
export function hfTokenizerFiles(model: SentencePieceModelProto, options: HfTokenizerFilesOptions = {}): Record<string, Uint8Array> {
  const utf8 = new TextEncoder();
  const json = (value: unknown): Uint8Array => utf8.encode(JSON.stringify(value, null, 2) + "\n");
  const pad = options.addedPadToken ?? options.padPiece ?? null;
  const special: Record<string, string> = { bos_token: "<s>", eos_token: "</s>", unk_token: "<unk>" };
  if (pad !== null) special.pad_token = pad;
  const files: Record<string, Uint8Array> = {
    "tokenizer.model": serializeSentencePieceModel(model),
    "special_tokens_map.json": json(special),
    "tokenizer_config.json": json({
      add_bos_token: true,
      add_eos_token: false,
      bos_token: "<s>",
      clean_up_tokenization_spaces: false,
      eos_token: "</s>",
      legacy: true,
      pad_token: pad,
      sp_model_kwargs: {},
      tokenizer_class: "LlamaTokenizer",
      unk_token: "<unk>",
      use_fast: false,
    }),
  };
  if (options.addedPadToken !== undefined) {
    if (model.pieces.some((p) => p.piece === options.addedPadToken)) {
      throw new TokenizerError(`added pad token ${JSON.stringify(options.addedPadToken)} is already a piece of the model`);
    }
    files["added_tokens.json"] = json({ [options.addedPadToken]: model.pieces.length });
  }
  return files;
}
