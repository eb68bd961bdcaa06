import { UsageError } from "../errors.js";
import { TEMPLATE_NAMES, templateFor } from "../chat/index.js";
import { LlamaModel } from "../model/index.js";
import { createServer, serve } from "../server/index.js";
import { numberOption, parseCommandArgs, type Command } from "./command.js";
import { MODEL_OPTIONS, MODEL_OPTIONS_USAGE, loadModel, loadOptionsFrom, modelPath } from "./model-options.js";

export const serveCommand: Command = {
  usage: `usage: zh-llama serve -m MODEL.gguf [--host 127.0.0.1] [--port 19327] [--api-key KEY] [--parallel N] [--template NAME] [--quiet]

An OpenAI-compatible HTTP server: GET /v1/models, POST /v1/completions, POST /v1/chat/completions
(stream: true as server-sent events), POST /v1/embeddings, POST /tokenize, POST /detokenize,
GET /metrics (Prometheus), GET /health. Runs under Node, Deno and Bun. Each request is logged on
stderr as one line: method, path, status, prompt+completion tokens, milliseconds.
  --host ADDR             address to listen on (default 127.0.0.1; the upstream demo used 0.0.0.0);
                          a non-loopback address without --api-key prints a warning
  --port N                port (default 19327, the upstream server's; 0 picks a free one)
  --api-key KEY           require "Authorization: Bearer KEY" (default: none; also ZH_LLAMA_API_KEY)
  --parallel N            sequences generated at once, one KV cache each (default 1)
  --queue N               requests that may wait for a sequence before 429 (default 64)
  --template NAME         chat template: ${TEMPLATE_NAMES.join(", ")} (default: from the model)
  --model-name NAME       the model id clients use (default: the GGUF general.name)
  --alias NAME            another model name to accept (repeatable), e.g. chinese-llama-alpaca-2
  --max-tokens N          largest max_tokens a request may ask for (default: the context length)
  --max-body BYTES        largest request body (default 1048576)
  --cors-origin ORIGIN    a web page origin allowed to call the server (repeatable; "*" for any);
                          pages on localhost are always allowed, other origins get 403
  --quiet                 no access-log line per request
  --allowed-host NAME     a Host header name to accept besides localhost and the --host address
                          (repeatable); with --host on a non-loopback address any Host is accepted
                          unless this is given
${MODEL_OPTIONS_USAGE}`,

  async run(args, io) {
    const { values } = parseCommandArgs({
      args,
      allowPositionals: false,
      options: {
        ...MODEL_OPTIONS,
        host: { type: "string" },
        port: { type: "string" },
        "api-key": { type: "string" },
        parallel: { type: "string" },
        queue: { type: "string" },
        template: { type: "string" },
        "model-name": { type: "string" },
        alias: { type: "string", multiple: true },
        "max-tokens": { type: "string" },
        "max-body": { type: "string" },
        "cors-origin": { type: "string", multiple: true },
        "allowed-host": { type: "string", multiple: true },
        quiet: { type: "boolean" },
      },
    });
    const host = values.host ?? "127.0.0.1";
    const port = numberOption("port", values.port, 19327, 0, 65535);
    const parallel = numberOption("parallel", values.parallel, 1, 1, 64);
    const maxQueue = numberOption("queue", values.queue, 64, 0, 1 << 20);
    if (!Number.isInteger(port) || !Number.isInteger(parallel) || !Number.isInteger(maxQueue)) throw new UsageError("--port, --parallel and --queue take integers");
    const model = await loadModel(io, modelPath(values), { ...loadOptionsFrom(values), sessions: parallel });
    const tokenizer = model.tokenizer;
    const template = templateFor(values.template, model.file.metadata, model.file.name);
    const apiKey = values["api-key"] ?? (globalThis.process?.env?.ZH_LLAMA_API_KEY || undefined);
    const warning = publicHostWarning(host, apiKey);
    if (warning) io.stderr(`zh-llama serve: ${warning}\n`);
    const app = createServer({
      model,
      tokenizer,
      template,
      modelName: values["model-name"],
      aliases: values.alias,
      apiKey,
      parallel,
      maxQueue,
      maxTokensLimit: values["max-tokens"] === undefined ? undefined : numberOption("max-tokens", values["max-tokens"], 0, 1, 1 << 24),
      maxBodyBytes: values["max-body"] === undefined ? undefined : numberOption("max-body", values["max-body"], 0, 1024, 1 << 30),
      corsOrigins: values["cors-origin"],
      allowedHosts: allowedHostsFor(host, values["allowed-host"]),
      log: values.quiet ? undefined : (line) => io.stderr(`${new Date().toISOString()} ${line}\n`),
    });
    let handle: Awaited<ReturnType<typeof serve>>;
    try {
      handle = await serve(app.fetch, { hostname: host, port });
    } catch (error) {
      await model.dispose();
      // Deno and Bun name the code (EADDRINUSE) but not the address: add it for the one-line error.
      if (error !== null && typeof error === "object" && typeof (error as { code?: unknown }).code === "string") {
        const e = error as { address?: unknown; port?: unknown; syscall?: unknown };
        e.address ??= host;
        e.port ??= port;
        e.syscall ??= "listen";
      }
      throw error;
    }
    io.stderr(`zh-llama serve: ${app.modelName} (template ${template.name}, ${parallel} parallel, ctx ${model.session.nCtx}) listening on http://${host.includes(":") ? `[${host}]` : host}:${handle.port} (${handle.runtime})\n`);
    await new Promise<void>((resolve) => {
      const stop = () => resolve();
      globalThis.process?.once?.("SIGINT", stop);
      globalThis.process?.once?.("SIGTERM", stop);
    });
    io.stderr("zh-llama serve: shutting down\n");
    await handle.close();
    await model.dispose();
    return 0;
  },
};

const isLoopbackHost = (host: string): boolean => {
  const bare = host.replace(/^\[|\]$/g, "").toLowerCase();
  return bare === "localhost" || bare === "::1" || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(bare);
};

/** The warning for a server anyone on the network can reach without a key; undefined when there is none. */
export function publicHostWarning(host: string, apiKey: string | undefined): string | undefined {
  if (isLoopbackHost(host) || apiKey) return undefined;
  return `warning: listening on ${host} without --api-key: anyone who can reach this address can use the server (set --api-key KEY or ZH_LLAMA_API_KEY)`;
}

/** Loopback --host: only localhost names and the bound address; a public one: any Host, unless --allowed-host narrows it. */
export function allowedHostsFor(host: string, extra: readonly string[] = []): readonly string[] | "*" {
  const bare = host.replace(/^\[|\]$/g, "").toLowerCase();
  if (!isLoopbackHost(host) && extra.length === 0) return "*";
  return [bare, ...extra];
}
