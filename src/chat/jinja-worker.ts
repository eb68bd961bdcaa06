/**
 * The worker behind renderJinjaOffThread (jinja-off-thread.ts): renders chat templates with the
 * same bounds as in-process renders, on a thread of its own, so the server's event loop never
 * waits on a template and a runaway one can be terminated.
 *   in:  { id, source, context, limits, origin }
 *   out: { id, text } | { id, error }
 */
import { parentPort } from "node:worker_threads";
import { Template } from "@huggingface/jinja";
import { renderBounded, type JinjaLimits } from "./jinja.js";

interface Job {
  id: number;
  source: string;
  context: Record<string, unknown>;
  limits: Partial<JinjaLimits>;
  origin?: string;
}

const parsed = new Map<string, Template>();

parentPort?.on("message", (job: Job) => {
  try {
    let template = parsed.get(job.source);
    if (!template) {
      template = new Template(job.source);
      if (parsed.size >= 8) parsed.delete(parsed.keys().next().value!);
      parsed.set(job.source, template);
    }
    parentPort!.postMessage({ id: job.id, text: renderBounded(template, job.source, job.context, job.limits, job.origin) });
  } catch (error) {
    parentPort!.postMessage({ id: job.id, error: error instanceof Error ? error.message : String(error) });
  }
});
