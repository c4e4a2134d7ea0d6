#!/usr/bin/env bash
# bench/gpu/bundle.sh — prepares .gpu/, what a lent GPU machine (no package
# registry, no Debian OpenCL packages; see ../shared/GPU.md) needs to run
# daecl's conformance tests, the default experiment and the benchmark:
#   .gpu/build/   a Release build (binaries, plugins, test programs) made here
#   .gpu/lib/     the shared libraries they need beyond glibc and the OpenCL
#                 loader, copied from this Debian machine (ldd tells which)
#   .gpu/data/    Fashion-MNIST from dataset-fashion-mnist
# Then, on the GPU machine, from the repository root: bench/gpu/run.sh.
# The build folder path is kept (CMake writes absolute paths into the test
# programs), so the tree must sit at the same path there, as the device
# tool's copy of the working tree does.
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD
grep -qx '/.gpu/' .git/info/exclude 2>/dev/null || echo '/.gpu/' >> .git/info/exclude
rm -rf .gpu && mkdir -p .gpu/lib .gpu/data
cmake -S . -B .gpu/build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build .gpu/build -j"$(nproc)" --target daecl daecl_bench test_backend_conformance \
  test_backends_agree daecl-backend-cpu daecl-backend-opencl >/dev/null
# every plugin, and the test plugins the agreement test uses
cmake --build .gpu/build -j"$(nproc)" >/dev/null
rm -rf .gpu/build/tests/tmp/* .gpu/build/Testing
# only what run.sh uses travels: the 64 MiB the device tool carries is tight
find .gpu/build -name '*.o' -delete
find .gpu/build/bin -type f ! -name daecl ! -name daecl_bench ! -name test_backend_conformance \
  ! -name test_backends_agree -delete
# libraries: whatever the binaries and plugins resolve outside glibc, the
# C++ and GCC runtimes, and the OpenCL loader (the GPU machine has its own)
skip='linux-vdso|ld-linux|libc\.so|libm\.so|libdl\.so|libpthread|librt\.so|libOpenCL|libstdc\+\+|libgcc_s'
# the GPU image has OpenBLAS (and its Fortran runtime) itself: 40 MB saved
skip="$skip|libopenblas|libgfortran|libquadmath"
for f in .gpu/build/bin/* .gpu/build/lib/daecl/plugins/*.so; do
  ldd "$f" 2>/dev/null | awk '/=> \// {print $3}'
done | sort -u | grep -Ev "$skip" | while read -r lib; do cp -L "$lib" .gpu/lib/; done
cp /usr/share/datasets/fashion-mnist/*.gz .gpu/data/
du -sh .gpu/build .gpu/lib .gpu/data
