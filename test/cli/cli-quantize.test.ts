/** quantize: llama-quantize's mixes, requantize refusal, fallback warnings and sizes. */
import { beforeAll, describe, expect, it } from "vitest";
import { mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chooseMixType, planQuantization, useMoreBits, type QuantMix } from "../../src/convert/quantize.js";
import { openGguf, writeGguf } from "../../src/formats/gguf/index.js";
import { GGMLType, ggmlTypeName } from "../../src/formats/ggml-types.js";
import { syntheticModel } from "../../src/convert/synthetic.js";
import { repoRoot } from "../helpers/shared.js";
import { runCli } from "../helpers/cli.js";

const run = runCli;

const BUNDLED = join(repoRoot, "fixtures/models/chinese-alpaca-tiny-q4_0.gguf");
let dir = "";
let f16 = "";
let small = "";
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "zh-quantize-"));
  small = join(dir, "small-f16.gguf");
  await writeGguf(small, syntheticModel({ type: GGMLType.F16, dim: 256, layers: 2, heads: 4, kvHeads: 1, ffn: 256, vocab: 300, ctx: 64 }));
  f16 = join(dir, "f16.gguf");
  // 8 layers, rows of 256 (k-quants tile them), GQA 4 (llama.cpp's Q2_K attn_v rule), untied output.
  await writeGguf(f16, syntheticModel({ type: GGMLType.F16, dim: 256, layers: 8, heads: 4, kvHeads: 1, ffn: 512, vocab: 300, ctx: 64 }));
});

async function planOf(mix: QuantMix): Promise<Record<string, string>> {
  const file = await openGguf(f16);
  try {
    const { plan } = planQuantization(file, mix);
    return Object.fromEntries(plan.map(({ info, type }) => [info.name, ggmlTypeName(type)]));
  } finally {
    await file.close();
  }
}

const layersOf = (plan: Record<string, string>, tensor: string) => Array.from({ length: 8 }, (_, i) => plan[`blk.${i}.${tensor}.weight`]);

describe("llama-quantize mixes", () => {
  it("use_more_bits picks the first and last eighth and every third between", () => {
    expect(Array.from({ length: 32 }, (_, i) => i).filter((i) => useMoreBits(i, 32))).toEqual([0, 1, 2, 3, 6, 9, 12, 15, 18, 21, 24, 27, 28, 29, 30, 31]);
    expect(Array.from({ length: 8 }, (_, i) => i).filter((i) => useMoreBits(i, 8))).toEqual([0, 3, 6, 7]);
  });

  it("Q4_K_M: Q6_K attn_v and ffn_down where use_more_bits, Q6_K output, Q4_K elsewhere", async () => {
    const p = await planOf("Q4_K_M");
    const more = ["Q6_K", "Q4_K", "Q4_K", "Q6_K", "Q4_K", "Q4_K", "Q6_K", "Q6_K"];
    expect(layersOf(p, "attn_v")).toEqual(more);
    expect(layersOf(p, "ffn_down")).toEqual(more);
    expect(new Set([...layersOf(p, "attn_q"), ...layersOf(p, "attn_k"), ...layersOf(p, "attn_output"), ...layersOf(p, "ffn_gate"), ...layersOf(p, "ffn_up")])).toEqual(new Set(["Q4_K"]));
    expect(p["output.weight"]).toBe("Q6_K");
    expect(p["token_embd.weight"]).toBe("Q4_K");
    expect(p["blk.0.attn_norm.weight"]).toBe("F32");
  });

  it("Q4_K_S, Q5_K_M, Q3_K_S/M/L and Q2_K", async () => {
    const s = await planOf("Q4_K_S");
    expect(layersOf(s, "attn_v")).toEqual(["Q5_K", "Q5_K", "Q5_K", "Q5_K", "Q4_K", "Q4_K", "Q4_K", "Q4_K"]);
    expect(layersOf(s, "ffn_down")).toEqual(["Q5_K", "Q4_K", "Q4_K", "Q4_K", "Q4_K", "Q4_K", "Q4_K", "Q4_K"]);
    const m5 = await planOf("Q5_K_M");
    expect(layersOf(m5, "ffn_down")).toEqual(["Q6_K", "Q5_K", "Q5_K", "Q6_K", "Q5_K", "Q5_K", "Q6_K", "Q6_K"]);
    expect((await planOf("Q5_K_S"))["blk.0.attn_v.weight"]).toBe("Q5_K");
    const m3 = await planOf("Q3_K_M");
    expect(layersOf(m3, "attn_v")).toEqual(["Q5_K", "Q5_K", "Q4_K", "Q4_K", "Q4_K", "Q4_K", "Q4_K", "Q4_K"]);
    expect(new Set(layersOf(m3, "ffn_down"))).toEqual(new Set(["Q4_K"])); // 8 layers: none below n/16
    expect(new Set(layersOf(m3, "attn_output"))).toEqual(new Set(["Q4_K"]));
    expect(m3["blk.0.attn_q.weight"]).toBe("Q3_K");
    const l3 = await planOf("Q3_K_L");
    expect(new Set([...layersOf(l3, "attn_v"), ...layersOf(l3, "ffn_down"), ...layersOf(l3, "attn_output")])).toEqual(new Set(["Q5_K"]));
    const s3 = await planOf("Q3_K_S");
    expect(new Set(layersOf(s3, "attn_v"))).toEqual(new Set(["Q3_K"]));
    const q2 = await planOf("Q2_K");
    expect(new Set(layersOf(q2, "attn_v"))).toEqual(new Set(["Q4_K"])); // GQA 4
    expect(new Set([...layersOf(q2, "ffn_down"), ...layersOf(q2, "attn_output")])).toEqual(new Set(["Q3_K"]));
    expect(q2["blk.0.ffn_up.weight"]).toBe("Q2_K");
    expect(q2["output.weight"]).toBe("Q6_K");
  });

  it("8 experts: Q8_0 attn_v and attn_k, Q5_K attn_output; 70B: Q5_K attn_v; Q3_K_M's first sixteenth of ffn_down", () => {
    const moe = { layers: 32, gqa: 4, experts: 8, attnV: 32, is70B: false };
    expect(chooseMixType("blk.5.attn_v.weight", 4096, "Q4_K_M", moe, false, 5)).toBe(GGMLType.Q8_0);
    expect(chooseMixType("blk.5.attn_k.weight", 4096, "Q4_K_M", moe, false)).toBe(GGMLType.Q8_0);
    expect(chooseMixType("blk.5.attn_output.weight", 4096, "Q4_K_M", moe, false)).toBe(GGMLType.Q5_K);
    expect(chooseMixType("blk.3.ffn_down_exps.weight", 14336, "Q4_K_M", moe, false)).toBe(GGMLType.Q6_K);
    expect(chooseMixType("blk.4.ffn_down_exps.weight", 14336, "Q4_K_M", moe, false)).toBe(GGMLType.Q4_K);
    const big = { layers: 80, gqa: 8, experts: 0, attnV: 80, is70B: true };
    expect(chooseMixType("blk.40.attn_v.weight", 8192, "Q3_K_M", big, false, 40)).toBe(GGMLType.Q5_K);
    expect(chooseMixType("blk.4.ffn_down.weight", 28672, "Q3_K_M", big, false)).toBe(GGMLType.Q5_K);
    expect(chooseMixType("blk.5.ffn_down.weight", 28672, "Q3_K_M", big, false)).toBe(GGMLType.Q4_K);
    expect(chooseMixType("output.weight", 5120, "Q4_K_M", big, true)).toBe(GGMLType.Q6_K);
    expect(chooseMixType("output.weight", 160, "Q4_K_M", big, true)).toBe(GGMLType.Q8_0);
  });
});

describe("zh-llama quantize", () => {
  it("Q4_K_M end to end: file_type 15, the mix in the file, sizes printed", async () => {
    const out = join(dir, "q4km.gguf");
    const r = await run("quantize", small, out, "q4_k_m");
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^wrote .*q4km\.gguf: .*Q6_K.*; [\d.]+ [KM]iB -> [\d.]+ [KM]iB \([\d.]+% of the input\)\n$/);
    expect(r.stderr).not.toMatch(/warning/);
    const file = await openGguf(out);
    try {
      expect(file.metadata["general.file_type"]).toBe(15);
      // 2 layers: use_more_bits(0, 2) and (1, 2) both hold.
      expect(ggmlTypeName(file.tensors.find((t) => t.name === "blk.1.attn_v.weight")!.type)).toBe("Q6_K");
      expect(ggmlTypeName(file.tensors.find((t) => t.name === "blk.1.attn_q.weight")!.type)).toBe("Q4_K");
    } finally {
      await file.close();
    }
  });

  it("refuses to requantize without --allow-requantize; with it, one warning per fallback and the sizes", async () => {
    const out = join(dir, "bundled-q4k.gguf");
    const refused = await run("quantize", BUNDLED, out, "Q4_K");
    expect(refused.status).toBe(1);
    expect(refused.stderr).toMatch(/^zh-llama quantize: InvalidArgumentError: .*chinese-alpaca-tiny-q4_0\.gguf is already quantized \(.* is Q4_0\).*--allow-requantize\n$/);
    const r = await run("quantize", BUNDLED, out, "Q4_K", "--allow-requantize");
    expect(r.status, r.stderr).toBe(0);
    const warnings = r.stderr.split("\n").filter((l) => /warning: blk\.\d+\.\w+\.weight: rows of (160|448) values are not a whole number of Q4_K blocks; Q5_0 instead$/.test(l));
    expect(warnings).toHaveLength(56); // 7 weights in each of 8 layers
    expect(r.stderr).toMatch(/warning: token_embd\.weight: rows of 160 values .*; Q5_0 instead\n/);
    expect(r.stderr).toMatch(/warning: 57 of 75 tensors needed a fallback type/);
    expect(r.stderr).toMatch(/warning: the output is larger than the input/);
    expect(r.stdout).toMatch(/13\.04 MiB -> [\d.]+ MiB/);
  });

  it("--leave-output-tensor keeps output.weight; dequantizing needs no --allow-requantize", async () => {
    const out = join(dir, "leave.gguf");
    expect((await run("quantize", small, out, "Q4_0", "--leave-output-tensor")).status).toBe(0);
    const file = await openGguf(out);
    try {
      expect(file.tensors.find((t) => t.name === "output.weight")!.type).toBe(GGMLType.F16);
    } finally {
      await file.close();
    }
    const back = await run("quantize", out, join(dir, "back.gguf"), "F16");
    expect(back.status, back.stderr).toBe(0);
    expect((await run("quantize", small, join(dir, "x.gguf"), "Q4_K_X")).stderr).toMatch(/unknown or unsupported TYPE "Q4_K_X"; choose a mix \(Q2_K, Q3_K_S/);
  });
});
