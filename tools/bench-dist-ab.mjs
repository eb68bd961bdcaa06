#!/usr/bin/env node
// Two builds of the whole engine in one process: prompt and decode tokens/s at T threads, the
// two alternating round by round (the A/B for a change outside the kernels: threads, scheduling).
//
//   cp -r dist /some/where/dist-old   (before the change; it needs node_modules and build/ beside
//                                      it: ln -s $PWD/node_modules $PWD/build /some/where/)
//   node tools/bench-dist-ab.mjs /some/where/dist-old ./dist MODEL.gguf [threads 2] [rounds 7] [decode tokens 32] [prompt tokens 64]
//
// Each round: a fresh cache, a prompt of random ids, then greedy-free decode steps (fixed ids),
// for A then B (the order alternating). Prints the medians and B/A (> 1: B is faster), and B/A
// per round: on a shared machine one slow round is interference.
import { resolve } from "node:path";
import { pathToFileURL } from "node:url";

const [distA, distB, file, threadsArg = "2", roundsArg = "7", tokensArg = "32", promptArg = "64"] = process.argv.slice(2);
if (!distA || !distB || !file) {
  console.error("usage: node tools/bench-dist-ab.mjs DIST_A DIST_B MODEL.gguf [threads] [rounds] [decode tokens] [prompt tokens]");
  process.exit(2);
}
const [threads, rounds, tokens, promptLength] = [threadsArg, roundsArg, tokensArg, promptArg].map(Number);
const load = async (dist) => {
  const zh = await import(pathToFileURL(resolve(dist, "internals.js")).href);
  return zh.LlamaModel.load(file, { threads });
};
const models = [await load(distA), await load(distB)];
const decode = [[], []];
const prompt = [[], []];
try {
  for (let r = 0; r < rounds; r++) {
    for (const i of r % 2 ? [1, 0] : [0, 1]) {
      const model = models[i];
      model.session.reset();
      const ids = Array.from({ length: promptLength }, (_, j) => 300 + ((j * 7919 + r) % (model.hp.nVocab - 300)));
      const t0 = performance.now();
      await model.evaluate(ids);
      const t1 = performance.now();
      for (let k = 0; k < tokens; k++) await model.evaluate([400 + k]);
      const t2 = performance.now();
      prompt[i].push(promptLength / ((t1 - t0) / 1000));
      decode[i].push(tokens / ((t2 - t1) / 1000));
    }
  }
} finally {
  for (const m of models) await m.dispose();
}
const median = (a) => [...a].sort((x, y) => x - y)[a.length >> 1];
const [dA, dB, pA, pB] = [median(decode[0]), median(decode[1]), median(prompt[0]), median(prompt[1])];
console.log(`${threads} thread(s): A decode ${dA.toFixed(2)} prompt ${pA.toFixed(2)} tok/s | B decode ${dB.toFixed(2)} prompt ${pB.toFixed(2)} tok/s | B/A decode ${(dB / dA).toFixed(3)} prompt ${(pB / pA).toFixed(3)}`);
console.log(`B/A decode per round: ${decode[0].map((a, i) => (decode[1][i] / a).toFixed(2)).join(" ")}`);
