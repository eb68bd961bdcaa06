import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    testTimeout: 120_000,
    hookTimeout: 120_000,
    // Two cores on the reference machine: keep file-level parallelism modest so the
    // worker-pool tests get CPU time.
    maxWorkers: 2,
  },
});
