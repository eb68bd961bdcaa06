#!/usr/bin/env node
// Thin launcher: the CLI lives in the library (src/cli), compiled to dist/ by `npm run build`.
import { main } from "../dist/cli/index.js";

process.exitCode = await main(process.argv.slice(2));
