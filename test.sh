#!/usr/bin/env bash
# ./test.sh — installs what is missing, then builds daecl twice and runs the
# whole test suite through ctest in each build: a Release build (build/),
# then an AddressSanitizer + UndefinedBehaviorSanitizer build (build-asan/)
# where any leak is an error. CI runs exactly this (.ci/run); docs/testing.md
# describes the suite, the sanitizer settings, Oclgrind and valgrind.
set -euo pipefail
cd "$(dirname "$0")"
./scripts/deps.sh
jobs="$(nproc)"

cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j"$jobs"
(cd build && ctest --output-on-failure -j"$jobs")

# The same suite under the sanitizers. -O2 with debug information: the code
# as shipped, with file:line in every report. tests/CMakeLists.txt gives the
# tests of a sanitizer build their options: leaks are errors
# (detect_leaks=1) unless tests/lsan.supp lists them, OpenCL-driver
# internals only.
cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DDAECL_SANITIZE=ON >/dev/null
cmake --build build-asan -j"$jobs"
(cd build-asan && ctest --output-on-failure -j"$jobs")
