/**
 * The safe unpickler: everything a checkpoint could use to run code is refused before it is
 * called, and nothing is executed. Hostile pickles are written by Python's own pickle module.
 */
import { describe, expect, it } from "vitest";
import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { unpickle, UnsafePickleError, pickle } from "../../src/formats/pickle.js";
import { openTorchCheckpoint } from "../../src/formats/pytorch.js";
import { FormatError } from "../../src/formats/errors.js";
import { py, tempDir } from "../lora/helpers.js";

function pyPickle(expr: string, protocol = 2): Uint8Array {
  const hex = execFileSync("python3", ["-c", `import pickle, os, builtins, subprocess, collections\nprint(pickle.dumps(${expr}, protocol=int(__import__("sys").argv[1])).hex())`, String(protocol)], { encoding: "utf8" }).trim();
  return Uint8Array.from(Buffer.from(hex, "hex"));
}

describe("safe unpickler", () => {
  it("reads plain data as Python wrote it", () => {
    const v = unpickle(pyPickle(`{"a": [1, 2.5, None, True], "b": ("x", b"yz", -70000, 2**70)}`, 3), { globals: {} }) as Map<string, unknown>;
    expect(v.get("a")).toEqual([1, 2.5, null, true]);
    const b = v.get("b") as unknown[];
    expect(b[0]).toBe("x");
    expect(Array.from(b[1] as Uint8Array)).toEqual([0x79, 0x7a]);
    expect(b[2]).toBe(-70000);
    expect(b[3]).toBe(2n ** 70n);
  });

  it("round-trips its own writer through Python", () => {
    const bytes = pickle({ dict: [["k", { tuple: [1, 300, 70000, -5, 2 ** 40, "s", true, null] }]] });
    const out = execFileSync("python3", ["-c", "import pickle, sys, json; print(json.dumps(pickle.loads(bytes.fromhex(sys.argv[1]))))", Buffer.from(bytes).toString("hex")], { encoding: "utf8" });
    expect(JSON.parse(out)).toEqual({ k: [1, 300, 70000, -5, 2 ** 40, "s", true, null] });
  });

  const hostile: Record<string, string> = {
    "os.system via GLOBAL + REDUCE": `type("E", (), {"__reduce__": lambda self: (os.system, ("touch MARKER",))})()`,
    "builtins.eval": `type("E", (), {"__reduce__": lambda self: (builtins.eval, ("__import__('os').system('touch MARKER')",))})()`,
    "subprocess.Popen": `type("E", (), {"__reduce__": lambda self: (subprocess.Popen, (["touch", "MARKER"],))})()`,
  };
  for (const [label, expr] of Object.entries(hostile)) {
    it(`refuses ${label}`, () => {
      const bytes = pyPickle(expr);
      expect(() => unpickle(bytes, { globals: { "collections OrderedDict": { call: () => new Map() } } })).toThrow(UnsafePickleError);
      expect(() => unpickle(bytes, { globals: {} })).toThrow(/nothing was executed/);
    });
  }

  it("refuses STACK_GLOBAL, INST, OBJ and extension opcodes too", () => {
    const enc = new TextEncoder();
    const stackGlobal = Uint8Array.from([0x80, 4, 0x8c, 2, ...enc.encode("os"), 0x8c, 6, ...enc.encode("system"), 0x93, 0x8c, 2, ...enc.encode("id"), 0x85, 0x52, 0x2e]);
    expect(() => unpickle(stackGlobal, { globals: {} })).toThrow(/refusing to load global os\.system/);
    const inst = Uint8Array.from([0x28, 0x69, ...enc.encode("os\nsystem\n"), 0x2e]);
    expect(() => unpickle(inst, { globals: {} })).toThrow(UnsafePickleError);
    expect(() => unpickle(Uint8Array.from([0x80, 2, 0x82, 1, 0x2e]), { globals: {} })).toThrow(UnsafePickleError);
    expect(() => unpickle(Uint8Array.from([0x80, 2, 0xff]), { globals: {} })).toThrow(/unknown pickle opcode/);
    expect(() => unpickle(Uint8Array.from([0x80, 2, 0x58, 0xff, 0xff, 0xff, 0x00]), { globals: {} })).toThrow(/truncated/);
    expect(() => unpickle(Uint8Array.from([0x80, 2, 0x4e]), { globals: {} })).toThrow(FormatError);
  });

  it("a torch checkpoint calling os.system is refused and nothing runs", async () => {
    const dir = tempDir("zh-evil-");
    const marker = join(dir, "pwned");
    const file = join(dir, "adapter_model.bin");
    py("evil", file, `touch ${marker}`);
    await expect(openTorchCheckpoint(file)).rejects.toThrow(UnsafePickleError);
    await expect(openTorchCheckpoint(file)).rejects.toThrow(/os\.system|posix\.system/);
    expect(existsSync(marker)).toBe(false);
  });
});
