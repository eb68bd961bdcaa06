/**
 * The `zh-llama` command: a table of sub-commands, each a thin shell over the library in its
 * own file, loaded only when called so that `--help` stays instant.
 */
import { ZhLlamaError, UsageError } from "../errors.js";
import type { CliIo, Command } from "./command.js";
import { translateLlamaCppArgs } from "./llama-compat.js";

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
  pull: {
    summary: "download a GGUF from the Hugging Face Hub into its shared cache (-m hf://ORG/NAME/FILE does too)",
    load: async () => (await import("./pull.js")).pullCommand,
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
    "usage: zh-llama <command> [options]   (zh-llama help <command> or zh-llama <command> --help for details)",
    "       zh-llama --version; add --verbose to any command for stack traces with its errors",
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
  // --verbose anywhere before a `--`: expected failures print their stack too.
  const end = argv.indexOf("--") === -1 ? argv.length : argv.indexOf("--");
  const verbose = argv.slice(0, end).includes("--verbose");
  if (verbose) argv = argv.filter((a, i) => i >= end || a !== "--verbose");
  const [name, ...rest] = argv;
  if (name === undefined || name === "--help" || name === "-h" || (name === "help" && rest.length === 0)) {
    io.stdout(helpText());
    return name === undefined ? 1 : 0;
  }
  if (name === "--version" || name === "-v" || name === "version") {
    io.stdout(`zh-llama ${await packageVersion()}\n`);
    return 0;
  }
  if (name === "help") return main([rest[0]!, "--help"], io);
  const entry = commands[name];
  if (!entry) {
    io.stderr(`zh-llama: unknown command ${JSON.stringify(name)}; see \`zh-llama --help\`\n`);
    return 2;
  }
  const command = await entry.load();
  const { args, notes } = translateLlamaCppArgs(rest);
  if (args.includes("--help") || args.includes("-h")) {
    io.stdout(command.usage.endsWith("\n") ? command.usage : command.usage + "\n");
    return 0;
  }
  for (const note of notes) io.stderr(`zh-llama ${name}: ${note}\n`);
  try {
    // -m hf://ORG/NAME/FILE (any command): pulled into the hub cache, then the local path.
    return await command.run(args.some((a) => a.includes("hf://")) ? await (await import("./pull.js")).resolveHfArguments(name, args, io) : args, io);
  } catch (error) {
    const line = expectedFailure(error);
    if (line === undefined) throw error; // a bug: Node prints the stack
    if (error instanceof UsageError) {
      io.stderr(`zh-llama ${name}: ${error.message}\nsee \`zh-llama ${name} --help\`\n`);
      return 2;
    }
    io.stderr(`zh-llama ${name}: ${line}\n`);
    if (verbose) io.stderr(stackOf(error));
    return 1;
  }
}

/** The one line for a failure a user can cause (bad file, busy port, full disk), or undefined for a bug. */
export function expectedFailure(error: unknown): string | undefined {
  if (error instanceof ZhLlamaError) return `${error.name}: ${error.message}`;
  const e = error as { code?: unknown; syscall?: unknown; path?: unknown; address?: unknown; port?: unknown; message?: unknown } | null;
  const code = e?.code;
  if (!(error instanceof Error) || typeof code !== "string" || !/^E[A-Z0-9]+$/.test(code)) return undefined;
  // Node: "ENOENT: no such file or directory, open 'x'" / "listen EADDRINUSE: address already in use 127.0.0.1:80".
  const reason = String(e!.message)
    .replace(/^(\w+ )?E[A-Z0-9]+: /, "")
    .replace(/, \w+( '.*')?$/, "")
    .replace(/ [\d.:a-f[\]]+:\d+$/i, "");
  if (e!.syscall === "listen" || code === "EADDRINUSE" || code === "EADDRNOTAVAIL") {
    const where = typeof e!.address === "string" && typeof e!.port === "number" ? `${e!.address.includes(":") ? `[${e!.address}]` : e!.address}:${e!.port}` : "the address";
    if (code === "EADDRINUSE") return `cannot listen on ${where}: the port is already in use (EADDRINUSE); choose another with --port N (0 picks a free one)`;
    if (code === "EACCES") return `cannot listen on ${where}: permission denied (EACCES); ports below 1024 need privileges, choose another with --port N`;
    return `cannot listen on ${where}: ${reason} (${code})`;
  }
  const verb: Record<string, string> = { open: "cannot open", read: "cannot read", write: "cannot write", stat: "cannot read", lstat: "cannot read", scandir: "cannot list", mkdir: "cannot create", rename: "cannot rename", unlink: "cannot remove" };
  const path = typeof e!.path === "string" ? e!.path : undefined;
  const what = typeof e!.syscall === "string" ? (verb[e!.syscall] ?? `${e!.syscall} failed on`) : "failed on";
  if (path !== undefined) return `${what} ${path}: ${reason} (${code})`;
  return typeof e!.syscall === "string" ? `${what}: ${reason} (${code})` : `${reason} (${code})`;
}

function stackOf(error: unknown): string {
  let text = "";
  for (let e: unknown = error, depth = 0; e instanceof Error && depth < 5; e = e.cause, depth++) {
    text += (depth > 0 ? "caused by: " : "") + (e.stack ?? String(e)) + "\n";
  }
  return text;
}

async function packageVersion(): Promise<string> {
  try {
    const { readFile } = await import("node:fs/promises");
    const pkg = JSON.parse(await readFile(new URL("../../package.json", import.meta.url), "utf8")) as { version?: string };
    return pkg.version ?? "unknown";
  } catch {
    return "unknown";
  }
}
