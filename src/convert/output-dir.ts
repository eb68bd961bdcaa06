/**
 * Output directories that appear complete or not at all, and their SHA-256 manifests.
 *
 * Everything is written into a staging directory beside the target (`OUT.partial-PID-XXXX`),
 * the manifest last; only then is the staging directory renamed to OUT. A crash, a full disk
 * or a thrown error leaves no OUT (or the old OUT, untouched) and removes the staging
 * directory; so does SIGINT / SIGTERM, and the next write of OUT sweeps the staging directories
 * of processes killed outright. `--force` moves an existing OUT aside (`OUT.old-PID-XXXX`),
 * renames the new one in, then deletes the old; a kill between the two renames leaves the old
 * one aside, and the next write puts it back. A full disk is a one-line OutputError.
 *
 * The manifest is `SHA256SUMS` in `sha256sum` format ("HEX  NAME"), so `sha256sum -c` and
 * `zh-llama verify` both check it.
 */
import { InvalidArgumentError } from "../errors.js";
import { ZhLlamaError } from "../errors.js";
import { outputError, sweepStaleOutputs, trackTemporaryOutput } from "../formats/temp-outputs.js";

export const MANIFEST_NAME = "SHA256SUMS";

export class VerifyError extends ZhLlamaError {}

async function exists(path: string): Promise<boolean> {
  const fs = await import("node:fs/promises");
  return fs.stat(path).then(() => true, () => false);
}

/** Fills a fresh staging directory, writes its manifest, and renames it to `out`. */
export async function writeDirectoryAtomically(out: string, overwrite: boolean, fill: (dir: string) => Promise<void>): Promise<string[]> {
  const fs = await import("node:fs/promises");
  await sweepStaleOutputs(out);
  if (!overwrite && (await exists(out))) throw new InvalidArgumentError(`${out} already exists (pass --force to replace it)`);
  const suffix = `${process.pid}-${Math.random().toString(36).slice(2, 8)}`;
  const staging = `${out}.partial-${suffix}`;
  const untrack = await trackTemporaryOutput(staging);
  try {
    await fs.mkdir(staging);
    await fill(staging);
    const names = await writeManifest(staging);
    if (await exists(out)) {
      if (!overwrite) throw new InvalidArgumentError(`${out} appeared while writing (pass --force to replace it)`);
      const old = `${out}.old-${suffix}`;
      await fs.rename(out, old);
      await fs.rename(staging, out);
      untrack();
      await fs.rm(old, { recursive: true, force: true });
    } else {
      await fs.rename(staging, out);
      untrack();
    }
    return names;
  } catch (error) {
    await fs.rm(staging, { recursive: true, force: true }).catch(() => undefined);
    untrack();
    throw outputError(out, error);
  }
}

/** SHA-256 of a file, streamed. */
export async function sha256File(path: string): Promise<string> {
  const { createHash } = await import("node:crypto");
  const { createReadStream } = await import("node:fs");
  const hash = createHash("sha256");
  for await (const chunk of createReadStream(path, { highWaterMark: 1 << 22 })) hash.update(chunk as Buffer);
  return hash.digest("hex");
}

/** Hashes every regular file of `dir` (not recursing) into SHA256SUMS; returns the names. */
export async function writeManifest(dir: string): Promise<string[]> {
  const fs = await import("node:fs/promises");
  const { join } = await import("node:path");
  const names = (await fs.readdir(dir, { withFileTypes: true })).filter((d) => d.isFile() && d.name !== MANIFEST_NAME).map((d) => d.name).sort();
  const lines: string[] = [];
  for (const name of names) lines.push(`${await sha256File(join(dir, name))}  ${name}`);
  await fs.writeFile(join(dir, MANIFEST_NAME), lines.join("\n") + "\n");
  return names;
}

/** Writes `FILE.sha256` beside a single output file. */
export async function writeFileManifest(path: string): Promise<string> {
  const fs = await import("node:fs/promises");
  const { basename } = await import("node:path");
  const manifest = `${path}.sha256`;
  await fs.writeFile(manifest, `${await sha256File(path)}  ${basename(path)}\n`);
  return manifest;
}

export interface VerifyResult {
  manifest: string;
  ok: string[];
  bad: { name: string; problem: string }[];
  /** Files in the directory the manifest does not list. */
  unlisted: string[];
}

/**
 * Checks a manifest: a directory (its SHA256SUMS), a SHA256SUMS / *.sha256 file, or a model
 * file with FILE.sha256 beside it.
 */
export async function verifyManifest(target: string): Promise<VerifyResult> {
  const fs = await import("node:fs/promises");
  const { join, dirname, basename } = await import("node:path");
  const stat = await fs.stat(target).catch(() => undefined);
  if (!stat) throw new VerifyError(`${target}: no such file or directory`);
  let manifest: string;
  if (stat.isDirectory()) manifest = join(target, MANIFEST_NAME);
  else if (basename(target) === MANIFEST_NAME || target.endsWith(".sha256")) manifest = target;
  else manifest = `${target}.sha256`;
  const text = await fs.readFile(manifest, "utf8").catch(() => {
    throw new VerifyError(`${manifest}: no manifest to verify against`);
  });
  const dir = dirname(manifest);
  const result: VerifyResult = { manifest, ok: [], bad: [], unlisted: [] };
  const listed = new Set<string>();
  for (const [i, line] of text.split("\n").entries()) {
    if (line.trim() === "") continue;
    const m = /^([0-9a-f]{64}) [ *](.+)$/.exec(line);
    if (!m) throw new VerifyError(`${manifest}:${i + 1}: not a "SHA256  NAME" line`);
    const name = m[2]!;
    if (name.includes("/") || name.includes("\\") || name === "..") throw new VerifyError(`${manifest}:${i + 1}: ${JSON.stringify(name)} is not a plain file name`);
    listed.add(name);
    const path = join(dir, name);
    if (!(await exists(path))) result.bad.push({ name, problem: "missing" });
    else if ((await sha256File(path)) !== m[1]) result.bad.push({ name, problem: "checksum differs" });
    else result.ok.push(name);
  }
  if (stat.isDirectory()) {
    for (const d of await fs.readdir(dir, { withFileTypes: true })) {
      if (d.isFile() && d.name !== MANIFEST_NAME && !listed.has(d.name)) result.unlisted.push(d.name);
    }
  }
  return result;
}
