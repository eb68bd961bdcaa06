import { describe, expect, it } from "vitest";
import { mkdtemp, mkdir, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { main } from "../../src/cli/index.js";
import type { CliIo } from "../../src/cli/command.js";
import { parseCsv, readChoiceDataset, choicePrompt, formatExample, subjectHeader, choiceTokenIds, evaluateChoices } from "../../src/eval/index.js";
import { LlamaModel } from "../../src/model/index.js";
import { tokenizerFromGgufMetadata } from "../../src/tokenizer/index.js";
import { FormatError } from "../../src/formats/errors.js";
import { repoRoot, hasShared, sharedPath } from "../helpers/shared.js";

async function run(...argv: string[]) {
  let stdout = "";
  let stderr = "";
  const io: CliIo = { stdout: (t) => void (stdout += t), stderr: (t) => void (stderr += t), isTty: false };
  return { status: await main(argv, io), stdout, stderr };
}

const fixtureModel = join(repoRoot, "fixtures/models/tiny-random-q8_0.gguf");
const ceval = join(repoRoot, "fixtures/eval/poetry-ceval");
const cmmlu = join(repoRoot, "fixtures/eval/poetry-cmmlu");

describe("CSV", () => {
  it("quotes, doubled quotes, newlines in fields, BOM and CRLF", () => {
    const rows = parseCsv('\uFEFFa,b\r\n"x, ""y""","line1\nline2"\r\n\n3,4', "t.csv");
    expect(rows).toEqual([
      { line: 1, fields: ["a", "b"] },
      { line: 2, fields: ['x, "y"', "line1\nline2"] },
      { line: 5, fields: ["3", "4"] },
    ]);
    expect(() => parseCsv('a,"b', "t.csv")).toThrow(/t\.csv: line 1: a quoted field is never closed/);
  });
});

describe("C-Eval / CMMLU datasets", () => {
  it("reads the shipped poetry sets in both layouts", async () => {
    const c = await readChoiceDataset(ceval, "ceval", "val");
    expect(c.map((s) => [s.id, s.name, s.dev.length, s.questions.length])).toEqual([
      ["missing_char", "唐詩填字", 5, 30],
      ["next_line", "唐詩接句", 5, 30],
      ["poem_author", "唐詩作者", 5, 30],
    ]);
    const m = await readChoiceDataset(cmmlu, "cmmlu", "test");
    expect(m.map((s) => s.questions.length)).toEqual([30, 30, 30]);
  });

  it("builds the upstream prompt text", async () => {
    const [subject] = await readChoiceDataset(ceval, "ceval", "val");
    const q = subject!.questions[0]!;
    const model = await LlamaModel.load(fixtureModel, { nCtx: 64, threads: 1 });
    const tokenizer = tokenizerFromGgufMetadata(model.file.metadata);
    const expected =
      "以下是中国关于唐詩填字考试的单项选择题，请选出其中的正确答案。\n\n" +
      subject!.dev.slice(0, 2).map((e) => `${e.question}\nA. ${e.options.A}\nB. ${e.options.B}\nC. ${e.options.C}\nD. ${e.options.D}\n答案：${e.answer}\n\n`).join("") +
      `${q.question}\nA. ${q.options.A}\nB. ${q.options.B}\nC. ${q.options.C}\nD. ${q.options.D}\n答案：`;
    expect(subjectHeader("唐詩填字") + subject!.dev.slice(0, 2).map((e) => formatExample(e, true)).join("") + formatExample(q, false)).toBe(expected);
    expect(choicePrompt(subject!, q, 2, tokenizer)).toEqual(tokenizer.encode(expected, { addBos: true }));
    await model.dispose();
  });

  it("bad layouts and rows are named", async () => {
    const dir = await mkdtemp(join(tmpdir(), "zh-eval-"));
    await expect(readChoiceDataset(dir, "ceval", "val")).rejects.toThrow(/val: missing; a ceval directory has dev\/ and val\/ folders/);
    await mkdir(join(dir, "val"));
    await mkdir(join(dir, "dev"));
    await writeFile(join(dir, "val", "x_val.csv"), "id,question,A,B,C,D\n0,q,a,b,c,d\n");
    await writeFile(join(dir, "dev", "x_dev.csv"), "id,question,A,B,C,D,answer\n0,q,a,b,c,d,A\n");
    await expect(readChoiceDataset(dir, "ceval", "val")).rejects.toThrow(/x_val\.csv: line 1: missing column "answer"/);
    await writeFile(join(dir, "val", "x_val.csv"), "id,question,A,B,C,D,answer\n0,q,a,b,c,d,E\n");
    await expect(readChoiceDataset(dir, "ceval", "val")).rejects.toThrow(/x_val\.csv: line 2: answer "E" is not one of A, B, C, D/);
    await writeFile(join(dir, "val", "x_val.csv"), "id,question,A,B,C,D,answer\n0,q,a,b\n");
    await expect(readChoiceDataset(dir, "ceval", "val")).rejects.toThrow(FormatError);
  });
});

describe("scoring", () => {
  it("the synthetic vocabulary lacks single-token letters: a clear error", async () => {
    const model = await LlamaModel.load(fixtureModel, { nCtx: 64, threads: 1 });
    expect(() => choiceTokenIds(tokenizerFromGgufMetadata(model.file.metadata))).toThrow(/no single-token option letter "A"/);
    await model.dispose();
  });

  it.skipIf(!hasShared)("scores with LLaMA's vocabulary: ▁A + A logits, argmax, --json", async () => {
    const path = sharedPath("reference/llama-d128-l4-h4kv2-tied-q4_0.gguf");
    const model = await LlamaModel.load(path, { nCtx: 2048, threads: 1 });
    const tokenizer = tokenizerFromGgufMetadata(model.file.metadata);
    const ids = choiceTokenIds(tokenizer);
    expect(ids.A.map((i) => tokenizer.idToPiece(i))).toEqual(["▁A", "A"]);
    const subjects = (await readChoiceDataset(ceval, "ceval", "val")).map((s) => ({ ...s, questions: s.questions.slice(0, 3) }));
    const r = await evaluateChoices(model, tokenizer, subjects, { shots: 1 });
    expect(r.total).toBe(9);
    // Independent recomputation for one question: the same logits, scored by hand.
    const q = subjects[0]!.questions[0]!;
    const prompt = choicePrompt(subjects[0]!, q, 1, tokenizer);
    const logits = await model.evaluateSequence(prompt);
    const inPrompt = new Set(prompt);
    const pen = (id: number) => (!inPrompt.has(id) ? logits[id]! : logits[id]! < 0 ? logits[id]! * 1.1 : logits[id]! / 1.1);
    const scores = (["A", "B", "C", "D"] as const).map((c) => pen(ids[c][0]) + pen(ids[c][1]));
    const byHand = "ABCD"[scores.indexOf(Math.max(...scores))];
    expect(r.predictions[0]).toEqual({ source: q.source, predicted: byHand, answer: q.answer });
    await model.dispose();
    const cli = await run("eval-choice", "-m", path, "--data", ceval, "--format", "ceval", "--shots", "0", "--ctx", "1024", "--json");
    expect(cli.status, cli.stderr).toBe(0);
    const out = JSON.parse(cli.stdout);
    expect(Object.keys(out)).toEqual(["accuracy", "subjects"]);
    expect(out.subjects.poem_author.total).toBe(30);
    expect(out.accuracy).toBeGreaterThanOrEqual(0);
  });

  it("runs on the bundled Chinese-Alpaca-tiny (its extended LLaMA vocabulary has ▁A and A)", async () => {
    const cli = await run("eval-choice", "--data", cmmlu, "--format", "cmmlu", "--shots", "1", "-t", "1", "--json");
    expect(cli.status, cli.stderr).toBe(0);
    const out = JSON.parse(cli.stdout) as { accuracy: number; subjects: Record<string, { correct: number; total: number }> };
    expect(Object.values(out.subjects).map((t) => t.total)).toEqual([30, 30, 30]);
    expect(out.accuracy).toBeGreaterThanOrEqual(0);
    expect(out.accuracy).toBeLessThanOrEqual(1);
  });
});
