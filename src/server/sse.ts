/**
 * Server-sent events from a generation (OpenAI's streaming shape): one `data: {json}` event per
 * chunk, then `data: [DONE]`; an error mid-stream is a last error event. The response stream's
 * cancellation (the client hanging up) stops the generation and frees its session.
 */
import type { GenerationResult, TokenLogprob } from "../generate/index.js";
import { toApiError } from "./http.js";
import type { Generation } from "./leasing.js";

const SSE_HEADERS = { "content-type": "text/event-stream; charset=utf-8", "cache-control": "no-cache", "x-accel-buffering": "no" };

/** Shapes each event: a token's text, or null with the result at the end (and null alone for the usage chunk's base). */
export type ChunkFn = (text: string | null, result?: GenerationResult, logprobs?: TokenLogprob[]) => unknown;

export interface SseHooks {
  /** The usage block for include_usage; undefined: none. */
  usage?: (r: GenerationResult) => unknown;
  onResult: (r: GenerationResult) => void;
  /** Called once when the stream ends, however it ends. */
  finish: () => void;
}

/** An SSE response; `first` (when given) is sent before any token, `chunk` shapes the rest. */
export function sse(run: Generation, first: unknown | undefined, chunk: ChunkFn, hooks: SseHooks): Response {
  const encoder = new TextEncoder();
  const line = (data: unknown) => encoder.encode(`data: ${JSON.stringify(data)}\n\n`);
  const { finish } = hooks;
  const body = new ReadableStream<Uint8Array>({
    start(controller) {
      if (first !== undefined) controller.enqueue(line(first));
    },
    async pull(controller) {
      try {
        // A chunk function may hold a piece back (undefined) or send several (an array); a
        // pull that enqueues nothing would not be called again, so it reads on until one does.
        let sent = 0;
        const send = (data: unknown) => {
          for (const d of Array.isArray(data) ? data : data === undefined ? [] : [data]) {
            controller.enqueue(line(d));
            sent++;
          }
        };
        while (sent === 0) {
          const next = await run.events.next();
          if (next.done) {
            finish();
            controller.close();
            return;
          }
          const e = next.value;
          if (e.type === "token") {
            send(chunk(e.text, undefined, e.logprobs));
          } else {
            hooks.onResult(e.result);
            send(chunk(null, e.result, e.logprobs));
            if (hooks.usage) send({ ...(chunk(null) as object), choices: [], usage: hooks.usage(e.result) });
            controller.enqueue(encoder.encode("data: [DONE]\n\n"));
            sent++;
          }
        }
      } catch (error) {
        const apiError = toApiError(error);
        controller.enqueue(line(apiError.body()));
        controller.enqueue(encoder.encode("data: [DONE]\n\n"));
        finish();
        controller.close();
      }
    },
    async cancel() {
      run.abort();
      await run.events.return(undefined).catch(() => undefined);
      run.release();
      finish();
    },
  });
  return new Response(body, { status: 200, headers: SSE_HEADERS });
}
