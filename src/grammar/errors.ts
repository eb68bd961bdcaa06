import { ZhLlamaError } from "../errors.js";

/** A GBNF grammar that cannot be parsed or compiled; the message names the line and column. */
export class GrammarError extends ZhLlamaError {
  constructor(
    message: string,
    readonly line?: number,
    readonly column?: number,
  ) {
    super(line === undefined ? message : `${message} at line ${line}, column ${column}`);
  }
}

/** A JSON Schema that cannot be turned into a grammar; the message names the schema path. */
export class JsonSchemaError extends ZhLlamaError {}
