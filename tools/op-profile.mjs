#!/usr/bin/env node
// Where a forward step's time goes, op by op, on one thread.
//
//   node tools/op-profile.mjs MODEL.gguf [--prompt 100] [--tokens 1] [--rounds 5] [--top 20]
//
// Loads MODEL with one thread, evaluates a prompt of --prompt tokens, then runs the step of
// --tokens tokens (1 = a decode step) --rounds times, timing each op of the encoded program on its
// own (src/runtime/executor.ts, one op at a time). Prints the time per op kind, and per matmul
// type and shape, best round of each. A profile for finding the next lever, not a benchmark: the
// per-op timer calls add a few microseconds each.
import { parseArgs } from "node:util";
import { pathToFileURL, fileURLToPath } from "node:url";
import { join, dirname } from "node:path";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const zh = await import(pathToFileURL(join(root, "dist/internals.js")).href);
const { LlamaModel, runtime } = zh;
const { OPCODES, ARG, OP_SLOTS, execute } = runtime;

const { values: o, positionals } = parseArgs({
  allowPositionals: true,
  options: { prompt: { type: "string", default: "100" }, tokens: { type: "string", default: "1" }, rounds: { type: "string", default: "5" }, top: { type: "string", default: "20" } },
});
if (!positionals[0]) throw new Error("usage: op-profile.mjs MODEL.gguf [--prompt N] [--tokens N] [--rounds N]");
const nTok = Number(o.tokens);
const model = await LlamaModel.load(positionals[0], { threads: 1 });
const names = Object.fromEntries(Object.entries(OPCODES).map(([k, v]) => [v, k]));
const typeNames = Object.fromEntries(Object.entries(zh.GGMLType).map(([k, v]) => [v, k]));
try {
  const prompt = Array.from({ length: Number(o.prompt) }, (_, i) => 300 + ((i * 7919) % (model.hp.nVocab - 300)));
  await model.evaluate(prompt);
  const session = model.session;
  const program = session["program"](nTok, nTok - 1, false);
  const slots = new Float64Array(program.sab);
  const regs = session["registers"];
  regs[0] = session.nPast;
  const k = model.memoryKernels[0];
  const place = { thread: 0, threads: 1, peers: [], memories: model.memoryKernels };
  const constArg = (op, name) => slots[op * OP_SLOTS + 3 + 4 * ARG[names[slots[op * OP_SLOTS]]][name] + 1];
  const label = (op) => {
    const name = names[slots[op * OP_SLOTS]];
    if (name === "matmul") {
      const t = constArg(op, "type");
      return `matmul ${typeNames[t] ?? t} ${constArg(op, "rows")}x${constArg(op, "cols")}`;
    }
    return name;
  };
  const best = new Float64Array(program.length).fill(Infinity);
  for (let r = 0; r < Number(o.rounds); r++) {
    for (let op = 0; op < program.length; op++) {
      const t0 = performance.now();
      execute(k, slots, op, op + 1, regs, place, undefined);
      best[op] = Math.min(best[op], performance.now() - t0);
    }
  }
  const byKind = new Map();
  const byName = new Map();
  let total = 0;
  for (let op = 0; op < program.length; op++) {
    const l = label(op);
    const e = byKind.get(l) ?? { ms: 0, count: 0 };
    e.ms += best[op]; e.count++;
    byKind.set(l, e);
    const n = names[slots[op * OP_SLOTS]];
    byName.set(n, (byName.get(n) ?? 0) + best[op]);
    total += best[op];
  }
  console.log(`${model.hp.nLayer} layers, ${program.length} ops, step of ${nTok} token(s) at position ${session.nPast}: ${total.toFixed(2)} ms (${(1000 * nTok / total).toFixed(2)} tok/s), kernel path ${model.kernels.path}`);
  console.log("\nby op:");
  for (const [n, ms] of [...byName].sort((a, b) => b[1] - a[1])) console.log(`  ${n.padEnd(12)} ${ms.toFixed(2).padStart(9)} ms  ${(100 * ms / total).toFixed(1).padStart(5)}%`);
  console.log("\nby op and shape:");
  for (const [l, e] of [...byKind].sort((a, b) => b[1].ms - a[1].ms).slice(0, Number(o.top))) {
    console.log(`  ${l.padEnd(32)} x${String(e.count).padEnd(4)} ${e.ms.toFixed(2).padStart(9)} ms  ${(100 * e.ms / total).toFixed(1).padStart(5)}%  ${(1000 * e.ms / e.count).toFixed(1)} us each`);
  }
} finally {
  await model.dispose();
}
