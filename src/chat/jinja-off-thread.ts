/**
 * Jinja chat templates rendered on a worker thread (node:worker_threads, also in Deno and
 * Bun), for the server: the event loop keeps serving while a template renders, and a render
 * that outlives its time limit (plus a grace period), or runs the worker out of its heap
 * (JINJA_WORKER_HEAP_MB), ends with the worker terminated and a ChatTemplateError; the next
 * render starts a fresh worker. Where no worker can be started (a browser, sources without
 * `npm run build`), renders run in-process, with the same limits.
 */
import type { Template } from "@huggingface/jinja";
import { ChatTemplateError } from "./errors.js";
import { JINJA_LIMITS, renderBounded, type JinjaLimits } from "./jinja.js";

/** The worker's heap limit. */
export const JINJA_WORKER_HEAP_MB = 256;
/** Time a worker gets past the render's own time limit before it is terminated. */
const GRACE_MS = 1000;

interface WorkerLike {
  postMessage(message: unknown): void;
  on(event: "message", listener: (m: { id: number; text?: string; error?: string }) => void): void;
  on(event: "error", listener: (e: Error) => void): void;
  on(event: "exit", listener: (code: number) => void): void;
  terminate(): Promise<number>;
  unref(): void;
}

interface Job {
  id: number;
  source: string;
  context: Record<string, unknown>;
  limits: Partial<JinjaLimits>;
  origin?: string;
}

interface Pending {
  job: Job;
  resolve: (text: string) => void;
  reject: (e: Error) => void;
  timer?: ReturnType<typeof setTimeout>;
  what: string;
}

let worker: WorkerLike | undefined;
/** Workers this module terminated on purpose (their exit re-sends the renders queued behind). */
const terminated = new WeakSet<WorkerLike>();
let unavailable = false;
let nextId = 1;
const pending = new Map<number, Pending>();

function workerUrl(): URL {
  const here = import.meta.url;
  return here.endsWith(".ts") ? new URL("../../dist/chat/jinja-worker.js", here) : new URL("./jinja-worker.js", here);
}

function failAll(error: (p: Pending) => Error): void {
  for (const [id, p] of pending) {
    clearTimeout(p.timer);
    pending.delete(id);
    p.reject(error(p));
  }
}

async function getWorker(): Promise<WorkerLike | undefined> {
  if (worker || unavailable) return worker;
  try {
    const { Worker } = await import("node:worker_threads");
    const { existsSync } = await import("node:fs");
    const { fileURLToPath } = await import("node:url");
    const url = workerUrl();
    if (!existsSync(fileURLToPath(url))) {
      unavailable = true;
      return undefined;
    }
    // Node flags of this process minus those about its entry script (--input-type breaks a worker).
    const execArgv = (globalThis.process?.execArgv ?? []).filter((a) => a.startsWith("--") && !/^--(input-type|eval|print)\b/.test(a));
    const w = new Worker(url, { execArgv, resourceLimits: { maxOldGenerationSizeMb: JINJA_WORKER_HEAP_MB, maxYoungGenerationSizeMb: 32 } }) as unknown as WorkerLike;
    w.on("message", (m) => {
      const p = pending.get(m.id);
      if (!p) return;
      clearTimeout(p.timer);
      pending.delete(m.id);
      if (m.error !== undefined) p.reject(new ChatTemplateError(m.error));
      else p.resolve(m.text ?? "");
    });
    w.on("error", (e) => {
      if (worker === w) worker = undefined;
      const oom = /out of memory|ERR_WORKER_OUT_OF_MEMORY/i.test(`${(e as { code?: string }).code ?? ""} ${e.message}`);
      failAll((p) => new ChatTemplateError(`the chat template was stopped: ${oom ? `it used more than the ${JINJA_WORKER_HEAP_MB} MB its renderer may` : `its renderer failed (${e.message})`} (${p.what})`));
    });
    w.on("exit", () => {
      if (worker === w) worker = undefined;
      if (terminated.has(w)) {
        // Renders queued behind the one that was stopped get a fresh worker.
        const queued = [...pending.values()];
        void getWorker().then((next) => {
          for (const p of queued) if (pending.has(p.job.id)) dispatch(next, p);
        });
      } else {
        failAll((p) => new ChatTemplateError(`the chat template was stopped: its renderer exited (${p.what})`));
      }
    });
    // After the listeners: the worker never keeps the process alive on its own.
    w.unref();
    worker = w;
    return w;
  } catch {
    unavailable = true;
    return undefined;
  }
}

/**
 * The text `source` renders to with `context`, on the worker thread (in-process where there
 * is none). Rejects with ChatTemplateError naming `origin` and the limit passed.
 * @internal (takes @huggingface/jinja's Template; see renderBounded in jinja.ts)
 */
export async function renderJinjaOffThread(template: Template, source: string, context: Record<string, unknown>, limits: Partial<JinjaLimits> = {}, origin?: string): Promise<string> {
  const w = await getWorker();
  if (!w) return renderBounded(template, source, context, limits, origin);
  const what = `${origin ? `${origin}, ` : ""}template begins ${JSON.stringify(source.slice(0, 60))}`;
  const job: Job = { id: nextId++, source, context, limits, origin };
  return new Promise<string>((resolve, reject) => dispatch(w, { job, resolve, reject, what }));
}

/** Posts a render to `w` (in-process without one), with a timer that ends a runaway worker. */
function dispatch(w: WorkerLike | undefined, p: Pending): void {
  const { job } = p;
  if (p.timer) clearTimeout(p.timer);
  if (!w) {
    pending.delete(job.id);
    p.reject(new ChatTemplateError(`the chat template could not be rendered: no renderer thread (${p.what})`));
    return;
  }
  const timeoutMs = job.limits.timeoutMs ?? JINJA_LIMITS.timeoutMs;
  p.timer = setTimeout(() => {
    // The render did not stop itself (one step that ran long): end the thread.
    pending.delete(job.id);
    p.reject(new ChatTemplateError(`the chat template was stopped: it ran longer than ${timeoutMs} ms (${p.what})`));
    if (worker === w) worker = undefined;
    terminated.add(w);
    void w.terminate();
  }, timeoutMs + GRACE_MS);
  pending.set(job.id, p);
  try {
    w.postMessage(job);
  } catch (error) {
    clearTimeout(p.timer);
    pending.delete(job.id);
    p.reject(new ChatTemplateError(`the chat template could not be sent to its renderer: ${error instanceof Error ? error.message : String(error)} (${p.what})`));
  }
}

/** Ends the worker (tests; a process exits without it, the worker is unref'd). */
export async function stopJinjaWorker(): Promise<void> {
  const w = worker;
  worker = undefined;
  if (w) await w.terminate();
}
