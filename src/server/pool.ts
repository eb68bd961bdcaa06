/**
 * The server's sequences: `parallel` sessions (one KV cache each) over one model, handed out
 * first come, first served. Requests that find every session busy wait in a bounded FIFO
 * queue; when it is full they are refused (429). A waiting request whose client goes away
 * leaves the queue.
 */
import type { LlamaModel, LlamaSession } from "../model/index.js";
import { ApiError } from "./errors.js";

interface Waiter {
  resolve: (session: LlamaSession) => void;
  reject: (error: unknown) => void;
  signal?: AbortSignal;
  onAbort?: () => void;
}

export class SessionPool {
  private readonly idle: LlamaSession[] = [];
  private readonly queue: Waiter[] = [];
  private busyCount = 0;
  readonly size: number;

  constructor(
    model: LlamaModel,
    parallel: number,
    readonly maxQueue: number,
  ) {
    for (let i = 0; i < parallel; i++) this.idle.push(model.createSession());
    this.size = parallel;
  }

  get busy(): number {
    return this.busyCount;
  }
  get idleCount(): number {
    return this.idle.length;
  }
  get queued(): number {
    return this.queue.length;
  }

  /**
   * A session for one request; `release` it when done. Sessions are given back in the order
   * they were asked for. Prefers an idle session whose cache starts with `prefix` (a chat's
   * earlier turns).
   */
  acquire(signal?: AbortSignal, prefix: readonly number[] = []): Promise<LlamaSession> {
    if (signal?.aborted) return Promise.reject(new ApiError(499, "the client closed the request", "invalid_request_error", null, "client_closed"));
    if (this.idle.length > 0 && this.queue.length === 0) {
      this.busyCount++;
      return Promise.resolve(this.takeIdle(prefix));
    }
    if (this.queue.length >= this.maxQueue) {
      return Promise.reject(new ApiError(429, `the server is busy: ${this.size} sequences running and ${this.queue.length} requests queued (limit ${this.maxQueue}); retry later`, "rate_limit_error", null, "queue_full"));
    }
    return new Promise<LlamaSession>((resolve, reject) => {
      const waiter: Waiter = { resolve, reject, signal };
      if (signal) {
        waiter.onAbort = () => {
          const i = this.queue.indexOf(waiter);
          if (i >= 0) this.queue.splice(i, 1);
          reject(new ApiError(499, "the client closed the request", "invalid_request_error", null, "client_closed"));
        };
        signal.addEventListener("abort", waiter.onAbort, { once: true });
      }
      this.queue.push(waiter);
    });
  }

  release(session: LlamaSession): void {
    const next = this.queue.shift();
    if (next) {
      if (next.onAbort) next.signal?.removeEventListener("abort", next.onAbort);
      next.resolve(session);
      return;
    }
    this.busyCount--;
    this.idle.push(session);
  }

  private takeIdle(prefix: readonly number[]): LlamaSession {
    let best = this.idle.length - 1;
    let bestLength = -1;
    this.idle.forEach((s, i) => {
      const cached = s.cachedTokens;
      let n = 0;
      while (n < cached.length && n < prefix.length && cached[n] === prefix[n]) n++;
      if (n > bestLength) {
        best = i;
        bestLength = n;
      }
    });
    return this.idle.splice(best, 1)[0]!;
  }
}
