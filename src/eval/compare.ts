/**
 * zh-llama against llama.cpp native on the same GGUF file with the same thread count:
 * runs alternate (zh-llama, llama.cpp, zh-llama, ...) so both see the same machine state, and
 * the report gives medians and the ratio zh-llama / llama.cpp.
 */
import { LlamaModel } from "../model/index.js";
import { openLlamaCppPeer } from "./llama-cpp-peer.js";
import { benchModel } from "./bench.js";

export interface CompareOptions {
  threads: number;
  promptTokens: number;
  genTokens: number;
  repetitions: number;
}

export interface CompareRow {
  model: string;
  threads: number;
  promptTokens: number;
  genTokens: number;
  zh: { promptTokensPerS: number; decodeTokensPerS: number };
  llamaCpp: { promptTokensPerS: number; decodeTokensPerS: number };
  /** zh-llama / llama.cpp. */
  promptRatio: number;
  decodeRatio: number;
  peer: string;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

export async function compareWithLlamaCpp(path: string, name: string, o: CompareOptions, log?: (line: string) => void): Promise<CompareRow> {
  const ctx = o.promptTokens + o.genTokens + 8;
  const model = await LlamaModel.load(path, { threads: o.threads, nCtx: ctx, batchSize: Math.min(512, o.promptTokens), kvCacheType: "f16" });
  const peer = await openLlamaCppPeer(path, { threads: o.threads, ctx, vocab: model.hp.nVocab, kvType: "F16" });
  const zhRuns: Array<[number, number]> = [];
  const peerRuns: Array<[number, number]> = [];
  try {
    // One warm-up each, then alternate.
    await benchModel(model, { promptTokens: o.promptTokens, genTokens: o.genTokens, repetitions: 0 });
    await peer.run(o.promptTokens, o.genTokens);
    for (let r = 0; r < o.repetitions; r++) {
      const z = await benchModel(model, { promptTokens: o.promptTokens, genTokens: o.genTokens, repetitions: 1, warmup: false });
      zhRuns.push([z.promptTokensPerS, z.decodeTokensPerS]);
      const p = await peer.run(o.promptTokens, o.genTokens, 42 + r);
      peerRuns.push([(o.promptTokens / p.promptMs) * 1000, (o.genTokens / p.decodeMs) * 1000]);
      log?.(`${name} t=${o.threads} run ${r + 1}: zh-llama pp ${z.promptTokensPerS.toFixed(1)} tg ${z.decodeTokensPerS.toFixed(1)} | llama.cpp pp ${peerRuns[r]![0].toFixed(1)} tg ${peerRuns[r]![1].toFixed(1)}`);
    }
  } finally {
    await peer.dispose();
    await model.dispose();
  }
  const zh = { promptTokensPerS: median(zhRuns.map((r) => r[0])), decodeTokensPerS: median(zhRuns.map((r) => r[1])) };
  const llamaCpp = { promptTokensPerS: median(peerRuns.map((r) => r[0])), decodeTokensPerS: median(peerRuns.map((r) => r[1])) };
  return {
    model: name,
    threads: o.threads,
    promptTokens: o.promptTokens,
    genTokens: o.genTokens,
    zh,
    llamaCpp,
    promptRatio: zh.promptTokensPerS / llamaCpp.promptTokensPerS,
    decodeRatio: zh.decodeTokensPerS / llamaCpp.decodeTokensPerS,
    peer: peer.version,
  };
}

export function compareMarkdown(rows: CompareRow[]): string {
  const lines = [
    "| model | threads | zh-llama pp tok/s | llama.cpp pp tok/s | ratio | zh-llama tg tok/s | llama.cpp tg tok/s | ratio |",
    "|---|---|---|---|---|---|---|---|",
    ...rows.map((r) => `| ${r.model} | ${r.threads} | ${r.zh.promptTokensPerS.toFixed(1)} | ${r.llamaCpp.promptTokensPerS.toFixed(1)} | ${r.promptRatio.toFixed(2)} | ${r.zh.decodeTokensPerS.toFixed(1)} | ${r.llamaCpp.decodeTokensPerS.toFixed(1)} | ${r.decodeRatio.toFixed(2)} |`),
  ];
  return lines.join("\n") + "\n";
}

/** A grouped bar chart of the ratios (1.0 = llama.cpp's speed), as a standalone SVG. */
export function compareSvg(rows: CompareRow[], title: string): string {
  const w = 720, h = 360, left = 60, bottom = 300, top = 40;
  const maxRatio = Math.max(1.2, ...rows.flatMap((r) => [r.promptRatio, r.decodeRatio])) * 1.1;
  const y = (v: number) => bottom - ((bottom - top) * v) / maxRatio;
  const group = (w - left - 20) / Math.max(1, rows.length);
  const bar = group / 3;
  const esc = (s: string) => s.replace(/&/g, "&amp;").replace(/</g, "&lt;");
  const parts: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${w}" height="${h}" font-family="sans-serif" font-size="11">`,
    `<rect width="${w}" height="${h}" fill="white"/>`,
    `<text x="${w / 2}" y="20" text-anchor="middle" font-size="14">${esc(title)}</text>`,
    `<line x1="${left}" y1="${y(1)}" x2="${w - 20}" y2="${y(1)}" stroke="#888" stroke-dasharray="4 3"/>`,
    `<text x="${left - 5}" y="${y(1) + 4}" text-anchor="end">1.0 = llama.cpp</text>`,
    `<line x1="${left}" y1="${bottom}" x2="${w - 20}" y2="${bottom}" stroke="black"/>`,
  ];
  rows.forEach((r, i) => {
    const x0 = left + i * group + bar / 2;
    for (const [j, v, color] of [[0, r.promptRatio, "#4e79a7"], [1, r.decodeRatio, "#f28e2b"]] as const) {
      parts.push(`<rect x="${x0 + j * bar}" y="${y(v)}" width="${bar - 2}" height="${bottom - y(v)}" fill="${color}"/>`);
      parts.push(`<text x="${x0 + j * bar + bar / 2}" y="${y(v) - 3}" text-anchor="middle">${v.toFixed(2)}</text>`);
    }
    parts.push(`<text x="${x0 + bar}" y="${bottom + 15}" text-anchor="middle">${esc(r.model)}</text>`);
    parts.push(`<text x="${x0 + bar}" y="${bottom + 29}" text-anchor="middle">${r.threads} thread${r.threads > 1 ? "s" : ""}</text>`);
  });
  parts.push(`<rect x="${w - 230}" y="${top}" width="10" height="10" fill="#4e79a7"/><text x="${w - 215}" y="${top + 9}">prompt processing (zh/llama.cpp)</text>`);
  parts.push(`<rect x="${w - 230}" y="${top + 16}" width="10" height="10" fill="#f28e2b"/><text x="${w - 215}" y="${top + 25}">decode (zh/llama.cpp)</text>`);
  parts.push("</svg>");
  return parts.join("\n") + "\n";
}
