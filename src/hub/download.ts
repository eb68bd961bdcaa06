/**
 * Downloads files from the Hugging Face Hub as huggingface_hub's `hf_hub_download` does:
 *
 * 1. `HEAD {endpoint}/{repo}/resolve/{revision}/{file}` (relative redirects followed, so a
 *    renamed repository still resolves) gives the commit (`X-Repo-Commit`), the blob's etag
 *    (`X-Linked-Etag` for LFS files, which is their sha256, else `ETag`) and its size
 *    (`X-Linked-Size`, else `Content-Length`).
 * 2. A file already in the cache under that commit, or whose blob is there, is not fetched again.
 * 3. Otherwise `GET` the same URL, following redirects (the hub sends LFS files to a CDN; the
 *    token goes only to the endpoint's origin), into `blobs/<etag>.incomplete`. A dropped
 *    connection is resumed with `Range: bytes=N-` (here, up to `retries` times, and by the next
 *    call if those run out); the bytes are hashed as they arrive and an LFS file whose sha256 is
 *    not its etag is deleted and refused. The finished blob is renamed into place, then
 *    `snapshots/<commit>/<file>` is linked to it and `refs/<revision>` records the commit.
 *
 * When the hub cannot be reached (or HF_HUB_OFFLINE=1) the cache answers if it can. Split GGUFs
 * (`NAME-00001-of-00003.gguf`) are fetched whole: every part, into the same snapshot directory,
 * so the loader finds the siblings of the first part.
 */
import { createHash, type Hash } from "node:crypto";
import { createReadStream } from "node:fs";
import { link, mkdir, open, readFile, rename, rm, stat, truncate, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { SPLIT_FILE_PATTERN, splitFileName } from "../formats/gguf/constants.js";
import { trackTemporaryOutput } from "../formats/temp-outputs.js";
import { cachedCommit, cachedFile, checkRepoFile, checkRepoId, hubCacheDir, hubToken, isCommitHash, linkSnapshot, repoFolder, writeRef, type Env } from "./cache.js";
import { HubAuthError, HubChecksumError, HubError, HubNetworkError, HubNotFoundError, HubOfflineError } from "./errors.js";

export const DEFAULT_ENDPOINT = "https://huggingface.co";

export interface HubProgress {
  /** The file being fetched now (a split part while a split model comes in). */
  file: string;
  /** 1-based part number and the number of parts (1 of 1 for an ordinary file). */
  part: number;
  parts: number;
  /** Bytes in place over all parts (including those already in the cache or resumed), and their sum. */
  done: number;
  total: number;
}

export interface HubDownloadOptions {
  /** Branch, tag or commit hash (default "main"). */
  revision?: string;
  /** Base URL (default HF_ENDPOINT or https://huggingface.co). */
  endpoint?: string;
  /** Access token (default HF_TOKEN, HUGGING_FACE_HUB_TOKEN or $HF_HOME/token); false sends none. */
  token?: string | false;
  /** Cache directory (default HF_HUB_CACHE, $HF_HOME/hub, ~/.cache/huggingface/hub). */
  cacheDir?: string;
  /** Only the cache answers (default: HF_HUB_OFFLINE is 1/true/yes/on). */
  offline?: boolean;
  /** Fetch every part of a split GGUF named NAME-0000K-of-0000N.gguf (default true). */
  wholeSplit?: boolean;
  /** Attempts after a dropped connection, each resuming where the last stopped (default 5). */
  retries?: number;
  /** First wait before a retry, doubled each time (default 1000 ms). */
  retryDelayMs?: number;
  /** Give up on a request that sends nothing for this long (default HF_HUB_DOWNLOAD_TIMEOUT or 10 s). */
  timeoutMs?: number;
  onProgress?: (progress: HubProgress) => void;
  signal?: AbortSignal;
  /** Environment to read HF_* from (default process.env). */
  env?: Env;
  /** The fetch to use (default globalThis.fetch). */
  fetch?: typeof fetch;
}

export interface HubDownload {
  repo: string;
  revision: string;
  commit: string;
  /** The snapshot path of the file; of the first part for a split model (what `-m` takes). */
  path: string;
  /** Snapshot paths of every part (one entry for an ordinary file). */
  paths: string[];
  /** Repository paths of every part. */
  files: string[];
  /** Total size in bytes. */
  bytes: number;
  /** Bytes fetched over the network by this call (0 when the cache had everything). */
  downloaded: number;
  /** The hub was not asked or could not be reached; the cache answered. Says why. */
  offline?: string;
}

interface FileMeta {
  file: string;
  commit: string;
  etag: string;
  size: number | undefined;
}

const procEnv = (): Env => (globalThis as { process?: { env: Env } }).process?.env ?? {};
const truthy = (v: string | undefined): boolean => v !== undefined && /^(1|true|yes|on)$/i.test(v.trim());

/** `hf://ORG/NAME/path/file.gguf` or `hf://ORG/NAME@REVISION/path/file.gguf` (huggingface_hub's HfFileSystem form). */
export function parseHfUri(uri: string): { repo: string; file: string; revision?: string } {
  const m = /^hf:\/\/([^/]+)\/([^/@]+)(?:@([^/]+))?\/(.+)$/.exec(uri);
  if (!m) throw new HubError(`${JSON.stringify(uri)} is not an hf:// model path (expected hf://ORG/NAME/FILE, or hf://ORG/NAME@REVISION/FILE)`);
  const repo = `${m[1]}/${m[2]}`;
  checkRepoId(repo);
  checkRepoFile(m[4]!);
  return { repo, file: m[4]!, revision: m[3] === undefined ? undefined : decodeURIComponent(m[3]) };
}

/** The resolve URL huggingface_hub builds: `{endpoint}/{repo}/resolve/{revision}/{file}`. */
export function hubFileUrl(endpoint: string, repo: string, revision: string, file: string): string {
  const base = endpoint.replace(/\/+$/, "");
  return `${base}/${repo}/resolve/${encodeURIComponent(revision)}/${file.split("/").map(encodeURIComponent).join("/")}`;
}

/** The parts of a split GGUF named like `file` (all N of them), or just `file`. */
export function splitParts(file: string): string[] {
  const slash = file.lastIndexOf("/");
  const dir = file.slice(0, slash + 1);
  const m = SPLIT_FILE_PATTERN.exec(file.slice(slash + 1));
  if (!m) return [file];
  const count = Number(m[3]);
  if (count < 1 || Number(m[2]) < 1 || Number(m[2]) > count) return [file];
  return Array.from({ length: count }, (_, i) => dir + splitFileName(m[1]!, i, count));
}

/** huggingface_hub's _normalize_etag: no weak marker, no quotes. */
function normalizeEtag(etag: string | null): string | undefined {
  if (!etag) return undefined;
  return etag.trim().replace(/^W\//, "").replace(/^"|"$/g, "");
}

const sleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const t = setTimeout(resolve, ms);
    signal?.addEventListener("abort", () => { clearTimeout(t); reject(signal.reason); }, { once: true });
  });

function describeCause(error: unknown): string {
  const e = error as { message?: string; cause?: { code?: string; message?: string } };
  const cause = e?.cause;
  if (cause?.code) return `${cause.code}${cause.message && !cause.message.includes(cause.code) ? `: ${cause.message}` : ""}`;
  if (cause?.message) return cause.message;
  return e?.message ?? String(error);
}

class Client {
  readonly endpoint: string;
  readonly origin: string;
  constructor(endpoint: string, private readonly token: string | undefined, private readonly fetchFn: typeof fetch, private readonly timeoutMs: number) {
    this.endpoint = endpoint.replace(/\/+$/, "");
    try {
      this.origin = new URL(this.endpoint).origin;
    } catch {
      throw new HubError(`HF_ENDPOINT ${JSON.stringify(endpoint)} is not a URL`);
    }
  }

  headers(url: string, extra: Record<string, string> = {}): Record<string, string> {
    const h: Record<string, string> = { "user-agent": "zh-llama/0.1.0", "accept-encoding": "identity", ...extra };
    // The token is for the hub; a CDN (another origin) never sees it.
    if (this.token && new URL(url).origin === this.origin) h.authorization = `Bearer ${this.token}`;
    return h;
  }

  /**
   * One request with redirects handled here: `followCrossOrigin` false (HEAD) stops at an
   * absolute redirect and returns it (its headers carry the metadata); true (GET) follows every
   * redirect, sending the token to the endpoint's origin only. `controller` aborts the request; the caller arms timeouts.
   */
  async request(method: "HEAD" | "GET", url: string, extra: Record<string, string>, followCrossOrigin: boolean, signal: AbortSignal): Promise<{ response: Response; url: string }> {
    let current = url;
    for (let hop = 0; hop <= 10; hop++) {
      const response = await this.fetchFn(current, { method, headers: this.headers(current, extra), redirect: "manual", signal });
      const location = response.headers.get("location");
      if (response.status >= 300 && response.status < 400 && location) {
        const next = new URL(location, current).toString();
        // HEAD follows relative redirects only (a renamed repository), as huggingface_hub does:
        // an absolute one (the CDN, or a mirror's own storage) carries the metadata itself.
        const relativeLocation = !/^[a-z][a-z0-9+.-]*:/i.test(location) && !location.startsWith("//");
        if (!followCrossOrigin && !relativeLocation) return { response, url: current };
        await response.body?.cancel().catch(() => undefined);
        current = next;
        continue;
      }
      return { response, url: current };
    }
    throw new HubNetworkError(`${url}: more than 10 redirects`);
  }
}

function statusError(status: number, headers: Headers, repo: string, revision: string, file: string, hasToken: boolean, endpoint: string): HubError {
  const code = headers.get("x-error-code") ?? "";
  const serverMessage = headers.get("x-error-message");
  const what = `${repo}/${file}`;
  const from = `(HTTP ${status} from ${endpoint})`;
  const setToken = "set HF_TOKEN to an access token (https://huggingface.co/settings/tokens)";
  if (code === "GatedRepo") {
    return new HubAuthError(`${what}: the repository is gated: accept its terms on the hub, then ${hasToken ? "check that HF_TOKEN belongs to that account" : "set HF_TOKEN to a token of that account"} ${from}`, status);
  }
  if (status === 401 || status === 403) {
    const reason = code === "RepoNotFound"
      ? hasToken ? "repository not found, or the token in HF_TOKEN has no access to it" : `repository not found, or private or gated: ${setToken}`
      : hasToken ? `${status === 401 ? "authentication failed" : "access denied"}: the token in HF_TOKEN was refused or has no access to it` : `${status === 401 ? "authentication required" : "access denied"}: ${setToken}`;
    return new HubAuthError(`${what}: ${reason} ${from}`, status);
  }
  if (status === 404) {
    const kind = code === "RevisionNotFound" ? `revision ${JSON.stringify(revision)} not found in ${repo}`
      : code === "EntryNotFound" ? `no such file in ${repo} at revision ${revision}`
      : code === "RepoNotFound" ? `repository ${repo} not found`
      : `not found at revision ${revision}${serverMessage ? ` (${serverMessage})` : ""}`;
    return new HubNotFoundError(`${what}: ${kind} ${from}`);
  }
  return new HubNetworkError(`${what}: the server answered HTTP ${status}${serverMessage ? ` (${serverMessage})` : ""} from ${endpoint}`);
}

async function withTimeout<T>(ms: number, outer: AbortSignal | undefined, fn: (signal: AbortSignal, touch: () => void) => Promise<T>): Promise<T> {
  const controller = new AbortController();
  let timer: ReturnType<typeof setTimeout> | undefined;
  const onAbort = () => controller.abort(outer!.reason);
  outer?.addEventListener("abort", onAbort, { once: true });
  const touch = () => {
    if (timer) clearTimeout(timer);
    timer = setTimeout(() => controller.abort(new HubNetworkError(`no data for ${(ms / 1000).toFixed(0)} s`)), ms);
  };
  touch();
  try {
    return await fn(controller.signal, touch);
  } catch (error) {
    if (outer?.aborted) throw outer.reason;
    if (controller.signal.aborted && controller.signal.reason instanceof HubNetworkError) throw controller.signal.reason;
    throw error;
  } finally {
    if (timer) clearTimeout(timer);
    outer?.removeEventListener("abort", onAbort);
  }
}

async function headFile(client: Client, repo: string, revision: string, file: string, hasToken: boolean, timeoutMs: number, signal?: AbortSignal): Promise<FileMeta> {
  const url = hubFileUrl(client.endpoint, repo, revision, file);
  let response: Response;
  try {
    response = await withTimeout(timeoutMs, signal, async (s) => (await client.request("HEAD", url, {}, false, s)).response);
  } catch (error) {
    if (signal?.aborted) throw error;
    if (error instanceof HubError) throw new HubNetworkError(`${url}: ${error.message}`, { cause: error });
    throw new HubNetworkError(`cannot reach ${client.endpoint} for ${repo}/${file}: ${describeCause(error)}`, { cause: error });
  }
  const status = response.status;
  if (status >= 400) throw statusError(status, response.headers, repo, revision, file, hasToken, client.endpoint);
  const commit = response.headers.get("x-repo-commit") ?? undefined;
  const etag = normalizeEtag(response.headers.get("x-linked-etag")) ?? normalizeEtag(response.headers.get("etag"));
  if (!commit || !isCommitHash(commit) || !etag || !/^[A-Za-z0-9._-]+$/.test(etag)) {
    throw new HubError(`${url}: the answer has no ${!commit ? "X-Repo-Commit header" : !isCommitHash(commit) ? "40-hex X-Repo-Commit" : "usable ETag"} (HTTP ${status}); is ${client.endpoint} a Hugging Face Hub?`);
  }
  const sizeHeader = response.headers.get("x-linked-size") ?? response.headers.get("content-length");
  const size = sizeHeader !== null && /^\d+$/.test(sizeHeader) ? Number(sizeHeader) : undefined;
  return { file, commit, etag, size };
}

async function hashFile(path: string, hash: Hash, length: number): Promise<void> {
  if (length === 0) return;
  await new Promise<void>((resolve, reject) => {
    const stream = createReadStream(path, { start: 0, end: length - 1 });
    stream.on("data", (chunk) => hash.update(chunk));
    stream.on("end", resolve);
    stream.on("error", reject);
  });
}

function isAlive(pid: number): boolean {
  if (pid === process.pid) return true;
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as { code?: string }).code === "EPERM";
  }
}

/**
 * A lock beside huggingface_hub's own (`.locks/models--ORG--NAME/<etag>.zh-llama.lock`, holding
 * the pid): two pulls of one blob do not append to one `.incomplete`. A lock whose process is
 * gone is taken over; Ctrl-C removes ours.
 */
async function withBlobLock<T>(lockPath: string, signal: AbortSignal | undefined, fn: () => Promise<T>): Promise<T> {
  await mkdir(dirname(lockPath), { recursive: true });
  for (;;) {
    // The lock appears with its pid already in it (written aside, then hard-linked into place):
    // created empty and then written, a second pull could read it empty in between, take it
    // for a dead process's and take it over (the test of two pulls at once saw that under load).
    const mine = `${lockPath}.${process.pid}.${Math.random().toString(36).slice(2)}`;
    await writeFile(mine, String(process.pid));
    let taken = false;
    try {
      await link(mine, lockPath);
      taken = true;
    } catch (error) {
      if ((error as { code?: string }).code !== "EEXIST") throw error;
    } finally {
      await rm(mine, { force: true });
    }
    if (taken) break;
    const pid = Number((await readFile(lockPath, "utf8").catch(() => "")).trim());
    if (!Number.isInteger(pid) || pid <= 0 || !isAlive(pid)) {
      await rm(lockPath, { force: true });
      continue;
    }
    await sleep(200, signal);
  }
  const untrack = await trackTemporaryOutput(lockPath);
  try {
    return await fn();
  } finally {
    await rm(lockPath, { force: true }).catch(() => undefined);
    untrack();
  }
}

interface BlobJob {
  client: Client;
  url: string;
  blob: string;
  meta: FileMeta;
  repo: string;
  retries: number;
  retryDelayMs: number;
  timeoutMs: number;
  signal?: AbortSignal;
  onBytes: (inPlace: number) => void;
  hasToken: boolean;
  revision: string;
}

/** Fetches one blob into `blob` through `blob.incomplete`; returns the bytes fetched. */
async function downloadBlob(job: BlobJob): Promise<number> {
  const { client, url, blob, meta } = job;
  const incomplete = `${blob}.incomplete`;
  const expectedSha = /^[0-9a-f]{64}$/.test(meta.etag) ? meta.etag : undefined;
  await mkdir(dirname(blob), { recursive: true });
  let hash = createHash("sha256");
  let offset = await stat(incomplete).then((s) => s.size, () => 0);
  if (meta.size !== undefined && offset > meta.size) {
    await truncate(incomplete, 0);
    offset = 0;
  }
  if (offset > 0) await hashFile(incomplete, hash, offset);
  job.onBytes(offset);
  let fetched = 0;
  let attempt = 0;
  for (;;) {
    const complete = meta.size !== undefined && offset === meta.size;
    if (complete) break;
    try {
      const got = await withTimeout(job.timeoutMs, job.signal, async (signal, touch) => {
        const range: Record<string, string> = offset > 0 ? { range: `bytes=${offset}-` } : {};
        const { response } = await client.request("GET", url, range, true, signal);
        if (response.status >= 400 && response.status !== 416) {
          await response.body?.cancel().catch(() => undefined);
          throw statusError(response.status, response.headers, job.repo, job.revision, meta.file, job.hasToken, client.endpoint);
        }
        if (response.status === 416) {
          // Nothing left to send: the partial file is already whole (or longer than the file).
          await response.body?.cancel().catch(() => undefined);
          return { restart: meta.size === undefined || offset !== meta.size, bytes: 0, ended: true };
        }
        if (offset > 0 && response.status === 200) {
          // The server ignored the Range: start over.
          await truncate(incomplete, 0);
          offset = 0;
          hash = createHash("sha256");
          job.onBytes(0);
        } else if (response.status === 206) {
          const start = /^bytes (\d+)-/.exec(response.headers.get("content-range") ?? "");
          if (!start || Number(start[1]) !== offset) {
            await response.body?.cancel().catch(() => undefined);
            throw new HubNetworkError(`${url}: asked for bytes from ${offset}, got Content-Range ${JSON.stringify(response.headers.get("content-range"))}`);
          }
        } else if (response.status !== 200) {
          await response.body?.cancel().catch(() => undefined);
          throw new HubNetworkError(`${url}: unexpected HTTP ${response.status}`);
        }
        if (!response.body) return { restart: false, bytes: 0, ended: true };
        const fh = await open(incomplete, "a");
        let bytes = 0;
        try {
          const reader = response.body.getReader();
          for (;;) {
            const { done, value } = await reader.read();
            if (done) break;
            touch();
            await fh.write(value);
            hash.update(value);
            bytes += value.byteLength;
            offset += value.byteLength;
            fetched += value.byteLength;
            job.onBytes(offset);
            if (meta.size !== undefined && offset > meta.size) throw new HubError(`${url}: the server sent more than the announced ${meta.size} bytes`);
          }
        } finally {
          await fh.close();
        }
        return { restart: false, bytes, ended: true };
      });
      if (got.restart) {
        await truncate(incomplete, 0);
        offset = 0;
        hash = createHash("sha256");
        job.onBytes(0);
        if (++attempt > job.retries) throw new HubNetworkError(`${url}: the server refused the resume range and retries ran out`);
        continue;
      }
      if (meta.size === undefined) break; // no size announced: the end of the body is the end
      if (offset === meta.size) break;
      if (got.bytes > 0) attempt = 0;
      throw new HubNetworkError(`the connection ended after ${offset} of ${meta.size} bytes`);
    } catch (error) {
      if (job.signal?.aborted) throw job.signal.reason ?? error;
      if (error instanceof HubAuthError || error instanceof HubNotFoundError || (error instanceof HubError && !(error instanceof HubNetworkError))) throw error;
      if (++attempt > job.retries) {
        throw new HubNetworkError(
          `${job.repo}/${meta.file}: the download failed after ${offset}${meta.size === undefined ? "" : ` of ${meta.size}`} bytes (${describeCause(error)}); ` +
            `the partial file is kept and the next pull resumes it`,
          { cause: error },
        );
      }
      await sleep(job.retryDelayMs * 2 ** (attempt - 1), job.signal);
    }
  }
  const digest = hash.digest("hex");
  if (expectedSha !== undefined && digest !== expectedSha) {
    await rm(incomplete, { force: true });
    throw new HubChecksumError(`${job.repo}/${meta.file}: the ${offset} bytes received hash to sha256 ${digest}, but the hub announced ${expectedSha}; the download was deleted (try again)`);
  }
  await rename(incomplete, blob);
  return fetched;
}

/**
 * Downloads `file` from model repository `repo` into the huggingface_hub cache (or finds it
 * there) and returns its snapshot path. A split GGUF comes whole; `path` is its first part.
 */
export async function hubDownload(repo: string, file: string, options: HubDownloadOptions = {}): Promise<HubDownload> {
  checkRepoId(repo);
  checkRepoFile(file);
  const env = options.env ?? procEnv();
  const revision = options.revision ?? "main";
  if (revision === "" || revision.split("/").some((p) => p === "" || p === "." || p === "..")) throw new HubError(`${JSON.stringify(revision)} is not a revision`);
  const endpoint = options.endpoint ?? (env.HF_ENDPOINT || DEFAULT_ENDPOINT);
  const cacheDir = options.cacheDir ?? hubCacheDir(env);
  const folder = repoFolder(cacheDir, repo);
  // A split model comes whole and is named by its first part, which is what the loader opens.
  const files = options.wholeSplit === false ? [file] : splitParts(file);
  const offline = options.offline ?? (truthy(env.HF_HUB_OFFLINE) || truthy(env.TRANSFORMERS_OFFLINE));
  const timeoutMs = options.timeoutMs ?? (env.HF_HUB_DOWNLOAD_TIMEOUT && Number(env.HF_HUB_DOWNLOAD_TIMEOUT) > 0 ? Number(env.HF_HUB_DOWNLOAD_TIMEOUT) * 1000 : 10_000);

  const fromCache = async (why: string | undefined): Promise<HubDownload | undefined> => {
    const paths: string[] = [];
    for (const f of files) {
      const p = await cachedFile(folder, revision, f);
      if (!p) return undefined;
      paths.push(p);
    }
    let bytes = 0;
    for (const p of paths) bytes += (await stat(p)).size;
    const commit = (await cachedCommit(folder, revision))!;
    const done = { repo, revision, commit, path: paths[0]!, paths, files, bytes, downloaded: 0, offline: why };
    options.onProgress?.({ file: files[files.length - 1]!, part: files.length, parts: files.length, done: bytes, total: bytes });
    return done;
  };

  // A commit hash names immutable content: if it is here, the hub need not be asked.
  if (isCommitHash(revision)) {
    const hit = await fromCache(undefined);
    if (hit) return hit;
  }
  if (offline) {
    const hit = await fromCache("HF_HUB_OFFLINE is set");
    if (hit) return hit;
    throw new HubOfflineError(`${repo}/${file} (revision ${revision}) is not in the cache ${cacheDir}, and HF_HUB_OFFLINE is set`);
  }

  const token = options.token === false ? undefined : options.token ?? (await hubToken(env));
  const fetchFn = options.fetch ?? globalThis.fetch;
  if (typeof fetchFn !== "function") throw new HubError("this runtime has no fetch");
  const client = new Client(endpoint, token, fetchFn, timeoutMs);

  const metas: FileMeta[] = [];
  try {
    for (const f of files) metas.push(await headFile(client, repo, revision, f, token !== undefined, timeoutMs, options.signal));
  } catch (error) {
    if (error instanceof HubNetworkError) {
      // huggingface_hub's fallback: an unreachable hub is not an error when the cache has the file.
      const hit = await fromCache(`the hub could not be reached (${error.message})`);
      if (hit) return hit;
    }
    throw error;
  }
  const commit = metas[0]!.commit;
  if (metas.some((m) => m.commit !== commit)) throw new HubError(`${repo}: the parts of ${file} resolved to different commits (the repository changed during the pull); try again`);
  await mkdir(folder, { recursive: true });
  await writeRef(folder, revision, commit);

  const sizes = metas.map((m) => m.size ?? 0);
  const total = sizes.reduce((a, b) => a + b, 0);
  let before = 0;
  let downloaded = 0;
  const paths: string[] = [];
  for (let i = 0; i < metas.length; i++) {
    const meta = metas[i]!;
    const pointer = join(folder, "snapshots", commit, ...meta.file.split("/"));
    const blob = join(folder, "blobs", meta.etag);
    const report = (inPlace: number) => options.onProgress?.({ file: meta.file, part: i + 1, parts: metas.length, done: before + inPlace, total: Math.max(total, before + inPlace) });
    const pointed = await stat(pointer).then((s) => s.isFile(), () => false);
    const blobThere = await stat(blob).then((s) => s.isFile(), () => false);
    if (!pointed || !blobThere) {
      if (!blobThere) {
        const lock = join(cacheDir, ".locks", `models--${repo.split("/").join("--")}`, `${meta.etag}.zh-llama.lock`);
        downloaded += await withBlobLock(lock, options.signal, async () => {
          // Another process may have finished it while we waited for the lock.
          if (await stat(blob).then((s) => s.isFile(), () => false)) return 0;
          return downloadBlob({
            client, url: hubFileUrl(client.endpoint, repo, revision, meta.file), blob, meta, repo, revision,
            retries: options.retries ?? 5, retryDelayMs: options.retryDelayMs ?? 1000, timeoutMs,
            signal: options.signal, onBytes: report, hasToken: token !== undefined,
          });
        });
      }
      await linkSnapshot(blob, pointer);
    }
    const size = (await stat(pointer)).size;
    before += size;
    report(0);
    paths.push(pointer);
  }
  return { repo, revision, commit, path: paths[0]!, paths, files, bytes: before, downloaded };
}

/** Resolves `hf://ORG/NAME[@REVISION]/FILE` to a local path (downloading it if need be); other strings unchanged. */
export async function resolveHfPath(pathOrUri: string, options: HubDownloadOptions = {}): Promise<string> {
  if (!pathOrUri.startsWith("hf://")) return pathOrUri;
  const { repo, file, revision } = parseHfUri(pathOrUri);
  return (await hubDownload(repo, file, { ...options, revision: options.revision ?? revision })).path;
}
