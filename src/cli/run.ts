import { statSync } from "node:fs";
import { UsageError } from "../errors.js";
import { toJson } from "../formats/json.js";
import { LlamaModel, type LoadOptions } from "../model/index.js";
import { checkDraftModel, generate, generateWith, type GenerationResult, type SpeculativeResult } from "../generate/index.js";
import { UPSTREAM_DEFAULTS } from "../generate/index.js";
import { Grammar, GrammarConstraint, GrammarError, JsonSchemaError, generateConstrained, jsonSchemaGrammar } from "../grammar/index.js";
import { numberOption, parseCommandArgs, type Command } from "./command.js";
import { MODEL_OPTIONS, MODEL_OPTIONS_USAGE, loadModel, loadOptionsFrom, modelPath } from "./model-options.js";
import { readInputFile } from "./tokenize.js";

export function parseIds(text: string, flag: string): number[] {
  const ids = text.split(",").map((s) => s.trim()).filter((s) => s.length > 0).map(Number);
  if (ids.length === 0 || ids.some((id) => !Number.isInteger(id) || id < 0)) throw new UsageError(`${flag} expects comma-separated token ids, got ${JSON.stringify(text)}`);
  return ids;
}

export const SAMPLING_OPTIONS = {
  temp: { type: "string" },
  "top-k": { type: "string" },
  "top-p": { type: "string" },
  "min-p": { type: "string" },
  "typical-p": { type: "string" },
  "repeat-penalty": { type: "string" },
  "presence-penalty": { type: "string" },
  "frequency-penalty": { type: "string" },
  "sampler-order": { type: "string" },
  seed: { type: "string", short: "s" },
} as const;

export const SAMPLING_USAGE = `sampling (defaults: the upstream Chinese-Alpaca scripts):
  --temp T                temperature, 0 = greedy (default ${UPSTREAM_DEFAULTS.temperature}); the repetition
                          penalty still applies at 0, so for llama.cpp's plain greedy add
                          --repeat-penalty 1
  --top-k K               (default ${UPSTREAM_DEFAULTS.topK}; 0 = off)
  --top-p P               (default ${UPSTREAM_DEFAULTS.topP})
  --min-p M, --typical-p P
  --repeat-penalty R      HF repetition penalty over the whole context (default ${UPSTREAM_DEFAULTS.repetitionPenalty},
                          upstream's; 1 turns it off)
  --presence-penalty F, --frequency-penalty F   OpenAI-style, over generated tokens
  --sampler-order hf|llama.cpp   HF: penalties, temperature, top-k, top-p (default)
  -s, --seed S            PRNG seed (default: random)`;

type SamplingValues = { [K in keyof typeof SAMPLING_OPTIONS]?: string };

export function samplingFrom(v: SamplingValues) {
  const order = v["sampler-order"] ?? "hf";
  if (order !== "hf" && order !== "llama.cpp") throw new UsageError(`--sampler-order must be hf or llama.cpp, got ${JSON.stringify(order)}`);
  return {
    temperature: numberOption("temp", v.temp, UPSTREAM_DEFAULTS.temperature, 0, 100),
    topK: numberOption("top-k", v["top-k"], UPSTREAM_DEFAULTS.topK, 0, 1e9),
    topP: numberOption("top-p", v["top-p"], UPSTREAM_DEFAULTS.topP, 1e-9, 1),
    minP: numberOption("min-p", v["min-p"], 0, 0, 1),
    typicalP: numberOption("typical-p", v["typical-p"], 1, 1e-9, 1),
    repetitionPenalty: numberOption("repeat-penalty", v["repeat-penalty"], UPSTREAM_DEFAULTS.repetitionPenalty, 1e-6, 100),
    presencePenalty: numberOption("presence-penalty", v["presence-penalty"], 0, -100, 100),
    frequencyPenalty: numberOption("frequency-penalty", v["frequency-penalty"], 0, -100, 100),
    order: order as "hf" | "llama.cpp",
    seed: v.seed === undefined ? undefined : numberOption("seed", v.seed, 0, 0, 2 ** 53),
  };
}

/** Decoding extras (CFG, speculative decoding), shared with `chat`. */
export const DECODING_OPTIONS = {
  "negative-prompt": { type: "string" },
  "cfg-scale": { type: "string" },
  "draft-model": { type: "string" },
  "draft-k": { type: "string" },
} as const;

export const DECODING_USAGE = `decoding extras:
  --negative-prompt TEXT  classifier-free guidance away from TEXT (in chat it takes the system
                          prompt's place in the template); without it, the prompt's last token
                          alone is the unconditional context, as upstream
  --cfg-scale S           out = S*(logsoftmax(cond) - logsoftmax(uncond)) + logsoftmax(uncond);
                          1 = off (default), > 1 guides
  --draft-model FILE      speculative decoding with a small GGUF model of the same vocabulary
  --draft-k N             tokens drafted per round (default: adaptive, start 4, +2 after a fully
                          accepted round, else -1)`;

type DecodingValues = { [K in keyof typeof DECODING_OPTIONS]?: string };

export interface DecodingFlags {
  negativePrompt?: string;
  cfgScale: number;
  draftModel?: string;
  draftK?: number;
}

export function decodingFrom(v: DecodingValues): DecodingFlags {
  const cfgScale = numberOption("cfg-scale", v["cfg-scale"], 1, -100, 100);
  if (v["negative-prompt"] !== undefined && v["cfg-scale"] === undefined) throw new UsageError("--negative-prompt takes effect with --cfg-scale S (S > 1 guides away from it)");
  if (v["draft-k"] !== undefined && v["draft-model"] === undefined) throw new UsageError("--draft-k needs --draft-model FILE");
  if (v["draft-model"] !== undefined && cfgScale !== 1) throw new UsageError("--draft-model and --cfg-scale cannot be combined");
  const draftK = v["draft-k"] === undefined ? undefined : numberOption("draft-k", v["draft-k"], 4, 1, 64);
  if (draftK !== undefined && !Number.isInteger(draftK)) throw new UsageError(`--draft-k expects an integer, got ${JSON.stringify(v["draft-k"])}`);
  return { negativePrompt: v["negative-prompt"], cfgScale, draftModel: v["draft-model"], draftK };
}

/** The stderr line after an answer: speed, finish reason, speculative acceptance. */
export function statsLine(r: GenerationResult | SpeculativeResult): string {
  const t = r.timings;
  const parts = [`${t.promptTokens} prompt tokens at ${t.promptTokensPerS.toFixed(1)} tok/s`, `${t.generatedTokens} generated at ${t.decodeTokensPerS.toFixed(1)} tok/s`, r.finishReason];
  if ("speculative" in r) {
    const s = r.speculative;
    parts.push(`draft acceptance ${(100 * s.acceptanceRate).toFixed(1)}% (${s.accepted}/${s.drafted}), ${s.tokensPerTargetPass.toFixed(2)} tokens per target pass`);
  }
  return `[${parts.join(", ")}]\n`;
}

/** Loads the draft model with the target's load options, checking that their vocabularies agree. */
export async function loadDraft(flags: DecodingFlags, target: LlamaModel, options: LoadOptions): Promise<LlamaModel | undefined> {
  if (flags.draftModel === undefined) return undefined;
  const draft = await LlamaModel.load(flags.draftModel, { ...options, nCtx: target.nCtx });
  try {
    checkDraftModel(target, draft, `--draft-model ${flags.draftModel}`);
  } catch (error) {
    await draft.dispose();
    throw new UsageError((error as Error).message);
  }
  return draft;
}

function speculativeJson({ speculative: s }: SpeculativeResult) {
  return { rounds: s.rounds, drafted: s.drafted, accepted: s.accepted, acceptance_rate: s.acceptanceRate, tokens_per_target_pass: s.tokensPerTargetPass };
}

export const runCommand: Command = {
  usage: `usage: zh-llama run -m MODEL.gguf (-p TEXT | -f FILE | --prompt-ids 1,2,3) [-n 128] [sampling] [--json]

Generates a continuation and streams it to stdout. -p text is tokenized with BOS as the model
declares; --prompt-ids are used verbatim.
  -p, --prompt TEXT       prompt text
  -f, --file FILE         prompt text from a UTF-8 file (as llama.cpp's -f)
  --prompt-ids IDS        prompt as comma-separated token ids
  -n, --n-predict N       tokens to generate (default 128)
  --stop TEXT             stop string (repeatable)
  --ignore-eos            keep generating past end-of-sequence
  --grammar TEXT          constrain the output to a GBNF grammar (llama.cpp's format); a value
                          naming an existing file with no "::=" in it is read as the file
  --grammar-file FILE     the grammar from a file
  -j, --json-schema TEXT  constrain the output to JSON matching a JSON Schema; a value not
                          starting with "{" that names an existing file is read as the file
  -jf, --json-schema-file FILE   the schema from a file
  --json                  print one object at the end instead of streaming:
                          {"prompt_ids","generated_ids","text","first_top_logits","timings"}
${SAMPLING_USAGE}
${DECODING_USAGE}
${MODEL_OPTIONS_USAGE}`,

  async run(args, io) {
    const { values } = parseCommandArgs({
      args,
      allowPositionals: false,
      options: {
        ...MODEL_OPTIONS,
        ...SAMPLING_OPTIONS,
        ...DECODING_OPTIONS,
        prompt: { type: "string", short: "p" },
        file: { type: "string", short: "f" },
        "prompt-ids": { type: "string" },
        "n-predict": { type: "string", short: "n" },
        stop: { type: "string", multiple: true },
        "ignore-eos": { type: "boolean" },
        grammar: { type: "string" },
        "grammar-file": { type: "string" },
        "json-schema": { type: "string", short: "j" },
        "json-schema-file": { type: "string" },
        json: { type: "boolean" },
      },
    });
    if ([values.prompt, values.file, values["prompt-ids"]].filter((v) => v !== undefined).length !== 1) throw new UsageError("give exactly one of -p TEXT, -f FILE or --prompt-ids IDS");
    const nPredict = numberOption("n-predict", values["n-predict"], 128, 0, 1 << 20);
    const sampling = samplingFrom(values);
    const grammar = await grammarFrom(values);
    const promptText = values.file !== undefined ? await readInputFile(values.file, "prompt file") : values.prompt;
    const decoding = decodingFrom(values);
    if (grammar && (decoding.cfgScale !== 1 || decoding.draftModel !== undefined)) throw new UsageError("--grammar / --json-schema cannot be combined with --cfg-scale or --draft-model");
    const model = await loadModel(io, modelPath(values), loadOptionsFrom(values));
    let draft: LlamaModel | undefined;
    try {
      draft = await loadDraft(decoding, model, loadOptionsFrom(values));
      const tokenizer = model.tokenizer;
      const promptIds = values["prompt-ids"] !== undefined ? parseIds(values["prompt-ids"], "--prompt-ids") : tokenizer.encode(promptText!);
      let result: GenerationResult | undefined;
      const options = { ...sampling, maxTokens: nPredict, stop: values.stop, ignoreEos: values["ignore-eos"] };
      const negativePromptIds = decoding.negativePrompt === undefined ? undefined : tokenizer.encode(decoding.negativePrompt);
      const events = grammar
        ? generateConstrained(model.session, tokenizer, promptIds, { ...options, constraint: new GrammarConstraint(grammar, tokenizer) })
        : decoding.cfgScale !== 1 || draft
          ? generateWith(model, tokenizer, promptIds, { ...options, cfgScale: decoding.cfgScale, negativePromptIds, draft, draftK: decoding.draftK })
          : generate(model, tokenizer, promptIds, options);
      for await (const event of events) {
        if (event.type === "token") {
          if (!values.json) io.stdout(event.text);
        } else result = event.result;
      }
      const r = result!;
      if (values.json) {
        io.stdout(
          toJson({
            prompt_ids: r.promptIds,
            generated_ids: r.generatedIds,
            text: r.text,
            first_top_logits: r.firstTopLogits,
            timings: {
              prompt_tokens: r.timings.promptTokens,
              prompt_tokens_per_s: r.timings.promptTokensPerS,
              generated_tokens: r.timings.generatedTokens,
              decode_tokens_per_s: r.timings.decodeTokensPerS,
            },
            ...("speculative" in r ? { speculative: speculativeJson(r as SpeculativeResult) } : {}),
          }) + "\n",
        );
      } else {
        io.stdout("\n");
        io.stderr(statsLine(r));
      }
      return 0;
    } finally {
      await draft?.dispose();
      await model.dispose();
    }
  },
};

/**
 * The grammar of --grammar TEXT / --grammar-file FILE (GBNF) or --json-schema TEXT /
 * --json-schema-file FILE, if one is given. For compatibility with earlier versions, where both
 * flags took a file, a --grammar value with no "::=" that names a file, and a --json-schema value
 * not starting with "{" that names a file, are read as files.
 */
export async function grammarFrom(v: { grammar?: string; "grammar-file"?: string; "json-schema"?: string; "json-schema-file"?: string }): Promise<Grammar | undefined> {
  const given = (["grammar", "grammar-file", "json-schema", "json-schema-file"] as const).filter((k) => v[k] !== undefined);
  if (given.length > 1) throw new UsageError(`give at most one of --grammar and --json-schema (got ${given.map((k) => `--${k}`).join(" and ")})`);
  let grammarFile = v["grammar-file"];
  let grammarText = v.grammar;
  if (grammarText !== undefined && !grammarText.includes("::=") && isFile(grammarText)) [grammarFile, grammarText] = [grammarText, undefined];
  if (grammarFile !== undefined) grammarText = await readInputFile(grammarFile, "grammar file");
  if (grammarText !== undefined) {
    try {
      return Grammar.parse(grammarText);
    } catch (error) {
      if (error instanceof GrammarError) throw new GrammarError(`${grammarFile ?? "--grammar"}: ${error.message}`);
      throw error;
    }
  }
  let schemaFile = v["json-schema-file"];
  let schemaText = v["json-schema"];
  if (schemaText !== undefined && !schemaText.trimStart().startsWith("{") && isFile(schemaText)) [schemaFile, schemaText] = [schemaText, undefined];
  if (schemaFile !== undefined) schemaText = await readInputFile(schemaFile, "JSON schema file");
  if (schemaText === undefined) return undefined;
  let schema: unknown;
  try {
    schema = JSON.parse(schemaText);
  } catch (error) {
    throw new JsonSchemaError(`${schemaFile ?? "--json-schema"}: not JSON (${error instanceof Error ? error.message : String(error)})`);
  }
  return jsonSchemaGrammar(schema);
}

function isFile(path: string): boolean {
  try {
    return statSync(path).isFile();
  } catch {
    return false;
  }
}
