/** Chat: prompt templates of the Chinese LLaMA / Alpaca family, history, sessions. */
export * from "./errors.js";
export * from "./templates.js";
export * from "./jinja.js";
export * from "./detect.js";
export * from "./history.js";
export * from "./session.js";
