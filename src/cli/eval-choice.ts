import { UsageError } from "../errors.js";
import { evaluateChoices, readChoiceDataset, type ChoiceFormat } from "../eval/index.js";
import { getTemplate } from "../chat/index.js";
import { toJson } from "../formats/json.js";
import { LlamaModel } from "../model/index.js";
import { numberOption, parseCommandArgs, type Command } from "./command.js";
import { MODEL_OPTIONS, MODEL_OPTIONS_USAGE, loadModel, loadOptionsFrom, modelPath } from "./model-options.js";
import { ProgressBar } from "./progress.js";

export const evalChoiceCommand: Command = {
  usage: `usage: zh-llama eval-choice -m MODEL.gguf --data DIR --format ceval|cmmlu [--shots 0|5] [--template NAME] [--split val] [--json]

Multiple-choice accuracy as the Chinese-LLaMA-Alpaca-2 C-Eval / CMMLU scripts measure it
(constrained mode): the next-token scores of "▁A" + "A" ... "▁D" + "D" after the prompt,
argmax over the four letters.
  --data DIR          C-Eval layout: dev/{subject}_dev.csv, val/{subject}_val.csv (+ subject_mapping.json);
                      CMMLU layout: dev/{subject}.csv, test/{subject}.csv
  --format ceval|cmmlu
  --split NAME        which folder to score (default: val for ceval, test for cmmlu)
  --shots N           few-shot examples from dev/ (default 5)
  --template NAME     wrap the prompt in a chat template (upstream "with_prompt"); default none
  --repeat-penalty R  as the upstream scripts' processed scores (default 1.1)
  --json              {"accuracy":X,"subjects":{name:{"correct":N,"total":N}}}
${MODEL_OPTIONS_USAGE}`,

  async run(args, io) {
    const { values } = parseCommandArgs({
      args,
      allowPositionals: false,
      options: {
        ...MODEL_OPTIONS,
        data: { type: "string" },
        format: { type: "string" },
        split: { type: "string" },
        shots: { type: "string" },
        template: { type: "string" },
        "repeat-penalty": { type: "string" },
        json: { type: "boolean" },
      },
    });
    if (!values.data) throw new UsageError("--data DIR is required");
    const format = values.format;
    if (format !== "ceval" && format !== "cmmlu") throw new UsageError(`--format must be ceval or cmmlu, got ${JSON.stringify(format)}`);
    const shots = numberOption("shots", values.shots, 5, 0, 64);
    const split = values.split ?? (format === "ceval" ? "val" : "test");
    const subjects = await readChoiceDataset(values.data, format as ChoiceFormat, split);
    const template = values.template ? getTemplate(values.template) : undefined;
    const model = await loadModel(io, modelPath(values), loadOptionsFrom(values));
    try {
      const tokenizer = model.tokenizer;
      const total = subjects.reduce((n, s) => n + s.questions.length, 0);
      const bar = new ProgressBar(io, "eval-choice", total);
      const r = await evaluateChoices(model, tokenizer, subjects, {
        shots,
        template,
        repetitionPenalty: numberOption("repeat-penalty", values["repeat-penalty"], 1.1, 1e-6, 100),
        onQuestion: (done) => bar.update(done),
      });
      bar.done(`${r.correct}/${r.total} correct`);
      if (values.json) {
        io.stdout(toJson({ accuracy: r.accuracy, subjects: r.subjects }) + "\n");
      } else {
        const width = Math.max(8, ...Object.keys(r.subjects).map((s) => s.length));
        io.stdout(`| ${"subject".padEnd(width)} | correct | total | accuracy |\n|${"-".repeat(width + 2)}|---|---|---|\n`);
        for (const [name, t] of Object.entries(r.subjects)) io.stdout(`| ${name.padEnd(width)} | ${t.correct} | ${t.total} | ${(t.correct / t.total * 100).toFixed(1)}% |\n`);
        io.stdout(`| ${"overall".padEnd(width)} | ${r.correct} | ${r.total} | ${(r.accuracy * 100).toFixed(1)}% |\n`);
      }
      return 0;
    } finally {
      await model.dispose();
    }
  },
};
