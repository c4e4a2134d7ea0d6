#!/usr/bin/env bash
# ./test.sh — installs what is missing, builds daecl, and runs the whole test
# suite through ctest. CI runs exactly this (.ci/run).
set -euo pipefail
cd "$(dirname "$0")"
./scripts/deps.sh
jobs="$(nproc)"
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j"$jobs"
(cd build && ctest --output-on-failure -j"$jobs")
