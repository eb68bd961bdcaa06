/** The llama.cpp conformance cases (test/model/golden-cases.json; goldens by tools/golden-llama.mjs). */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { GGMLType } from "../../src/formats/ggml-types.js";
import type { SyntheticModelOptions } from "../../src/convert/synthetic.js";
import { repoRoot } from "./shared.js";

export interface GoldenCase {
  name: string;
  model: Omit<SyntheticModelOptions, "type" | "outputType"> & { type: keyof typeof GGMLType; outputType?: keyof typeof GGMLType };
  kv: "F32" | "F16" | "Q8_0";
  /** llama.cpp ran with flash attention (the path that allows a quantized V cache). */
  flash?: boolean;
  ctx: number;
  prompt: number[];
  steps: number;
}

export const goldenCases = JSON.parse(readFileSync(join(repoRoot, "test/model/golden-cases.json"), "utf8")) as GoldenCase[];

/** The generator's options for a case's model (type names to GGMLType). */
export function caseModelOptions(c: GoldenCase): SyntheticModelOptions {
  return { ...c.model, type: GGMLType[c.model.type], outputType: c.model.outputType ? GGMLType[c.model.outputType] : undefined };
}
