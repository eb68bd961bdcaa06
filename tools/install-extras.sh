#!/usr/bin/env bash
# The heavy tools only scripts and CI use, kept out of `npm install` (which installs what chatting
# and the test suite's core need): Deno and Bun (cross-runtime tests), chinese-poetry (350 MB: the
# make-model corpus and the tokenizer benchmark), wllama (a benchmark peer) and playwright-core
# (drives Debian's Chromium in the browser tests). Installed into node_modules with --no-save, so
# package.json and package-lock.json stay as they are. Tests that need one skip with a message
# where it is missing.   tools/install-extras.sh [deno bun chinese-poetry wllama playwright]
set -euo pipefail
cd "$(dirname "$0")/.."
declare -A pinned=(
  [deno]="deno@2.9.6"
  [bun]="bun@1.4.5"
  [chinese-poetry]="chinese-poetry@2.0.1"
  [wllama]="@wllama/wllama@3.8.1"
  [playwright]="playwright-core@1.65.1"
)
wanted=("$@")
[ ${#wanted[@]} -gt 0 ] || wanted=(deno bun chinese-poetry wllama playwright)
specs=()
for name in "${wanted[@]}"; do
  spec=${pinned[$name]:-}
  [ -n "$spec" ] || { echo "install-extras: unknown extra $name (known: ${!pinned[*]})" >&2; exit 2; }
  pkg=${spec%@*}
  if [ -f "node_modules/$pkg/package.json" ] && [ "$(node -p "require('./node_modules/$pkg/package.json').version")" = "${spec##*@}" ]; then continue; fi
  specs+=("$spec")
done
if [ ${#specs[@]} -gt 0 ]; then
  # deno and bun fetch their binaries as npm optional packages; their install scripts only link them.
  npm install --no-save --no-audit --no-fund --no-package-lock "${specs[@]}" >&2
fi
