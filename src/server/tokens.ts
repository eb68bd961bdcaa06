/**
 * llama-server's /tokenize and /detokenize, with their bodies checked by zod schemas: the first
 * issue becomes a 400 naming the field ("'tokens[3]' is not a token id ..."; requests.ts's validate).
 */
import { z } from "zod";
import type { SentencePieceTokenizer } from "../tokenizer/index.js";
import { badRequest } from "./errors.js";
import { json } from "./http.js";
import { validate, type JsonObject } from "./requests.js";

const kind = (v: unknown): string => (v === undefined ? "nothing" : Array.isArray(v) ? "an array" : v === null ? "null" : typeof v);

const flag = z.boolean({ error: "must be a boolean" }).optional();

export function tokenRoutes(tokenizer: SentencePieceTokenizer, readJson: (request: Request) => Promise<JsonObject>) {
  const tokenizeBody = z.object({
    content: z.string({ error: (iss) => `must be a string, got ${kind(iss.input)}` }),
    add_special: flag,
    parse_special: flag,
    with_pieces: flag,
  });
  const last = tokenizer.vocabSize - 1;
  const tokenId = z.custom<number>((v) => Number.isInteger(v) && (v as number) >= 0 && (v as number) <= last, `is not a token id (an integer in 0..${last})`);
  const detokenizeBody = z.object({ tokens: z.array(tokenId, { error: "must be an array of token ids" }) });

  /** POST /tokenize {content, add_special?, parse_special?} -> {tokens}, as llama-server's. */
  async function tokenize(request: Request): Promise<Response> {
    const body = validate(tokenizeBody, await readJson(request));
    if (body.with_pieces) throw badRequest("'with_pieces' is not supported", "with_pieces", "unsupported_parameter");
    const parseSpecial = body.parse_special ?? true;
    const tokens = tokenizer.encode(body.content, body.add_special ? { parseSpecial } : { addBos: false, addEos: false, parseSpecial });
    return json({ tokens });
  }

  /** POST /detokenize {tokens} -> {content}, as llama-server's. */
  async function detokenize(request: Request): Promise<Response> {
    const { tokens } = validate(detokenizeBody, await readJson(request));
    return json({ content: tokenizer.decode(tokens) });
  }

  return { tokenize, detokenize };
}
