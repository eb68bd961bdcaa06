/**
 * The model the page loads when it opens, as a path under fixtures/models/ (served at /models/ by
 * serve.mjs). One constant for the page and its end-to-end test: when the bundled model changes,
 * change it here.
 */
export const DEFAULT_MODEL_FILE = "chinese-alpaca-tiny-q4_0.gguf";
export const DEFAULT_MODEL_URL = `models/${DEFAULT_MODEL_FILE}`;
