/**
 * Web Worker entry (browsers; also Deno and Bun's native workers): the first message is the
 * WorkerInit, then one message per task; replies { ok } or { error }.
 */
import { WorkerState, type WorkerInit, type WorkerTask } from "./worker-core.js";

interface Scope {
  onmessage: ((e: MessageEvent) => void) | null;
  postMessage(m: unknown): void;
}

const scope = globalThis as unknown as Scope;
let state: WorkerState | undefined;

scope.onmessage = (e: MessageEvent) => {
  const msg = e.data as { init?: WorkerInit; task?: WorkerTask };
  try {
    if (msg.init) {
      state = new WorkerState(msg.init);
      scope.postMessage({ ok: true });
    } else if (msg.task && state) {
      state.run(msg.task);
      scope.postMessage({ ok: true });
    }
  } catch (err) {
    scope.postMessage({ error: String((err as Error)?.stack ?? err) });
  }
};
