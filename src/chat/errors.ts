import { ZhLlamaError } from "../errors.js";

/** A chat template that cannot be used: an unknown name, a Jinja source that does not parse or render. */
export class ChatTemplateError extends ZhLlamaError {}

/** A conversation that cannot be rendered or loaded: a bad role, a malformed history file. */
export class ChatHistoryError extends ZhLlamaError {}
