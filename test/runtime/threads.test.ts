import { describe, expect, it } from "vitest";
import { availableParallelism } from "node:os";
import { defaultThreads } from "../../src/runtime/index.js";

describe("defaultThreads", () => {
  it("is the cores this process may use (os.availableParallelism on Node 20, which has no navigator)", () => {
    expect(defaultThreads()).toBe(Math.min(availableParallelism(), 64));
  });
});
