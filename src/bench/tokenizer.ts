/**
 * Tokenizer throughput on a multi-MB Chinese text: Song ci from the `chinese-poetry` package
 * (one poem per encode call, ~4 MB of UTF-8), under LLaMA's vocabulary (rebuilt from
 * `llama-tokenizer-js`; most Chinese characters fall back to bytes) and under LLaMA extended
 * with the Chinese fixture vocabulary (fixtures/tokenizer/zh-unigram.model, the way
 * Chinese-LLaMA was built). Also one-shot decode and streaming decode. MB = 10^6 bytes.
 */
import { readdirSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { Bench } from "tinybench";
import { parseSentencePieceModel, serializeSentencePieceModel } from "../formats/sentencepiece.js";
import { buildLlamaTokenizerModel } from "../tokenizer/llama.js";
import { mergeSentencePieceModels } from "../tokenizer/merge.js";
import { tokenizerFromSentencePieceBytes } from "../tokenizer/load.js";
import type { SentencePieceTokenizer } from "../tokenizer/tokenizer.js";

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
const TARGET_BYTES = 4_000_000;

function corpus(): string[] {
  const dir = join(ROOT, "node_modules", "chinese-poetry", "dist", "songci");
  const docs: string[] = [];
  let bytes = 0;
  for (const name of readdirSync(dir).filter((n) => n.startsWith("ci.song.")).sort()) {
    const poems = JSON.parse(readFileSync(join(dir, name), "utf8")) as { paragraphs?: string[] }[];
    for (const poem of poems) {
      const text = (poem.paragraphs ?? []).join("\n");
      if (text.length === 0) continue;
      docs.push(text);
      bytes += Buffer.byteLength(text);
      if (bytes >= TARGET_BYTES) return docs;
    }
  }
  return docs;
}

async function seconds(name: string, fn: () => void): Promise<number> {
  const bench = new Bench({ time: 0, iterations: 3, warmupIterations: 1, warmupTime: 0 });
  bench.add(name, fn);
  const [task] = await bench.run();
  const r = task!.result;
  if (r.state !== "completed") throw new Error(`${name}: ${r.state}`);
  return r.latency.mean / 1000;
}

export default async function run(): Promise<void> {
  const { default: llamaJs } = (await import("llama-tokenizer-js")) as unknown as { default: { vocabById: string[] } };
  const llamaModel = buildLlamaTokenizerModel(llamaJs.vocabById);
  const chinese = parseSentencePieceModel(readFileSync(join(ROOT, "fixtures", "tokenizer", "zh-unigram.model")));
  const merged = mergeSentencePieceModels(llamaModel, chinese).model;
  const tokenizers: [string, SentencePieceTokenizer][] = [
    ["LLaMA (32000)", tokenizerFromSentencePieceBytes(serializeSentencePieceModel(llamaModel), "llama")],
    [`LLaMA + Chinese (${merged.pieces.length})`, tokenizerFromSentencePieceBytes(serializeSentencePieceModel(merged), "merged")],
  ];
  const docs = corpus();
  const bytes = docs.reduce((n, d) => n + Buffer.byteLength(d), 0);
  const chars = docs.reduce((n, d) => n + [...d].length, 0);
  console.log(`corpus: ${docs.length} Song ci, ${(bytes / 1e6).toFixed(2)} MB UTF-8, ${chars} characters; one encode call per poem`);
  console.log("| vocabulary | tokens | encode tokens/s | encode MB/s | decode tokens/s | stream-decode tokens/s |");
  console.log("|---|---:|---:|---:|---:|---:|");
  for (const [name, tok] of tokenizers) {
    const ids = docs.map((d) => tok.encode(d, { addBos: false }));
    const tokens = ids.reduce((n, x) => n + x.length, 0);
    const enc = await seconds(`${name} encode`, () => {
      for (const d of docs) tok.encode(d, { addBos: false });
    });
    const dec = await seconds(`${name} decode`, () => {
      for (const x of ids) tok.decode(x);
    });
    const stream = await seconds(`${name} stream`, () => {
      for (const x of ids) {
        const d = tok.createStreamingDecoder();
        for (const id of x) d.push(id);
        d.flush();
      }
    });
    const f = (n: number): string => Math.round(n).toLocaleString("en-US");
    console.log(`| ${name} | ${tokens} | ${f(tokens / enc)} | ${(bytes / enc / 1e6).toFixed(2)} | ${f(tokens / dec)} | ${f(tokens / stream)} |`);
  }
}
