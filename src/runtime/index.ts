/**
 * Multi-threaded execution of graph steps over shared WebAssembly memory: the worker pool that
 * runs programs (lists of kernel calls; the format is the kernels' own, src/kernels/program.ts,
 * re-exported here for callers that build and run them), asynchronously (createPool) or with the
 * caller blocking as one of the threads (createSyncPool), and the Atomics barrier between ops.
 */
export * from "../kernels/program.js";
export * from "./barrier.js";
export { execute, sliceStart, type ThreadPlace } from "./executor.js";
export { createPool, workerUrl, PoolError, type Pool, type PoolOptions, type PoolBackend } from "./pool.js";
export { createSyncPool, type SyncPool, type SyncPoolOptions } from "./sync-pool.js";
export * from "./threads.js";
