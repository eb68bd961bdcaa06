/**
 * What the page refuses before it tries, and how it words failures: kept apart from the page so
 * the rules can be tested without a browser (test/web/limits.test.ts).
 */

import type { MemoryPlan } from "../src/model/plan.js";

/** An error whose message is already written for the page's user. */
export class PageError extends Error {
  override name = "PageError";
}

/**
 * Throws a PageError when the memory plan (src/model/plan.ts: weights, KV cache and scratch,
 * spread over as many 4 GiB wasm32 memories as needed) is more than the device has. Browsers
 * report their memory only roughly (navigator.deviceMemory, in GiB, capped at 8 by Chromium),
 * so without it nothing is refused here and an allocation failure is worded by describeError.
 */
export function checkPlanBudget(plan: MemoryPlan, name: string, deviceMemoryGiB: number | undefined): void {
  if (deviceMemoryGiB === undefined || !(deviceMemoryGiB > 0)) return;
  const budget = deviceMemoryGiB * 1024 ** 3;
  if (plan.totalBytes <= budget) return;
  const gib = (n: number) => `${(n / 1024 ** 3).toFixed(2)} GiB`;
  const fits = Math.floor((budget - (plan.totalBytes - plan.kvBytes)) / plan.kvBytesPerToken / 256) * 256;
  throw new PageError(
    `${name} needs ${gib(plan.totalBytes)} at a context of ${plan.nCtx} tokens (weights ${gib(plan.weightBytes)}, KV cache ${gib(plan.kvBytes)}), ` +
      `more than this device's ${deviceMemoryGiB} GiB. ` +
      (fits >= 256 ? `Choose a context of ${fits} tokens or less, or a smaller quantization.` : "Pick a smaller model or quantization."),
  );
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
