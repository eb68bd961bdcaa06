/** A server over the committed tiny random model (vocabulary 300, context 256), for tests. */
import { join } from "node:path";
import { getTemplate } from "../../src/chat/index.js";
import { LlamaModel } from "../../src/model/index.js";
import { createServer, type ServerApp, type ServerOptions } from "../../src/server/index.js";
import { tokenizerFromGgufMetadata, type SentencePieceTokenizer } from "../../src/tokenizer/index.js";
import { repoRoot } from "../helpers/shared.js";

export const FIXTURE = join(repoRoot, "fixtures/models/tiny-random-q8_0.gguf");

export interface TestServer {
  app: ServerApp;
  model: LlamaModel;
  tokenizer: SentencePieceTokenizer;
}

export async function testServer(options: Partial<Omit<ServerOptions, "model" | "tokenizer">> = {}, nCtx = 256): Promise<TestServer> {
  const model = await LlamaModel.load(FIXTURE, { nCtx });
  const tokenizer = tokenizerFromGgufMetadata(model.file.metadata, "tiny-random");
  const app = createServer({ model, tokenizer, template: getTemplate("plain"), ...options });
  return { app, model, tokenizer };
}

export function post(path: string, body: unknown, headers: Record<string, string> = {}, signal?: AbortSignal): Request {
  return new Request(`http://test${path}`, {
    method: "POST",
    headers: { "content-type": "application/json", ...headers },
    body: typeof body === "string" ? body : JSON.stringify(body),
    signal,
  });
}

export const get = (path: string, headers: Record<string, string> = {}): Request => new Request(`http://test${path}`, { headers });

/** A request through the app: status, content type, text, and the body parsed where it is JSON. */
export async function callApp(app: ServerApp, r: Request) {
  const res = await app.fetch(r);
  const text = await res.text();
  return { status: res.status, type: res.headers.get("content-type") ?? "", text, body: res.headers.get("content-type")?.includes("json") ? (JSON.parse(text) as Record<string, any>) : undefined };
}

/** The JSON payloads of an SSE body, "[DONE]" as the string. */
export function parseSse(text: string): Array<Record<string, unknown> | "[DONE]"> {
  const out: Array<Record<string, unknown> | "[DONE]"> = [];
  for (const block of text.split("\n\n")) {
    const line = block.trim();
    if (!line) continue;
    if (!line.startsWith("data: ")) throw new Error(`not an SSE data line: ${JSON.stringify(line)}`);
    const data = line.slice(6);
    out.push(data === "[DONE]" ? "[DONE]" : (JSON.parse(data) as Record<string, unknown>));
  }
  return out;
}
