import { describe, expect, it } from "vitest";
import { mkdtemp, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { main } from "../../src/cli/index.js";
import type { CliIo } from "../../src/cli/command.js";
import { LlamaModel } from "../../src/model/index.js";
import { perplexity } from "../../src/eval/index.js";
import { tokenizerFromGgufMetadata } from "../../src/tokenizer/index.js";
import { repoRoot } from "../helpers/shared.js";

describe("quant-report", () => {
  it("quantizes to each type and reports size, bpw, perplexity and speed", async () => {
    const dir = await mkdtemp(join(tmpdir(), "zh-qr-"));
    const text = join(dir, "t.txt");
    await writeFile(text, Array.from({ length: 300 }, (_, i) => `w${260 + (i % 37)}`).join(" "));
    const model = join(repoRoot, "fixtures/models/tiny-random-q8_0.gguf");
    let stdout = "";
    const io: CliIo = { stdout: (t) => void (stdout += t), stderr: () => {}, isTty: false };
    expect(await main(["quant-report", "-m", model, "-f", text, "--ctx", "64", "--chunks", "2", "--types", "q8_0,q4_0", "-t", "1", "--json"], io)).toBe(0);
    const rows = JSON.parse(stdout) as Array<{ type: string; bytes: number; bpw: number; ppl: number; decodeTokensPerS: number }>;
    expect(rows.map((r) => r.type)).toEqual(["Q8_0", "Q4_0"]);
    expect(rows[0]!.bytes).toBeGreaterThan(rows[1]!.bytes);
    expect(rows[1]!.bpw).toBeLessThan(rows[0]!.bpw);
    // Requantizing Q8_0 to Q8_0 keeps the weights: the same perplexity as the model itself.
    const m = await LlamaModel.load(model, { nCtx: 80, batchSize: 64, threads: 1 });
    const tok = tokenizerFromGgufMetadata(m.file.metadata);
    const ids = tok.encode(Array.from({ length: 300 }, (_, i) => `w${260 + (i % 37)}`).join(" "), { addBos: true }).slice(0, 128);
    const direct = await perplexity(m, ids, { ctx: 64, bosId: 1 });
    expect(rows[0]!.ppl).toBeCloseTo(direct.ppl, 4);
    await m.dispose();
  });
});
