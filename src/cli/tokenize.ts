import { isUtf8 } from "node:buffer";
import { readFile } from "node:fs/promises";
import { InvalidArgumentError, UsageError } from "../errors.js";
import { TokenizerError, loadTokenizer, type SentencePieceTokenizer } from "../tokenizer/index.js";
import { decodeUtf8Strict } from "../tokenizer/utf8.js";
import { parseCommandArgs, type Command } from "./command.js";

export const tokenizeCommand: Command = {
  usage: `usage: zh-llama tokenize -m MODEL TEXT [--json] [--no-bos] [--eos] [--parse-special]
       zh-llama tokenize -m MODEL --jsonl IN.jsonl [--no-bos] [--eos] [--parse-special]

Tokenizes text exactly as SentencePiece does. MODEL is a GGUF model or a SentencePiece
tokenizer.model. BOS is added as the model declares (GGUF tokenizer.ggml.add_bos_token;
always for a tokenizer.model that has <s>).

  -m, --model MODEL a GGUF model or a tokenizer.model
  --json            print {"ids":[...],"pieces":[...]} instead of comma-separated ids
  --jsonl FILE      one JSON object {"text": ...} per line (FILE "-" reads stdin);
                    prints one {"ids":[...]} line for each
  --no-bos          do not add BOS
  --eos             add EOS
  --parse-special   read "<s>", "</s>" and other control pieces written in the text as those
                    tokens (by default they are plain text)`,

  async run(args, io) {
    const { values, positionals } = parseCommandArgs({
      args,
      allowPositionals: true,
      options: {
        model: { type: "string", short: "m" },
        json: { type: "boolean" },
        jsonl: { type: "string" },
        "no-bos": { type: "boolean" },
        eos: { type: "boolean" },
        "parse-special": { type: "boolean" },
      },
    });
    if (!values.model) throw new UsageError("-m MODEL is required (a GGUF model or a tokenizer.model)");
    if (values.jsonl !== undefined && positionals.length > 0) throw new UsageError("give either TEXT or --jsonl, not both");
    if (values.jsonl === undefined && positionals.length !== 1) throw new UsageError("expected exactly one TEXT argument (quote it), or --jsonl FILE");
    if (values.jsonl !== undefined && values.json) throw new UsageError("--json applies to a single TEXT; --jsonl output is already JSON");
    const tokenizer = await loadTokenizer(values.model);
    const options = {
      addBos: values["no-bos"] ? false : undefined,
      addEos: values.eos ? true : undefined,
      parseSpecial: values["parse-special"] ?? false,
    };
    if (values.jsonl !== undefined) {
      const text = values.jsonl === "-" ? await readStdin() : await readInputFile(values.jsonl, "--jsonl file");
      tokenizeJsonl(tokenizer, text, values.jsonl, options, io.stdout);
      return 0;
    }
    const ids = tokenizer.encode(positionals[0]!, options);
    if (values.json) io.stdout(JSON.stringify({ ids, pieces: ids.map((id) => tokenizer.idToPiece(id)) }) + "\n");
    else io.stdout(ids.join(",") + "\n");
    return 0;
  },
};

function tokenizeJsonl(
  tokenizer: SentencePieceTokenizer,
  text: string,
  name: string,
  options: { addBos?: boolean; addEos?: boolean; parseSpecial: boolean },
  write: (text: string) => void,
): void {
  const lines = text.split("\n");
  let chunk = "";
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!.trim();
    if (line.length === 0) continue;
    let row: unknown;
    try {
      row = JSON.parse(line);
    } catch (error) {
      throw new UsageError(`${name}:${i + 1}: not valid JSON (${error instanceof Error ? error.message : String(error)})`);
    }
    const value = typeof row === "object" && row !== null ? (row as Record<string, unknown>).text : undefined;
    if (typeof value !== "string") throw new UsageError(`${name}:${i + 1}: expected an object with a string "text" field`);
    // {"ids":[...]} written a block of ids at a time: a huge line's ids are never all held.
    chunk += '{"ids":[';
    let first = true;
    tokenizer.encodeInBlocks(value, options, (ids) => {
      if (ids.length === 0) return;
      chunk += (first ? "" : ",") + ids.join(",");
      first = false;
      if (chunk.length > 1 << 16) {
        write(chunk);
        chunk = "";
      }
    });
    chunk += "]}\n";
    if (chunk.length > 1 << 16) {
      write(chunk);
      chunk = "";
    }
  }
  if (chunk.length > 0) write(chunk);
}

/** Reads a file named on the command line; a missing or unreadable one is a clear error. */
export async function readInputFile(path: string, what: string): Promise<string>;
export async function readInputFile(path: string, what: string, binary: true): Promise<Uint8Array>;
export async function readInputFile(path: string, what: string, binary?: true): Promise<string | Uint8Array> {
  let bytes: Buffer;
  try {
    bytes = await readFile(path);
  } catch (error) {
    throw new InvalidArgumentError(`cannot read ${what} ${path}: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
  }
  return binary ? new Uint8Array(bytes) : utf8Text(bytes, `${what} ${path}`);
}

/**
 * Text input as UTF-8, strictly: invalid bytes are a TokenizerError naming the input and the
 * byte offset, never silently U+FFFD (which would tokenize as something the input is not).
 */
export function utf8Text(bytes: Buffer, what: string): string {
  if (!isUtf8(bytes)) {
    const bad = decodeUtf8Strict(bytes);
    const at = "badOffset" in bad ? bad.badOffset : 0;
    throw new TokenizerError(`${what}: not valid UTF-8 at byte ${at} (0x${(bytes[at] ?? 0).toString(16).padStart(2, "0")}); text inputs must be UTF-8`);
  }
  return bytes.toString("utf8");
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return utf8Text(Buffer.concat(chunks), "standard input");
}
