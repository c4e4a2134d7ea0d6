#!/usr/bin/env bash
# ./test.sh [--full] — installs what is missing, then builds daecl three
# times and runs the test suite through ctest in each build: a Release build
# (build/), a cpu-only Release build with no OpenCL, ICD loader or CLBlast
# (build-cpu/, -DDAECL_WITH_OPENCL=OFF), then an AddressSanitizer +
# UndefinedBehaviorSanitizer build (build-asan/) where any leak is an error.
# CI runs the default (.ci/run); docs/testing.md describes the suite, the two
# tiers, the cpu-only build, the sanitizer settings, Oclgrind and valgrind.
#
#   ./test.sh         the default tier, every ctest but those labelled full:
#                     for every commit; about 4 minutes from cold caches on
#                     2 busy cores (docs/testing.md has the figures).
#   ./test.sh --full  both tiers: every ctest, the slow ones labelled full
#                     too (memcheck over OpenCL from a cold POCL cache,
#                     Oclgrind over the conformance suite and a training),
#                     then a clang libFuzzer build (build-fuzz/) fuzzing each
#                     parser for DAECL_FUZZ_SECONDS seconds (default 120).
set -euo pipefail
cd "$(dirname "$0")"

full=0
case "${1:-}" in
  "") ;;
  --full) full=1 ;;
  -h | --help)
    sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'
    exit 0 ;;
  *)
    echo "test.sh: unknown option '$1'; use ./test.sh or ./test.sh --full" >&2
    exit 2 ;;
esac
if [ "$full" = 1 ]; then
  ./scripts/deps.sh --full # clang's libFuzzer for the fuzz tier
else
  ./scripts/deps.sh
fi
jobs="$(nproc)"
# The default tier leaves out the ctests labelled full (tests/CMakeLists.txt).
tier=(-LE full)
[ "$full" = 1 ] && tier=()

cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j"$jobs"
(cd build && ctest --output-on-failure -j"$jobs" "${tier[@]}")

# The cpu-only daecl of machines without OpenCL (clusters often lack it):
# DAECL_WITH_OPENCL=OFF keeps CMake from looking for OpenCL and CLBlast at
# all, so this build shows what a machine without them gets, though the
# packages are installed here. The tests of the opencl backend are not built.
cmake -S . -B build-cpu -DCMAKE_BUILD_TYPE=Release -DDAECL_WITH_OPENCL=OFF >/dev/null
cmake --build build-cpu -j"$jobs"
(cd build-cpu && ctest --output-on-failure -j"$jobs" "${tier[@]}")

# The same suite under the sanitizers. -O2 with debug information: the code
# as shipped, with file:line in every report. tests/CMakeLists.txt gives the
# tests of a sanitizer build their options: leaks are errors
# (detect_leaks=1) unless tests/lsan.supp lists them, OpenCL-driver
# internals only. valgrind and Oclgrind's kernel checks skip here, full
# tier or not: valgrind cannot run sanitized binaries.
cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DDAECL_SANITIZE=ON >/dev/null
cmake --build build-asan -j"$jobs"
(cd build-asan && ctest --output-on-failure -j"$jobs" "${tier[@]}")

[ "$full" = 1 ] || exit 0
# The fuzz targets under libFuzzer with ASan + UBSan (tests/fuzz/), as
# docs/testing.md's runs were made; the corpus grows in
# build-fuzz/fuzz-run/ from one --full run to the next.
cmake -S . -B build-fuzz -DCMAKE_C_COMPILER=clang -DDAECL_FUZZ=ON -DCMAKE_BUILD_TYPE=Debug \
  -DCMAKE_C_FLAGS=-O1 -DDAECL_FUZZ_SECONDS="${DAECL_FUZZ_SECONDS:-120}" >/dev/null
cmake --build build-fuzz -j"$jobs" --target fuzz_targets
(cd build-fuzz && ctest --output-on-failure -j"$jobs" -L fuzz)
