/**
 * The training log: a CSV of step, loss, lr, grad-norm and tokens/s, and the loss curve as a
 * hand-written SVG, both rewritten atomically (temporary file + rename) whenever they are saved,
 * so a reader never sees half a file.
 */
import { rename, writeFile } from "node:fs/promises";
import type { StepInfo } from "./trainer.js";

export interface LogRow {
  step: number;
  loss: number;
  lr: number;
  gradNorm: number;
  tokensPerSecond: number;
  /** Held-out loss, when evaluated at this step. */
  evalLoss?: number;
}

export const CSV_HEADER = "step,loss,lr,grad_norm,tokens_per_s,eval_loss";

export class TrainLog {
  readonly rows: LogRow[] = [];

  add(info: StepInfo, evalLoss?: number): void {
    this.rows.push({ step: info.step, loss: info.loss, lr: info.lr, gradNorm: info.gradNorm, tokensPerSecond: info.tokensPerSecond, evalLoss });
  }

  /** Rows from an earlier CSV (a resumed run continues its log). */
  static parseCsv(text: string): LogRow[] {
    const lines = text.trim().split("\n");
    if (lines[0] !== CSV_HEADER) return [];
    return lines.slice(1).map((line) => {
      const [step, loss, lr, gradNorm, tps, evalLoss] = line.split(",");
      return { step: Number(step), loss: Number(loss), lr: Number(lr), gradNorm: Number(gradNorm), tokensPerSecond: Number(tps), evalLoss: evalLoss ? Number(evalLoss) : undefined };
    });
  }

  csv(): string {
    const body = this.rows.map((r) => [r.step, r.loss.toFixed(6), r.lr.toExponential(6), r.gradNorm.toFixed(6), r.tokensPerSecond.toFixed(1), r.evalLoss === undefined ? "" : r.evalLoss.toFixed(6)].join(","));
    return [CSV_HEADER, ...body].join("\n") + "\n";
  }

  svg(title = "training loss"): string {
    return lossCurveSvg(this.rows, title);
  }

  async save(csvPath: string, svgPath: string, title?: string): Promise<void> {
    await writeAtomic(csvPath, this.csv());
    await writeAtomic(svgPath, this.svg(title));
  }
}

async function writeAtomic(path: string, text: string): Promise<void> {
  const tmp = `${path}.${process.pid}.tmp`;
  await writeFile(tmp, text);
  await rename(tmp, path);
}

const escapeXml = (s: string) => s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");

/** A line chart of loss (and held-out loss, dots) against step, with labelled axes. */
export function lossCurveSvg(rows: readonly LogRow[], title: string): string {
  const W = 720, H = 400, left = 64, right = 20, top = 36, bottom = 48;
  const pw = W - left - right, ph = H - top - bottom;
  const finite = rows.filter((r) => Number.isFinite(r.loss));
  const values = [...finite.map((r) => r.loss), ...finite.flatMap((r) => (r.evalLoss !== undefined ? [r.evalLoss] : []))];
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="12">`,
    `<rect width="${W}" height="${H}" fill="white"/>`,
    `<text x="${W / 2}" y="22" text-anchor="middle" font-size="15">${escapeXml(title)}</text>`,
  ];
  if (finite.length === 0) {
    out.push(`<text x="${W / 2}" y="${H / 2}" text-anchor="middle">no steps yet</text>`, "</svg>");
    return out.join("\n") + "\n";
  }
  const s0 = finite[0]!.step, s1 = Math.max(finite[finite.length - 1]!.step, s0 + 1);
  let lo = Math.min(...values), hi = Math.max(...values);
  if (hi - lo < 1e-9) { lo -= 0.5; hi += 0.5; }
  const pad = 0.05 * (hi - lo);
  lo -= pad; hi += pad;
  const x = (step: number) => left + ((step - s0) / (s1 - s0)) * pw;
  const y = (loss: number) => top + (1 - (loss - lo) / (hi - lo)) * ph;
  out.push(`<rect x="${left}" y="${top}" width="${pw}" height="${ph}" fill="none" stroke="#888"/>`);
  for (let i = 0; i <= 4; i++) {
    const v = lo + ((hi - lo) * i) / 4;
    out.push(`<line x1="${left}" x2="${left + pw}" y1="${y(v).toFixed(1)}" y2="${y(v).toFixed(1)}" stroke="#eee"/>`);
    out.push(`<text x="${left - 6}" y="${(y(v) + 4).toFixed(1)}" text-anchor="end">${v.toFixed(2)}</text>`);
    const st = Math.round(s0 + ((s1 - s0) * i) / 4);
    out.push(`<text x="${x(st).toFixed(1)}" y="${top + ph + 18}" text-anchor="middle">${st}</text>`);
  }
  out.push(`<text x="${left + pw / 2}" y="${H - 10}" text-anchor="middle">step</text>`);
  out.push(`<text x="16" y="${top + ph / 2}" text-anchor="middle" transform="rotate(-90 16 ${top + ph / 2})">loss</text>`);
  const points = finite.map((r) => `${x(r.step).toFixed(1)},${y(r.loss).toFixed(1)}`).join(" ");
  out.push(`<polyline fill="none" stroke="#1f77b4" stroke-width="1.5" points="${points}"/>`);
  const evals = finite.filter((r) => r.evalLoss !== undefined);
  for (const r of evals) out.push(`<circle cx="${x(r.step).toFixed(1)}" cy="${y(r.evalLoss!).toFixed(1)}" r="3" fill="#d62728"/>`);
  out.push(`<text x="${left + pw - 4}" y="${top + 16}" text-anchor="end" fill="#1f77b4">train loss</text>`);
  if (evals.length) out.push(`<text x="${left + pw - 4}" y="${top + 32}" text-anchor="end" fill="#d62728">held-out loss</text>`);
  out.push("</svg>");
  return out.join("\n") + "\n";
}
