import { readFile } from "node:fs/promises";
import { availableParallelism } from "node:os";
import { UsageError } from "../errors.js";
import { parseLoraTarget, trainRun, type InitConfig, type ModuleToSave, type LoraSettings } from "../train/index.js";
import { numberOption, parseCommandArgs, type Command } from "./command.js";

const ALL_TARGETS = "q,k,v,o,gate,up,down";

export const trainCommand: Command = {
  usage: `usage: zh-llama train (--model BASE.gguf | --init CONFIG.json --tokenizer TOK) (--data FILE... | --instructions FILE...) --out DIR [options]

Trains a LLaMA model in float32 (forward and backward of the graph zh-llama runs): in full, or
with LoRA adapters saved in PEFT format. Writes DIR/checkpoint.safetensors, DIR/train-log.csv,
DIR/loss.svg and DIR/model.gguf (full) or DIR/adapter/ (LoRA: adapter_config.json,
adapter_model.safetensors, tokenizer.model).

Model
  --model FILE         base model (GGUF, any type; trained in F32)
  --init FILE          JSON config of a new model: {"nEmbd", "nLayer", "nHead", "nHeadKv"?,
                       "nFf", "nCtx"?, "tiedEmbeddings"?, "rmsEps"?, "ropeFreqBase"?}
  --tokenizer FILE     tokenizer.model or GGUF (default: the base model's); a larger vocabulary
                       than the model's grows the embeddings (a new piece starts at the
                       mean of the old pieces it is made of)
Data
  --data FILE          plain text, one document per non-blank line, packed into sequences with
                       BOS/EOS (repeatable)
  --instructions FILE  JSONL {"instruction","input","output"}, Alpaca-2 template, loss on the
                       response only; longer samples are truncated to --seq (repeatable)
  --eval FILE          held-out data of the same kind (repeatable), with --eval-every N (50)
                       and --eval-batches N (default: all of it)
LoRA
  --lora-r N           train rank-N adapters instead of the whole model
  --lora-alpha A       scaling alpha / r (default 2r)
  --lora-dropout P     dropout on the adapters' input in training (default 0; upstream 0.05)
  --lora-targets LIST  of ${ALL_TARGETS} (default: all)
  --modules-to-save L  embed_tokens,lm_head trained in full (default: none)
  --save-merged        also write DIR/merged.gguf (base + adapter)
Optimisation
  --steps N (100)  --lr X (3e-4)  --warmup N (0)  --batch N (4)  --seq N (128)  --accum N (1)
  --weight-decay X (0)  --max-grad-norm X (1.0)  --seed N (1)
  --decay-embeddings, --decay-norms   also decay those (AdamW decays matrices and LoRA only)
Run
  --out DIR            output directory
  --resume FILE        continue from a checkpoint (same model shape required)
  --save-every N       checkpoint every N steps (default 50)
  --log-every N        progress line every N steps (default 10)
  --name NAME          general.name of the written model
  --threads N          threads for the matrix products (default: the CPU count)`,

  async run(args, io) {
    const { values, positionals } = parseCommandArgs({
      args,
      allowPositionals: true,
      options: {
        model: { type: "string" },
        init: { type: "string" },
        tokenizer: { type: "string" },
        data: { type: "string", multiple: true },
        instructions: { type: "string", multiple: true },
        eval: { type: "string", multiple: true },
        "eval-every": { type: "string" },
        "eval-batches": { type: "string" },
        "lora-r": { type: "string" },
        "lora-alpha": { type: "string" },
        "lora-dropout": { type: "string" },
        "lora-targets": { type: "string" },
        "modules-to-save": { type: "string" },
        "save-merged": { type: "boolean" },
        steps: { type: "string" },
        lr: { type: "string" },
        warmup: { type: "string" },
        batch: { type: "string" },
        seq: { type: "string" },
        accum: { type: "string" },
        "weight-decay": { type: "string" },
        "max-grad-norm": { type: "string" },
        "decay-embeddings": { type: "boolean" },
        "decay-norms": { type: "boolean" },
        seed: { type: "string" },
        out: { type: "string" },
        resume: { type: "string" },
        "save-every": { type: "string" },
        "log-every": { type: "string" },
        name: { type: "string" },
        threads: { type: "string" },
      },
    });
    if (positionals.length > 0) throw new UsageError(`unexpected argument ${JSON.stringify(positionals[0])} (every input is a flag)`);
    if (!values.out) throw new UsageError("--out DIR is required");
    if (!values.model === !values.init) throw new UsageError("give exactly one of --model or --init");
    const int = (name: string, v: string | undefined, d: number, min = 1) => {
      const n = numberOption(name, v, d, min);
      if (!Number.isInteger(n)) throw new UsageError(`--${name} expects an integer, got ${v}`);
      return n;
    };
    let lora: LoraSettings | undefined;
    if (values["lora-r"] !== undefined) {
      const rank = int("lora-r", values["lora-r"], 8);
      const modules = (values["modules-to-save"] ?? "").split(",").filter(Boolean);
      for (const m of modules) if (m !== "embed_tokens" && m !== "lm_head") throw new UsageError(`--modules-to-save: unknown module ${JSON.stringify(m)} (embed_tokens, lm_head)`);
      lora = {
        rank,
        alpha: numberOption("lora-alpha", values["lora-alpha"], 2 * rank, 1e-9),
        targets: (values["lora-targets"] ?? ALL_TARGETS).split(",").filter(Boolean).map(parseLoraTarget),
        modulesToSave: modules as ModuleToSave[],
        dropout: numberOption("lora-dropout", values["lora-dropout"], 0, 0, 0.99),
      };
    } else if (values["lora-alpha"] || values["lora-targets"] || values["modules-to-save"] || values["lora-dropout"]) {
      throw new UsageError("--lora-alpha, --lora-dropout, --lora-targets and --modules-to-save need --lora-r");
    }
    let init: InitConfig | undefined;
    if (values.init) {
      try {
        init = JSON.parse(await readFile(values.init, "utf8")) as InitConfig;
      } catch (e) {
        throw new UsageError(`--init ${values.init}: ${(e as Error).message}`);
      }
    }
    const result = await trainRun({
      model: values.model,
      init,
      tokenizer: values.tokenizer,
      data: values.data,
      instructions: values.instructions,
      evalData: values.eval,
      evalEvery: values["eval-every"] !== undefined ? int("eval-every", values["eval-every"], 0) : values.eval ? 50 : undefined,
      evalBatches: values["eval-batches"] !== undefined ? int("eval-batches", values["eval-batches"], 1) : undefined,
      lora,
      steps: int("steps", values.steps, 100),
      lr: numberOption("lr", values.lr, 3e-4, 0),
      warmup: int("warmup", values.warmup, 0, 0),
      batch: int("batch", values.batch, 4),
      seq: int("seq", values.seq, 128),
      accum: int("accum", values.accum, 1),
      seed: int("seed", values.seed, 1, 0),
      weightDecay: numberOption("weight-decay", values["weight-decay"], 0, 0),
      maxGradNorm: numberOption("max-grad-norm", values["max-grad-norm"], 1, 0),
      decayEmbeddings: values["decay-embeddings"],
      decayNorms: values["decay-norms"],
      out: values.out,
      resume: values.resume,
      saveEvery: int("save-every", values["save-every"], 50),
      logEvery: int("log-every", values["log-every"], 10),
      name: values.name,
      saveMerged: values["save-merged"],
      threads: int("threads", values.threads, availableParallelism()),
      onLine: (line) => io.stderr(line + "\n"),
    });
    const held = result.evalLoss !== undefined ? `, held-out ${result.evalLoss.toFixed(4)} (perplexity ${Math.exp(result.evalLoss).toFixed(2)})` : "";
    io.stdout(`final loss ${result.finalLoss.toFixed(4)}${held}\nwrote ${result.outputs.join(", ")}\n`);
    return 0;
  },
};
