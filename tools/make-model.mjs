#!/usr/bin/env node
// The Chinese-LLaMA / Alpaca pipeline in miniature (issue 9), end to end with zh-llama's own
// commands, deterministic seeds:
//
//   1. corpus      Tang poems from the npm package chinese-poetry, converted to simplified
//                  Chinese (opencc-js), 2% held out
//   2. base        a tiny LLaMA with LLaMA's original 32000-piece vocabulary (Meta's
//                  tokenizer.model rebuilt from llama-tokenizer-js), trained briefly: "LLaMA"
//   3. vocabulary  spm_train (Debian's sentencepiece, as upstream) learns Chinese pieces on the
//                  corpus; `zh-llama merge-tokenizer` appends them to LLaMA's
//   4. PT          LoRA on all projections + embed_tokens/lm_head in full, over the extended
//                  vocabulary: the "Chinese-LLaMA-tiny" adapter
//   5. SFT         instructions built from the corpus metadata, Alpaca-2 template: the
//                  "Chinese-Alpaca-tiny" adapter, trained on top of base+PT
//   6. release     `zh-llama merge-lora` stacks both adapters onto the base (in order) into a
//                  GGUF, `zh-llama quantize` makes Q8_0 and Q4_0, and the model card is written
//                  with perplexities and tokenizer efficiency.
//
//   npm run make-model                 # the shipped model (fixtures/models)
//   node tools/make-model.mjs --quick  # minutes-long smoke run into .make-model/quick
//   --until NAME    stop after step NAME (corpus, base, vocabulary, pt, sft, release, evaluate)
//   --release DIR   where the GGUFs and the model card go (default fixtures/models)
//   --base-steps N, --pt-steps N, --sft-steps N   override the step counts
//   --budget SECONDS  size the PT/SFT steps from the measured training speed instead
// A step whose outputs exist in the work folder is skipped, so an interrupted run resumes.
import { spawnSync } from "node:child_process";
import { createRequire } from "node:module";
import { copyFileSync, existsSync, mkdirSync, readFileSync, readdirSync, renameSync, writeFileSync, statSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const require = createRequire(join(root, "package.json"));
const quick = process.argv.includes("--quick");
const work = join(root, ".make-model", quick ? "quick" : "full");
const argValue = (name) => (process.argv.includes(name) ? process.argv[process.argv.indexOf(name) + 1] : undefined);
const release = argValue("--release") ?? (quick ? join(work, "release") : join(root, "fixtures/models"));
const until = argValue("--until");
mkdirSync(work, { recursive: true });
mkdirSync(release, { recursive: true });
const zh = await import(join(root, "dist/internals.js"));

// Sizes: a few million parameters outside the embeddings; steps sized for ~45 minutes on 2 cores.
const S = quick
  ? { poems: 3000, spmVocab: 6000, baseSteps: 20, ptSteps: 20, sftSteps: 20, seq: 64, batch: 4, sftSamples: 600 }
  : { poems: 60000, spmVocab: 12000, baseSteps: 300, ptSteps: 750, sftSteps: 300, seq: 128, batch: 8, sftSamples: 20000 };
const config = quick
  ? { nEmbd: 64, nLayer: 2, nHead: 4, nFf: 160, nCtx: 256 }
  : { nEmbd: 160, nLayer: 8, nHead: 5, nHeadKv: 5, nFf: 448, nCtx: 512 };

// Step times persist in the work folder, so a resumed run reports the whole pipeline's time.
const timingsFile = join(work, "timings.json");
const timings = existsSync(timingsFile) ? JSON.parse(readFileSync(timingsFile, "utf8")) : {};
const STEP_KEYS = { corpus: "corpus", "base LLaMA": "base", vocabulary: "vocabulary", "Chinese-LLaMA-tiny (PT)": "pt", "Chinese-Alpaca-tiny (SFT)": "sft", "merge, quantize": "release", evaluate: "evaluate" };
let stopped = false;
function step(name, fn, done) {
  if (stopped) return undefined;
  if (done && existsSync(done)) {
    console.log(`== ${name}: already done (${done})`);
    if (until === STEP_KEYS[name]) stopped = true;
    return undefined;
  }
  const t0 = Date.now();
  console.log(`\n== ${name}`);
  const out = fn();
  timings[name] = (Date.now() - t0) / 1000;
  writeFileSync(timingsFile, JSON.stringify(timings, null, 1));
  console.log(`== ${name}: ${timings[name].toFixed(1)} s`);
  if (until === STEP_KEYS[name]) stopped = true;
  return out;
}
let lastTokensPerS = 0;
// Held-out loss on 16 batches every 100 steps: evaluating all of it every 50 steps cost as much
// as the training itself.
const EVAL = ["--eval-every", "100", "--eval-batches", "16"];
function zhCli(...args) {
  // Training streams its progress; other commands' stdout is the result the pipeline reads.
  const train = args[0] === "train";
  const r = spawnSync(process.execPath, [join(root, "bin/zh-llama.js"), ...args], { stdio: ["ignore", train ? "inherit" : "pipe", "inherit"], encoding: "utf8", maxBuffer: 1 << 26 });
  if (r.status !== 0) throw new Error(`zh-llama ${args.join(" ")} failed (${r.status})`);
  if (train) {
    // The last logged step's tokens/s, from the run's CSV log.
    const out = args[args.indexOf("--out") + 1];
    const rows = readFileSync(join(out, "train-log.csv"), "utf8").trim().split("\n");
    const header = rows[0].split(",");
    const col = header.findIndex((h) => /tok/.test(h));
    if (col >= 0) lastTokensPerS = Number(rows[rows.length - 1].split(",")[col]) || lastTokensPerS;
  }
  return r.stdout;
}
// --budget SECONDS: size the PT and SFT runs from the base run's measured training speed.
const budget = Number(argValue("--budget") ?? 0);
function budgetSteps(fraction, fallback, flag) {
  if (argValue(flag)) return Number(argValue(flag));
  if (!budget || !lastTokensPerS) return fallback;
  return Math.max(10, Math.floor((budget * fraction * lastTokensPerS) / (S.batch * S.seq)));
}

// 1. Corpus (and LLaMA's tokenizer.model, rebuilt from llama-tokenizer-js)
const trainFile = join(work, "corpus-train.txt");
const testFile = join(work, "corpus-test.txt");
const llamaModel = join(work, "llama.model");
step("corpus", () => {
  const llamaJs = require("llama-tokenizer-js");
  writeFileSync(llamaModel, zh.serializeSentencePieceModel(zh.buildLlamaTokenizerModel((llamaJs.default ?? llamaJs).vocabById)));
  const OpenCC = require("opencc-js");
  const toSimplified = OpenCC.Converter({ from: "tw", to: "cn" });
  const dir = join(dirname(require.resolve("chinese-poetry/package.json")), "dist/quantangshi");
  const files = readdirSync(dir).filter((f) => /^poet\.tang\.\d+\.json$/.test(f)).sort((a, b) => Number(a.split(".")[2]) - Number(b.split(".")[2]));
  const poems = [];
  for (const f of files) {
    for (const p of JSON.parse(readFileSync(join(dir, f), "utf8"))) {
      const lines = (p.paragraphs ?? []).map((l) => l.replace(/[(（][^)）]*[)）]/g, "").trim()).filter((l) => l.length > 0);
      if (lines.length < 2 || lines.some((l) => l.length > 40) || !p.title || !p.author) continue;
      poems.push({ title: toSimplified(p.title.trim()), author: toSimplified(p.author.trim()), lines: lines.map(toSimplified) });
      if (poems.length >= S.poems) break;
    }
    if (poems.length >= S.poems) break;
  }
  // Deterministic 98/2 split.
  const train = [], test = [];
  poems.forEach((p, i) => ((i * 2654435761) % 100 < 2 ? test : train).push(p));
  // One poem per line (the trainer packs non-blank lines as documents); couplets end in
  // 。？！ so the poem keeps its shape without line breaks.
  const text = (p) => `《${p.title}》${p.author}：${p.lines.join("")}`;
  writeFileSync(join(work, "poems.json"), JSON.stringify(train));
  writeFileSync(trainFile, train.map(text).join("\n") + "\n");
  writeFileSync(testFile, test.map(text).join("\n") + "\n");
  writeFileSync(join(work, "corpus-spm.txt"), train.flatMap((p) => [p.title, ...p.lines]).join("\n") + "\n");
  console.log(`${train.length} training poems, ${test.length} held out`);
}, join(work, "poems.json"));
const poems = JSON.parse(readFileSync(join(work, "poems.json"), "utf8"));

// 2. Chinese vocabulary: spm_train on the corpus (unigram, as the upstream chinese_sp.model), merged.
const mergedModel = join(work, "chinese_llama.model");
step("vocabulary", () => {
  const r = spawnSync("spm_train", [
    `--input=${join(work, "corpus-spm.txt")}`, `--model_prefix=${join(work, "chinese_sp")}`, `--vocab_size=${S.spmVocab}`,
    "--model_type=unigram", "--character_coverage=0.9995", "--input_sentence_size=2000000", "--shuffle_input_sentence=false",
    "--num_threads=2", "--seed_sentencepiece_size=200000",
  ], { stdio: ["ignore", "ignore", "pipe"], encoding: "utf8" });
  if (r.status !== 0) throw new Error(`spm_train failed (is Debian's sentencepiece installed?): ${r.stderr?.slice(-500)}`);
  zhCli("merge-tokenizer", "--base", llamaModel, "--add", join(work, "chinese_sp.model"), "--out", mergedModel);
}, mergedModel);

// 3. The "original LLaMA": LLaMA's vocabulary, a brief training run.
const base = join(work, "base");
step("base LLaMA", () => {
  writeFileSync(join(work, "config.json"), JSON.stringify(config));
  zhCli("train", "--init", join(work, "config.json"), "--tokenizer", llamaModel, "--data", trainFile, "--eval", testFile,
    "--steps", String((S.baseSteps = Number(argValue("--base-steps") ?? S.baseSteps))), "--warmup", String(Math.ceil(S.baseSteps / 20)), "--lr", "1e-3", "--batch", String(S.batch), "--seq", String(S.seq),
    "--seed", "1", "--out", base, "--name", "llama-tiny", "--log-every", "20", ...EVAL);
}, join(base, "model.gguf"));

// 4. Chinese pre-training: LoRA + full embeddings / lm_head over the extended vocabulary.
const pt = join(work, "pt");
step("Chinese-LLaMA-tiny (PT)", () => {
  zhCli("train", "--model", join(base, "model.gguf"), "--tokenizer", mergedModel, "--data", trainFile, "--eval", testFile,
    "--lora-r", "16", "--lora-alpha", "32", "--modules-to-save", "embed_tokens,lm_head", "--save-merged",
    "--steps", String((S.ptSteps = budgetSteps(0.6 * 0.8, S.ptSteps, "--pt-steps"))), "--warmup", String(Math.ceil(S.ptSteps / 20)), "--lr", "2e-3", "--batch", String(S.batch), "--seq", String(S.seq),
    "--seed", "2", "--out", pt, "--name", "chinese-llama-tiny", "--log-every", "20", ...EVAL);
}, join(pt, "merged.gguf"));

// 5. Instruction tuning on top of base + PT.
const sft = join(work, "sft");
step("Chinese-Alpaca-tiny (SFT)", () => {
  let seed = 7;
  const random = () => ((seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0) / 2 ** 32);
  const samples = [];
  const poem = (p) => p.lines.join("\n");
  for (let i = 0; samples.length < S.sftSamples && i < poems.length * 3; i++) {
    const p = poems[Math.floor(random() * poems.length)];
    const kind = Math.floor(random() * 4);
    if (kind === 0) samples.push({ instruction: `写一首关于${p.title}的诗`, input: "", output: poem(p) });
    else if (kind === 1) samples.push({ instruction: `请以《${p.title}》为题写一首诗。`, input: "", output: poem(p) });
    else if (kind === 2) samples.push({ instruction: `续写这首诗：${p.lines[0]}`, input: "", output: p.lines.slice(1).join("\n") });
    else samples.push({ instruction: `《${p.title}》的作者是谁？`, input: "", output: `《${p.title}》的作者是${p.author}。` });
  }
  writeFileSync(join(work, "sft.jsonl"), samples.map((x) => JSON.stringify(x)).join("\n") + "\n");
  zhCli("train", "--model", join(pt, "merged.gguf"), "--instructions", join(work, "sft.jsonl"),
    "--lora-r", "16", "--lora-alpha", "32", "--modules-to-save", "embed_tokens,lm_head",
    "--steps", String((S.sftSteps = budgetSteps(0.4, S.sftSteps, "--sft-steps"))), "--warmup", String(Math.ceil(S.sftSteps / 20)), "--lr", "1e-3", "--batch", String(S.batch), "--seq", String(S.seq),
    "--seed", "3", "--out", sft, "--name", "chinese-alpaca-tiny", "--log-every", "20", ...EVAL);
}, join(sft, "adapter", "adapter_config.json"));

// 6. Release: stack both adapters onto the base, quantize, measure, write the card.
const f16 = join(work, "chinese-alpaca-tiny-f16.gguf");
const outputs = { q8_0: join(release, "chinese-alpaca-tiny-q8_0.gguf"), q4_0: join(release, "chinese-alpaca-tiny-q4_0.gguf") };
step("merge, quantize", () => {
  zhCli("merge-lora", "--base", join(base, "model.gguf"), "--lora", join(pt, "adapter"), "--lora", join(sft, "adapter"), "--out", f16, "--format", "gguf", "--outtype", "f16", "--force");
  for (const t of ["q8_0", "q4_0"]) zhCli("quantize", f16, outputs[t], t, "--force");
});
// The training logs and loss curves travel with the model.
const logs = join(release, "chinese-alpaca-tiny-training");
if (!stopped && existsSync(join(sft, "train-log.csv"))) {
  mkdirSync(logs, { recursive: true });
  for (const [name, dir] of [["base", base], ["pt", pt], ["sft", sft]]) {
    copyFileSync(join(dir, "train-log.csv"), join(logs, `${name}-train-log.csv`));
    copyFileSync(join(dir, "loss.svg"), join(logs, `${name}-loss.svg`));
  }
}
// The model speaks the Alpaca-2 (Llama-2-chat) template it was tuned on: say so in general.name,
// which is how zh-llama (and llama.cpp's converters) pick a chat template.
for (const path of Object.values(outputs)) {
  if (!existsSync(path) || stopped) continue;
  const file = await zh.openGguf(path);
  if (file.metadata["general.name"] !== "chinese-alpaca-2-tiny") {
    const tensors = await Promise.all(file.tensors.map(async (t) => ({ name: t.name, type: t.type, shape: t.shape, data: await file.readTensorBytes(t) })));
    const metadata = { ...file.metadata, "general.name": "chinese-alpaca-2-tiny" };
    const metadataTypes = file.metadataTypes;
    await file.close();
    await zh.writeGguf(path, { metadata, metadataTypes, tensors }, { overwrite: true });
  } else await file.close();
}

if (stopped) process.exit(0);
const card = step("evaluate", () => {
  const threads = String(Math.min(8, (globalThis.navigator?.hardwareConcurrency ?? 2)));
  // The first 100 chunks of 128 tokens (12.8K tokens) of the held-out poems.
  const ppl = (model, ctx = 128) => JSON.parse(zhCli("perplexity", "-m", model, "-f", testFile, "--ctx", String(ctx), "--chunks", "100", "--json", "-t", threads)).ppl;
  const rows = [
    ["base (LLaMA vocabulary)", join(base, "model.gguf")],
    ["Chinese-LLaMA-tiny (base + PT)", join(pt, "merged.gguf")],
    ["Chinese-Alpaca-tiny F16", f16],
    ["Chinese-Alpaca-tiny Q8_0", outputs.q8_0],
    ["Chinese-Alpaca-tiny Q4_0", outputs.q4_0],
  ].map(([name, path]) => ({ name, path, ppl: ppl(path), bytes: statSync(path).size }));
  const stats = zhCli("tokenizer-stats", "--model", llamaModel, "--model", mergedModel, "--file", testFile);
  const sample = zhCli("run", "-m", outputs.q8_0, "-p", "[INST] <<SYS>>\nYou are a helpful assistant. 你是一个乐于助人的助手。\n<</SYS>>\n\n写一首关于月亮的诗 [/INST]", "-n", "64", "--temp", "0", "--repeat-penalty", "1.1", "-t", threads);
  // What the README's first command shows: `zh-llama chat` with the upstream sampling defaults.
  const chats = ["写一首关于月亮的诗", "续写这首诗：床前明月光", "《静夜思》的作者是谁？"].map((p) => ({
    prompt: p,
    answer: zhCli("chat", "-m", outputs.q4_0, "-p", p, "-n", "80", "--seed", "1", "-t", threads).trim(),
  }));
  return { rows, stats, sample, chats };
});

/** Per-token perplexity to per-character, with a tokenizer's tokens/char from tokenizer-stats. */
function perChar(ppl, model) {
  const line = card.stats.split("\n").find((l) => l.trim().startsWith(model + " "));
  const tokensPerChar = Number(line?.trim().split(/\s+/)[3]);
  return Number.isFinite(tokensPerChar) ? Math.exp(tokensPerChar * Math.log(ppl)).toFixed(1) : "?";
}
const minutes = (Object.values(timings).reduce((a, b) => a + b, 0) / 60).toFixed(1);
const log = (dir) => readFileSync(join(dir, "train-log.csv"), "utf8").trim().split("\n");
const lastLoss = (dir) => log(dir).at(-1)?.split(",")[1];
writeFileSync(join(release, quick ? "MODEL_CARD.md" : "chinese-alpaca-tiny.md"), `# Chinese-Alpaca-tiny

A tiny model made by \`npm run make-model\` (tools/make-model.mjs) in ${minutes} minutes on this machine: the
Chinese-LLaMA / Alpaca recipe in miniature, every step a zh-llama command.

- Data: ${poems.length} Tang poems from the npm package chinese-poetry, converted to simplified Chinese with
  opencc-js; 2% held out (\`corpus-test.txt\`).
- Shape: ${JSON.stringify(config)} (untied embeddings).
- Base "LLaMA": LLaMA's 32000-piece vocabulary, ${S.baseSteps} steps (final training loss ${lastLoss(base)}).
- Vocabulary: spm_train unigram, ${S.spmVocab} pieces on the corpus, merged into LLaMA's (zh-llama merge-tokenizer).
- Chinese-LLaMA-tiny: LoRA r=16 on q,k,v,o,gate,up,down + embed_tokens/lm_head in full, ${S.ptSteps} steps (loss ${lastLoss(pt)}).
- Chinese-Alpaca-tiny: a second adapter, ${S.sftSteps} steps on ${S.sftSamples} instructions in the Alpaca-2 template (loss ${lastLoss(sft)}).
- Release: both adapters merged onto the base with zh-llama merge-lora, quantized with zh-llama quantize.

| model | file | held-out perplexity per token (ctx 128, first 100 chunks) | per character (≈) |
|---|---|---|---|
${card.rows.map((r, i) => `| ${r.name} | ${(r.bytes / 2 ** 20).toFixed(2)} MiB | ${r.ppl.toFixed(3)} | ${perChar(r.ppl, i === 0 ? "llama.model" : "chinese_llama.model")} |`).join("\n")}

The base model's perplexity is over LLaMA-vocabulary tokens (1.8 per character: most Chinese characters are
three byte pieces), the others' over extended-vocabulary tokens (0.9 per character): compare them per
character, exp(tokens/char × ln ppl), with the tokens per character of the whole held-out file. Instruction
tuning trades some raw-poem perplexity (the held-out text is plain poems with title and author) for
answering in the template.

Tokenizer efficiency on the held-out poems:

\`\`\`
${card.stats.trim()}
\`\`\`

Step times (s): ${JSON.stringify(Object.fromEntries(Object.entries(timings).map(([k, v]) => [k, Math.round(v)])))}
(command: \`${["node tools/make-model.mjs", ...process.argv.slice(2)].join(" ")}\`; the machine's other load
changes these). Loss curves and CSV logs: [chinese-alpaca-tiny-training/](chinese-alpaca-tiny-training/).

Greedy answer (Q8_0) to 写一首关于月亮的诗:

\`\`\`
${card.sample.trim()}
\`\`\`

\`zh-llama chat -m chinese-alpaca-tiny-q4_0.gguf -p PROMPT -n 80 --seed 1\` (Alpaca-2 template, upstream
sampling defaults: temperature 0.2, top-k 40, top-p 0.9, repetition penalty 1.1):

${card.chats.map((c) => `> ${c.prompt}\n\n\`\`\`\n${c.answer}\n\`\`\``).join("\n\n")}
`);
console.log(`\ndone in ${minutes} minutes; release in ${release}`);
