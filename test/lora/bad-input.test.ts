/**
 * What users get wrong with LoRA merges, and what files do when they break: every case is
 * refused before anything is written, or fails leaving no output that looks complete.
 */
import { describe, expect, it } from "vitest";
import { existsSync, readdirSync, readFileSync, writeFileSync, appendFileSync } from "node:fs";
import { join } from "node:path";
import { mergeLoraFiles, LoraAdapterError } from "../../src/lora/index.js";
import { VocabularyMismatchError, convertHfToGguf } from "../../src/convert/index.js";
import { UnsafePickleError } from "../../src/formats/pickle.js";
import { FormatError } from "../../src/formats/errors.js";
import { main } from "../../src/cli/index.js";
import type { CliIo } from "../../src/cli/command.js";
import { py, tempDir, writeTokenizer } from "./helpers.js";

const root = tempDir("zh-bad-");
const base = join(root, "base");
py("model", base, "--vocab", 320, "--hidden", 16, "--ffn", 32, "--seed", 1);
writeTokenizer(base, 320);
/** A Chinese-LLaMA-like adapter (vocabulary 330) and an Alpaca-like one (330 + [PAD]). */
const llama = join(root, "llama");
py("adapter", llama, "--base", base, "--modules-to-save", "embed_tokens,lm_head", "--vocab", 330, "--seed", 2);
writeTokenizer(llama, 330);
const alpaca = join(root, "alpaca");
py("adapter", alpaca, "--base", base, "--modules-to-save", "embed_tokens,lm_head", "--vocab", 331, "--seed", 3);
writeTokenizer(alpaca, 330, true);

function io(): CliIo & { out: string; err: string } {
  const sink = { out: "", err: "", isTty: false, stdout: (t: string) => void (sink.out += t), stderr: (t: string) => void (sink.err += t) };
  return sink;
}

function leftovers(dir: string, prefix: string): string[] {
  return readdirSync(dir).filter((n) => n.startsWith(prefix));
}

describe("vocabulary mismatches are explained", () => {
  it("adapters in the wrong order (Alpaca before LLaMA)", async () => {
    const out = join(root, "wrong-order");
    await expect(mergeLoraFiles({ base, adapters: [alpaca, llama], out })).rejects.toThrow(VocabularyMismatchError);
    await expect(mergeLoraFiles({ base, adapters: [alpaca, llama], out })).rejects.toThrow(/wrong order[\s\S]*--lora LLAMA_PLUS --lora ALPACA_PLUS/);
    expect(existsSync(out)).toBe(false);
  });

  it("an adapter shipped with the other family's tokenizer", async () => {
    const mixed = join(root, "mixed");
    py("adapter", mixed, "--base", base, "--modules-to-save", "embed_tokens,lm_head", "--vocab", 330, "--seed", 4);
    writeTokenizer(mixed, 330, true); // Alpaca tokenizer (331) with LLaMA embeddings (330)
    await expect(mergeLoraFiles({ base, adapters: [mixed], out: join(root, "o1") })).rejects.toThrow(/330 rows but the adapter's own tokenizer has 331 tokens[\s\S]*请勿混用/);
  });

  it("an adapter trained on a bigger vocabulary that carries no embeddings", async () => {
    const bare = join(root, "bare");
    py("adapter", bare, "--base", base, "--seed", 5);
    writeTokenizer(bare, 331);
    await expect(mergeLoraFiles({ base, adapters: [bare], out: join(root, "o2") })).rejects.toThrow(/331 tokens but the model it applies to has 320 embedding rows/);
  });

  it("accepts the right order and grows the vocabulary 320 -> 330 -> 331", async () => {
    const out = join(root, "right");
    const r = await mergeLoraFiles({ base, adapters: [llama, alpaca], out });
    expect([r.report.vocabBefore, r.report.vocabAfter]).toEqual([320, 331]);
  });
});

describe("adapters that do not fit the base", () => {
  it("a target module the base does not have", async () => {
    const deeper = join(root, "deeper-base");
    py("model", deeper, "--vocab", 320, "--hidden", 16, "--ffn", 32, "--layers", 3, "--seed", 6);
    const lora = join(root, "deeper-lora");
    py("adapter", lora, "--base", deeper, "--seed", 7);
    await expect(mergeLoraFiles({ base, adapters: [lora], out: join(root, "o3") })).rejects.toThrow(LoraAdapterError);
    await expect(mergeLoraFiles({ base, adapters: [lora], out: join(root, "o3") })).rejects.toThrow(/targets model\.layers\.2\.[a-z_.]+, which the base model/);
  });

  it("a shape mismatch (an adapter for a wider model)", async () => {
    const wide = join(root, "wide-base");
    py("model", wide, "--vocab", 320, "--hidden", 32, "--ffn", 32, "--seed", 8);
    const lora = join(root, "wide-lora");
    py("adapter", lora, "--base", wide, "--seed", 9);
    await expect(mergeLoraFiles({ base, adapters: [lora], out: join(root, "o4") })).rejects.toThrow(/is \[16, 16\] in the base but the adapter's B @ A is \[32, 32\]/);
  });

  it("an adapter_model.bin whose pickle calls os.system", async () => {
    const evil = join(root, "evil");
    py("adapter", evil, "--base", base, "--seed", 10, "--format", "bin");
    const marker = join(root, "pwned");
    py("evil", join(evil, "adapter_model.bin"), `touch ${marker}`);
    await expect(mergeLoraFiles({ base, adapters: [evil], out: join(root, "o5") })).rejects.toThrow(UnsafePickleError);
    expect(existsSync(marker)).toBe(false);
    expect(existsSync(join(root, "o5"))).toBe(false);
  });

  it("truncated base shards", async () => {
    const cut = join(root, "cut-base");
    py("model", cut, "--vocab", 320, "--hidden", 16, "--ffn", 32, "--seed", 1);
    const file = join(cut, "model.safetensors");
    const bytes = readFileSync(file);
    writeFileSync(file, bytes.subarray(0, bytes.length - 100));
    await expect(mergeLoraFiles({ base: cut, adapters: [llama], out: join(root, "o6") })).rejects.toThrow(/truncated.*100 bytes missing/);
    appendFileSync(file, bytes.subarray(bytes.length - 100));
    const binBase = join(root, "cut-bin");
    py("model", binBase, "--vocab", 320, "--hidden", 16, "--ffn", 32, "--seed", 1, "--format", "bin");
    const bin = join(binBase, "pytorch_model.bin");
    writeFileSync(bin, readFileSync(bin).subarray(0, 5000));
    await expect(mergeLoraFiles({ base: binBase, adapters: [llama], out: join(root, "o7") })).rejects.toThrow(FormatError);
  });
});

describe("outputs", () => {
  it("an existing output is refused without --force and replaced with it", async () => {
    const out = join(root, "exists");
    await mergeLoraFiles({ base, adapters: [llama], out });
    await expect(mergeLoraFiles({ base, adapters: [llama], out })).rejects.toThrow(/already exists/);
    const sink = io();
    expect(await main(["merge-lora", "--base", base, "--lora", llama, "--out", out], sink)).toBe(1);
    expect(sink.err).toMatch(/already exists \(pass --force/);
    const ok = io();
    expect(await main(["merge-lora", "--base", base, "--lora", llama, "--lora", alpaca, "--out", out, "--force"], ok)).toBe(0);
    expect(ok.out).toMatch(/vocabulary 320 -> 331/);
    expect(ok.out).toMatch(/peak RSS .* for a .* model/);
    expect(JSON.parse(readFileSync(join(out, "config.json"), "utf8")).vocab_size).toBe(331);
    expect(leftovers(root, "exists.")).toEqual([]);
  });

  for (const format of ["hf", "pth", "gguf"] as const) {
    it(`a disk that fills mid-write leaves no ${format} output and no partial files`, async () => {
      const out = join(root, format === "gguf" ? "full.gguf" : `full-${format}`);
      let calls = 0;
      const fill = (): void => {
        if (++calls === 4) throw Object.assign(new Error("ENOSPC: no space left on device, write"), { code: "ENOSPC" });
      };
      await expect(mergeLoraFiles({ base, adapters: [llama], out, format, onProgress: fill })).rejects.toThrow(/ENOSPC/);
      expect(existsSync(out)).toBe(false);
      expect(existsSync(`${out}.sha256`)).toBe(false);
      expect(leftovers(root, format === "gguf" ? "full.gguf" : `full-${format}`)).toEqual([]);
    });
  }

  it("verify catches a modified file", async () => {
    const out = join(root, "tamper");
    await mergeLoraFiles({ base, adapters: [llama], out });
    const good = io();
    expect(await main(["verify", out], good)).toBe(0);
    expect(good.out).toMatch(/all files verified/);
    const shard = join(out, "model.safetensors");
    const bytes = readFileSync(shard);
    bytes[bytes.length - 1] ^= 1;
    writeFileSync(shard, bytes);
    const bad = io();
    expect(await main(["verify", out], bad)).toBe(1);
    expect(bad.out).toMatch(/model\.safetensors: FAILED \(checksum differs\)/);
  });

  it("convert refuses a checkpoint without a tokenizer, and CLI usage errors exit 2", async () => {
    const noTok = join(root, "no-tok");
    py("model", noTok, "--vocab", 320, "--hidden", 16, "--ffn", 32, "--seed", 1);
    await expect(convertHfToGguf(noTok, join(root, "nt.gguf"))).rejects.toThrow(/no tokenizer\.model/);
    expect(existsSync(join(root, "nt.gguf"))).toBe(false);
    const sink = io();
    expect(await main(["merge-lora", "--base", base, "--out", join(root, "x")], sink)).toBe(2);
    expect(await main(["convert", base], io())).toBe(2);
    expect(await main(["convert", base, join(root, "c.gguf"), "--outtype", "q3_k"], io())).toBe(2);
    const conv = io();
    expect(await main(["convert", base, join(root, "c.gguf"), "--outtype", "f16"], conv)).toBe(0);
    expect(conv.out).toMatch(/wrote .*c\.gguf: .*F16/);
    const exp = io();
    expect(await main(["export-hf", join(root, "c.gguf"), join(root, "c-hf")], exp)).toBe(0);
    expect(await main(["verify", join(root, "c.gguf")], io())).toBe(0);
  });
});
