/**
 * llama.cpp native as a benchmark peer, through the npm package node-llama-cpp (its prebuilt
 * CPU build; `tools/install-llama-cpp.sh` installs it into tools/.llama-cpp without any
 * download outside the npm registry). Optional: zh-llama never needs it to run.
 *
 * The measurement mirrors benchModel(): a batch of random prompt tokens from an empty cache,
 * then single-token greedy decode steps, timed separately.
 */
import { ZhLlamaError } from "../errors.js";
import { mulberry32 } from "../convert/synthetic.js";

export class PeerUnavailableError extends ZhLlamaError {}

interface NlcModule {
  getLlama(options: Record<string, unknown>): Promise<NlcLlama>;
}
interface NlcLlama {
  loadModel(o: { modelPath: string; gpuLayers?: number }): Promise<NlcModel>;
  dispose(): Promise<void>;
}
interface NlcModel {
  createContext(o: Record<string, unknown>): Promise<NlcContext>;
  dispose(): Promise<void>;
  tokens: { bos: number | null };
}
interface NlcContext {
  getSequence(): NlcSequence;
  dispose(): Promise<void>;
}
interface NlcSequence {
  clearHistory(): Promise<void>;
  evaluateWithoutGeneratingNewTokens(tokens: number[]): Promise<void>;
  controlledEvaluate(input: Array<number | [number, { generateNext: { token: true } }]>): Promise<Array<{ next?: { token?: number } } | undefined>>;
}

/** Where node-llama-cpp may be: the project's tools folder, then the normal resolution. */
async function importNodeLlamaCpp(): Promise<{ module: NlcModule; version: string }> {
  const { createRequire } = await import("node:module");
  const { fileURLToPath, pathToFileURL } = await import("node:url");
  const { join } = await import("node:path");
  const root = fileURLToPath(new URL("../..", import.meta.url));
  for (const base of [join(root, "tools/.llama-cpp/package.json"), join(process.cwd(), "package.json")]) {
    try {
      const path = createRequire(base).resolve("node-llama-cpp");
      const module = (await import(pathToFileURL(path).href)) as NlcModule;
      const { readFile } = await import("node:fs/promises");
      const pkg = path.slice(0, path.lastIndexOf("node-llama-cpp") + "node-llama-cpp".length) + "/package.json";
      const version = (JSON.parse(await readFile(pkg, "utf8")) as { version: string }).version;
      return { module, version: `node-llama-cpp ${version}` };
    } catch {
      // try the next place
    }
  }
  throw new PeerUnavailableError("node-llama-cpp is not installed: run tools/install-llama-cpp.sh (or npm install node-llama-cpp) for llama.cpp comparisons");
}

export interface PeerRun {
  promptMs: number;
  decodeMs: number;
}

export interface LlamaCppPeer {
  version: string;
  /** One prompt + decode measurement. */
  run(promptTokens: number, genTokens: number, seed?: number): Promise<PeerRun>;
  dispose(): Promise<void>;
}

export async function openLlamaCppPeer(modelPath: string, options: { threads: number; ctx: number; kvType?: "F16" | "F32"; vocab: number }): Promise<LlamaCppPeer> {
  const { module: nlc, version } = await importNodeLlamaCpp();
  const llama = await nlc.getLlama({ gpu: false, build: "never", usePrebuiltBinaries: true, skipDownload: true, logLevel: "error", maxThreads: options.threads });
  const model = await llama.loadModel({ modelPath, gpuLayers: 0 });
  const context = await model.createContext({
    contextSize: options.ctx,
    batchSize: options.ctx,
    threads: { ideal: options.threads, min: options.threads },
    flashAttention: false,
    experimentalKvCacheKeyType: options.kvType ?? "F16",
    experimentalKvCacheValueType: options.kvType ?? "F16",
  });
  const sequence = context.getSequence();
  return {
    version,
    async run(promptTokens, genTokens, seed = 42) {
      const random = mulberry32(seed);
      const prompt = Array.from({ length: promptTokens }, () => 3 + Math.floor(random() * (options.vocab - 3)));
      await sequence.clearHistory();
      const t0 = performance.now();
      await sequence.evaluateWithoutGeneratingNewTokens(prompt.slice(0, -1));
      let [out] = (await sequence.controlledEvaluate([[prompt[prompt.length - 1]!, { generateNext: { token: true } }]])).slice(-1);
      const t1 = performance.now();
      for (let i = 0; i < genTokens; i++) {
        const next = out?.next?.token ?? 3;
        [out] = await sequence.controlledEvaluate([[next, { generateNext: { token: true } }]]);
      }
      const t2 = performance.now();
      return { promptMs: t1 - t0, decodeMs: t2 - t1 };
    },
    async dispose() {
      await context.dispose();
      await model.dispose();
      await llama.dispose();
    },
  };
}
