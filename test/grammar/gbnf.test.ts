/** GBNF parsing and matching, on grammars written from llama.cpp's grammar documentation. */
import { describe, expect, it } from "vitest";
import { Grammar, GrammarError, parseGbnf, formatGbnf } from "../../src/grammar/index.js";

// The shape of llama.cpp's grammars/json.gbnf, written from the GBNF spec.
const JSON_GBNF = String.raw`# any JSON value
root   ::= object
value  ::= object | array | string | number | ("true" | "false" | "null") ws

object ::=
  "{" ws (
            string ":" ws value
    ("," ws string ":" ws value)*
  )? "}" ws

array  ::=
  "[" ws (
            value
    ("," ws value)*
  )? "]" ws

string ::=
  "\"" (
    [^"\\\x7F\x00-\x1F] |
    "\\" (["\\/bfnrt] | "u" [0-9a-fA-F]{4}) # escapes
  )* "\"" ws

number ::= ("-"? ([0-9] | [1-9] [0-9]{0,15})) ("." [0-9]+)? ([eE] [-+]? [0-9] [1-9]{0,15})? ws

# Optional space: by convention, applied in this grammar after literal chars when allowed
ws ::= | " " | "\n" [ \t]{0,20}
`;

const ARITHMETIC_GBNF = String.raw`root  ::= (expr "=" ws term "\n")+
expr  ::= term ([-+*/] term)*
term  ::= ident | num | "(" ws expr ")" ws
ident ::= [a-z] [a-z0-9_]* ws
num   ::= [0-9]+ ws
ws    ::= [ \t\n]*
`;

const LIST_GBNF = String.raw`root ::= item+

# Excludes various line break characters
item ::= "- " [^\r\n\x0b\x0c\x85\u2028\u2029]+ "\n"
`;

const accepts = (g: Grammar, text: string) => g.matcher().accepts(text);

describe("GBNF parser", () => {
  it("parses json.gbnf into the expected rules", () => {
    const rules = parseGbnf(JSON_GBNF);
    expect(rules.map((r) => r.name)).toEqual(["root", "value", "object", "array", "string", "number", "ws"]);
    expect(formatGbnf(rules)).toBe(
      [
        "root ::= object",
        'value ::= object | array | string | number | ("true" | "false" | "null") ws',
        'object ::= "{" ws (string ":" ws value ("," ws string ":" ws value)*)? "}" ws',
        'array ::= "[" ws (value ("," ws value)*)? "]" ws',
        'string ::= "\\"" ([^\\"\\\\\\x7f\\x00-\\x1f] | "\\\\" ([\\"\\\\/bfnrt] | "u" [0-9a-fA-F]{4}))* "\\"" ws',
        'number ::= ("-"? ([0-9] | [1-9] [0-9]{0,15})) ("." [0-9]+)? ([eE] [\\-+]? [0-9] [1-9]{0,15})? ws',
        'ws ::=  | " " | "\\n" [ \\t]{0,20}',
        "",
      ].join("\n"),
    );
  });

  it("matches JSON with json.gbnf", () => {
    const g = Grammar.parse(JSON_GBNF);
    for (const ok of ['{}', '{"a": 1}', '{"a": [1, 2.5e3, "x\\n", {"b": null}], "c": true}', '{"k":"\\u00e9 中文"}', '{\n  "a": -0.5\n}']) {
      expect(accepts(g, ok), ok).toBe(true);
    }
    for (const bad of ['', '[]', '{"a"}', '{"a": 01x}', '{"a": "\u0001"}', '{"a": tru}', '{"a": 1,}', '{} {}']) {
      expect(accepts(g, bad), bad).toBe(false);
    }
  });

  it("matches the arithmetic and list grammars", () => {
    const a = Grammar.parse(ARITHMETIC_GBNF);
    expect(accepts(a, "1+2=3\n")).toBe(true);
    expect(accepts(a, "(x*2) /y_1=z\n1=1\n")).toBe(true);
    expect(accepts(a, "1+=3\n")).toBe(false);
    expect(accepts(a, "1+2=3")).toBe(false);
    const l = Grammar.parse(LIST_GBNF);
    expect(accepts(l, "- milk\n- 鸡蛋\n")).toBe(true);
    expect(accepts(l, "- \n")).toBe(false);
    expect(accepts(l, "- a\u2028b\n")).toBe(false);
    expect(parseGbnf(LIST_GBNF)[1]!.body).toMatchObject({ type: "seq" });
  });

  it("handles escapes, any-char, negation and counted repetition", () => {
    const g = Grammar.parse(String.raw`root ::= "\x41\u00e9\U0001F600" . [^a-c]{2,3} "\t"? [\]\-]`);
    expect(accepts(g, "Aé😀zdd\t]")).toBe(true);
    expect(accepts(g, "Aé😀zddd-")).toBe(true);
    expect(accepts(g, "Aé😀zad]")).toBe(false);
    expect(accepts(g, "Aé😀zdddd]")).toBe(false);
    expect(accepts(g, "Aé😀zd]")).toBe(false);
  });

  it("follows every parse of an ambiguous grammar", () => {
    const g = Grammar.parse(`root ::= ("a" | "ab") "b"? "c"`);
    for (const s of ["ac", "abc", "abbc"]) expect(accepts(g, s), s).toBe(true);
    expect(accepts(g, "abbbc")).toBe(false);
  });

  it("accepts bytes split inside a UTF-8 character", () => {
    const m = Grammar.parse(`root ::= "中" [0-9]`).matcher();
    const bytes = new TextEncoder().encode("中7");
    expect(m.acceptBytes(bytes.subarray(0, 1))).toBe(true);
    expect(m.acceptBytes(bytes.subarray(1, 2))).toBe(true);
    expect(m.canEnd).toBe(false);
    expect(m.acceptBytes(bytes.subarray(2))).toBe(true);
    expect(m.canEnd).toBe(true);
    expect(m.done).toBe(true);
    const m2 = Grammar.parse(`root ::= "中"`).matcher();
    expect(m2.acceptBytes([0xe6])).toBe(false); // the lead byte of 文 cannot begin 中
    expect(m2.acceptBytes([0xe4])).toBe(true);
    expect(m2.acceptBytes([0xff])).toBe(false);
  });
});

describe("matcher caches", () => {
  it("are rebuilt around the current state without changing what is accepted", () => {
    const g = Grammar.parse(`root ::= "[" ( item ( "," item )* )? "]"\nitem ::= "{" [a-z]* ( ":" item )? "}"`);
    const text = "[" + Array.from({ length: 60 }, (_, i) => `{k${"abc"[i % 3]}:{x}}`.replace(/[0-9]/g, "")).join(",") + "]";
    const small = g.matcher({ maxCache: 40 });
    const large = g.matcher();
    for (const ch of text) {
      expect(small.acceptText(ch), ch).toBe(large.acceptText(ch));
      expect(small.canEnd).toBe(large.canEnd);
    }
    expect(small.canEnd).toBe(true);
    expect(small.epoch).toBeGreaterThan(2);
    expect(small.acceptText(",")).toBe(false);
  });
});

describe("GBNF errors name the place", () => {
  const error = (text: string) => {
    try {
      Grammar.parse(text);
    } catch (e) {
      expect(e).toBeInstanceOf(GrammarError);
      return (e as GrammarError).message;
    }
    throw new Error("no error");
  };
  it.each([
    ['root ::= "abc', /unterminated string literal at line 1, column 14/],
    ["root ::= [a-z", /unterminated character class at line 1, column 14/],
    ['root ::= "a"\nfoo ::= ("b" | "c"', /expected "\)" to close the group opened at line 2, column 9, .* at line 2, column 19/],
    ["root ::= item\nitem ::= [z-a]", /reversed at line 2, column 13/],
    ['root ::= "a" := "b"', /expected the end of the line after rule "root".* at line 1, column 14/],
    ["root ::= x\n", /refers to undefined rule "x" at line 1, column 10/],
    ['root ::= "\\q"', /unknown escape "\\q" at line 1, column 11/],
    ['root ::= "a"{3,1}', /max below min at line 1, column 13/],
    ['root ::= * "a"', /must follow an item to repeat at line 1, column 10/],
    ['  ::= "a"', /expected a rule name.* at line 1, column 3/],
    ['item ::= "a"', /no "root" rule/],
    ['root ::= "a"\nroot ::= "b"', /defined twice \(again on line 2\)/],
    ['root ::= root "a" | "b"', /left recursion: root -> root/],
    ['root ::= x\nx ::= y? "a"\ny ::= x "b"', /left recursion/],
  ])("%j", (text, pattern) => {
    expect(error(text)).toMatch(pattern);
  });
});
