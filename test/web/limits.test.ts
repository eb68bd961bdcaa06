/** The page's refusals, without a browser: a model too large for WebAssembly memory, allocation failures. */
import { describe, expect, it } from "vitest";
import { MAX_WEIGHT_BYTES, PageError, checkWeightBudget, describeError } from "../../web/limits.js";

describe("web page limits", () => {
  it("refuses weights beyond one wasm32 memory, naming the file and the size", () => {
    expect(() => checkWeightBudget(MAX_WEIGHT_BYTES, "ok.gguf")).not.toThrow();
    expect(() => checkWeightBudget(7.36e9, "chinese-alpaca-2-13b.Q4_0.gguf")).toThrow(PageError);
    expect(() => checkWeightBudget(7.36e9, "chinese-alpaca-2-13b.Q4_0.gguf")).toThrow(/chinese-alpaca-2-13b\.Q4_0\.gguf holds 6\.85 GiB of weights; .* at most 4 GiB/);
  });
  it("words an allocation failure as 'too large', other errors by name", () => {
    expect(describeError(new RangeError("WebAssembly.Memory.grow(): Maximum memory size exceeded"))).toMatch(/could not allocate memory .* too large for this browser/);
    expect(describeError(new PageError("plain words"))).toBe("plain words");
    expect(describeError(new TypeError("x is undefined"))).toBe("TypeError: x is undefined");
  });
});
