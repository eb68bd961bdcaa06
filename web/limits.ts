/**
 * What the page refuses before it tries, and how it words failures: kept apart from the page so
 * the rules can be tested without a browser (test/web/limits.test.ts).
 */

/** One wasm32 memory holds 4 GiB; leave room for the KV cache and scratch. */
export const MAX_WEIGHT_BYTES = 4 * 1024 ** 3 - 256 * 1024 ** 2;

/** An error whose message is already written for the page's user. */
export class PageError extends Error {
  override name = "PageError";
}

/** Throws a PageError when a model's weights cannot fit a browser's WebAssembly memory. */
export function checkWeightBudget(bytes: number, name: string): void {
  if (bytes > MAX_WEIGHT_BYTES) {
    throw new PageError(
      `${name} holds ${(bytes / 1024 ** 3).toFixed(2)} GiB of weights; a browser's WebAssembly memory holds at most 4 GiB ` +
        `(weights, KV cache and scratch together). Pick a smaller model or quantization.`,
    );
  }
}

/** The message the page shows for a failure: allocation failures read as "too large". */
export function describeError(e: unknown): string {
  if (e instanceof PageError) return e.message;
  const err = e instanceof Error ? e : new Error(String(e));
  if (err instanceof RangeError && /memory|allocat/i.test(err.message)) {
    return `The browser could not allocate memory for this model (${err.message}). It is too large for this browser; try a smaller quantization (Q4_0) or a smaller model.`;
  }
  return `${err.name}: ${err.message}`;
}
