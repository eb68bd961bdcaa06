/**
 * llama.cpp's command-line spellings, for people whose fingers know llama-cli, llama-server,
 * llama-bench and llama-quantize. Where a llama.cpp flag means the same as one of ours it is
 * rewritten to ours before the command parses its arguments; where it has no meaning here
 * (GPU offload, mmap, flash attention) it is dropped with a one-line note instead of failing.
 *
 * node:util parseArgs knows only one-letter short options, so the two- and three-letter
 * llama.cpp ones (`-md`, `-ngl`, `-jf`, `-fa`) must be rewritten before it sees them: it would
 * read `-ngl` as `-n -g -l`.
 */

/** llama.cpp spelling -> ours (same meaning, same value). */
const RENAMES: Record<string, string> = {
  "--ctx-size": "--ctx",
  "--batch-size": "--batch",
  "-md": "--draft-model",
  "--model-draft": "--draft-model",
  "-jf": "--json-schema-file",
  "-ctk": "--kv-type",
  "-ctv": "--kv-type",
  "--cache-type-k": "--kv-type",
  "--cache-type-v": "--kv-type",
  "-np": "--parallel",
  "--predict": "--n-predict",
  "--output-format": "--output",
};

interface Ignored {
  /** takes a value: "always", "never", or a pattern the next argument must match to be its value */
  value: "always" | "never" | RegExp;
  why: string;
}

const NO_GPU = "zh-llama computes on the CPU (WebAssembly SIMD), so there are no layers to offload; --backend webgpu runs on a GPU where navigator.gpu exists";
const NO_MMAP = "zh-llama reads the weights into WebAssembly memory; there is no mmap to turn on or off";

/** llama.cpp flags with no meaning here. */
const IGNORED: Record<string, Ignored> = {
  "-ngl": { value: "always", why: NO_GPU },
  "--gpu-layers": { value: "always", why: NO_GPU },
  "--n-gpu-layers": { value: "always", why: NO_GPU },
  "-ngld": { value: "always", why: NO_GPU },
  "--gpu-layers-draft": { value: "always", why: NO_GPU },
  "--n-gpu-layers-draft": { value: "always", why: NO_GPU },
  "-sm": { value: "always", why: NO_GPU },
  "--split-mode": { value: "always", why: NO_GPU },
  "-mg": { value: "always", why: NO_GPU },
  "--main-gpu": { value: "always", why: NO_GPU },
  "--mlock": { value: "never", why: NO_MMAP },
  "--no-mmap": { value: "never", why: NO_MMAP },
  "--mmap": { value: "never", why: NO_MMAP },
  // Newer llama.cpp: -fa on|off|auto; older: a bare switch.
  "-fa": { value: /^(on|off|auto|1|0|true|false)$/, why: "attention here is one kernel with no flash-attention variant to switch" },
  "--flash-attn": { value: /^(on|off|auto|1|0|true|false)$/, why: "attention here is one kernel with no flash-attention variant to switch" },
  "-tb": { value: "always", why: "-t N sets the threads for prompt batches and decoding alike" },
  "--threads-batch": { value: "always", why: "-t N sets the threads for prompt batches and decoding alike" },
  "--no-warmup": { value: "never", why: "zh-llama does no warm-up run at load" },
  "--log-disable": { value: "never", why: "messages go to stderr; redirect it (2>/dev/null) to silence them" },
};

export interface Translated {
  args: string[];
  /** One line each, for stderr. */
  notes: string[];
}

/** Rewrites llama.cpp spellings in `args` (up to a `--` terminator) and drops flags with no meaning here. */
export function translateLlamaCppArgs(args: readonly string[]): Translated {
  const out: string[] = [];
  const notes: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    if (arg === "--") {
      out.push(...args.slice(i));
      break;
    }
    const eq = arg.startsWith("--") ? arg.indexOf("=") : -1;
    const flag = eq > 0 ? arg.slice(0, eq) : arg;
    const inline = eq > 0 ? arg.slice(eq + 1) : undefined;
    const renamed = RENAMES[flag];
    if (renamed !== undefined) {
      out.push(inline === undefined ? renamed : `${renamed}=${inline}`);
      continue;
    }
    const ignored = IGNORED[flag];
    if (ignored !== undefined) {
      let value = inline;
      const next = args[i + 1];
      if (value === undefined && next !== undefined && (ignored.value === "always" || (ignored.value instanceof RegExp && ignored.value.test(next)))) {
        value = next;
        i++;
      }
      notes.push(`note: ${flag}${value === undefined ? "" : ` ${value}`} ignored: ${ignored.why}`);
      continue;
    }
    out.push(arg);
  }
  return { args: out, notes };
}
