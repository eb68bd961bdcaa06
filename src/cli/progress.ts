import type { CliIo } from "./command.js";

/**
 * A progress line on stderr: redrawn in place on a terminal, printed every 10% otherwise
 * (so logs stay short). `update(done)` is cheap enough to call per tensor or per row block.
 */
export class ProgressBar {
  private lastPercent = -1;
  private readonly started = Date.now();
  constructor(private readonly io: CliIo, private readonly label: string, private readonly total: number) {}

  update(done: number, detail = ""): void {
    const fraction = this.total > 0 ? Math.min(1, done / this.total) : 1;
    const percent = Math.floor(fraction * 100);
    if (this.io.isTty) {
      if (percent === this.lastPercent && done < this.total) return;
      const width = 30;
      const filled = Math.round(fraction * width);
      const bar = "#".repeat(filled) + "-".repeat(width - filled);
      this.io.stderr(`\r${this.label} [${bar}] ${String(percent).padStart(3)}% ${detail}`.padEnd(100).slice(0, 120));
    } else if (Math.floor(percent / 10) !== Math.floor(this.lastPercent / 10) || (done >= this.total && this.lastPercent < 100)) {
      this.io.stderr(`${this.label}: ${percent}% ${detail}\n`);
    }
    this.lastPercent = percent;
  }

  done(summary: string): void {
    const seconds = ((Date.now() - this.started) / 1000).toFixed(1);
    this.io.stderr(`${this.io.isTty ? "\r" + " ".repeat(110) + "\r" : ""}${this.label}: ${summary} in ${seconds} s\n`);
  }
}
