/**
 * Multi-threaded execution of graph steps over shared WebAssembly memory: programs (lists of
 * kernel calls), the worker pool that runs them, and the Atomics barrier between ops.
 */
export * from "./program.js";
export * from "./barrier.js";
export { execute, sliceStart, type ThreadPlace } from "./executor.js";
export { createPool, workerUrl, PoolError, type Pool, type PoolOptions, type PoolBackend } from "./pool.js";
export * from "./threads.js";
