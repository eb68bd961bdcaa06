/** The page's refusals, without a browser: a model too large for WebAssembly memory, allocation failures. */
import { describe, expect, it } from "vitest";
import { PageError, checkPlanBudget, describeError } from "../../web/limits.js";
import type { MemoryPlan } from "../../src/model/plan.js";

const GiB = 1024 ** 3;
/** A 13B Q4_0 at 4096 tokens, as planMemory sizes it. */
const plan13b = { nCtx: 4096, weightBytes: 7.01 * GiB, kvBytes: 3.13 * GiB, totalBytes: 10.21 * GiB, kvBytesPerToken: 800 * 1024 } as MemoryPlan;

describe("web page limits", () => {
  it("refuses a plan bigger than the device's memory, naming the sizes and a context that fits", () => {
    expect(() => checkPlanBudget(plan13b, "13b.gguf", 16)).not.toThrow();
    expect(() => checkPlanBudget(plan13b, "13b.gguf", undefined)).not.toThrow();
    expect(() => checkPlanBudget(plan13b, "chinese-alpaca-2-13b.Q4_0.gguf", 8)).toThrow(PageError);
    expect(() => checkPlanBudget(plan13b, "chinese-alpaca-2-13b.Q4_0.gguf", 8)).toThrow(/needs 10\.21 GiB at a context of 4096 tokens \(weights 7\.01 GiB, KV cache 3\.13 GiB\), more than this device's 8 GiB\. Choose a context of 1024 tokens or less/);
    expect(() => checkPlanBudget(plan13b, "x.gguf", 4)).toThrow(/Pick a smaller model/);
  });
  it("words an allocation failure as 'too large', other errors by name", () => {
    expect(describeError(new RangeError("WebAssembly.Memory.grow(): Maximum memory size exceeded"))).toMatch(/could not allocate memory .* too large for this browser/);
    expect(describeError(new PageError("plain words"))).toBe("plain words");
    expect(describeError(new TypeError("x is undefined"))).toBe("TypeError: x is undefined");
  });
});
