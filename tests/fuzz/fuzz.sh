#!/usr/bin/env bash
# tests/fuzz/fuzz.sh TARGET [SECONDS] [BUILD_DIR] — runs one libFuzzer target
# the way docs/testing.md records it: seeds from tests/fuzz/corpus/TARGET,
# the target's dictionary, ASan's limits on RSS and on any single malloc (a
# header that makes daecl allocate 1 GiB is a finding), and a 10 s timeout
# per input. The growing corpus and any crash go under BUILD_DIR/fuzz-run/;
# copy a crash into tests/fuzz/crashes/TARGET/ once it is fixed. Exits
# non-zero on any finding. In a -DDAECL_FUZZ=ON build ctest runs it as
# fuzz_run_TARGET (label full), which ./test.sh --full does.
# Build first: cmake -S . -B build-fuzz -DCMAKE_C_COMPILER=clang -DDAECL_FUZZ=ON
#              -DCMAKE_BUILD_TYPE=Debug -DCMAKE_C_FLAGS=-O1 && cmake --build build-fuzz
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
target="${1:?usage: fuzz.sh TARGET [SECONDS] [BUILD_DIR] (config idx npy safetensors descriptor)}"
seconds="${2:-600}"
build="${3:-$here/../../build-fuzz}"
bin="$build/bin/fuzz_$target"
[ -x "$bin" ] || { echo "fuzz.sh: no $bin; build with -DDAECL_FUZZ=ON first" >&2; exit 2; }
work="$build/fuzz-run/$target"
mkdir -p "$work/corpus"
dict=()
[ -f "$here/dict/$target.dict" ] && dict=(-dict="$here/dict/$target.dict")
exec "$bin" "$work/corpus" "$here/corpus/$target" "${dict[@]}" \
  -max_total_time="$seconds" -rss_limit_mb=2048 -malloc_limit_mb=1024 -timeout=10 \
  -artifact_prefix="$work/" -print_final_stats=1
