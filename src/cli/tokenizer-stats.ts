import { basename } from "node:path";
import { UsageError } from "../errors.js";
import { loadTokenizer } from "../tokenizer/index.js";
import { parseCommandArgs, type Command } from "./command.js";
import { readInputFile } from "./tokenize.js";

export interface TokenizerStats {
  model: string;
  vocabSize: number;
  tokens: number;
  characters: number;
  tokensPerChar: number;
  charsPerToken: number;
}

export const tokenizerStatsCommand: Command = {
  usage: `usage: zh-llama tokenizer-stats --model A [--model B ...] --file corpus.txt [--file ...] [--json]

The "Chinese encoding efficiency" figure: how many tokens each tokenizer needs for a corpus.
Each non-empty line is encoded on its own, without BOS/EOS (as training samples are);
characters are Unicode code points, newlines not counted. MODEL: GGUF or tokenizer.model.

  --json   print [{"model","vocabSize","tokens","characters","tokensPerChar","charsPerToken"}]`,

  async run(args, io) {
    const { values } = parseCommandArgs({
      args,
      allowPositionals: false,
      options: {
        model: { type: "string", short: "m", multiple: true },
        file: { type: "string", short: "f", multiple: true },
        json: { type: "boolean" },
      },
    });
    const models = values.model ?? [];
    const files = values.file ?? [];
    if (models.length === 0) throw new UsageError("at least one --model is required");
    if (files.length === 0) throw new UsageError("at least one --file is required");
    const lines: string[] = [];
    for (const file of files) for (const line of (await readInputFile(file, "corpus")).split("\n")) if (line.length > 0) lines.push(line);
    let characters = 0;
    for (const line of lines) for (const _ of line) characters++;

    const stats: TokenizerStats[] = [];
    for (const path of models) {
      const tokenizer = await loadTokenizer(path);
      let tokens = 0;
      // Counted a block at a time: a 50 MB line never holds its 40 M ids at once.
      for (const line of lines) tokens += tokenizer.encodeInBlocks(line, { addBos: false, addEos: false }, () => undefined);
      stats.push({
        model: path,
        vocabSize: tokenizer.vocabSize,
        tokens,
        characters,
        tokensPerChar: characters > 0 ? tokens / characters : 0,
        charsPerToken: tokens > 0 ? characters / tokens : 0,
      });
    }
    if (values.json) {
      io.stdout(JSON.stringify(stats, null, 2) + "\n");
      return 0;
    }
    const width = Math.max(5, ...stats.map((s) => basename(s.model).length));
    const out = [
      `corpus: ${files.join(", ")}: ${lines.length} lines, ${characters} characters`,
      `${"model".padEnd(width)}  ${"vocab".padStart(7)}  ${"tokens".padStart(10)}  ${"tokens/char".padStart(11)}  ${"chars/token".padStart(11)}  ${"vs first".padStart(8)}`,
      ...stats.map(
        (s) =>
          `${basename(s.model).padEnd(width)}  ${String(s.vocabSize).padStart(7)}  ${String(s.tokens).padStart(10)}  ${s.tokensPerChar.toFixed(3).padStart(11)}  ${s.charsPerToken.toFixed(3).padStart(11)}  ${(stats[0]!.tokens > 0 ? s.tokens / stats[0]!.tokens : 0).toFixed(3).padStart(8)}`,
      ),
    ];
    io.stdout(out.join("\n") + "\n");
    return 0;
  },
};
