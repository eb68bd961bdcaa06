/** Chat: prompt templates of the Chinese LLaMA / Alpaca family, history, sessions. */
export * from "./errors.js";
export * from "./templates.js";
export * from "./jinja.js";
export * from "./detect.js";
export * from "./history.js";
export { generateCfg, type CfgOptions } from "../model/cfg.js";
export { generateSpeculative, type SpeculativeOptions, type SpeculativeResult, type SpeculativeStats, type SpeculativeEvent } from "../model/speculative.js";
export * from "./session.js";
