// Speculative decoding speed on a synthetic draft/target pair (needs `npm run build`).
//
//   node test/chat/speculative-bench.mjs [--dim 512] [--layers 8] [--ffn 1408] [--vocab 8000] [-n 128] [--reps 3]
//
// Target: a random F32 model. Drafts: the same weights quantized to Q8_0 and to Q4_0 (4x and 7x
// fewer bytes to read per token). Greedy decoding, EOS ignored; prints decode tokens/s without
// and with each draft (median of interleaved rounds), the acceptance rate, and checks the
// outputs are identical. --k N fixes the draft length (default: the adaptive rule).
import { parseArgs } from "node:util";
import { GGMLType, LlamaModel, encodeGguf, generateSpeculative, generateText, syntheticModel, tokenizerFromGgufMetadata } from "../../dist/internals.js";

const { values } = parseArgs({
  options: {
    dim: { type: "string", default: "512" },
    layers: { type: "string", default: "8" },
    ffn: { type: "string", default: "1408" },
    vocab: { type: "string", default: "8000" },
    n: { type: "string", short: "n", default: "128" },
    reps: { type: "string", default: "3" },
    k: { type: "string" },
  },
});
const shape = { dim: +values.dim, layers: +values.layers, heads: +values.dim / 64, ffn: +values.ffn, vocab: +values.vocab, ctx: 1024, seed: 7 };
const n = +values.n;
const reps = +values.reps;
const draftK = values.k === undefined ? undefined : +values.k;
const load = async (type) => LlamaModel.load(await encodeGguf(syntheticModel({ ...shape, type })), { nCtx: 1024 });

const target = await load(GGMLType.F32);
const tokenizer = tokenizerFromGgufMetadata(target.file.metadata);
const prompt = [1, ...Array.from({ length: 15 }, (_, i) => 300 + ((i * 37) % 500))];
const options = { temperature: 0, repetitionPenalty: 1, maxTokens: n, ignoreEos: true };

console.log(`target: F32 dim ${shape.dim}, ${shape.layers} layers, ffn ${shape.ffn}, vocab ${shape.vocab}; ${n} tokens greedy, ${reps} interleaved rounds, medians`);
// The runs are interleaved so that load from other processes hits each configuration alike.
const drafts = [["Q8_0", await load(GGMLType.Q8_0)], ["Q4_0", await load(GGMLType.Q4_0)]];
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
// Tokens per CPU second as well: one thread does all the work, so CPU time is what the
// generation cost, whatever else the machine is running.
async function timed(run) {
  const c0 = process.cpuUsage();
  const result = await run();
  const c = process.cpuUsage(c0);
  return { result, cpuTokS: result.generatedIds.length / ((c.user + c.system) / 1e6) };
}
const cpu = {};
const push = (key, v) => (cpu[key] ??= []).push(v);
const rows = { plain: [], ...Object.fromEntries(drafts.flatMap(([name]) => [[name, []], [name + " alone", []], [name + " ratio", []]])) };
const last = {};
let plain;
for (let r = 0; r < reps; r++) {
  target.session.reset();
  const p = await timed(() => generateText(target.session, tokenizer, prompt, options));
  plain = p.result;
  push("plain", p.cpuTokS);
  rows.plain.push(plain.timings.decodeTokensPerS);
  for (const [name, draft] of drafts) {
    draft.session.reset();
    rows[name + " alone"].push((await generateText(draft.session, tokenizer, prompt, options)).timings.decodeTokensPerS);
    target.session.reset();
    draft.session.reset();
    const sp = await timed(async () => {
      for await (const e of generateSpeculative(target.session, tokenizer, prompt, { ...options, draft, draftK })) if (e.type === "done") return e.result;
    });
    last[name] = sp.result;
    push(name, sp.cpuTokS);
    push(name + " ratio", sp.cpuTokS / p.cpuTokS);
    rows[name].push(last[name].timings.decodeTokensPerS);
    rows[name + " ratio"].push(last[name].timings.decodeTokensPerS / plain.timings.decodeTokensPerS);
  }
}
console.log(`  no draft: ${median(rows.plain).toFixed(1)} tok/s wall, ${median(cpu.plain).toFixed(1)} tok per CPU s`);
for (const [name, draft] of drafts) {
  const result = last[name];
  const s = result.speculative;
  const same = result.generatedIds.length === plain.generatedIds.length && result.generatedIds.every((id, i) => id === plain.generatedIds[i]);
  console.log(
    `  ${name} draft (alone ${median(rows[name + " alone"]).toFixed(1)} tok/s, k ${draftK ?? "adaptive"}): ${median(rows[name]).toFixed(1)} tok/s, ` +
      `speed-up ${median(rows[name + " ratio"]).toFixed(2)}x, acceptance ${(100 * s.acceptanceRate).toFixed(1)}% (${s.accepted}/${s.drafted}), ` +
      `${s.tokensPerTargetPass.toFixed(2)} tokens per target pass, output identical: ${same}\n` +
      `      by CPU time: ${median(cpu[name]).toFixed(1)} tok per CPU s, speed-up ${median(cpu[name + " ratio"]).toFixed(2)}x`,
  );
  await draft.dispose();
}
await target.dispose();
