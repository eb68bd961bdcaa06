/**
 * JSON Schema -> GBNF, after llama.cpp's json_schema_to_grammar: each sub-schema becomes a
 * rule, objects list their properties in the schema's order (required ones always, optional
 * ones may be left out), and whitespace between tokens is bounded (a model cannot wander off
 * into endless blanks).
 *
 * Supported: type (one or a list), properties / required, items / prefixItems / minItems /
 * maxItems, minLength / maxLength, enum, const, anyOf / oneOf, local $ref (#/$defs/...,
 * #/definitions/...), integer minimum >= 0 (no sign), and {} / true for any value.
 * Not supported (a JsonSchemaError names the path): pattern, allOf, not, if/then/else,
 * patternProperties, dependent schemas.
 */
import { JsonSchemaError } from "./errors.js";
import { Grammar } from "./grammar.js";

/** Shared rules: any JSON value, strings, numbers, bounded whitespace. */
const PRIMITIVES = String.raw`value ::= object | array | string | number | boolean | null
object ::= "{" ws ( string ":" ws value ws ( "," ws string ":" ws value ws )* )? "}"
array ::= "[" ws ( value ws ( "," ws value ws )* )? "]"
string ::= "\"" char* "\""
char ::= [^"\\\x7F\x00-\x1F] | "\\" ( ["\\/bfnrt] | "u" [0-9a-fA-F]{4} )
number ::= integer ( "." [0-9]{1,16} )? ( [eE] [-+]? [0-9]{1,3} )?
integer ::= "-"? uint
uint ::= "0" | [1-9] [0-9]{0,15}
boolean ::= "true" | "false"
null ::= "null"
ws ::= | " " | "\n" [ ]{0,8}
`;

/** The generic `response_format: {"type": "json_object"}` grammar: any JSON object. */
export const JSON_OBJECT_GBNF = `root ::= object\n${PRIMITIVES}`;

/** Any JSON value (llama.cpp's json.gbnf, with bounded whitespace). */
export const JSON_VALUE_GBNF = `root ::= value\n${PRIMITIVES}`;

const UNSUPPORTED = ["pattern", "allOf", "not", "if", "then", "else", "patternProperties", "dependentSchemas", "dependentRequired"];

/** Most rules a schema may turn into (a guard against pathological schemas). */
export const MAX_SCHEMA_RULES = 5000;
/** Deepest nesting of sub-schemas. */
export const MAX_SCHEMA_DEPTH = 64;

/** A GBNF literal for a string. */
export function gbnfLiteral(text: string): string {
  let out = '"';
  for (const ch of text) {
    const cp = ch.codePointAt(0)!;
    if (ch === '"') out += '\\"';
    else if (ch === "\\") out += "\\\\";
    else if (ch === "\n") out += "\\n";
    else if (ch === "\r") out += "\\r";
    else if (ch === "\t") out += "\\t";
    else if (cp < 0x20 || cp === 0x7f) out += `\\x${cp.toString(16).padStart(2, "0")}`;
    else out += ch;
  }
  return out + '"';
}

class Converter {
  private readonly rules = new Map<string, string>();
  private readonly refs = new Map<string, string>();

  constructor(private readonly rootSchema: unknown) {}

  grammar(): string {
    const root = this.visit(this.rootSchema, "#", "root");
    if (root !== "root") this.rules.set("root", root);
    const lines = [...this.rules].map(([name, body]) => `${name} ::= ${body}`);
    return lines.join("\n") + "\n" + PRIMITIVES;
  }

  private add(name: string, body: string): string {
    if (this.rules.size >= MAX_SCHEMA_RULES) throw new JsonSchemaError(`the schema needs more than ${MAX_SCHEMA_RULES} grammar rules`);
    let unique = name;
    for (let i = 2; this.rules.has(unique) || RESERVED.has(unique); i++) unique = `${name}-${i}`;
    this.rules.set(unique, body);
    return unique;
  }

  /** The rule (or inline expression) for a sub-schema at `path`. */
  private depth = 0;

  private visit(schema: unknown, path: string, name: string): string {
    if (++this.depth > MAX_SCHEMA_DEPTH) throw new JsonSchemaError(`${path}: sub-schemas nested more than ${MAX_SCHEMA_DEPTH} deep`);
    try {
      return this.visitSchema(schema, path, name);
    } finally {
      this.depth--;
    }
  }

  private visitSchema(schema: unknown, path: string, name: string): string {
    if (schema === true || (isObject(schema) && Object.keys(schema).length === 0)) return this.add(name, "value");
    if (schema === false) throw new JsonSchemaError(`${path}: the schema false admits no value`);
    if (!isObject(schema)) throw new JsonSchemaError(`${path}: a schema must be an object or a boolean, got ${JSON.stringify(schema)}`);
    for (const key of UNSUPPORTED) if (key in schema) throw new JsonSchemaError(`${path}: "${key}" is not supported in grammar-constrained output`);

    if (typeof schema.$ref === "string") return this.ref(schema.$ref, path);
    if ("const" in schema) return this.add(name, gbnfLiteral(JSON.stringify(schema.const)));
    if ("enum" in schema) {
      const values = schema.enum;
      if (!Array.isArray(values) || values.length === 0) throw new JsonSchemaError(`${path}/enum: must be a non-empty array`);
      return this.add(name, values.map((v) => gbnfLiteral(JSON.stringify(v))).join(" | "));
    }
    const alternatives = schema.anyOf ?? schema.oneOf;
    if (alternatives !== undefined) {
      const key = schema.anyOf !== undefined ? "anyOf" : "oneOf";
      if (!Array.isArray(alternatives) || alternatives.length === 0) throw new JsonSchemaError(`${path}/${key}: must be a non-empty array`);
      const alts = alternatives.map((s, i) => this.visit(s, `${path}/${key}/${i}`, `${name}-${i}`));
      return this.add(name, alts.join(" | "));
    }
    const type = schema.type;
    if (Array.isArray(type)) {
      if (type.length === 0) throw new JsonSchemaError(`${path}/type: must not be empty`);
      const alts = type.map((t, i) => this.visit({ ...schema, type: t }, `${path}/type/${i}`, `${name}-${String(t)}`));
      return this.add(name, alts.join(" | "));
    }
    switch (type) {
      case undefined:
        if ("properties" in schema) return this.object(schema, path, name);
        if ("items" in schema || "prefixItems" in schema) return this.array(schema, path, name);
        return this.add(name, "value");
      case "object":
        return this.object(schema, path, name);
      case "array":
        return this.array(schema, path, name);
      case "string": {
        const min = count(schema.minLength, `${path}/minLength`, 0);
        const max = count(schema.maxLength, `${path}/maxLength`, Infinity);
        if (max < min) throw new JsonSchemaError(`${path}: maxLength ${max} is below minLength ${min}`);
        if (min === 0 && max === Infinity) return this.add(name, "string");
        return this.add(name, `"\\"" char{${min},${max === Infinity ? "" : max}} "\\""`);
      }
      case "number":
        return this.add(name, "number");
      case "integer": {
        const minimum = schema.minimum ?? schema.exclusiveMinimum;
        return this.add(name, typeof minimum === "number" && minimum >= 0 ? "uint" : "integer");
      }
      case "boolean":
        return this.add(name, "boolean");
      case "null":
        return this.add(name, "null");
      default:
        throw new JsonSchemaError(`${path}/type: unknown type ${JSON.stringify(type)}`);
    }
  }

  private ref(ref: string, path: string): string {
    const known = this.refs.get(ref);
    if (known) return known;
    const m = /^#\/(\$defs|definitions)\/([^/]+)$/.exec(ref);
    if (!m) throw new JsonSchemaError(`${path}/$ref: only local references like "#/$defs/Name" are supported, got ${JSON.stringify(ref)}`);
    const defs = isObject(this.rootSchema) ? this.rootSchema[m[1]!] : undefined;
    const target = isObject(defs) ? defs[m[2]!] : undefined;
    if (target === undefined) throw new JsonSchemaError(`${path}/$ref: ${JSON.stringify(ref)} is not defined`);
    // Reserve the name first so recursive definitions refer to themselves.
    const name = this.add(`ref-${ruleName(m[2]!)}`, "value");
    this.refs.set(ref, name);
    const body = this.visit(target, ref, `${name}-def`);
    this.rules.set(name, body);
    return name;
  }

  private object(schema: Record<string, unknown>, path: string, name: string): string {
    const properties = schema.properties;
    if (properties === undefined) return this.add(name, "object");
    if (!isObject(properties)) throw new JsonSchemaError(`${path}/properties: must be an object`);
    const required = schema.required ?? [];
    if (!Array.isArray(required) || required.some((r) => typeof r !== "string")) throw new JsonSchemaError(`${path}/required: must be an array of property names`);
    for (const r of required as string[]) if (!(r in properties)) throw new JsonSchemaError(`${path}/required: ${JSON.stringify(r)} is not among the properties`);
    const kv = (key: string): string => {
      const value = this.visit(properties[key], `${path}/properties/${key}`, `${name}-${ruleName(key)}`);
      return `${gbnfLiteral(JSON.stringify(key))} ws ":" ws ${value} ws`;
    };
    const req = Object.keys(properties).filter((k) => (required as string[]).includes(k));
    const opt = Object.keys(properties).filter((k) => !(required as string[]).includes(k));
    const optKv = opt.map(kv);
    const reqPart = req.map(kv).join(' "," ws ');
    let body: string;
    if (req.length > 0) {
      body = `"{" ws ${reqPart}${optKv.map((o) => ` ( "," ws ${o} )?`).join("")} "}"`;
    } else if (optKv.length > 0) {
      // No required property: any subset of the optional ones, in order, comma-separated.
      const rest = (i: number) => optKv.slice(i).map((o) => ` ( "," ws ${o} )?`).join("");
      const any = optKv.map((o, i) => `${o}${rest(i + 1)}`);
      body = `"{" ws ( ${any.map((a) => `( ${a} )`).join(" | ")} )? "}"`;
    } else {
      body = `"{" ws "}"`;
    }
    return this.add(name, body);
  }

  private array(schema: Record<string, unknown>, path: string, name: string): string {
    const min = count(schema.minItems, `${path}/minItems`, 0);
    const max = count(schema.maxItems, `${path}/maxItems`, Infinity);
    if (max < min) throw new JsonSchemaError(`${path}: maxItems ${max} is below minItems ${min}`);
    if (Array.isArray(schema.prefixItems)) {
      const items = schema.prefixItems.map((s, i) => this.visit(s, `${path}/prefixItems/${i}`, `${name}-${i}`));
      return this.add(name, `"[" ws ${items.map((i) => `${i} ws`).join(' "," ws ')} "]"`);
    }
    const item = schema.items === undefined ? "value" : this.visit(schema.items, `${path}/items`, `${name}-item`);
    if (max === 0) return this.add(name, `"[" ws "]"`);
    const more = max === Infinity ? `( "," ws ${item} ws ){${Math.max(0, min - 1)},}` : `( "," ws ${item} ws ){${Math.max(0, min - 1)},${max - 1}}`;
    const list = `${item} ws ${more}`;
    return this.add(name, `"[" ws ${min > 0 ? list : `( ${list} )?`} "]"`);
  }
}

const RESERVED = new Set(["value", "object", "array", "string", "char", "number", "integer", "uint", "boolean", "null", "ws"]);

function ruleName(s: string): string {
  const cleaned = s.replace(/[^A-Za-z0-9-]+/g, "-").replace(/^-+|-+$/g, "");
  return cleaned.length > 0 ? cleaned.slice(0, 40) : "x";
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function count(v: unknown, path: string, fallback: number): number {
  if (v === undefined) return fallback;
  if (typeof v !== "number" || !Number.isInteger(v) || v < 0 || v > 10_000) throw new JsonSchemaError(`${path}: must be an integer in [0, 10000], got ${JSON.stringify(v)}`);
  return v;
}

/** GBNF text for a JSON Schema (an object, or true / {} for any value). */
export function jsonSchemaToGbnf(schema: unknown): string {
  return new Converter(schema).grammar();
}

/** A compiled grammar for a JSON Schema. */
export function jsonSchemaGrammar(schema: unknown): Grammar {
  return Grammar.parse(jsonSchemaToGbnf(schema));
}
