/**
 * huggingface_hub's cache layout, so that a file pulled here is found by `huggingface-cli`,
 * `transformers`, llama.cpp's `-hf` users and the other way round:
 *
 *   $HF_HUB_CACHE (default $HF_HOME/hub, $HF_HOME default ~/.cache/huggingface)
 *     models--ORG--NAME/
 *       blobs/<etag>                 the file's bytes, named by the hub's etag (sha256 for LFS)
 *       blobs/<etag>.incomplete      a download in progress (resumed with a Range request)
 *       snapshots/<commit>/<file>    a relative symlink to ../../blobs/<etag>
 *       refs/<revision>              the commit hash the revision (branch, tag) pointed at
 */
import { lstat, mkdir, readFile, realpath, writeFile, rename, symlink, link, copyFile, rm, stat } from "node:fs/promises";
import { homedir } from "node:os";
import { dirname, join, relative } from "node:path";
import { HubError } from "./errors.js";

export type Env = Record<string, string | undefined>;

const env = (): Env => (globalThis as { process?: { env: Env } }).process?.env ?? {};

/** The hub cache directory: HF_HUB_CACHE, HUGGINGFACE_HUB_CACHE, $HF_HOME/hub, $XDG_CACHE_HOME/huggingface/hub, ~/.cache/huggingface/hub. */
export function hubCacheDir(e: Env = env()): string {
  const explicit = e.HF_HUB_CACHE || e.HUGGINGFACE_HUB_CACHE;
  if (explicit) return expandHome(explicit);
  return join(hfHome(e), "hub");
}

/** $HF_HOME, default $XDG_CACHE_HOME/huggingface or ~/.cache/huggingface. */
export function hfHome(e: Env = env()): string {
  if (e.HF_HOME) return expandHome(e.HF_HOME);
  return join(e.XDG_CACHE_HOME ? expandHome(e.XDG_CACHE_HOME) : join(homedir(), ".cache"), "huggingface");
}

function expandHome(p: string): string {
  return p === "~" || p.startsWith("~/") ? join(homedir(), p.slice(1)) : p;
}

/** The token: HF_TOKEN, the legacy HUGGING_FACE_HUB_TOKEN, or the file `huggingface-cli login` writes ($HF_TOKEN_PATH, $HF_HOME/token). */
export async function hubToken(e: Env = env()): Promise<string | undefined> {
  const fromEnv = e.HF_TOKEN || e.HUGGING_FACE_HUB_TOKEN;
  if (fromEnv) return fromEnv.trim();
  const path = e.HF_TOKEN_PATH ? expandHome(e.HF_TOKEN_PATH) : join(hfHome(e), "token");
  try {
    const text = (await readFile(path, "utf8")).trim();
    return text || undefined;
  } catch {
    return undefined;
  }
}

const REPO_RE = /^[A-Za-z0-9][A-Za-z0-9._-]*\/[A-Za-z0-9][A-Za-z0-9._-]*$/;

/** Throws unless `repo` is ORG/NAME as the hub spells repository ids. */
export function checkRepoId(repo: string): void {
  if (!REPO_RE.test(repo) || repo.includes("..") || repo.includes("--")) {
    throw new HubError(`${JSON.stringify(repo)} is not a Hugging Face model repository id (expected ORG/NAME, e.g. hfl/chinese-alpaca-2-7b-gguf)`);
  }
}

/** Throws unless `file` is a relative path inside a repository (no `..`, no absolute path). */
export function checkRepoFile(file: string): void {
  const parts = file.split("/");
  if (file === "" || file.startsWith("/") || file.includes("\\") || file.includes("\0") || parts.some((p) => p === "" || p === "." || p === "..")) {
    throw new HubError(`${JSON.stringify(file)} is not a file path inside a repository`);
  }
}

/** `models--ORG--NAME` under the cache. */
export function repoFolder(cacheDir: string, repo: string): string {
  return join(cacheDir, `models--${repo.split("/").join("--")}`);
}

export const isCommitHash = (revision: string): boolean => /^[0-9a-f]{40}$/.test(revision);

/** The commit a revision points at in the cache: itself if it is a hash, else refs/REVISION. */
export async function cachedCommit(folder: string, revision: string): Promise<string | undefined> {
  if (isCommitHash(revision)) return revision;
  try {
    const commit = (await readFile(join(folder, "refs", revision), "utf8")).trim();
    return isCommitHash(commit) ? commit : undefined;
  } catch {
    return undefined;
  }
}

/** The snapshot path of `file` if it is in the cache for `revision` and its blob is there. */
export async function cachedFile(folder: string, revision: string, file: string): Promise<string | undefined> {
  const commit = await cachedCommit(folder, revision);
  if (!commit) return undefined;
  const pointer = join(folder, "snapshots", commit, ...file.split("/"));
  try {
    // stat follows the symlink: a dangling pointer (blob deleted) counts as missing.
    const s = await stat(pointer);
    return s.isFile() ? pointer : undefined;
  } catch {
    return undefined;
  }
}

export async function writeRef(folder: string, revision: string, commit: string): Promise<void> {
  if (revision === commit) return;
  const ref = join(folder, "refs", ...revision.split("/"));
  const current = await readFile(ref, "utf8").then((s) => s.trim(), () => undefined);
  if (current === commit) return;
  await mkdir(dirname(ref), { recursive: true });
  const temp = `${ref}.${process.pid}.${Math.random().toString(36).slice(2, 10)}.tmp`;
  await writeFile(temp, commit);
  await rename(temp, ref);
}

/**
 * Points `snapshots/<commit>/<file>` at the blob: a relative symlink as huggingface_hub makes,
 * else (a file system or OS without symlinks) a hard link, else a copy.
 */
export async function linkSnapshot(blob: string, pointer: string): Promise<void> {
  await mkdir(dirname(pointer), { recursive: true });
  const existing = await lstat(pointer).catch(() => undefined);
  if (existing) {
    const target = await realpath(pointer).catch(() => undefined);
    if (target !== undefined && target === (await realpath(blob))) return;
    await rm(pointer, { force: true });
  }
  try {
    await symlink(relative(dirname(pointer), blob), pointer);
    return;
  } catch {
    // Symlinks refused (Windows without developer mode, some mounted file systems).
  }
  try {
    await link(blob, pointer);
  } catch {
    await copyFile(blob, pointer);
  }
}
