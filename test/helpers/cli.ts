/** Runs the zh-llama CLI in-process with in-memory stdout/stderr (not a terminal). */
import { main } from "../../src/cli/index.js";
import type { CliIo } from "../../src/cli/command.js";

export async function runCli(...argv: string[]): Promise<{ status: number; stdout: string; stderr: string }> {
  let stdout = "";
  let stderr = "";
  const io: CliIo = { stdout: (t) => void (stdout += t), stderr: (t) => void (stderr += t), isTty: false };
  const status = await main(argv, io);
  return { status, stdout, stderr };
}
