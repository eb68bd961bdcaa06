/**
 * The default thread count: the cores this process may use, as llama.cpp defaults to. Browsers,
 * Deno, Bun and Node 21+ say it through navigator.hardwareConcurrency; Node 20 has no navigator,
 * so there it is os.availableParallelism() (reached synchronously through
 * process.getBuiltinModule, so browser bundles never import node:os).
 */
export function defaultThreads(): number {
  const nav = (globalThis as { navigator?: { hardwareConcurrency?: number } }).navigator;
  let cores = nav?.hardwareConcurrency;
  if (!(cores! >= 1)) {
    const proc = (globalThis as { process?: { getBuiltinModule?: (id: string) => unknown } }).process;
    const os = proc?.getBuiltinModule?.("node:os") as { availableParallelism?: () => number; cpus?: () => unknown[] } | undefined;
    cores = os?.availableParallelism?.() ?? os?.cpus?.().length;
  }
  return Math.max(1, Math.min(Math.floor(cores ?? 1) || 1, 64));
}
