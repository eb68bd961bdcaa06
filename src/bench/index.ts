/**
 * `npm run bench [-- SUITE...]`: tinybench suites, each in its own file, run by name.
 * Speed is only ever measured here, never asserted in unit tests.
 */
type Suite = () => Promise<void>;

const suites: Record<string, () => Promise<Suite>> = {
  tokenizer: async () => (await import("./tokenizer.js")).default,
  quants: async () => (await import("./quants.js")).default,
  kernels: async () => (await import("./kernels.js")).default,
  sampling: async () => (await import("./sampling.js")).default,
};

async function main(names: string[]): Promise<void> {
  const chosen = names.length > 0 ? names : Object.keys(suites);
  for (const name of chosen) {
    const load = suites[name];
    if (!load) {
      console.error(`unknown bench suite ${JSON.stringify(name)}; known: ${Object.keys(suites).join(", ")}`);
      process.exitCode = 2;
      return;
    }
    console.log(`\n## ${name}\n`);
    await (await load())();
  }
}

await main(process.argv.slice(2));
