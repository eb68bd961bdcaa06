import { describe, expect, it } from "vitest";
import { availableParallelism } from "node:os";
import { defaultThreads } from "../../src/runtime/index.js";

describe("defaultThreads", () => {
  it("is the cores this process may use (os.availableParallelism on Node 20, which has no navigator)", () => {
    expect(defaultThreads()).toBe(Math.min(availableParallelism(), 64));
  });
});

describe("threadsFor", () => {
  it("one thread for a model too small to share (the bundled one), all cores for real ones", async () => {
    const { threadsFor, SMALL_MODEL_BYTES } = await import("../../src/model/index.js");
    const fake = (bytes: number) => ({ tensors: [{ name: "token_embd.weight", byteSize: 1 << 30 }, { name: "blk.0.ffn_up.weight", byteSize: bytes }] }) as never;
    expect(threadsFor(fake(SMALL_MODEL_BYTES - 1))).toBe(1);
    expect(threadsFor(fake(4e9))).toBe(defaultThreads());
  });
});
