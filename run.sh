#!/usr/bin/env bash
# ./run.sh [KEY=VALUE ...] — installs what is missing, builds daecl, and trains
# the default experiment (configs/fashion-mnist.yaml). Extra arguments are
# passed to `daecl train` as overrides, e.g. ./run.sh train.epochs=20
set -euo pipefail
cd "$(dirname "$0")"
./scripts/deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j"$(nproc)" >/dev/null
exec build/bin/daecl train configs/fashion-mnist.yaml "$@"
