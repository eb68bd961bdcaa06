import { access, mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { UsageError } from "../errors.js";
import {
  hfTokenizerFiles,
  mergeSentencePieceModels,
  parseSentencePieceModel,
  serializeSentencePieceModel,
  tokenizerFromSentencePieceModel,
} from "../tokenizer/index.js";
import { parseCommandArgs, type Command } from "./command.js";
import { readInputFile } from "./tokenize.js";

export const mergeTokenizerCommand: Command = {
  usage: `usage: zh-llama merge-tokenizer --base llama.model --add chinese.model --out merged.model
                                [--hf-dir DIR] [--pad PIECE [--pad-first]] [--hf-pad-token TOKEN] [--force]

Extends a SentencePiece vocabulary the way Chinese-LLaMA-Alpaca did (merge_tokenizers.py):
every piece of --add that --base lacks is appended in order with score 0 and type NORMAL; the
base's ids, trainer and normalizer settings stay as they are. The output is byte-identical to
the upstream script's.

  --hf-dir DIR          also write the HF slow-tokenizer files (tokenizer.model,
                        special_tokens_map.json, tokenizer_config.json) to DIR
  --pad PIECE           also add a padding piece to the model (score 0, NORMAL) after the
                        added pieces; with --pad-first right after the base pieces instead
                        (Chinese-LLaMA-2: "<pad>" = 32000)
  --hf-pad-token TOKEN  an HF added token for padding outside the model, written to
                        added_tokens.json (Chinese-Alpaca v1: "[PAD]" = 49953); needs --hf-dir
  --force               overwrite --out if it exists`,

  async run(args, io) {
    const { values, positionals } = parseCommandArgs({
      args,
      allowPositionals: false,
      options: {
        base: { type: "string" },
        add: { type: "string" },
        out: { type: "string", short: "o" },
        "hf-dir": { type: "string" },
        pad: { type: "string" },
        "pad-first": { type: "boolean" },
        "hf-pad-token": { type: "string" },
        force: { type: "boolean" },
      },
    });
    void positionals;
    if (!values.base || !values.add || !values.out) throw new UsageError("--base, --add and --out are required");
    if (values["pad-first"] && values.pad === undefined) throw new UsageError("--pad-first needs --pad PIECE");
    if (values["hf-pad-token"] !== undefined && values["hf-dir"] === undefined) throw new UsageError("--hf-pad-token needs --hf-dir");
    if (!values.force && (await exists(values.out))) throw new UsageError(`${values.out} exists (use --force to overwrite)`);

    const base = parseSentencePieceModel(await readInputFile(values.base, "--base model", true), values.base);
    const add = parseSentencePieceModel(await readInputFile(values.add, "--add model", true), values.add);
    const result = mergeSentencePieceModels(base, add, { padPiece: values.pad, padFirst: values["pad-first"] });
    // Refuse to write a model SentencePiece itself would reject.
    tokenizerFromSentencePieceModel(result.model, values.out);

    await writeFile(values.out, serializeSentencePieceModel(result.model));
    const lines = [
      `base:    ${values.base}: ${result.before} pieces`,
      `add:     ${values.add}: ${add.pieces.length} pieces, ${result.added} new, ${result.alreadyPresent} already in the base`,
    ];
    if (result.padId !== undefined) lines.push(`pad:     ${JSON.stringify(values.pad)} = id ${result.padId}`);
    lines.push(`merged:  ${values.out}: ${result.after} pieces (${result.before} -> ${result.after})`);
    if (values["hf-dir"] !== undefined) {
      await mkdir(values["hf-dir"], { recursive: true });
      const files = hfTokenizerFiles(result.model, { addedPadToken: values["hf-pad-token"], padPiece: values.pad });
      for (const [name, bytes] of Object.entries(files)) await writeFile(join(values["hf-dir"], name), bytes);
      const hfSize = result.after + (values["hf-pad-token"] !== undefined ? 1 : 0);
      lines.push(`hf:      ${values["hf-dir"]}: ${Object.keys(files).join(", ")} (len(tokenizer) = ${hfSize})`);
    }
    io.stdout(lines.join("\n") + "\n");
    return 0;
  },
};

async function exists(path: string): Promise<boolean> {
  try {
    await access(path);
    return true;
  } catch {
    return false;
  }
}
