#!/usr/bin/env bash
# Installs llama.cpp's prebuilt CPU build (the npm packages node-llama-cpp and
# @node-llama-cpp/linux-x64, pinned) into tools/.llama-cpp, without downloads from outside the
# npm registry and without building anything. Golden-output and benchmark tools use it as the
# independent reference; the test suite itself only reads the committed goldens.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
dir="$here/.llama-cpp"
version=3.22.1
if [ -f "$dir/node_modules/node-llama-cpp/package.json" ]; then
  echo "$dir"
  exit 0
fi
mkdir -p "$dir"
cd "$dir"
[ -f package.json ] || echo '{"name":"zh-llama-reference-llama-cpp","private":true,"type":"module"}' > package.json
NODE_LLAMA_CPP_SKIP_DOWNLOAD=true npm install --no-audit --no-fund --omit=optional --ignore-scripts \
  "node-llama-cpp@$version" "@node-llama-cpp/linux-x64@$version" >&2
echo "$dir"
