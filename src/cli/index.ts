/**
 * The `zh-llama` command: a table of sub-commands, each a thin shell over the library in its
 * own file, loaded only when called so that `--help` stays instant.
 */
import { ZhLlamaError, UsageError } from "../errors.js";
import type { CliIo, Command } from "./command.js";

/** name -> one-line summary and a lazy loader for the command's module. */
const commands: Record<string, { summary: string; load: () => Promise<Command> }> = {
  tokenize: {
    summary: "text to token ids, exactly as SentencePiece (GGUF or tokenizer.model)",
    load: async () => (await import("./tokenize.js")).tokenizeCommand,
  },
  detokenize: {
    summary: "token ids to text",
    load: async () => (await import("./detokenize.js")).detokenizeCommand,
  },
  "merge-tokenizer": {
    summary: "extend a SentencePiece vocabulary with Chinese pieces (Chinese-LLaMA style)",
    load: async () => (await import("./merge-tokenizer.js")).mergeTokenizerCommand,
  },
  "tokenizer-stats": {
    summary: "tokens per character of a corpus under one or more tokenizers",
    load: async () => (await import("./tokenizer-stats.js")).tokenizerStatsCommand,
  },
  inspect: {
    summary: "summarise a GGUF model (or print its header as JSON)",
    load: async () => (await import("./inspect.js")).inspectCommand,
  },
  "dump-tensor": {
    summary: "write one tensor, dequantized to little-endian float32",
    load: async () => (await import("./dump-tensor.js")).dumpTensorCommand,
  },
  quantize: {
    summary: "requantize a GGUF model's 2-D weights to another ggml type",
    load: async () => (await import("./quantize.js")).quantizeCommand,
  },
  "merge-lora": {
    summary: "merge PEFT LoRA adapters (stacked, in order) into HF or GGUF weights",
    load: async () => (await import("./merge-lora.js")).mergeLoraCommand,
  },
  convert: {
    summary: "convert an HF LLaMA / Llama-2 / Mixtral checkpoint to GGUF",
    load: async () => (await import("./convert.js")).convertCommand,
  },
  "export-hf": {
    summary: "write a GGUF model as an HF safetensors directory",
    load: async () => (await import("./export-hf.js")).exportHfCommand,
  },
  verify: {
    summary: "check a model directory or file against its SHA-256 manifest",
    load: async () => (await import("./verify.js")).verifyCommand,
  },
  run: {
    summary: "generate text from a prompt (streams to stdout; --json for a summary)",
    load: async () => (await import("./run.js")).runCommand,
  },
  chat: {
    summary: "chat with a model in the terminal (templates, history, CFG, speculative decoding)",
    load: async () => (await import("./chat.js")).chatCommand,
  },
  logits: {
    summary: "write the last position's logits for a prompt as float32",
    load: async () => (await import("./logits.js")).logitsCommand,
  },
  perplexity: {
    summary: "perplexity of a text, by llama.cpp's method",
    load: async () => (await import("./perplexity.js")).perplexityCommand,
  },
  bench: {
    summary: "prompt-processing and decode tokens/s",
    load: async () => (await import("./bench.js")).benchCommand,
  },
  serve: { summary: "OpenAI-compatible HTTP server (chat, completions, embeddings; Node, Deno, Bun)", load: async () => (await import("./serve.js")).serveCommand },
  "quant-report": {
    summary: "size, perplexity and speed of a model at each quantization type",
    load: async () => (await import("./quant-report.js")).quantReportCommand,
  },
  "eval-choice": {
    summary: "C-Eval / CMMLU-style multiple-choice accuracy (upstream constrained scoring)",
    load: async () => (await import("./eval-choice.js")).evalChoiceCommand,
  },
  train: {
    summary: "train a LLaMA model or LoRA adapter in TypeScript (checkpoints, loss curve, PEFT output)",
    load: async () => (await import("./train.js")).trainCommand,
  },
};

export function helpText(): string {
  const width = Math.max(...Object.keys(commands).map((n) => n.length));
  const lines = Object.entries(commands).map(([name, { summary }]) => `  ${name.padEnd(width)}  ${summary}`);
  return [
    "zh-llama — the Chinese LLaMA / Alpaca family in TypeScript",
    "",
    "usage: zh-llama <command> [options]   (zh-llama <command> --help for details)",
    "",
    "commands:",
    ...lines,
    "",
  ].join("\n");
}

const processIo: CliIo = {
  stdout: (text) => void process.stdout.write(text),
  stderr: (text) => void process.stderr.write(text),
  isTty: Boolean(process.stderr.isTTY),
};

export async function main(argv: string[], io: CliIo = processIo): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === "--help" || name === "-h" || name === "help") {
    io.stdout(helpText());
    return name === undefined ? 1 : 0;
  }
  if (name === "--version") {
    io.stdout("zh-llama 0.1.0\n");
    return 0;
  }
  const entry = commands[name];
  if (!entry) {
    io.stderr(`zh-llama: unknown command ${JSON.stringify(name)}\n\n${helpText()}`);
    return 2;
  }
  const command = await entry.load();
  if (rest.includes("--help") || rest.includes("-h")) {
    io.stdout(command.usage.endsWith("\n") ? command.usage : command.usage + "\n");
    return 0;
  }
  try {
    return await command.run(rest, io);
  } catch (error) {
    if (error instanceof UsageError) {
      io.stderr(`zh-llama ${name}: ${error.message}\n\n${command.usage}\n`);
      return 2;
    }
    if (error instanceof ZhLlamaError) {
      io.stderr(`zh-llama ${name}: ${error.name}: ${error.message}\n`);
      return 1;
    }
    // A file-system failure that reached here without a typed error (ENOSPC, EACCES ...): one
    // line, not a stack trace.
    const code = (error as { code?: unknown } | null)?.code;
    if (error instanceof Error && typeof code === "string" && /^E[A-Z]+$/.test(code)) {
      io.stderr(`zh-llama ${name}: ${code}: ${error.message}\n`);
      return 1;
    }
    throw error;
  }
}
