/** StopMatcher: stop strings across pieces, held-back text, stop ids, bytes split mid-character. */
import { describe, expect, it } from "vitest";
import { StopMatcher } from "../../src/generate/index.js";
import { InvalidArgumentError } from "../../src/errors.js";

/** Feeds every piece and returns what came out, joined, and whether it stopped. */
function run(m: StopMatcher, pieces: (string | Uint8Array)[]): { text: string; emits: string[]; stopped: boolean } {
  const emits: string[] = [];
  let stopped = false;
  for (const p of pieces) {
    const r = typeof p === "string" ? m.push(p) : m.pushBytes(p);
    emits.push(r.emit);
    if (r.stopped) {
      stopped = true;
      break;
    }
  }
  if (!stopped) emits.push(m.flush());
  return { text: emits.join(""), emits, stopped };
}

const utf8 = (s: string): Uint8Array => new TextEncoder().encode(s);

describe("StopMatcher", () => {
  it("passes text through when nothing matches", () => {
    const m = new StopMatcher({ strings: ["User:"] });
    expect(run(m, ["你好", "，世界", "!"])).toEqual({ text: "你好，世界!", emits: ["你好", "，世界", "!", ""], stopped: false });
  });

  it("a stop string spanning several tokens stops, and none of it is emitted", () => {
    const m = new StopMatcher({ strings: ["User:"] });
    const r = run(m, ["Hello ", "Us", "er", ":", " more"]);
    expect(r).toEqual({ text: "Hello ", emits: ["Hello ", "", "", ""], stopped: true });
    expect(m.reason).toBe("User:");
  });

  it("holds back a possible beginning, then releases it when it goes another way", () => {
    const m = new StopMatcher({ strings: ["User:"] });
    expect(m.push("Hi Us")).toEqual({ emit: "Hi ", stopped: false });
    expect(m.push("ed")).toEqual({ emit: "Used", stopped: false });
    expect(m.push(" U")).toEqual({ emit: " ", stopped: false });
    expect(m.flush()).toBe("U");
    expect(m.flush()).toBe("");
  });

  it("finds the stop inside one piece, with text after it dropped", () => {
    const m = new StopMatcher({ strings: ["###"] });
    expect(m.push("答案是A###Instruction")).toEqual({ emit: "答案是A", stopped: true, reason: "###" });
    expect(m.push("more")).toEqual({ emit: "", stopped: true, reason: "###" });
    expect(m.flush()).toBe("");
  });

  it("Chinese stop strings across pieces", () => {
    const m = new StopMatcher({ strings: ["用户：", "</s>"] });
    expect(run(m, ["好的，", "我明白了。", "用", "户", "：下一个"])).toEqual({
      text: "好的，我明白了。", emits: ["好的，", "我明白了。", "", "", ""], stopped: true,
    });
  });

  it("the earliest of several stop strings wins, even when a later one completes first", () => {
    const m = new StopMatcher({ strings: ["abcdef", "cd"] });
    expect(run(m, ["xxab", "cd"])).toMatchObject({ text: "xxab", stopped: true });
    const n = new StopMatcher({ strings: ["bcd", "abcde"] });
    // "abcd" completes "bcd" at 1; "abcde" (at 0) cannot complete any more in this buffer
    expect(n.push("abcd")).toEqual({ emit: "a", stopped: true, reason: "bcd" });
  });

  it("overlapping prefixes: holds the longest possible start", () => {
    const m = new StopMatcher({ strings: ["aab"] });
    expect(m.push("xaa")).toEqual({ emit: "x", stopped: false });
    expect(m.push("a")).toEqual({ emit: "a", stopped: false });
    expect(m.push("b")).toEqual({ emit: "", stopped: true, reason: "aab" });
  });

  it("bytes split mid-character across pieces (byte-fallback tokens)", () => {
    // "答案：" stop; "你" split 1+2 bytes, "答" split 2+1, "：" split 1+1+1
    const [ni, da, an, colon] = ["你", "答", "案", "："].map(utf8);
    const m = new StopMatcher({ strings: ["答案："] });
    const pieces = [ni.subarray(0, 1), ni.subarray(1), da.subarray(0, 2), da.subarray(2), an, colon.subarray(0, 1), colon.subarray(1, 2), colon.subarray(2)];
    const r = run(m, pieces);
    expect(r.text).toBe("你");
    expect(r.stopped).toBe(true);
    expect(r.emits[0]).toBe("");
    expect(r.emits[1]).toBe("你");
  });

  it("a split character that does not complete the stop string is emitted whole", () => {
    const m = new StopMatcher({ strings: ["答案："] });
    const da = utf8("答");
    const an = utf8("安");
    const r = run(m, [da.subarray(0, 1), da.subarray(1), an.subarray(0, 2), an.subarray(2), utf8("好")]);
    expect(r).toMatchObject({ text: "答安好", stopped: false });
  });

  it("an unfinished character at the end becomes U+FFFD", () => {
    const m = new StopMatcher({ strings: ["x"] });
    m.pushBytes(utf8("好").subarray(0, 2));
    expect(m.flush()).toBe("\uFFFD");
  });

  it("holds a lone high surrogate until its pair arrives", () => {
    const m = new StopMatcher({ strings: ["😀!"] });
    expect(m.push("a\uD83D")).toEqual({ emit: "a", stopped: false });
    expect(m.push("\uDE00?")).toEqual({ emit: "😀?", stopped: false });
    expect(m.push("\uD83D")).toEqual({ emit: "", stopped: false });
    expect(m.push("\uDE00!")).toEqual({ emit: "", stopped: true, reason: "😀!" });
  });

  it("stop ids end generation without their text, releasing held text", () => {
    const m = new StopMatcher({ strings: ["User:"], ids: [2] });
    expect(m.pushToken(100, "hello Us")).toEqual({ emit: "hello ", stopped: false });
    expect(m.isStopId(2)).toBe(true);
    expect(m.pushToken(2, "</s>")).toEqual({ emit: "Us", stopped: true, reason: 2 });
    expect(m.stopped).toBe(true);
    expect(m.pushToken(5, "x")).toEqual({ emit: "", stopped: true, reason: 2 });
  });

  it("pushToken takes bytes too, and reset() starts over", () => {
    const m = new StopMatcher({ strings: ["。"], ids: [2] });
    const ju = utf8("。");
    expect(m.pushToken(7, ju.subarray(0, 1))).toEqual({ emit: "", stopped: false });
    expect(m.pushToken(8, ju.subarray(1))).toEqual({ emit: "", stopped: true, reason: "。" });
    m.reset();
    expect(m.stopped).toBe(false);
    expect(m.pushToken(9, "好")).toEqual({ emit: "好", stopped: false });
  });

  it("without stop strings, everything passes at once", () => {
    const m = new StopMatcher();
    expect(m.push("abc")).toEqual({ emit: "abc", stopped: false });
    expect(m.flush()).toBe("");
  });

  it("rejects empty stop strings", () => {
    expect(() => new StopMatcher({ strings: ["ok", ""] })).toThrow(InvalidArgumentError);
    expect(() => new StopMatcher({ strings: ["ok", ""] })).toThrow(/stop string 1/);
  });
});
