import { UsageError } from "../errors.js";
import { loadTokenizer } from "../tokenizer/index.js";
import { parseCommandArgs, type Command } from "./command.js";

export const detokenizeCommand: Command = {
  usage: `usage: zh-llama detokenize --model MODEL IDS...

Decodes token ids to text exactly as SentencePiece does (control tokens vanish, <unk> is " ⁇ ",
byte tokens are joined into UTF-8 and invalid bytes become U+FFFD). MODEL is a GGUF model or a
tokenizer.model. IDS: "1,2,3", "1 2 3" or a JSON array.`,

  async run(args, io) {
    const { values, positionals } = parseCommandArgs({
      args,
      allowPositionals: true,
      options: { model: { type: "string", short: "m" } },
    });
    if (!values.model) throw new UsageError("--model is required");
    if (positionals.length === 0) throw new UsageError("expected token ids, e.g. 1,29871,30919");
    const ids = parseIds(positionals.join(" "));
    const tokenizer = await loadTokenizer(values.model);
    io.stdout(tokenizer.decode(ids) + "\n");
    return 0;
  },
};

export function parseIds(text: string): number[] {
  const parts = text.replace(/^\s*\[|\]\s*$/g, "").split(/[\s,]+/).filter((p) => p.length > 0);
  return parts.map((p) => {
    if (!/^\d+$/.test(p)) throw new UsageError(`${JSON.stringify(p)} is not a token id (expected a non-negative integer)`);
    return Number(p);
  });
}
