/**
 * The pool on Deno and Bun (npm packages `deno`, `bun`), with Piscina and with their native Web
 * Workers, and on Node with Piscina: test/runtime/pool-smoke.mjs in a child process of each.
 * Skips a runtime whose binary is missing.
 */
import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

const root = fileURLToPath(new URL("../../", import.meta.url));
const bin = (name: string) => `${root}node_modules/.bin/${name}`;
const script = "test/runtime/pool-smoke.mjs";

const runtimes: Array<[string, string, string[]]> = [
  ["node", process.execPath, [script]],
  ["deno", bin("deno"), ["run", "-A", script]],
  ["bun", bin("bun"), [script]],
];

function run(cmd: string, args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(cmd, args, { cwd: root, timeout: 90_000 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`${cmd} ${args.join(" ")}: ${err.message}\n${stderr}`));
      else resolve(stdout);
    });
  });
}

describe.each(runtimes)("pool on %s", (name, cmd, args) => {
  const backends = name === "node" ? ["piscina"] : ["piscina", "web"];
  for (const backend of backends) {
    it.skipIf(!existsSync(cmd))(`${backend}: 2 threads give the single-threaded numbers`, async () => {
      const out = await run(cmd, [...args, backend]);
      const line = out.trim().split("\n").pop() ?? "";
      const r = JSON.parse(line) as { backend: string; threads: number; same: boolean };
      expect(r).toMatchObject({ backend, threads: 2, same: true });
    });
  }
});
