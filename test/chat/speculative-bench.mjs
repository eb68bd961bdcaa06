// Speculative decoding speed on a synthetic draft/target pair (needs `npm run build`).
//
//   node test/chat/speculative-bench.mjs [--dim 512] [--layers 8] [--ffn 1408] [--vocab 8000] [-n 128] [--reps 3]
//
// Target: a random F32 model. Drafts: the same weights quantized to Q8_0 and to Q4_0 (4x and 7x
// fewer bytes to read per token). Greedy decoding, EOS ignored; prints decode tokens/s without
// and with each draft, the acceptance rate, and checks the outputs are identical.
import { parseArgs } from "node:util";
import { GGMLType, LlamaModel, encodeGguf, generateSpeculative, generateText, syntheticModel, tokenizerFromGgufMetadata } from "../../dist/index.js";

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
const best = (xs) => Math.max(...xs);

console.log(`target: F32 dim ${shape.dim}, ${shape.layers} layers, ffn ${shape.ffn}, vocab ${shape.vocab}; ${n} tokens greedy, best of ${reps}`);
const plainRuns = [];
let plain;
for (let r = 0; r < reps; r++) {
  target.session.reset();
  plain = await generateText(target.session, tokenizer, prompt, options);
  plainRuns.push(plain.timings.decodeTokensPerS);
}
const base = best(plainRuns);
console.log(`  no draft:          ${base.toFixed(1)} tok/s`);

for (const [name, type] of [["Q8_0", GGMLType.Q8_0], ["Q4_0", GGMLType.Q4_0]]) {
  const draft = await load(type);
  const alone = [];
  for (let r = 0; r < reps; r++) {
    draft.session.reset();
    alone.push((await generateText(draft.session, tokenizer, prompt, options)).timings.decodeTokensPerS);
  }
  const runs = [];
  let result;
  for (let r = 0; r < reps; r++) {
    target.session.reset();
    draft.session.reset();
    for await (const e of generateSpeculative(target.session, tokenizer, prompt, { ...options, draft, draftK })) if (e.type === "done") result = e.result;
    runs.push(result.timings.decodeTokensPerS);
  }
  const s = result.speculative;
  const same = result.generatedIds.every((id, i) => id === plain.generatedIds[i]) && result.generatedIds.length === plain.generatedIds.length;
  console.log(
    `  ${name} draft (alone ${best(alone).toFixed(1)} tok/s): ${best(runs).toFixed(1)} tok/s, speed-up ${(best(runs) / base).toFixed(2)}x, ` +
      `acceptance ${(100 * s.acceptanceRate).toFixed(1)}% (${s.accepted}/${s.drafted}), ${s.tokensPerTargetPass.toFixed(2)} tokens per target pass, output identical: ${same}`,
  );
  await draft.dispose();
}
await target.dispose();
