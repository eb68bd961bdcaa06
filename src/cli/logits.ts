import { writeAtomically, writeAll } from "../formats/gguf/index.js";
import { UsageError } from "../errors.js";
import { LlamaModel } from "../model/index.js";
import { parseCommandArgs, type Command } from "./command.js";
import { MODEL_OPTIONS, MODEL_OPTIONS_USAGE, loadModel, loadOptionsFrom, modelPath } from "./model-options.js";
import { parseIds } from "./run.js";

export const logitsCommand: Command = {
  usage: `usage: zh-llama logits -m MODEL.gguf --prompt-ids 1,2,3 --out FILE [--force]

Evaluates the prompt and writes the last position's full logits (n_vocab values) as
little-endian float32.
${MODEL_OPTIONS_USAGE}`,

  async run(args, io) {
    const { values } = parseCommandArgs({
      args,
      allowPositionals: false,
      options: { ...MODEL_OPTIONS, "prompt-ids": { type: "string" }, out: { type: "string", short: "o" }, force: { type: "boolean" } },
    });
    if (values["prompt-ids"] === undefined) throw new UsageError("--prompt-ids is required");
    if (values.out === undefined) throw new UsageError("--out FILE is required");
    const ids = parseIds(values["prompt-ids"], "--prompt-ids");
    const model = await loadModel(io, modelPath(values), loadOptionsFrom(values));
    try {
      const logits = await model.evaluate(ids);
      await writeAtomically(values.out, values.force ?? false, (handle) => writeAll(handle, new Uint8Array(logits.buffer), 0));
      io.stderr(`wrote ${logits.length} logits to ${values.out}\n`);
      return 0;
    } finally {
      await model.dispose();
    }
  },
};
