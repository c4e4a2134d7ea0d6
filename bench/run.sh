#!/usr/bin/env bash
# bench/run.sh [--quick] [--no-opencl] [--no-torch] [--cuda] [--contention]
#              [--rounds N] [--before REV] — daecl's benchmark against PyTorch
# and the machine's GEMM ceiling, and the cpu backend beside a busy process,
# in one run; appends the report to bench/RESULTS.md. Run it on a quiet
# machine: two timing jobs at once on few cores distort both. See
# bench/README.md.
#
# --before REV builds git revision REV in a temporary worktree
# (build-bench-before/) and runs the contention case on it too, alternating
# with this tree, for the quiet figure now against before.
set -euo pipefail
cd "$(dirname "$0")/.."
args=()
before=""
need_torch=1
while [ $# -gt 0 ]; do
  case "$1" in
    --before) before="${2:?--before needs a git revision}"; shift 2; continue ;;
    --contention | --no-torch) need_torch=0 ;;
  esac
  args+=("$1")
  shift
done
./scripts/deps.sh
if [ "$need_torch" -eq 1 ] && ! /usr/bin/python3 -c "import torch" 2>/dev/null; then
  echo "bench: installing Debian's python3-torch (the PyTorch peer)"
  if [ "$(id -u)" -eq 0 ]; then sudo=(); else sudo=(sudo); fi
  DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends python3-torch
fi
cmake -S . -B build-bench -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build-bench -j"$(nproc)" >/dev/null
if [ -n "$before" ]; then
  # Only the driver and the plugins, from a worktree removed once built (the
  # build folder keeps what it needs: the plugins are found by build path).
  src=build-bench-before/src
  rm -rf "$src"
  git worktree prune
  git worktree add --detach -q "$src" "$before"
  cmake -S "$src" -B build-bench-before/build -DCMAKE_BUILD_TYPE=Release -DBUILD_TESTING=OFF >/dev/null
  cmake --build build-bench-before/build -j"$(nproc)" >/dev/null
  git worktree remove --force "$src"
  args+=(--before-build build-bench-before/build)
fi
exec /usr/bin/python3 bench/bench.py --build build-bench "${args[@]}"
