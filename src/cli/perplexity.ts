import { readFile } from "node:fs/promises";
import { UsageError } from "../errors.js";
import { perplexity } from "../eval/index.js";
import { toJson } from "../formats/json.js";
import { LlamaModel } from "../model/index.js";
import { numberOption, parseCommandArgs, type Command } from "./command.js";
import { MODEL_OPTIONS, MODEL_OPTIONS_USAGE, loadModel, loadOptionsFrom, modelPath } from "./model-options.js";
import { ProgressBar } from "./progress.js";
import { utf8Text } from "./tokenize.js";

export const perplexityCommand: Command = {
  usage: `usage: zh-llama perplexity -m MODEL.gguf -f TEXT.txt [--ctx 512] [--chunks N] [--json]

Perplexity by llama.cpp's method: the text (tokenized with BOS) is split into chunks of --ctx
tokens, each starting with BOS, and only the second half of each chunk is scored.
  -f, --file FILE     UTF-8 text
  --chunks N          score only the first N chunks
  --json              print {"ppl":X,"chunks":N,"tokens_scored":N}
${MODEL_OPTIONS_USAGE}`,

  async run(args, io) {
    const { values } = parseCommandArgs({
      args,
      allowPositionals: false,
      options: { ...MODEL_OPTIONS, file: { type: "string", short: "f" }, chunks: { type: "string" }, json: { type: "boolean" } },
    });
    if (!values.file) throw new UsageError("-f TEXT.txt is required");
    const ctx = numberOption("ctx", values.ctx, 512, 4, 1 << 20);
    const text = utf8Text(await readFile(values.file), `text file ${values.file}`);
    const model = await loadModel(io, modelPath(values), { ...loadOptionsFrom(values), nCtx: ctx, batchSize: Math.min(ctx, 512) });
    try {
      const tokenizer = model.tokenizer;
      let tokens = tokenizer.encode(text, { addBos: true, addEos: false });
      if (values.chunks !== undefined) tokens = tokens.slice(0, numberOption("chunks", values.chunks, 1, 1, 1e9) * ctx);
      const bar = new ProgressBar(io, "perplexity", Math.floor(tokens.length / ctx));
      const r = await perplexity(model, tokens, { ctx, bosId: tokenizer.bosId, onChunk: (done, _total, ppl) => bar.update(done, `ppl ${ppl.toFixed(4)}`) });
      bar.done(`${r.chunks} chunks, ${r.tokensScored} tokens scored`);
      io.stdout(values.json ? toJson({ ppl: r.ppl, chunks: r.chunks, tokens_scored: r.tokensScored }) + "\n" : `perplexity: ${r.ppl.toFixed(4)} (${r.chunks} chunks of ${ctx}, ${r.tokensScored} tokens scored)\n`);
      return 0;
    } finally {
      await model.dispose();
    }
  },
};
