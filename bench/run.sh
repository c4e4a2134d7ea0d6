#!/usr/bin/env bash
# bench/run.sh [--quick] [--no-opencl] [--no-torch] [--cuda] — daecl's benchmark
# against PyTorch and the machine's GEMM ceiling, in one run; appends the
# report to bench/RESULTS.md. Run it on a quiet machine: two timing jobs at
# once on few cores distort both. See bench/README.md.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/deps.sh
if ! /usr/bin/python3 -c "import torch" 2>/dev/null; then
  echo "bench: installing Debian's python3-torch (the PyTorch peer)"
  if [ "$(id -u)" -eq 0 ]; then sudo=(); else sudo=(sudo); fi
  DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends python3-torch
fi
cmake -S . -B build-bench -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build-bench -j"$(nproc)" >/dev/null
exec /usr/bin/python3 bench/bench.py --build build-bench "$@"
