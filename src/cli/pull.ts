import { UsageError } from "../errors.js";
import { hubDownload, parseHfUri, type HubDownload, type HubDownloadOptions } from "../hub/index.js";
import { formatPlanBytes } from "../model/index.js";
import { parseCommandArgs, type CliIo, type Command } from "./command.js";
import { ProgressBar } from "./progress.js";

/**
 * hubDownload with what a user wants on stderr: a progress bar (every 10% when stderr is not a
 * terminal), then one line: where it came from and how much was fetched.
 */
export async function pullWithProgress(io: CliIo, repo: string, file: string, options: HubDownloadOptions = {}): Promise<HubDownload> {
  let bar: ProgressBar | undefined;
  let barTotal = 0;
  let fetchedAny = false;
  const result = await hubDownload(repo, file, {
    ...options,
    onProgress: (p) => {
      options.onProgress?.(p);
      if (p.done >= p.total && !bar) return; // already in the cache: no bar
      fetchedAny = true;
      if (!bar || barTotal !== p.total) {
        bar = new ProgressBar(io, `${repo}/${file}`, p.total);
        barTotal = p.total;
      }
      const parts = p.parts > 1 ? `, part ${p.part} of ${p.parts}` : "";
      bar.update(p.done, `${formatPlanBytes(p.done)} of ${formatPlanBytes(p.total)}${parts}`);
    },
  });
  const parts = result.paths.length > 1 ? ` (${result.paths.length} parts)` : "";
  const summary = result.downloaded > 0
    ? `${formatPlanBytes(result.bytes)}${parts}, ${formatPlanBytes(result.downloaded)} fetched, commit ${result.commit.slice(0, 10)}`
    : `${formatPlanBytes(result.bytes)}${parts} in the cache, commit ${result.commit.slice(0, 10)}${result.offline ? ` (${result.offline})` : ""}`;
  if (bar && fetchedAny) (bar as ProgressBar).done(summary);
  else io.stderr(`${repo}/${file}: ${summary}\n`);
  return result;
}

/** Replaces an `hf://ORG/NAME[@REV]/FILE` argument by the local path, pulling it first. */
export async function resolveHfArgument(io: CliIo, value: string): Promise<string> {
  if (!value.startsWith("hf://")) return value;
  const { repo, file, revision } = parseHfUri(value);
  return (await pullWithProgress(io, repo, file, { revision })).path;
}

/** Flags whose value is a model file, in every command that has them. */
const MODEL_FLAGS = new Set(["-m", "--model", "-md", "--model-draft", "--draft-model"]);
/** Commands whose positional arguments are model files. */
const POSITIONAL_MODEL_COMMANDS = new Set(["inspect"]);

/**
 * The CLI's resolve step, run before a command parses its arguments: `-m hf://...` (and
 * `--model=`, `--draft-model`, `-md`, inspect's positional) become local paths in the hub cache,
 * so every command that takes a model file takes a hub path without knowing about the hub.
 */
export async function resolveHfArguments(command: string, args: string[], io: CliIo): Promise<string[]> {
  if (!args.some((a) => a.includes("hf://"))) return args;
  const out = [...args];
  for (let i = 0; i < out.length; i++) {
    const a = out[i]!;
    const eq = a.indexOf("=");
    if (a.startsWith("--") && eq > 0 && MODEL_FLAGS.has(a.slice(0, eq)) && a.slice(eq + 1).startsWith("hf://")) {
      out[i] = `${a.slice(0, eq)}=${await resolveHfArgument(io, a.slice(eq + 1))}`;
    } else if (MODEL_FLAGS.has(a) && i + 1 < out.length) {
      out[i + 1] = await resolveHfArgument(io, out[i + 1]!);
      i++;
    } else if (a.startsWith("hf://") && POSITIONAL_MODEL_COMMANDS.has(command)) {
      out[i] = await resolveHfArgument(io, a);
    }
  }
  return out;
}

export const pullCommand: Command = {
  usage: `usage: zh-llama pull REPO FILE [--revision R]
       zh-llama pull hf://REPO/FILE

Downloads FILE from the Hugging Face Hub model repository REPO (ORG/NAME) into the cache that
huggingface_hub and its tools share, and prints its local path. A file already there is not
fetched again; an interrupted download resumes; LFS files are checked against their sha256;
a split GGUF (NAME-00001-of-00003.gguf) comes with all its parts. Every command that takes
-m MODEL also takes -m hf://REPO/FILE (or hf://REPO@REVISION/FILE) and pulls it first.

  --revision R      branch, tag or commit (default main)

environment:
  HF_ENDPOINT       the hub's base URL (default https://huggingface.co; a mirror, e.g.
                    https://hf-mirror.com, works the same)
  HF_TOKEN          access token for private or gated repositories (else the file
                    huggingface-cli login wrote, $HF_HOME/token)
  HF_HOME           default ~/.cache/huggingface; files go to $HF_HOME/hub (HF_HUB_CACHE
                    overrides)
  HF_HUB_OFFLINE=1  never ask the hub: the cache answers or the command fails

example:
  zh-llama pull hfl/chinese-alpaca-2-7b-gguf ggml-model-q4_0.gguf
  zh-llama chat -m hf://hfl/chinese-alpaca-2-7b-gguf/ggml-model-q4_0.gguf`,

  async run(args, io) {
    const { values, positionals } = parseCommandArgs({ args, allowPositionals: true, options: { revision: { type: "string", short: "r" } } });
    let repo: string;
    let file: string;
    let revision = values.revision;
    if (positionals.length === 1 && positionals[0]!.startsWith("hf://")) {
      const parsed = parseHfUri(positionals[0]!);
      repo = parsed.repo;
      file = parsed.file;
      if (parsed.revision !== undefined) {
        if (revision !== undefined && revision !== parsed.revision) throw new UsageError(`--revision ${revision} disagrees with @${parsed.revision} in the hf:// path`);
        revision = parsed.revision;
      }
    } else if (positionals.length === 2) {
      [repo, file] = positionals as [string, string];
    } else {
      throw new UsageError("expected REPO FILE (e.g. hfl/chinese-alpaca-2-7b-gguf ggml-model-q4_0.gguf) or hf://REPO/FILE");
    }
    const result = await pullWithProgress(io, repo, file, { revision });
    io.stdout(result.path + "\n");
    return 0;
  },
};
