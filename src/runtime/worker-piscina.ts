/**
 * Piscina entry (Node, Deno, Bun): workerData carries the WorkerInit; each task is one step.
 * Loaded from dist/ (plain JS), since Piscina's workers do not run TypeScript.
 */
import { workerData } from "piscina";
import { WorkerState, type WorkerInit, type WorkerTask } from "./worker-core.js";

const state = new WorkerState(workerData as WorkerInit);

export default function run(task: WorkerTask): number {
  state.run(task);
  return 0;
}
