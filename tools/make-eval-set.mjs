#!/usr/bin/env node
// Builds the small multiple-choice evaluation set shipped in fixtures/eval/, from the 唐詩三百首
// in the npm package chinese-poetry, in both benchmark layouts:
//   fixtures/eval/poetry-ceval:  dev/{s}_dev.csv, val/{s}_val.csv, test/{s}_test.csv, subject_mapping.json
//   fixtures/eval/poetry-cmmlu:  dev/{s}.csv, test/{s}.csv
// Deterministic (seeded); rerun with: node tools/make-eval-set.mjs
import { readFileSync, mkdirSync, writeFileSync } from "node:fs";
import { join, dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { createRequire } from "node:module";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const require = createRequire(join(root, "package.json"));
const corpus = JSON.parse(readFileSync(require.resolve("chinese-poetry/dist/mengxue/tangshisanbaishou.json"), "utf8"));

let seed = 300;
const random = () => ((seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0) / 2 ** 32);
const pick = (xs) => xs[Math.floor(random() * xs.length)];
const shuffle = (xs) => {
  const a = [...xs];
  for (let i = a.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [a[i], a[j]] = [a[j], a[i]];
  }
  return a;
};

const poems = corpus.content.flatMap((group) => group.content.map((p) => ({ ...p, form: group.type })))
  .filter((p) => p.paragraphs?.length > 0 && p.author);
// Sentences: split couplets "白日依山盡，黃河入海流。" into halves.
// Editorial notes such as "(客思深 一作：客思侵)" are not part of the poem.
const sentences = (p) => p.paragraphs.join("").replace(/[(（][^)）]*[)）]/g, "").split(/[，。？！；]/).map((s) => s.trim()).filter((s) => s.length >= 4);
const poets = [...new Set(poems.map((p) => p.author))];

function options(correct, distractors) {
  const opts = shuffle([correct, ...distractors.slice(0, 3)]);
  return { opts, answer: "ABCD"[opts.indexOf(correct)] };
}

const makers = {
  poem_author: () => {
    const p = pick(poems);
    const s = pick(sentences(p));
    const others = shuffle(poets.filter((x) => x !== p.author)).slice(0, 3);
    return { question: `「${s}」出自哪位詩人之手？`, ...options(p.author, others) };
  },
  next_line: () => {
    let p, ss;
    do { p = pick(poems); ss = sentences(p); } while (ss.length < 2);
    const i = Math.floor(random() * (ss.length - 1));
    const pool = shuffle(poems.flatMap(sentences).filter((x) => x.length === ss[i + 1].length && !ss.includes(x)));
    return { question: `「${ss[i]}」的下一句是？`, ...options(ss[i + 1], pool) };
  },
  missing_char: () => {
    const p = pick(poems);
    const s = pick(sentences(p));
    const k = Math.floor(random() * s.length);
    const chars = shuffle([...new Set(poems.flatMap((q) => [...sentences(q).join("")]).filter((c) => /\p{Script=Han}/u.test(c) && c !== s[k]))]);
    return { question: `「${s.slice(0, k)}＿${s.slice(k + 1)}」中空缺的字是？`, ...options(s[k], chars) };
  },
};
const names = { poem_author: ["Poem Author", "唐詩作者", "Humanities"], next_line: ["Next Line", "唐詩接句", "Humanities"], missing_char: ["Missing Character", "唐詩填字", "Humanities"] };
const counts = { dev: 5, val: 30, test: 30 };

const csvField = (s) => (/[",\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s);
const write = (path, header, rows) => {
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, [header, ...rows].map((r) => r.map((f) => csvField(String(f))).join(",")).join("\n") + "\n");
};

for (const [subject, make] of Object.entries(makers)) {
  const seen = new Set();
  const split = {};
  for (const [name, n] of Object.entries(counts)) {
    split[name] = [];
    while (split[name].length < n) {
      const q = make();
      if (seen.has(q.question)) continue;
      seen.add(q.question);
      split[name].push(q);
    }
  }
  for (const [name, qs] of Object.entries(split)) {
    write(join(root, "fixtures/eval/poetry-ceval", name, `${subject}_${name}.csv`), ["id", "question", "A", "B", "C", "D", "answer"], qs.map((q, i) => [i, q.question, ...q.opts, q.answer]));
    if (name !== "val") write(join(root, "fixtures/eval/poetry-cmmlu", name, `${subject}.csv`), ["", "Question", "A", "B", "C", "D", "Answer"], qs.map((q, i) => [i, q.question, ...q.opts, q.answer]));
  }
}
writeFileSync(join(root, "fixtures/eval/poetry-ceval/subject_mapping.json"), JSON.stringify(names, null, 1) + "\n");
writeFileSync(join(root, "fixtures/eval/README.md"), `# Poetry multiple-choice sets

Made by \`tools/make-eval-set.mjs\` from 唐詩三百首 in the npm package chinese-poetry (seeded, reproducible),
in C-Eval's layout (\`poetry-ceval\`: dev/val/test, subject_mapping.json) and CMMLU's (\`poetry-cmmlu\`: dev/test).
Subjects: which poet wrote a line (唐詩作者), which line follows (唐詩接句), which character fills a gap (唐詩填字).
${Object.entries(counts).map(([k, v]) => `${v} ${k}`).join(", ")} questions per subject.
`);
console.log("wrote fixtures/eval/poetry-ceval and fixtures/eval/poetry-cmmlu");
