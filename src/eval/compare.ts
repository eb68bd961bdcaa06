/**
 * zh-llama against llama.cpp native on the same GGUF file with the same thread count:
 * runs alternate (zh-llama, llama.cpp, zh-llama, ...) so both see the same machine state, and
 * the report gives medians and the ratio zh-llama / llama.cpp. An optional further peer (the
 * caller opens it: tools/bench-report.mjs passes llama.cpp's WebAssembly build, wllama in
 * Chromium) joins the alternation and gets its own columns and ratios.
 */
import { LlamaModel } from "../model/index.js";
import { openLlamaCppPeer } from "./llama-cpp-peer.js";
import { benchModel } from "./bench.js";

export interface CompareOptions {
  threads: number;
  promptTokens: number;
  genTokens: number;
  repetitions: number;
  /** A further peer run third in each round (same model file and thread count, opened by the caller). */
  extraPeer?: ExtraPeer;
}

/** One measurement of a further peer; it reports how many prompt tokens it actually processed. */
export interface ExtraPeerRun {
  promptTokens: number;
  promptMs: number;
  genTokens: number;
  decodeMs: number;
}

export interface ExtraPeer {
  /** Short name for table headers ("wllama"). */
  name: string;
  /** Full description (version, where it runs). */
  version: string;
  run(): Promise<ExtraPeerRun>;
}

export interface ExtraPeerResult {
  name: string;
  version: string;
  /** Prompt tokens the peer processed (its own count; a text prompt may not give exactly promptTokens). */
  promptTokens: number;
  promptTokensPerS: number;
  decodeTokensPerS: number;
  /** zh-llama / this peer. */
  promptRatio: number;
  decodeRatio: number;
  /** Set when the peer failed; the speeds are then NaN. */
  error?: string;
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
  extra?: ExtraPeerResult;
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
  const extra = o.extraPeer;
  const extraRuns: ExtraPeerRun[] = [];
  let extraError: string | undefined;
  // A failing further peer (a browser crash) is reported, not fatal: the other two go on.
  const runExtra = async (): Promise<ExtraPeerRun | undefined> => {
    if (!extra || extraError !== undefined) return undefined;
    try {
      return await extra.run();
    } catch (e) {
      extraError = e instanceof Error ? e.message : String(e);
      log?.(`${name} t=${o.threads}: ${extra.name} failed: ${extraError}`);
      return undefined;
    }
  };
  try {
    // One warm-up each, then alternate.
    await benchModel(model, { promptTokens: o.promptTokens, genTokens: o.genTokens, repetitions: 0 });
    await peer.run(o.promptTokens, o.genTokens);
    await runExtra();
    for (let r = 0; r < o.repetitions; r++) {
      const z = await benchModel(model, { promptTokens: o.promptTokens, genTokens: o.genTokens, repetitions: 1, warmup: false });
      zhRuns.push([z.promptTokensPerS, z.decodeTokensPerS]);
      const p = await peer.run(o.promptTokens, o.genTokens, 42 + r);
      peerRuns.push([(o.promptTokens / p.promptMs) * 1000, (o.genTokens / p.decodeMs) * 1000]);
      const x = await runExtra();
      if (x) extraRuns.push(x);
      const xs = x ? ` | ${extra!.name} pp ${((x.promptTokens / x.promptMs) * 1000).toFixed(1)} tg ${((x.genTokens / x.decodeMs) * 1000).toFixed(1)}` : "";
      log?.(`${name} t=${o.threads} run ${r + 1}: zh-llama pp ${z.promptTokensPerS.toFixed(1)} tg ${z.decodeTokensPerS.toFixed(1)} | llama.cpp pp ${peerRuns[r]![0].toFixed(1)} tg ${peerRuns[r]![1].toFixed(1)}${xs}`);
    }
  } finally {
    await peer.dispose();
    await model.dispose();
  }
  const zh = { promptTokensPerS: median(zhRuns.map((r) => r[0])), decodeTokensPerS: median(zhRuns.map((r) => r[1])) };
  const llamaCpp = { promptTokensPerS: median(peerRuns.map((r) => r[0])), decodeTokensPerS: median(peerRuns.map((r) => r[1])) };
  let extraResult: ExtraPeerResult | undefined;
  if (extra) {
    const ok = extraError === undefined && extraRuns.length > 0;
    const pp = ok ? median(extraRuns.map((x) => (x.promptTokens / x.promptMs) * 1000)) : NaN;
    const tg = ok ? median(extraRuns.map((x) => (x.genTokens / x.decodeMs) * 1000)) : NaN;
    extraResult = {
      name: extra.name,
      version: extra.version,
      promptTokens: extraRuns[0]?.promptTokens ?? NaN,
      promptTokensPerS: pp,
      decodeTokensPerS: tg,
      promptRatio: zh.promptTokensPerS / pp,
      decodeRatio: zh.decodeTokensPerS / tg,
      ...(ok ? {} : { error: extraError ?? "no runs" }),
    };
  }
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
    ...(extraResult ? { extra: extraResult } : {}),
  };
}

/**
 * The comparison table. Rows with a further peer (row.extra) add its speeds and zh-llama / peer
 * ratios next to llama.cpp's; a peer that failed shows "failed", a prompt count other than the
 * row's is given in brackets.
 */
export function compareMarkdown(rows: CompareRow[]): string {
  const extraName = rows.find((r) => r.extra)?.extra!.name;
  const num = (v: number) => (Number.isFinite(v) ? v.toFixed(1) : "failed");
  const ratio = (v: number) => (Number.isFinite(v) ? v.toFixed(2) : "–");
  if (!extraName) {
    const lines = [
      "| model | threads | zh-llama pp tok/s | llama.cpp pp tok/s | ratio | zh-llama tg tok/s | llama.cpp tg tok/s | ratio |",
      "|---|---|---|---|---|---|---|---|",
      ...rows.map((r) => `| ${r.model} | ${r.threads} | ${r.zh.promptTokensPerS.toFixed(1)} | ${r.llamaCpp.promptTokensPerS.toFixed(1)} | ${r.promptRatio.toFixed(2)} | ${r.zh.decodeTokensPerS.toFixed(1)} | ${r.llamaCpp.decodeTokensPerS.toFixed(1)} | ${r.decodeRatio.toFixed(2)} |`),
    ];
    return lines.join("\n") + "\n";
  }
  const x = extraName;
  const lines = [
    `| model | threads | zh-llama pp tok/s | llama.cpp pp tok/s | ratio | ${x} pp tok/s | ratio | zh-llama tg tok/s | llama.cpp tg tok/s | ratio | ${x} tg tok/s | ratio |`,
    "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ...rows.map((r) => {
      const e = r.extra;
      const ePp = e ? num(e.promptTokensPerS) + (Number.isFinite(e.promptTokens) && e.promptTokens !== r.promptTokens ? ` (${e.promptTokens} tok)` : "") : "–";
      return `| ${r.model} | ${r.threads} | ${r.zh.promptTokensPerS.toFixed(1)} | ${r.llamaCpp.promptTokensPerS.toFixed(1)} | ${r.promptRatio.toFixed(2)} | ${ePp} | ${e ? ratio(e.promptRatio) : "–"} | ${r.zh.decodeTokensPerS.toFixed(1)} | ${r.llamaCpp.decodeTokensPerS.toFixed(1)} | ${r.decodeRatio.toFixed(2)} | ${e ? num(e.decodeTokensPerS) : "–"} | ${e ? ratio(e.decodeRatio) : "–"} |`;
    }),
  ];
  return lines.join("\n") + "\n";
}

/**
 * A grouped bar chart of speeds relative to llama.cpp native (1.0 = llama.cpp), as a standalone
 * SVG: zh-llama's prompt and decode bars, and a further peer's (row.extra) when there is one.
 */
export function compareSvg(rows: CompareRow[], title: string): string {
  const extraName = rows.find((r) => r.extra)?.extra!.name;
  // Wide enough for every group of bars (the real-size rows sit beside the 125M ones).
  const w = Math.max(720, 100 + rows.length * ((rows.some((r) => r.extra) ? 4 : 2) + 1) * 18), h = 360, left = 60, bottom = 300, top = 40;
  // Bars per row: [value relative to llama.cpp, colour]; a failed peer's bar is left out.
  const bars = rows.map((r) => {
    const b: Array<[number, string]> = [[r.promptRatio, "#4e79a7"], [r.decodeRatio, "#f28e2b"]];
    if (extraName) {
      b.push([r.extra ? r.extra.promptTokensPerS / r.llamaCpp.promptTokensPerS : NaN, "#a0cbe8"]);
      b.push([r.extra ? r.extra.decodeTokensPerS / r.llamaCpp.decodeTokensPerS : NaN, "#ffbe7d"]);
    }
    return b;
  });
  const maxRatio = Math.max(1.2, ...bars.flat().map(([v]) => v).filter(Number.isFinite)) * 1.1;
  const y = (v: number) => bottom - ((bottom - top) * v) / maxRatio;
  const group = (w - left - 20) / Math.max(1, rows.length);
  const perGroup = extraName ? 4 : 2;
  const bar = group / (perGroup + 1);
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
    bars[i]!.forEach(([v, color], j) => {
      if (!Number.isFinite(v)) return;
      parts.push(`<rect x="${x0 + j * bar}" y="${y(v)}" width="${bar - 2}" height="${bottom - y(v)}" fill="${color}"/>`);
      parts.push(`<text x="${x0 + j * bar + bar / 2}" y="${y(v) - 3}" text-anchor="middle">${v.toFixed(2)}</text>`);
    });
    const mid = x0 + (perGroup * bar) / 2;
    parts.push(`<text x="${mid}" y="${bottom + 15}" text-anchor="middle">${esc(r.model)}</text>`);
    parts.push(`<text x="${mid}" y="${bottom + 29}" text-anchor="middle">${r.threads} thread${r.threads > 1 ? "s" : ""}</text>`);
  });
  const legend: Array<[string, string]> = [["#4e79a7", "prompt processing (zh/llama.cpp)"], ["#f28e2b", "decode (zh/llama.cpp)"]];
  if (extraName) legend.push(["#a0cbe8", `prompt processing (${extraName}/llama.cpp)`], ["#ffbe7d", `decode (${extraName}/llama.cpp)`]);
  legend.forEach(([color, text], k) => {
    parts.push(`<rect x="${w - 230}" y="${top + 16 * k}" width="10" height="10" fill="${color}"/><text x="${w - 215}" y="${top + 16 * k + 9}">${esc(text)}</text>`);
  });
  parts.push("</svg>");
  return parts.join("\n") + "\n";
}
