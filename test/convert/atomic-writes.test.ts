/**
 * Issue 19: interrupted writes leave nothing behind. SIGTERM / SIGINT remove the temporary
 * file or staging directory; after kill -9 the next write of the same target sweeps the
 * leftovers of dead processes (and puts back an output a --force replacement had moved
 * aside); a file and its .sha256 manifest always match; a full disk is a one-line
 * OutputError with nothing left under the name. Child processes run the compiled dist/.
 */
import { execFile, spawn } from "node:child_process";
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { verifyManifest, writeDirectoryAtomically } from "../../src/convert/output-dir.js";
import { OutputError } from "../../src/errors.js";
import { writeAtomically, writeAll, writeGguf } from "../../src/formats/gguf/index.js";
import { GGMLType } from "../../src/formats/ggml-types.js";
import { sweepStaleOutputs, trackedTemporaryOutputs } from "../../src/formats/temp-outputs.js";
import { repoRoot } from "../helpers/shared.js";
import { tempDir } from "../lora/helpers.js";

const dist = join(repoRoot, "dist");
const hasDist = existsSync(join(dist, "formats/temp-outputs.js"));

/** A child that starts writing `out` (a file, or a directory) and waits; resolves once it has begun. */
function startWriter(out: string, kind: "file" | "dir"): Promise<ReturnType<typeof spawn>> {
  const code = kind === "file"
    ? `const { writeAtomically } = await import(${JSON.stringify(join(dist, "formats/gguf/index.js"))});
       await writeAtomically(${JSON.stringify(out)}, false, async (h) => { await h.write(Buffer.alloc(1 << 20, 1)); console.log("writing"); await new Promise((r) => setTimeout(r, 60000)); });`
    : `const { writeDirectoryAtomically } = await import(${JSON.stringify(join(dist, "convert/output-dir.js"))});
       const fs = await import("node:fs/promises");
       await writeDirectoryAtomically(${JSON.stringify(out)}, false, async (dir) => { await fs.writeFile(dir + "/model.safetensors", Buffer.alloc(1 << 20, 1)); console.log("writing"); await new Promise((r) => setTimeout(r, 60000)); });`;
  const child = spawn(process.execPath, ["--input-type=module", "-e", code], { stdio: ["ignore", "pipe", "pipe"] });
  return new Promise((resolve, reject) => {
    let stderr = "";
    child.stderr!.on("data", (d) => (stderr += d));
    child.stdout!.on("data", (d) => {
      if (String(d).includes("writing")) resolve(child);
    });
    child.on("exit", (c) => reject(new Error(`writer exited early (${c}): ${stderr}`)));
  });
}

const exited = (child: ReturnType<typeof spawn>): Promise<string | null> => new Promise((resolve) => child.once("exit", (_code, signal) => resolve(signal)));

/** A pid that no longer exists. */
async function deadPid(): Promise<number> {
  const child = spawn(process.execPath, ["-e", ""]);
  await exited(child);
  return child.pid!;
}

describe.runIf(hasDist)("interrupted writes", () => {
  for (const [kind, signal] of [["file", "SIGTERM"], ["file", "SIGINT"], ["dir", "SIGTERM"], ["dir", "SIGINT"]] as const) {
    it(`${signal} during a ${kind === "file" ? "file (OUT.PID.RAND.tmp)" : "directory (OUT.partial-PID-RAND/)"} write removes it`, async () => {
      const dir = tempDir("zh-interrupt-");
      const out = join(dir, kind === "file" ? "model.gguf" : "merged");
      const child = await startWriter(out, kind);
      expect(readdirSync(dir).length).toBe(1); // the temporary output
      const gone = exited(child);
      child.kill(signal);
      expect(await gone).toBe(signal);
      expect(readdirSync(dir)).toEqual([]);
    });
  }

  for (const kind of ["file", "dir"] as const) {
    it(`after kill -9 the next write of the same ${kind} sweeps the dead process's leftovers`, async () => {
      const dir = tempDir("zh-interrupt-");
      const out = join(dir, kind === "file" ? "model.gguf" : "merged");
      const child = await startWriter(out, kind);
      const gone = exited(child);
      child.kill("SIGKILL");
      await gone;
      const left = readdirSync(dir);
      expect(left).toHaveLength(1);
      expect(left[0]).toMatch(kind === "file" ? new RegExp(`^model\\.gguf\\.${child.pid}\\.[a-z0-9]+\\.tmp$`) : new RegExp(`^merged\\.partial-${child.pid}-[a-z0-9]+$`));
      // An unrelated file and a live process's temporary are left alone.
      writeFileSync(join(dir, "model.gguf.notes"), "x");
      writeFileSync(join(dir, `${kind === "file" ? "model.gguf" : "merged"}.${process.pid}.abc.tmp`), "live");
      if (kind === "file") await writeAtomically(out, false, (h) => writeAll(h, new Uint8Array([1, 2, 3]), 0));
      else await writeDirectoryAtomically(out, false, async (d) => writeFileSync(join(d, "a.bin"), "a"));
      expect(readdirSync(dir).sort()).toEqual([kind === "file" ? "model.gguf" : "merged", `${kind === "file" ? "model.gguf" : "merged"}.${process.pid}.abc.tmp`, "model.gguf.notes"].sort());
    });
  }
});

describe("leftovers of dead processes", () => {
  it("an output moved aside by a --force replacement that was killed is put back", async () => {
    const dir = tempDir("zh-sweep-");
    const out = join(dir, "merged");
    const old = join(dir, `merged.old-${await deadPid()}-abc123`);
    mkdirSync(old);
    writeFileSync(join(old, "model.safetensors"), "old weights");
    await expect(writeDirectoryAtomically(out, false, async () => undefined)).rejects.toThrow(/already exists/);
    expect(readFileSync(join(out, "model.safetensors"), "utf8")).toBe("old weights");
    expect(readdirSync(dir)).toEqual(["merged"]);
    // With the target present, a stale .old- copy is simply removed.
    mkdirSync(old);
    expect(await sweepStaleOutputs(out)).toEqual([`merged.old-${old.split("-").at(-2)}-abc123`]);
    expect(readdirSync(dir)).toEqual(["merged"]);
  });

  it("nothing stays registered for signal cleanup after writes finish or fail", async () => {
    const dir = tempDir("zh-sweep-");
    await writeAtomically(join(dir, "a"), false, (h) => writeAll(h, new Uint8Array(4), 0));
    await writeAtomically(join(dir, "b"), false, async () => {
      throw new Error("boom");
    }).catch(() => undefined);
    expect(trackedTemporaryOutputs()).toEqual([]);
    expect(readdirSync(dir)).toEqual(["a"]);
  });
});

describe("a file and its manifest always match", () => {
  const spec = (value: number) => ({ metadata: { "general.name": "m" }, tensors: [{ name: "w", type: GGMLType.F32, shape: [4], data: new Uint8Array(new Float32Array(4).fill(value).buffer) }] });

  it("--force replaces both; a failed replacement keeps the old pair", async () => {
    const dir = tempDir("zh-manifest-");
    const out = join(dir, "model.gguf");
    await writeGguf(out, spec(1), { manifest: true });
    expect((await verifyManifest(out)).bad).toEqual([]);
    const first = readFileSync(`${out}.sha256`, "utf8");
    await writeGguf(out, spec(2), { manifest: true, overwrite: true });
    expect((await verifyManifest(out)).bad).toEqual([]);
    expect(readFileSync(`${out}.sha256`, "utf8")).not.toBe(first);
    const second = readFileSync(`${out}.sha256`, "utf8");
    const failing = { ...spec(3), tensors: [{ name: "w", type: GGMLType.F32, shape: [4], data: () => Promise.reject(new Error("interrupted")) }] };
    await expect(writeGguf(out, failing, { manifest: true, overwrite: true })).rejects.toThrow(/interrupted/);
    expect(readFileSync(`${out}.sha256`, "utf8")).toBe(second);
    expect((await verifyManifest(out)).bad).toEqual([]);
    expect(readdirSync(dir).sort()).toEqual(["model.gguf", "model.gguf.sha256"]);
  });
});

describe("a full disk", () => {
  it("a write failing with ENOSPC is one OutputError line and leaves nothing", async () => {
    const dir = tempDir("zh-enospc-");
    const enospc = Object.assign(new Error("ENOSPC: no space left on device, write"), { code: "ENOSPC", syscall: "write" });
    const error = await writeAtomically(join(dir, "model.gguf"), false, async (h) => {
      await writeAll(h, new Uint8Array(1000), 0);
      throw enospc;
    }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(OutputError);
    expect((error as Error).message).toBe(`${join(dir, "model.gguf")}: cannot write it: no space left on the device (ENOSPC); nothing was left under that name`);
    const dirError = await writeDirectoryAtomically(join(dir, "merged"), false, async () => {
      throw enospc;
    }).catch((e: unknown) => e);
    expect(dirError).toBeInstanceOf(OutputError);
    expect(readdirSync(dir)).toEqual([]);
  });

  it.runIf(hasDist && process.getuid?.() === 0)("quantize onto a 256 KB tmpfs: exit 1, one line naming ENOSPC, nothing left on it", async () => {
    const mnt = tempDir("zh-full-");
    const mounted = await new Promise<boolean>((resolve) => execFile("mount", ["-t", "tmpfs", "-o", "size=256k", "tmpfs", mnt], (e) => resolve(!e)));
    if (!mounted) {
      console.warn("skipped: cannot mount a tmpfs here");
      return;
    }
    try {
      const r = await new Promise<{ code: number | null; stderr: string }>((resolve) => {
        const child = spawn(process.execPath, [join(repoRoot, "bin/zh-llama.js"), "quantize", join(repoRoot, "fixtures/models/tiny-random-q8_0.gguf"), join(mnt, "out.gguf"), "F32"]);
        let stderr = "";
        child.stderr.on("data", (d) => (stderr += d));
        child.on("exit", (code) => resolve({ code, stderr }));
      });
      expect(r.code).toBe(1);
      // Progress lines, then the error: one line, no stack trace.
      expect(r.stderr).not.toMatch(/\n\s+at /);
      const lines = r.stderr.split("\n").filter((l) => l.startsWith("zh-llama"));
      expect(lines).toEqual([expect.stringMatching(/^zh-llama quantize: OutputError: .*out\.gguf: cannot write it: no space left on the device \(ENOSPC\); nothing was left under that name$/)]);
      expect(readdirSync(mnt)).toEqual([]);
    } finally {
      await new Promise((resolve) => execFile("umount", [mnt], resolve));
    }
  });
});
