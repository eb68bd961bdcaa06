/**
 * Temporary outputs (`OUT.PID.RAND.tmp`, `OUT.sha256.PID.RAND.tmp`, `OUT.partial-PID-RAND/`,
 * `OUT.old-PID-RAND/`) that atomic writers stage beside a target, and what happens to them
 * when the writer does not finish:
 *
 * - a thrown error: the writer removes its own (writeAtomically, writeDirectoryAtomically);
 * - SIGINT / SIGTERM / SIGHUP that would end the process (no other handler for it): every
 *   temporary output still registered is removed, then the signal is re-raised;
 * - kill -9 or a power cut: the next write of the same target sweeps the leftovers of
 *   processes that no longer exist (sweepStaleOutputs); a `.old-` directory left between the
 *   two renames of a --force replacement is put back when the target is missing.
 *
 * Also turns file-system failures (ENOSPC, EACCES, EROFS ...) into one-line OutputErrors.
 * No node: imports at the top: this module is reachable from browser builds.
 */
import { OutputError, ZhLlamaError } from "../errors.js";

type FsSync = typeof import("node:fs");

let fsSync: FsSync | undefined;
const live = new Set<string>();
const SIGNALS = ["SIGINT", "SIGTERM", "SIGHUP"] as const;
let installed = false;

const proc = (): NodeJS.Process | undefined => (globalThis as { process?: NodeJS.Process }).process;

function removeAllSync(): void {
  if (!fsSync) return;
  for (const path of live) {
    try {
      fsSync.rmSync(path, { recursive: true, force: true });
    } catch {
      // Best effort: the next run sweeps what is left.
    }
  }
  live.clear();
}

function onSignal(signal: NodeJS.Signals): void {
  const p = proc()!;
  // Someone else handles this signal (chat's Ctrl-C): the process is not ending because of it.
  if (p.listenerCount(signal) > 1) return;
  removeAllSync();
  uninstall();
  p.kill(p.pid, signal);
}

function onExit(): void {
  removeAllSync();
}

function install(): void {
  const p = proc();
  if (installed || !p?.on) return;
  installed = true;
  for (const s of SIGNALS) p.on(s, onSignal);
  p.on("exit", onExit);
}

function uninstall(): void {
  const p = proc();
  if (!installed || !p?.off) return;
  installed = false;
  for (const s of SIGNALS) p.off(s, onSignal);
  p.off("exit", onExit);
}

/** Registers a temporary output for removal on a fatal signal; call the result when it is gone or renamed. */
export async function trackTemporaryOutput(path: string): Promise<() => void> {
  fsSync ??= await import("node:fs");
  live.add(path);
  install();
  return () => {
    live.delete(path);
    if (live.size === 0) uninstall();
  };
}

/** Temporary outputs registered now (tests). */
export function trackedTemporaryOutputs(): string[] {
  return [...live];
}

function isAlive(pid: number): boolean {
  const p = proc();
  if (!p || pid === p.pid) return true;
  try {
    p.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as { code?: string }).code === "EPERM";
  }
}

const escapeRe = (s: string): string => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");

/**
 * Removes what interrupted writes of `target` by processes that no longer exist left beside it,
 * and puts back a target that a --force replacement had moved aside. Returns the names removed
 * or restored.
 */
export async function sweepStaleOutputs(target: string): Promise<string[]> {
  const fs = await import("node:fs/promises");
  const { dirname, basename, join } = await import("node:path");
  const dir = dirname(target);
  const base = escapeRe(basename(target));
  const temp = new RegExp(`^${base}(?:\\.sha256)?\\.(\\d+)\\.[a-z0-9]+\\.tmp$`);
  const partial = new RegExp(`^${base}\\.partial-(\\d+)-[a-z0-9]+$`);
  const old = new RegExp(`^${base}\\.old-(\\d+)-[a-z0-9]+$`);
  const names = await fs.readdir(dir).catch(() => [] as string[]);
  const done: string[] = [];
  for (const name of names) {
    const m = temp.exec(name) ?? partial.exec(name);
    if (m && !isAlive(Number(m[1]))) {
      await fs.rm(join(dir, name), { recursive: true, force: true }).catch(() => undefined);
      done.push(name);
      continue;
    }
    const o = old.exec(name);
    if (o && !isAlive(Number(o[1]))) {
      const targetExists = await fs.stat(target).then(() => true, () => false);
      if (targetExists) await fs.rm(join(dir, name), { recursive: true, force: true }).catch(() => undefined);
      else await fs.rename(join(dir, name), target).catch(() => undefined);
      done.push(name);
    }
  }
  return done;
}

const FS_CAUSES: Record<string, string> = {
  ENOSPC: "no space left on the device",
  EDQUOT: "the disk quota is exhausted",
  EFBIG: "the file is too large for the file system",
  EROFS: "the file system is read-only",
  EACCES: "permission denied",
  EPERM: "operation not permitted",
  EIO: "an input/output error",
  ENOENT: "the directory does not exist",
  ENOTDIR: "a part of the path is not a directory",
  EISDIR: "it is a directory",
};

/** A file-system failure while writing `path` as a one-line OutputError; other errors unchanged. */
export function outputError(path: string, error: unknown): unknown {
  if (error instanceof ZhLlamaError || typeof error !== "object" || error === null) return error;
  const code = (error as { code?: unknown }).code;
  if (typeof code !== "string" || !/^E[A-Z]+$/.test(code)) return error;
  const cause = FS_CAUSES[code] ?? (error as Error).message;
  return new OutputError(`${path}: cannot write it: ${cause} (${code}); nothing was left under that name`, { cause: error });
}
