/**
 * One entry point for every runtime: `serve(handler, {hostname, port})` listens with
 * Deno.serve under Deno, Bun.serve under Bun, and node:http elsewhere. The handler is the
 * web-standard fetch function of createServer(); each adapter only moves bytes.
 */
export type FetchHandler = (request: Request) => Promise<Response>;

export interface ServeOptions {
  hostname: string;
  /** 0 picks a free port. */
  port: number;
}

export interface ServedHandle {
  runtime: Runtime;
  hostname: string;
  port: number;
  close(): Promise<void>;
}

export type Runtime = "node" | "deno" | "bun";

/** The parts of Deno.serve and Bun.serve used here. */
interface DenoLike {
  serve(options: { hostname: string; port: number; signal: AbortSignal; onListen?: (addr: { port: number }) => void }, handler: FetchHandler): { finished: Promise<void>; addr: { port: number } };
}
interface BunLike {
  serve(options: { hostname: string; port: number; idleTimeout?: number; fetch: FetchHandler }): { port: number; stop(force?: boolean): void };
}

const runtimeGlobals = globalThis as typeof globalThis & { Deno?: DenoLike; Bun?: BunLike };

/** Which runtime this is. */
export function detectRuntime(): Runtime {
  if (runtimeGlobals.Deno !== undefined) return "deno";
  if (runtimeGlobals.Bun !== undefined) return "bun";
  return "node";
}

export async function serve(handler: FetchHandler, options: ServeOptions): Promise<ServedHandle> {
  const runtime = detectRuntime();
  if (runtime === "deno") {
    const controller = new AbortController();
    let resolveListen: (port: number) => void = () => undefined;
    const listening = new Promise<number>((resolve) => (resolveListen = resolve));
    const server = runtimeGlobals.Deno!.serve({ hostname: options.hostname, port: options.port, signal: controller.signal, onListen: (addr) => resolveListen(addr.port) }, handler);
    const port = await listening;
    return {
      runtime,
      hostname: options.hostname,
      port,
      close: async () => {
        controller.abort();
        await server.finished;
      },
    };
  }
  if (runtime === "bun") {
    // Bun's default idle timeout (10 s) would cut slow generations; 0 disables it.
    const server = runtimeGlobals.Bun!.serve({ hostname: options.hostname, port: options.port, idleTimeout: 0, fetch: handler });
    return { runtime, hostname: options.hostname, port: server.port, close: async () => server.stop(true) };
  }
  const { serveNode } = await import("./node.js");
  return serveNode(handler, options);
}
