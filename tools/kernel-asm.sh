#!/bin/bash
# The machine code V8 made of a kernel, with where the time went: runs one type's matmul (the
# A/B benchmark, both sides the same build) under `perf record`, with V8 writing its JIT code to
# a jitdump (--perf-prof), merges that (`perf inject --jit`) and prints the annotated hottest
# WebAssembly function (instruction, share of samples). How the kernels' V8-specific choices were
# found: rebuilt v128 constants, emulated byte shifts, loads lifted over a loop and spilled, long
# dependency chains (assembly/q4_0_r4.ts, common.ts VCONST).
#
#   tools/kernel-asm.sh TYPE TOKENS [NODE] [BUILD.wasm]     e.g. tools/kernel-asm.sh q4_0 1
#   (needs perf: Debian's linux-perf; NODE defaults to `node`, BUILD to build/kernels-relaxed.wasm)
set -euo pipefail
type=${1:?usage: tools/kernel-asm.sh TYPE TOKENS [NODE] [BUILD.wasm]}
tokens=${2:?usage: tools/kernel-asm.sh TYPE TOKENS [NODE] [BUILD.wasm]}
node=${3:-node}
root=$(cd "$(dirname "$0")/.." && pwd)
build=${4:-$root/build/kernels-relaxed.wasm}
command -v perf >/dev/null || { echo "kernel-asm: perf not found (apt-get install linux-perf)" >&2; exit 2; }
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
flags=()
# Node before 22 has relaxed SIMD behind a flag (the loader sets it; here the tool does).
[ "$("$node" -p 'process.versions.node.split(".")[0]')" -lt 22 ] && flags+=(--experimental-wasm-relaxed-simd)
(cd "$dir" && perf record -q -k 1 -e cpu-clock -o perf.data "$node" "${flags[@]}" --perf-prof --no-liftoff \
  "$root/tools/bench-matmul-ab.mjs" "$build" "$build" 5 "$tokens" "$type" 4096x4096 >&2)
perf inject --jit -i "$dir/perf.data" -o "$dir/perf.jit.data" 2>/dev/null
hot=$(perf report -i "$dir/perf.jit.data" --stdio 2>/dev/null | grep -o 'JS:wasm-function\[[0-9]*\]-[0-9]*-turbofan' | head -1)
[ -n "$hot" ] || { echo "kernel-asm: no optimised WebAssembly function in the profile" >&2; exit 1; }
echo "# $hot ($type, $tokens token(s), $("$node" --version))"
perf annotate -i "$dir/perf.jit.data" --stdio -s "$hot" 2>/dev/null | grep -E '^\s+[0-9.]+ :'
