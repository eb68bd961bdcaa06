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
present() { # is the pinned version of this extra installed?
  local spec=${pinned[$1]} pkg
  pkg=${spec%@*}
  [ -f "node_modules/$pkg/package.json" ] && [ "$(node -p "require('./node_modules/$pkg/package.json').version")" = "${spec##*@}" ]
}
missing=0
for name in "${wanted[@]}"; do
  [ -n "${pinned[$name]:-}" ] || { echo "install-extras: unknown extra $name (known: ${!pinned[*]})" >&2; exit 2; }
  present "$name" || missing=1
done
if [ "$missing" -eq 1 ]; then
  # One npm install with every extra wanted or already there: npm prunes packages package.json
  # does not name, so installing a few alone would remove the others.
  specs=()
  for name in "${!pinned[@]}"; do
    keep=0
    for w in "${wanted[@]}"; do [ "$w" = "$name" ] && keep=1; done
    if [ "$keep" -eq 1 ] || present "$name"; then specs+=("${pinned[$name]}"); fi
  done
  # deno and bun fetch their binaries as npm optional packages; their install scripts only link them.
  npm install --no-save --no-audit --no-fund --no-package-lock "${specs[@]}" >&2
fi
