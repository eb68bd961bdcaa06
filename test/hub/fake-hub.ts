/**
 * A local stand-in for the Hugging Face Hub on 127.0.0.1, answering as huggingface.co does:
 * `HEAD|GET /{org}/{name}/resolve/{revision}/{file}` with X-Repo-Commit, ETag and, for LFS files,
 * a 302 to a second server (the "CDN", another origin) with X-Linked-Etag (the sha256) and
 * X-Linked-Size; 401 (X-Error-Code: RepoNotFound) for unknown or private repositories without
 * the right token, 404 with EntryNotFound / RevisionNotFound. The CDN honours Range requests
 * and can be told to drop the connection after N bytes, or to serve the wrong bytes.
 */
import { createHash } from "node:crypto";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";

export interface FakeFile {
  data: Uint8Array;
  /** Stored with git LFS: served through the CDN, etag = sha256 (default true). */
  lfs?: boolean;
}

export interface FakeRepo {
  commit: string;
  files: Record<string, FakeFile>;
  /** Only this token may read it. */
  token?: string;
}

export interface LoggedRequest {
  server: "hub" | "cdn";
  method: string;
  path: string;
  range?: string;
  authorization?: string;
}

const sha256 = (data: Uint8Array) => createHash("sha256").update(data).digest("hex");
const gitSha1 = (data: Uint8Array) => createHash("sha1").update(`blob ${data.byteLength}\0`).update(data).digest("hex");

export class FakeHub {
  readonly repos = new Map<string, FakeRepo>();
  readonly log: LoggedRequest[] = [];
  /** For the next GETs of a CDN blob: send this many bytes of the answer, then destroy the socket. */
  dropAfter: number[] = [];
  /** sha256 -> bytes served instead (a corrupted CDN object). */
  readonly corrupt = new Map<string, Uint8Array>();
  /** Ignore Range headers (answer 200 with everything). */
  ignoreRange = false;
  /** Old repository id -> new one: answered with a relative 307, as the hub does for a renamed repository. */
  readonly renamed = new Map<string, string>();
  private hub!: Server;
  private cdn!: Server;
  hubUrl = "";
  cdnUrl = "";

  async start(): Promise<this> {
    this.hub = createServer((req, res) => this.onHub(req, res));
    this.cdn = createServer((req, res) => this.onCdn(req, res));
    await Promise.all([this.hub, this.cdn].map((s) => new Promise<void>((r) => s.listen(0, "127.0.0.1", r))));
    this.hubUrl = `http://127.0.0.1:${(this.hub.address() as AddressInfo).port}`;
    this.cdnUrl = `http://127.0.0.1:${(this.cdn.address() as AddressInfo).port}`;
    return this;
  }

  async stop(): Promise<void> {
    for (const s of [this.hub, this.cdn]) {
      s.closeAllConnections();
      await new Promise<void>((r) => s.close(() => r()));
    }
  }

  requests(server?: "hub" | "cdn", method?: string): LoggedRequest[] {
    return this.log.filter((r) => (!server || r.server === server) && (!method || r.method === method));
  }

  private record(server: "hub" | "cdn", req: IncomingMessage) {
    this.log.push({ server, method: req.method!, path: req.url!, range: req.headers.range, authorization: req.headers.authorization });
  }

  private onHub(req: IncomingMessage, res: ServerResponse) {
    this.record("hub", req);
    const m = /^\/([^/]+)\/([^/]+)\/resolve\/([^/]+)\/(.+)$/.exec(req.url!.split("?")[0]!);
    const fail = (status: number, code: string, message: string) => {
      res.writeHead(status, { "x-error-code": code, "x-error-message": message, "content-type": "text/plain" });
      res.end(message);
    };
    if (!m) return fail(404, "", "no such route");
    const moved = this.renamed.get(`${m[1]}/${m[2]}`);
    if (moved) {
      res.writeHead(307, { location: `/${moved}/resolve/${m[3]}/${m[4]}` });
      return res.end();
    }
    const repo = this.repos.get(`${m[1]}/${m[2]}`);
    const auth = req.headers.authorization;
    if (!repo || (repo.token !== undefined && auth !== `Bearer ${repo.token}`)) {
      return fail(401, "RepoNotFound", "Repository not found");
    }
    const revision = decodeURIComponent(m[3]!);
    if (revision !== "main" && revision !== repo.commit) return fail(404, "RevisionNotFound", "Invalid rev id: " + revision);
    const file = m[4]!.split("/").map(decodeURIComponent).join("/");
    const entry = repo.files[file];
    if (!entry) return fail(404, "EntryNotFound", `${file} does not exist on "${revision}"`);
    const lfs = entry.lfs ?? true;
    if (lfs) {
      const sha = sha256(entry.data);
      res.writeHead(302, {
        location: `${this.cdnUrl}/repos/${sha}?X-Amz-Signature=abc`,
        "x-repo-commit": repo.commit,
        "x-linked-etag": `"${sha}"`,
        "x-linked-size": String(entry.data.byteLength),
        etag: `"${gitSha1(entry.data).slice(0, 40)}"`,
        "content-length": "0",
      });
      return res.end();
    }
    res.writeHead(200, { "x-repo-commit": repo.commit, etag: `"${gitSha1(entry.data)}"`, "content-length": String(entry.data.byteLength), "accept-ranges": "bytes" });
    res.end(req.method === "HEAD" ? undefined : Buffer.from(entry.data));
  }

  private onCdn(req: IncomingMessage, res: ServerResponse) {
    this.record("cdn", req);
    const m = /^\/repos\/([0-9a-f]{64})\?/.exec(req.url!);
    let data: Uint8Array | undefined;
    for (const repo of this.repos.values()) for (const f of Object.values(repo.files)) if (m && sha256(f.data) === m[1]) data = f.data;
    if (!m || !data) {
      res.writeHead(404);
      return res.end();
    }
    data = this.corrupt.get(m[1]!) ?? data;
    let start = 0;
    const range = /^bytes=(\d+)-$/.exec(req.headers.range ?? "");
    if (range && !this.ignoreRange) {
      start = Number(range[1]);
      if (start >= data.byteLength) {
        res.writeHead(416, { "content-range": `bytes */${data.byteLength}` });
        return res.end();
      }
    }
    const body = Buffer.from(data.subarray(start));
    const headers = { "content-length": String(body.byteLength), "accept-ranges": "bytes", "content-type": "application/octet-stream" };
    if (range && !this.ignoreRange) res.writeHead(206, { ...headers, "content-range": `bytes ${start}-${data.byteLength - 1}/${data.byteLength}` });
    else res.writeHead(200, headers);
    if (req.method === "HEAD") return res.end();
    const drop = this.dropAfter.shift();
    if (drop !== undefined && drop < body.byteLength) {
      res.write(body.subarray(0, drop), () => setTimeout(() => res.socket?.destroy(), 20));
      return;
    }
    res.end(body);
  }
}

export const fakeCommit = (seed: string) => createHash("sha1").update(seed).digest("hex");
export { sha256, gitSha1 };
