/**
 * The chat page: loads a GGUF (the bundled tiny model by default, or a file the user picks),
 * runs it in this browser with the library from src/, and streams replies.
 *
 * Threads: with cross-origin isolation (COOP/COEP headers, see serve.mjs) the forward pass runs on
 * a pool of Web Workers over one shared WebAssembly.Memory, and this thread only awaits each step;
 * without it there is no SharedArrayBuffer for workers to share, so the kernels run here, on one
 * thread, yielding to the event loop after every token so the tab never freezes.
 *
 * Backend: "auto" uses WebGPU when navigator.gpu gives a hardware adapter and the model's weight
 * types have WGSL kernels (src/kernels/webgpu), else WASM; every fallback is announced. A software
 * adapter (SwiftShader, llvmpipe) is slower than the WASM kernels, so "auto" passes it over;
 * choosing WebGPU explicitly (or ?backend=webgpu) uses it anyway.
 *
 * Tests drive the page through the element ids and read `window.zhLlama` (PageState).
 */
import { GgufFile, openGguf } from "../src/formats/gguf/index.js";
import { LlamaModel } from "../src/model/model.js";
import type { GenerateOptions } from "../src/generate/index.js";
import { ChatSession } from "../src/chat/session.js";
import { kvTypeFor, planMemory } from "../src/model/index.js";
import { readHParams } from "../src/model/hparams.js";
import { tokenizerFromGgufMetadata, type SentencePieceTokenizer } from "../src/tokenizer/index.js";
import { getTemplate, TEMPLATE_NAMES, type ChatMessage, type ChatTemplate } from "../src/chat/templates.js";
import { detectTemplate } from "../src/chat/detect.js";
import { setKernelBaseUrl } from "../src/kernels/wasm/loader.js";
import { installUnsharedFallback } from "./unshared.js";
import { DEFAULT_MODEL_FILE, DEFAULT_MODEL_URL } from "./default-model.js";
import { PageError, checkPlanBudget, describeError } from "./limits.js";

// The model loaded when the page opens (web/default-model.ts); `?model=URL` overrides it.

/**
 * wasm32 memory tops out at 4 GiB; weights, KV cache and scratch all live in it. Past this much
 * weight data there is no point trying.
 */

/** What the page exposes to tests (and to a curious console). */
export interface PageState {
  status: "idle" | "loading" | "ready" | "generating" | "error";
  backend: string;
  modelName: string;
  crossOriginIsolated: boolean;
  /** The reply being streamed (or the last one), and how many pieces it arrived in. */
  reply: string;
  tokenEvents: number;
  lastTokensPerS: number;
  finishReason: string;
  generatedIds: number[];
  error: string;
  notices: string[];
  /** wasm32 memories the loaded model spreads over (src/model/plan.ts). */
  memories: number;
}

declare global {
  interface Window {
    zhLlama: PageState;
  }
}

const state: PageState = {
  status: "idle", backend: "", modelName: "", crossOriginIsolated: globalThis.crossOriginIsolated === true,
  reply: "", tokenEvents: 0, lastTokensPerS: 0, finishReason: "", generatedIds: [], error: "", notices: [], memories: 0,
};
window.zhLlama = state;

// The bundle ships kernels*.wasm beside itself (tools/build-web.mjs).
setKernelBaseUrl(new URL("./", import.meta.url));

function $<T extends HTMLElement>(id: string): T {
  const el = document.getElementById(id);
  if (!el) throw new Error(`page is missing #${id}`);
  return el as T;
}

const ui = {
  notices: $<HTMLDivElement>("notices"),
  backend: $<HTMLSpanElement>("backend"),
  speed: $<HTMLSpanElement>("speed"),
  file: $<HTMLInputElement>("file"),
  threads: $<HTMLInputElement>("threads"),
  ctx: $<HTMLInputElement>("ctx"),
  backendChoice: $<HTMLSelectElement>("backend-choice"),
  reload: $<HTMLButtonElement>("reload"),
  modelName: $<HTMLDivElement>("model-name"),
  progress: $<HTMLProgressElement>("progress"),
  template: $<HTMLSelectElement>("template"),
  system: $<HTMLInputElement>("system"),
  temperature: $<HTMLInputElement>("temperature"),
  topK: $<HTMLInputElement>("top-k"),
  topP: $<HTMLInputElement>("top-p"),
  repeatPenalty: $<HTMLInputElement>("repeat-penalty"),
  maxTokens: $<HTMLInputElement>("max-tokens"),
  seed: $<HTMLInputElement>("seed"),
  clear: $<HTMLButtonElement>("clear"),
  log: $<HTMLDivElement>("log"),
  form: $<HTMLFormElement>("chat"),
  prompt: $<HTMLTextAreaElement>("prompt"),
  send: $<HTMLButtonElement>("send"),
  stop: $<HTMLButtonElement>("stop"),
};

function notice(text: string, kind: "info" | "error" = "info"): void {
  const div = document.createElement("div");
  div.className = `notice ${kind}`;
  div.textContent = text;
  ui.notices.append(div);
  state.notices.push(text);
}

function fail(text: string): void {
  state.status = "error";
  state.error = text;
  notice(text, "error");
}

/** Lets the browser paint and handle input between pieces of work on this thread. */
const yieldToEventLoop = () => new Promise<void>((resolve) => setTimeout(resolve, 0));

// ---------------------------------------------------------------------------------------------
// Threads and the shared-memory check

/**
 * Shared WebAssembly memory (what the kernels import) needs cross-origin isolation in browsers;
 * after installUnsharedFallback() the same call gives an unshared one, enough for one thread.
 */
function sharedMemoryWorks(): boolean {
  try {
    new WebAssembly.Memory({ initial: 1, maximum: 1, shared: true });
    return typeof SharedArrayBuffer === "function";
  } catch {
    return false;
  }
}

type BackendChoice = "auto" | "wasm" | "webgpu";
const queryBackend = new URLSearchParams(location.search).get("backend");
if (queryBackend === "auto" || queryBackend === "wasm" || queryBackend === "webgpu") ui.backendChoice.value = queryBackend;

type WebGpuProbe = { ok: true; software: boolean; name: string } | { ok: false; why: string };

/** Whether navigator.gpu gives an adapter, and whether it is a software one. */
async function probeWebGpu(): Promise<WebGpuProbe> {
  const gpu = (navigator as Navigator & { gpu?: GPU }).gpu;
  if (!gpu) return { ok: false, why: "this browser has no navigator.gpu" };
  try {
    const adapter = await gpu.requestAdapter();
    if (!adapter) return { ok: false, why: "navigator.gpu gave no adapter" };
    const info = adapter.info as GPUAdapterInfo & { isFallbackAdapter?: boolean };
    const name = [info.vendor, info.architecture, info.description].filter((x) => x).join(" ") || "unnamed adapter";
    const software = info.isFallbackAdapter === true || /swiftshader|llvmpipe|lavapipe|software/i.test(name);
    return { ok: true, software, name };
  } catch (e) {
    return { ok: false, why: describeError(e) };
  }
}

const cores = Math.max(1, Math.min(navigator.hardwareConcurrency || 1, 8));
if (!state.crossOriginIsolated) {
  notice(
    "This page is not cross-origin isolated (it was served without the Cross-Origin-Opener-Policy: same-origin and " +
      "Cross-Origin-Embedder-Policy: require-corp headers), so there is no SharedArrayBuffer for worker threads: " +
      "the model runs on 1 thread, on the page's own thread, yielding between tokens. Serve it with `npm run web` for all cores.",
  );
  ui.threads.value = "1";
  ui.threads.disabled = true;
} else {
  ui.threads.value = String(cores);
}

// ---------------------------------------------------------------------------------------------
// Loading

interface Loaded {
  model: LlamaModel;
  tokenizer: SentencePieceTokenizer;
  detected: ChatTemplate;
}

let loaded: Loaded | undefined;
let messages: ChatMessage[] = [];

const GGUF_MAGIC = [0x47, 0x47, 0x55, 0x46]; // "GGUF"

/** A clear message for a picked file that is not GGUF, before the reader's detailed one. */
async function checkMagic(blob: Blob, name: string): Promise<void> {
  const head = new Uint8Array(await blob.slice(0, 4).arrayBuffer());
  if (head.length < 4 || GGUF_MAGIC.some((b, i) => head[i] !== b)) {
    const seen = Array.from(head, (b) => b.toString(16).padStart(2, "0")).join(" ");
    throw new PageError(`${name} is not a GGUF model file: it starts with bytes [${seen}], a GGUF file starts with "GGUF" (47 47 55 46).`);
  }
}

function setBusy(busy: boolean): void {
  ui.prompt.disabled = busy || !loaded;
  ui.send.disabled = busy || !loaded;
  ui.stop.disabled = !busy || state.status !== "generating";
  ui.file.disabled = busy;
  ui.reload.disabled = busy;
}

async function loadModel(input: Blob | string, name: string): Promise<void> {
  state.status = "loading";
  state.error = "";
  setBusy(true);
  ui.modelName.textContent = `loading ${name} …`;
  ui.progress.hidden = false;
  ui.progress.value = 0;
  if (loaded) {
    await loaded.model.dispose();
    loaded = undefined;
  }
  let file: GgufFile | undefined;
  try {
    if (typeof input !== "string") await checkMagic(input, name);
    file = await openGguf(input);
    const threads = state.crossOriginIsolated ? Math.max(1, Math.floor(Number(ui.threads.value) || cores)) : 1;
    const ctxWanted = Math.max(16, Math.floor(Number(ui.ctx.value) || 2048));
    const nCtx = Math.min(ctxWanted, Number(file.metadata[`${String(file.metadata["general.architecture"] ?? "llama")}.context_length`] ?? ctxWanted));
    // The memory plan first: a model of any size loads if the device holds it (over several
    // 4 GiB memories); ?memoryLimit=BYTES&layersPerMemory=N spread it further (tests).
    const query = new URLSearchParams(location.search);
    const spread = {
      memoryLimit: query.has("memoryLimit") ? Number(query.get("memoryLimit")) : undefined,
      layersPerMemory: query.has("layersPerMemory") ? Number(query.get("layersPerMemory")) : undefined,
    };
    const hp = readHParams(file.metadata);
    const plan = planMemory(file, hp, { nCtx, kvType: kvTypeFor(hp, "f16"), maxTok: Math.min(64, nCtx), threads, ...spread });
    const bytes = plan.weightBytes;
    checkPlanBudget(plan, name, (navigator as { deviceMemory?: number }).deviceMemory);
    const onProgress = (done: number, total: number) => {
      ui.progress.max = total;
      ui.progress.value = done;
    };
    const choice = ui.backendChoice.value as BackendChoice;
    let model: LlamaModel | undefined;
    if (choice !== "wasm") {
      const probe = await probeWebGpu();
      if (!probe.ok) notice(`WebGPU is not available (${probe.why}): using WASM.`);
      else if (choice === "auto" && probe.software) {
        notice(`The WebGPU adapter (${probe.name}) is a software renderer, slower than the WASM kernels: using WASM. Choose the WebGPU backend to use it anyway.`);
      } else {
        try {
          model = await LlamaModel.load(file, { backend: "webgpu", nCtx, onProgress, checkMemory: false });
        } catch (e) {
          notice(`WebGPU could not run this model (${describeError(e)}): falling back to WASM.`);
        }
      }
    }
    model ??= await LlamaModel.load(file, { backend: "wasm", threads, nCtx, onProgress, ...spread });
    state.memories = model.plan.memories.length;
    const tokenizer = tokenizerFromGgufMetadata(file.metadata);
    const detected = detectTemplate(file.metadata);
    loaded = { model, tokenizer, detected };
    fillTemplates(detected);
    const where = model.threads > 1 ? `${model.threads} threads (Web Workers)` : "1 thread (page thread)";
    state.backend = model.gpu ? model.gpu.description : `WASM (${model.kernels.path}), ${where}`;
    ui.backend.textContent = `backend: ${state.backend}`;
    state.modelName = name;
    ui.modelName.textContent = `${name}: ${model.hp.nLayer} layers, ${model.hp.nEmbd} wide, vocabulary ${model.hp.nVocab}, context ${model.nCtx}, ${(bytes / 1024 ** 2).toFixed(1)} MiB of weights${model.plan.memories.length > 1 ? ` in ${model.plan.memories.length} memories` : ""}`;
    messages = [];
    ui.log.replaceChildren();
    state.status = "ready";
  } catch (e) {
    if (file && !loaded) await file.close().catch(() => undefined);
    ui.modelName.textContent = `${name}: not loaded`;
    fail(describeError(e));
  } finally {
    ui.progress.hidden = true;
    setBusy(false);
  }
}

function fillTemplates(detected: ChatTemplate): void {
  const names = TEMPLATE_NAMES.filter((n) => n !== "jinja" || detected.name === "jinja");
  ui.template.replaceChildren(
    ...names.map((n) => {
      const opt = document.createElement("option");
      opt.value = n;
      opt.textContent = n === detected.name ? `${n} (from the model)` : n;
      return opt;
    }),
  );
  ui.template.value = detected.name;
}

function currentTemplate(): ChatTemplate {
  if (!loaded) throw new PageError("no model loaded");
  const name = ui.template.value;
  return name === loaded.detected.name ? loaded.detected : getTemplate(name);
}

// ---------------------------------------------------------------------------------------------
// Chatting

let abort: AbortController | undefined;

function numberOr(input: HTMLInputElement, fallback: number): number {
  const v = Number(input.value);
  return input.value.trim() === "" || !Number.isFinite(v) ? fallback : v;
}

function samplingOptions(): GenerateOptions {
  const seed = ui.seed.value.trim() === "" ? undefined : Math.floor(Number(ui.seed.value));
  return {
    temperature: numberOr(ui.temperature, 0.2),
    topK: numberOr(ui.topK, 40),
    topP: numberOr(ui.topP, 0.9),
    repetitionPenalty: numberOr(ui.repeatPenalty, 1.1),
    maxTokens: Math.max(1, Math.floor(numberOr(ui.maxTokens, 200))),
    ...(seed === undefined || !Number.isFinite(seed) ? {} : { seed }),
  };
}

function addMessage(role: "user" | "assistant", text: string): HTMLDivElement {
  const div = document.createElement("div");
  div.className = `msg ${role}`;
  div.textContent = text;
  ui.log.append(div);
  ui.log.scrollTop = ui.log.scrollHeight;
  return div;
}

async function send(text: string): Promise<void> {
  if (!loaded || state.status === "generating") return;
  const { model, tokenizer } = loaded;
  // A ChatSession per turn over the model's one KV cache (so earlier turns are not evaluated
  // again): the template, system prompt and sampling are the page's current ones, and the
  // oldest turns are dropped when the conversation outgrows the context (fitHistory).
  const system = ui.system.value.trim();
  const chat = new ChatSession({ model, tokenizer, template: currentTemplate(), system: system || undefined, generation: samplingOptions() });
  chat.setMessages(messages.filter((m) => m.role !== "system"));
  addMessage("user", text);
  const bubble = addMessage("assistant", "");
  state.status = "generating";
  state.reply = "";
  state.tokenEvents = 0;
  state.generatedIds = [];
  state.finishReason = "";
  abort = new AbortController();
  setBusy(true);
  ui.stop.disabled = false;
  try {
    for await (const event of chat.send(text, abort.signal)) {
      if (event.type === "token") {
        state.reply += event.text;
        state.tokenEvents++;
        bubble.textContent = state.reply;
        ui.log.scrollTop = ui.log.scrollHeight;
      } else {
        const t = event.result.timings;
        state.lastTokensPerS = t.decodeTokensPerS;
        state.finishReason = event.result.finishReason;
        state.generatedIds = event.result.generatedIds;
        ui.speed.textContent =
          `prompt ${t.promptTokens} tok at ${t.promptTokensPerS.toFixed(1)} tok/s · ` +
          `decode ${t.generatedTokens} tok at ${t.decodeTokensPerS.toFixed(1)} tok/s · ${event.result.finishReason}`;
      }
      // On one thread the forward pass ran here: let the page paint and take clicks (Stop).
      await yieldToEventLoop();
    }
    messages = chat.messages;
    state.status = "ready";
  } catch (e) {
    fail(describeError(e));
    state.status = "ready";
  } finally {
    abort = undefined;
    setBusy(false);
    ui.prompt.focus();
  }
}

ui.form.addEventListener("submit", (e) => {
  e.preventDefault();
  const text = ui.prompt.value.trim();
  if (!text) return;
  ui.prompt.value = "";
  void send(text);
});
ui.prompt.addEventListener("keydown", (e) => {
  if (e.key === "Enter" && !e.shiftKey && !e.isComposing) {
    e.preventDefault();
    ui.form.requestSubmit();
  }
});
ui.stop.addEventListener("click", () => abort?.abort());
ui.clear.addEventListener("click", () => {
  messages = [];
  ui.log.replaceChildren();
});
ui.file.addEventListener("change", () => {
  const picked = ui.file.files?.[0];
  // A File is a Blob: the reader slices it tensor by tensor, never holding it whole.
  if (picked) void loadModel(picked, picked.name);
});
ui.reload.addEventListener("click", () => void loadModel(defaultModelUrl(), defaultModelName()));

function defaultModelName(): string {
  return new URLSearchParams(location.search).get("model") ?? DEFAULT_MODEL_FILE;
}

function defaultModelUrl(): string {
  const fromQuery = new URLSearchParams(location.search).get("model");
  return new URL(fromQuery ?? DEFAULT_MODEL_URL, location.href).href;
}

// Not isolated: run the same kernels over unshared memory on this thread (see unshared.ts).
if (!sharedMemoryWorks()) installUnsharedFallback();
if (!sharedMemoryWorks()) {
  fail(
    "This browser cannot create WebAssembly memory for zh-llama's kernels. " +
      "Use a current Chrome, Edge, Firefox or Safari, and open the page through `npm run web` (cross-origin isolated).",
  );
} else {
  void loadModel(defaultModelUrl(), defaultModelName());
}
