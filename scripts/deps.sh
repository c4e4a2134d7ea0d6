#!/usr/bin/env bash
# Installs the Debian packages daecl needs to build, test and run, if any are
# missing. Used by ./run.sh and ./test.sh; safe to run again (it only acts when
# something is missing). Needs root, or sudo, to install.
set -euo pipefail

packages=(
  build-essential cmake pkg-config
  libyaml-dev zlib1g-dev libcjson-dev libopenblas-dev libcmocka-dev
  ocl-icd-opencl-dev opencl-headers libclblast-dev pocl-opencl-icd clinfo
  libpng-dev libcairo2-dev libfontconfig-dev
  dataset-fashion-mnist python3-numpy
  python3-sklearn # tests only: tests/test_probe.c checks the probe against scikit-learn
  oclgrind valgrind # tests only: tests/test_oclgrind.c, tests/test_valgrind.c
  openmpi-bin libopenmpi-dev # multi-process training: mpirun and the mpi comm plugin (plugins/comm/mpi)
)

# ./scripts/deps.sh --full: also what `./test.sh --full` needs (clang's
# libFuzzer and its sanitizer runtimes for the fuzz tier).
if [ "${1:-}" = "--full" ]; then
  packages+=(clang libclang-rt-14-dev)
fi

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "daecl: installing missing Debian packages: ${missing[*]}"
if [ "$(id -u)" -eq 0 ]; then
  sudo=()
elif command -v sudo >/dev/null 2>&1; then
  sudo=(sudo)
else
  echo "daecl: these packages are missing and installing them needs root: ${missing[*]}" >&2
  echo "daecl: run as root: apt-get install -y ${missing[*]}" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -qq
"${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
