/** GGUF: lazy reading (files, Blobs, URLs, buffers; split models) and v3 writing. */
export * from "./constants.js";
export type { GgufArrayType, GgufHeader, GgufTensorInfo, GgufType, GgufValue } from "./header.js";
export { parseGgufHeader } from "./header.js";
export * from "./reader.js";
export * from "./source.js";
export * from "./writer.js";
export { knownKeyType } from "./known-keys.js";
export * from "./describe.js";
