/** Constrained decoding: GBNF grammars, JSON Schema -> grammar, vocabulary masks. */
export * from "./errors.js";
export { parseGbnf, formatGbnf, MAX_REPEAT, MAX_GRAMMAR_CHARS, MAX_NESTING, type GbnfRule, type GbnfExpr, type CharClass } from "./gbnf.js";
export { Grammar, GrammarMatcher, MAX_STACKS } from "./grammar.js";
export { JSON_OBJECT_GBNF, JSON_VALUE_GBNF, MAX_SCHEMA_RULES, MAX_SCHEMA_DEPTH, jsonSchemaToGbnf, jsonSchemaGrammar, gbnfLiteral } from "./json-schema.js";
export { TokenTrie, maskLogits, tokenBytes } from "./vocab.js";
export { GrammarConstraint, type TokenConstraint } from "./constraint.js";
export { generateConstrained, type ConstrainedGenerateOptions } from "./generate.js";
