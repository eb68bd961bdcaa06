/**
 * Multiple-choice evaluation in the C-Eval / CMMLU layouts, scored as the upstream
 * Chinese-LLaMA-Alpaca-2 evaluators do in their default constrained mode
 * (scripts/ceval/llama_evaluator.py, scripts/cmmlu/llama2_evaluator.py; UPSTREAM.md section 5):
 *
 *   prompt  = "以下是中国关于{subject}考试的单项选择题，请选出其中的正确答案。\n\n"
 *             + k dev examples "{question}\nA. ..\nB. ..\nC. ..\nD. ..\n答案：{answer}\n\n"
 *             + "{question}\nA. ..\nB. ..\nC. ..\nD. ..\n答案："
 *   score(X) = s[id("▁X")] + s[id("X")]   for X in A..D, where s are the next-token scores after
 *              the repetition penalty (HF semantics over the prompt) — the temperature divides
 *              all four alike and cannot change the argmax;
 *   answer  = argmax over A..D.
 * With a chat template (with_prompt) the whole prompt becomes the user message; for Alpaca-2
 * the few-shot dialogue is built as the upstream script does.
 */
import { readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { FormatError } from "../formats/errors.js";
import { InvalidArgumentError } from "../errors.js";
import type { ChatTemplate } from "../chat/index.js";
import type { LlamaModel } from "../model/index.js";
import type { SentencePieceTokenizer } from "../tokenizer/index.js";
import { parseCsv } from "./csv.js";

export const CHOICES = ["A", "B", "C", "D"] as const;
export type Choice = (typeof CHOICES)[number];

export interface ChoiceQuestion {
  question: string;
  options: Record<Choice, string>;
  answer: Choice;
  /** Where it came from, for messages. */
  source: string;
}

export interface ChoiceSubject {
  /** File-level name (e.g. "computer_network"). */
  id: string;
  /** The name used in the prompt header (C-Eval's subject_mapping.json Chinese name when present). */
  name: string;
  dev: ChoiceQuestion[];
  questions: ChoiceQuestion[];
}

export type ChoiceFormat = "ceval" | "cmmlu";

function toQuestion(fields: string[], header: string[], file: string, line: number, format: ChoiceFormat): ChoiceQuestion {
  const col = (name: string) => {
    const i = header.findIndex((h) => h.trim().toLowerCase() === name.toLowerCase());
    if (i < 0) throw new FormatError(`${file}: line 1: missing column ${JSON.stringify(name)} (header: ${header.join(",")})`);
    const v = fields[i];
    if (v === undefined) throw new FormatError(`${file}: line ${line}: row has ${fields.length} fields, no value for column ${JSON.stringify(name)}`);
    return v;
  };
  const answer = col(format === "ceval" ? "answer" : "Answer").trim().toUpperCase();
  if (!(CHOICES as readonly string[]).includes(answer)) throw new FormatError(`${file}: line ${line}: answer ${JSON.stringify(answer)} is not one of A, B, C, D`);
  return {
    question: col(format === "ceval" ? "question" : "Question"),
    options: { A: col("A"), B: col("B"), C: col("C"), D: col("D") },
    answer: answer as Choice,
    source: `${file}:${line}`,
  };
}

async function readQuestions(file: string, format: ChoiceFormat): Promise<ChoiceQuestion[]> {
  const rows = parseCsv(await readFile(file, "utf8"), file);
  if (rows.length === 0) throw new FormatError(`${file}: empty file`);
  const header = rows[0]!.fields;
  return rows.slice(1).map((r) => toQuestion(r.fields, header, file, r.line, format));
}

/**
 * Reads a benchmark directory:
 *   ceval:  DIR/dev/{subject}_dev.csv, DIR/{split}/{subject}_{split}.csv, optional DIR/subject_mapping.json
 *   cmmlu:  DIR/dev/{subject}.csv, DIR/{split}/{subject}.csv
 */
export async function readChoiceDataset(dir: string, format: ChoiceFormat, split: string): Promise<ChoiceSubject[]> {
  const list = async (sub: string) => {
    try {
      return (await readdir(join(dir, sub))).filter((f) => f.endsWith(".csv")).sort();
    } catch {
      throw new FormatError(`${join(dir, sub)}: missing; a ${format} directory has dev/ and ${split}/ folders of CSV files`);
    }
  };
  const files = await list(split);
  if (files.length === 0) throw new FormatError(`${join(dir, split)}: no CSV files`);
  let mapping: Record<string, string[]> = {};
  if (format === "ceval") {
    try {
      mapping = JSON.parse(await readFile(join(dir, "subject_mapping.json"), "utf8")) as Record<string, string[]>;
    } catch {
      mapping = {};
    }
  }
  const subjects: ChoiceSubject[] = [];
  for (const file of files) {
    const suffix = format === "ceval" ? `_${split}.csv` : ".csv";
    if (!file.endsWith(suffix)) throw new FormatError(`${join(dir, split, file)}: expected a name ending in ${suffix}`);
    const id = file.slice(0, -suffix.length);
    const devFile = join(dir, "dev", format === "ceval" ? `${id}_dev.csv` : `${id}.csv`);
    const dev = split === "dev" ? [] : await readQuestions(devFile, format).catch((e: unknown) => {
      if (e instanceof FormatError) throw e;
      throw new FormatError(`${devFile}: missing (the few-shot examples of ${id})`);
    });
    subjects.push({ id, name: mapping[id]?.[1] ?? id, dev, questions: await readQuestions(join(dir, split, file), format) });
  }
  return subjects;
}

export function formatExample(q: ChoiceQuestion, withAnswer: boolean): string {
  let text = q.question;
  for (const c of CHOICES) text += `\n${c}. ${q.options[c]}`;
  return text + (withAnswer ? `\n答案：${q.answer}\n\n` : "\n答案：");
}

export function subjectHeader(subject: string): string {
  return `以下是中国关于${subject}考试的单项选择题，请选出其中的正确答案。\n\n`;
}

/** The prompt's token ids for one question, with `shots` dev examples. */
export function choicePrompt(subject: ChoiceSubject, q: ChoiceQuestion, shots: number, tokenizer: SentencePieceTokenizer, template?: ChatTemplate): number[] {
  const examples = subject.dev.slice(0, shots);
  if (!template) {
    const text = subjectHeader(subject.name) + examples.map((e) => formatExample(e, true)).join("") + formatExample(q, false);
    return tokenizer.encode(text, { addBos: true, addEos: false });
  }
  if (template.name.startsWith("alpaca-2") && examples.length > 0) {
    // Upstream with_prompt few-shot: the header as the first turn, answered "好的，我会结合...",
    // then each shot as its own [INST] turn, then the question.
    const messages = [
      { role: "user" as const, content: subjectHeader(subject.name).trimEnd() },
      { role: "assistant" as const, content: `好的，我会结合${subject.name}相关知识回答` },
      ...examples.flatMap((e) => [
        { role: "user" as const, content: formatExample(e, false) },
        { role: "assistant" as const, content: e.answer },
      ]),
      { role: "user" as const, content: formatExample(q, false) },
    ];
    return template.render(messages, tokenizer);
  }
  const text = subjectHeader(subject.name) + examples.map((e) => formatExample(e, true)).join("") + formatExample(q, false);
  return template.render([{ role: "user", content: text }], tokenizer);
}

/** The two ids scored per letter: "▁A" (as encode("A") gives it) and the bare "A" (last id of encode("：A")). */
export function choiceTokenIds(tokenizer: SentencePieceTokenizer): Record<Choice, [number, number]> {
  const out = {} as Record<Choice, [number, number]>;
  for (const c of CHOICES) {
    const spaced = tokenizer.encode(c, { addBos: false, addEos: false });
    const bare = tokenizer.encode(`：${c}`, { addBos: false, addEos: false });
    const spacedId = spaced[0];
    const bareId = bare[bare.length - 1];
    if (spaced.length !== 1 || spacedId === undefined || bareId === undefined || tokenizer.idToPiece(bareId) !== c) {
      throw new InvalidArgumentError(`the vocabulary has no single-token option letter ${JSON.stringify(c)} (encode("${c}") = [${spaced.join(", ")}], encode("：${c}") ends in ${JSON.stringify(bareId === undefined ? "" : tokenizer.idToPiece(bareId))}): multiple-choice scoring needs "▁${c}" and "${c}" as pieces`);
    }
    out[c] = [spacedId, bareId];
  }
  return out;
}

export interface ChoiceResult {
  accuracy: number;
  subjects: Record<string, { correct: number; total: number }>;
  correct: number;
  total: number;
  /** Every question's predicted letter, in order. */
  predictions: Array<{ source: string; predicted: Choice; answer: Choice }>;
}

/** HF repetition penalty on one id: every prompt token is "in the context". */
function penalised(logit: number, id: number, context: ReadonlySet<number>, penalty: number): number {
  if (!context.has(id) || penalty === 1) return logit;
  return logit < 0 ? logit * penalty : logit / penalty;
}

export async function evaluateChoices(
  model: LlamaModel,
  tokenizer: SentencePieceTokenizer,
  subjects: ChoiceSubject[],
  options: { shots: number; template?: ChatTemplate; repetitionPenalty?: number; onQuestion?: (done: number, total: number) => void },
): Promise<ChoiceResult> {
  const ids = choiceTokenIds(tokenizer);
  const penalty = options.repetitionPenalty ?? 1.1;
  const total = subjects.reduce((n, s) => n + s.questions.length, 0);
  const result: ChoiceResult = { accuracy: 0, subjects: {}, correct: 0, total: 0, predictions: [] };
  let done = 0;
  for (const subject of subjects) {
    const tally = { correct: 0, total: 0 };
    for (const q of subject.questions) {
      const prompt = choicePrompt(subject, q, options.shots, tokenizer, options.template);
      if (prompt.length >= model.nCtx) throw new InvalidArgumentError(`${q.source}: the prompt has ${prompt.length} tokens, more than the context of ${model.nCtx}; use fewer --shots or a larger --ctx`);
      const logits = await model.evaluateSequence(prompt);
      const context = new Set(prompt);
      let best: Choice = "A";
      let bestScore = -Infinity;
      for (const c of CHOICES) {
        const [a, b] = ids[c];
        const score = penalised(logits[a]!, a, context, penalty) + penalised(logits[b]!, b, context, penalty);
        if (score > bestScore) {
          bestScore = score;
          best = c;
        }
      }
      result.predictions.push({ source: q.source, predicted: best, answer: q.answer });
      tally.total++;
      if (best === q.answer) tally.correct++;
      options.onQuestion?.(++done, total);
    }
    result.subjects[subject.id] = tally;
    result.correct += tally.correct;
    result.total += tally.total;
  }
  result.accuracy = result.total > 0 ? result.correct / result.total : 0;
  return result;
}
