import { verifyManifest } from "../convert/index.js";
import { UsageError } from "../errors.js";
import { parseCommandArgs, type Command } from "./command.js";

export const verifyCommand: Command = {
  usage: `usage: zh-llama verify DIR | FILE

Checks the SHA-256 manifest zh-llama writes with merged and converted models: DIR/SHA256SUMS,
or FILE.sha256 beside a single file (any "HASH  NAME" file, as sha256sum -c reads, also
works). Exit status 0 when every listed file is present and intact, 1 otherwise.`,

  async run(args, io) {
    const { positionals } = parseCommandArgs({ args, allowPositionals: true, options: {} });
    if (positionals.length !== 1) throw new UsageError("expected one DIR or FILE");
    const result = await verifyManifest(positionals[0]!);
    for (const name of result.ok) io.stdout(`${name}: OK\n`);
    for (const { name, problem } of result.bad) io.stdout(`${name}: FAILED (${problem})\n`);
    for (const name of result.unlisted) io.stderr(`note: ${name} is not in the manifest\n`);
    io.stdout(`${result.manifest}: ${result.bad.length === 0 ? "all" : `${result.ok.length} of ${result.ok.length + result.bad.length}`} files verified\n`);
    return result.bad.length === 0 ? 0 : 1;
  },
};
