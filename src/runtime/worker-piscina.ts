/**
 * Piscina entry (Node, Deno, Bun): workerData carries the WorkerInit; each task is one step, or,
 * for a synchronous pool (sync-pool.ts), the whole life of the worker.
 * Loaded from dist/ (plain JS), since Piscina's workers do not run TypeScript.
 */
import { workerData } from "piscina";
import { WorkerState, type PoolTask, type WorkerInit } from "./worker-core.js";

const state = new WorkerState(workerData as WorkerInit);

export default function run(task: PoolTask): number {
  if ("serve" in task) state.serve(task.serve);
  else state.run(task);
  return 0;
}
