/**
 * `zh-llama chat`: an interactive conversation in the terminal (readline), or, when stdin is
 * not a terminal, one user message per input line and one answer per output line, for scripts.
 */
import { readFile, writeFile } from "node:fs/promises";
import { createInterface } from "node:readline";
import { UsageError, ZhLlamaError } from "../errors.js";
import { ChatSession, CHAT_MAX_TOKENS, ignoresSystem, templateFor, TEMPLATE_NAMES } from "../chat/index.js";
import { LlamaModel } from "../model/index.js";
import type { GenerationResult, SpeculativeResult } from "../generate/index.js";
import { numberOption, parseCommandArgs, type CliIo, type Command } from "./command.js";
import { MODEL_OPTIONS, MODEL_OPTIONS_USAGE, loadModel, loadOptionsFrom, modelPath } from "./model-options.js";
import { DECODING_OPTIONS, DECODING_USAGE, SAMPLING_OPTIONS, SAMPLING_USAGE, decodingFrom, loadDraft, samplingFrom, statsLine } from "./run.js";

// ---------------------------------------------------------------------------------------------
// The chat command

/** CliIo plus where user lines come from (tests inject streams). */
export interface ChatIo extends CliIo {
  input?: NodeJS.ReadableStream;
  /** Where readline echoes and prompts in interactive mode (default stdout). */
  output?: NodeJS.WritableStream;
  /** Interactive mode (prompt, Ctrl-C handling); default: whether stdin is a terminal. */
  interactive?: boolean;
}

const isChatIo = (io: CliIo): io is ChatIo => "input" in io || "output" in io || "interactive" in io;

/** Lets keystrokes (Ctrl-C) in: the forward passes themselves never leave the microtask queue. */
const yieldToEventLoop = () => new Promise<void>((resolve) => setImmediate(resolve));

const HELP = `commands:
  /reset          forget the conversation (the system prompt stays)
  /system TEXT    set the system prompt (/system alone: the template's default) and reset
  /save FILE      write the conversation as JSON
  /load FILE      read a conversation written by /save (or a JSON array of {role, content})
  /help           this text
  /quit           leave (also Ctrl-D; Ctrl-C stops an answer, twice at the prompt quits)
`;

export const chatCommand: Command = {
  usage: `usage: zh-llama chat -m MODEL.gguf [--template NAME] [--system TEXT] [-p TEXT] [sampling] [model options]

A conversation with the model. In a terminal: an interactive prompt, answers streamed as they
are generated, tokens/s after each. Otherwise: each line of stdin is one user message and each
answer is printed on its own line. The KV cache keeps earlier turns, so each turn evaluates only
its new tokens; the oldest turns are dropped when the context fills.
  --template NAME         ${TEMPLATE_NAMES.join(", ")}
                          (default: the model's tokenizer.chat_template, else guessed from its name, else plain)
  --system TEXT           system prompt (default: the template's, e.g. Alpaca-2's bilingual one)
  -p, --prompt TEXT       one user message: print the answer and exit
  -n, --n-predict N       most tokens per answer (default ${CHAT_MAX_TOKENS})
  --stop TEXT             extra stop string (repeatable; the template's own are always on)
${HELP}${SAMPLING_USAGE}
${DECODING_USAGE}
${MODEL_OPTIONS_USAGE}`,

  async run(args, io) {
    const { values } = parseCommandArgs({
      args,
      allowPositionals: false,
      options: {
        ...MODEL_OPTIONS,
        ...SAMPLING_OPTIONS,
        ...DECODING_OPTIONS,
        template: { type: "string" },
        system: { type: "string" },
        prompt: { type: "string", short: "p" },
        "n-predict": { type: "string", short: "n" },
        stop: { type: "string", multiple: true },
      },
    });
    if (values.template !== undefined && !TEMPLATE_NAMES.includes(values.template)) {
      throw new UsageError(`--template must be one of ${TEMPLATE_NAMES.join(", ")}, got ${JSON.stringify(values.template)}`);
    }
    const maxTokens = numberOption("n-predict", values["n-predict"], CHAT_MAX_TOKENS, 1, 1 << 20);
    const sampling = samplingFrom(values);
    const decoding = decodingFrom(values);
    const loadOptions = loadOptionsFrom(values);
    const model = await loadModel(io, modelPath(values), { ...loadOptions, sessions: decoding.cfgScale !== 1 ? 2 : 1 });
    let draft: LlamaModel | undefined;
    try {
      draft = await loadDraft(decoding, model, loadOptions);
      const tokenizer = model.tokenizer;
      const template = templateFor(values.template, model.file.metadata, model.file.name);
      io.stderr(`[template ${template.name}${template.defaultSystem !== undefined && values.system === undefined ? ", default system prompt" : ""}, context ${model.nCtx} tokens]\n`);
      if (values.system !== undefined && ignoresSystem(template)) io.stderr(`[the ${template.name} template has no system prompt: --system is ignored]\n`);
      const chat = new ChatSession({
        model,
        tokenizer,
        template,
        system: values.system,
        generation: { ...sampling, maxTokens, stop: values.stop },
        negativePrompt: decoding.negativePrompt,
        cfgScale: decoding.cfgScale,
        draft,
        draftK: decoding.draftK,
      });
      try {
        if (values.prompt !== undefined) {
          await answer(chat, values.prompt, io, undefined);
          return 0;
        }
        return await converse(chat, io);
      } finally {
        chat.dispose();
      }
    } finally {
      await draft?.dispose();
      await model.dispose();
    }
  },
};

/** Streams one answer to stdout and its statistics to stderr. */
async function answer(chat: ChatSession, text: string, io: CliIo, signal: AbortSignal | undefined): Promise<void> {
  let result: GenerationResult | undefined;
  let pending = "";
  let started = false;
  for await (const event of chat.send(text, signal)) {
    if (event.type === "done") {
      result = event.result;
      continue;
    }
    // Leading whitespace of the reply is not shown (the history keeps the reply trimmed too).
    pending += event.text;
    if (!started) {
      pending = pending.trimStart();
      if (!pending) continue;
      started = true;
    }
    io.stdout(pending);
    pending = "";
    await yieldToEventLoop();
  }
  io.stdout(result?.finishReason === "abort" ? " [stopped]\n" : "\n");
  if (result) io.stderr(statsLine(result));
}

/** The read-answer loop over stdin (or the injected input). */
async function converse(chat: ChatSession, io: CliIo): Promise<number> {
  const chatIo = isChatIo(io) ? io : undefined;
  const input = chatIo?.input ?? process.stdin;
  const interactive = chatIo?.interactive ?? (Boolean(process.stdin.isTTY) && input === process.stdin);
  const rl = createInterface({ input, output: interactive ? (chatIo?.output ?? process.stdout) : undefined, terminal: interactive });
  let current: AbortController | undefined;
  let interruptedAtPrompt = false;
  const onInterrupt = () => {
    if (current) {
      current.abort();
      return;
    }
    if (interruptedAtPrompt) {
      rl.close();
      return;
    }
    interruptedAtPrompt = true;
    io.stdout("\n(Ctrl-C again to quit, or /quit)\n");
    rl.prompt();
  };
  if (interactive) {
    rl.on("SIGINT", onInterrupt);
    io.stdout("zh-llama chat: /help for commands, Ctrl-C stops an answer, Ctrl-D or /quit leaves.\n");
    rl.setPrompt("> ");
    rl.prompt();
  }
  try {
    for await (const raw of rl) {
      interruptedAtPrompt = false;
      const line = raw.replace(/\r$/, "");
      if (line.trim() === "") {
        if (interactive) rl.prompt();
        continue;
      }
      if (line.startsWith("/") && !line.startsWith("//")) {
        const quit = await command(chat, line, io);
        if (quit) break;
      } else {
        current = new AbortController();
        try {
          await answer(chat, line.startsWith("//") ? line.slice(1) : line, io, current.signal);
        } catch (error) {
          // A turn that cannot run (too long for the context) is reported; the chat goes on.
          if (!(error instanceof ZhLlamaError)) throw error;
          io.stderr(`${error.name}: ${error.message}\n`);
        } finally {
          current = undefined;
        }
      }
      if (interactive) rl.prompt();
    }
  } finally {
    rl.close();
  }
  return 0;
}

/** Runs a /command; true means quit. */
async function command(chat: ChatSession, line: string, io: CliIo): Promise<boolean> {
  const space = line.indexOf(" ");
  const name = space < 0 ? line : line.slice(0, space);
  const arg = space < 0 ? "" : line.slice(space + 1).trim();
  try {
    switch (name) {
      case "/quit":
      case "/exit":
        return true;
      case "/help":
        io.stdout(HELP);
        return false;
      case "/reset":
        chat.reset();
        io.stderr("[conversation reset]\n");
        return false;
      case "/system":
        chat.setSystem(arg === "" ? undefined : arg);
        chat.reset();
        io.stderr(`[system prompt: ${JSON.stringify(chat.system ?? "")}; conversation reset]\n`);
        return false;
      case "/save":
        if (!arg) throw new UsageError("/save needs a file name");
        await writeFile(arg, JSON.stringify(chat.save(), null, 2) + "\n");
        io.stderr(`[saved ${chat.messages.length} messages to ${arg}]\n`);
        return false;
      case "/load":
        if (!arg) throw new UsageError("/load needs a file name");
        chat.load(await readFile(arg, "utf8"));
        io.stderr(`[loaded ${chat.messages.length} messages from ${arg}]\n`);
        return false;
      default:
        io.stderr(`unknown command ${name}; /help lists them (start a message with // to send a literal /)\n`);
        return false;
    }
  } catch (error) {
    if (error instanceof ZhLlamaError) io.stderr(`${error.name}: ${error.message}\n`);
    else if (error instanceof Error && "code" in error) io.stderr(`${name}: ${error.message}\n`);
    else throw error;
    return false;
  }
}
