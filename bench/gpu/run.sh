#!/usr/bin/env bash
# bench/gpu/run.sh — on a lent NVIDIA machine, from the repository root, with
# .gpu/ from bench/gpu/bundle.sh: makes NVIDIA's OpenCL driver visible, runs
# the conformance tests and the cross-backend agreement on the GPU, trains the
# default experiment at full length on it, and runs the benchmark against
# PyTorch on CUDA. Logs go to $OUT (or ./gpu-out).
set -uo pipefail
out=${OUT:-$PWD/gpu-out}
mkdir -p "$out"
root=$PWD
lib=$root/.gpu/lib
b=$root/.gpu/build
exec > >(tee "$out/log.txt") 2>&1
echo "== machine"; date; nvidia-smi -L; ldd --version | head -1
# NVIDIA's ICD: keep what the machine declares (OCL_ICD_FILENAMES or
# /etc/OpenCL/vendors); otherwise point a vendors folder at the driver.
if [ -z "${OCL_ICD_FILENAMES:-}" ] && ! ls /etc/OpenCL/vendors/*nvidia* >/dev/null 2>&1; then
  drv=$(find / -name 'libnvidia-opencl.so*' 2>/dev/null | head -1)
  mkdir -p /tmp/icd && echo "$drv" > /tmp/icd/nvidia.icd && export OCL_ICD_VENDORS=/tmp/icd
fi
echo "OCL_ICD_FILENAMES=${OCL_ICD_FILENAMES:-} OCL_ICD_VENDORS=${OCL_ICD_VENDORS:-}"
mkdir -p /usr/share/datasets && ln -sfn "$root/.gpu/data" /usr/share/datasets/fashion-mnist
# daecl's programs see the bundled libraries; Python (PyTorch) does not.
run() { LD_LIBRARY_PATH="$lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" "$@"; }
export DAECL_CACHE_DIR=/tmp/daecl-cache
echo "== devices"; run "$b/bin/daecl" devices
echo "== conformance on the GPU"
( cd "$b/tests" && DAECL_DEVICE=type=gpu run timeout 100 "$b/bin/test_backend_conformance" ) > "$out/conformance.txt" 2>&1
echo "conformance exit $?"; grep -E "PASSED|FAILED|SKIPPED|opencl backend on" "$out/conformance.txt"
echo "== opencl on the GPU against cpu, 200 steps"
( cd "$b/tests" && DAECL_DEVICE=type=gpu run timeout 60 "$b/bin/test_backends_agree" ) > "$out/agree.txt" 2>&1
echo "agree exit $?"; grep -E "PASSED|FAILED|SKIPPED" "$out/agree.txt"
echo "== the default experiment at full length on the GPU"
mkdir -p /tmp/runs
time DAECL_DEVICE=type=gpu run timeout 130 "$b/bin/daecl" train configs/fashion-mnist.yaml \
  data.train_limit=0 data.test_limit=0 train.epochs=${EPOCHS:-30} eval.probe_baseline=true \
  output.dir=/tmp/runs --progress=lines > "$out/train.txt" 2>&1
echo "train exit $?"; tail -n 12 "$out/train.txt"; cp /tmp/runs/*/summary.json "$out/" 2>/dev/null
echo "== benchmark against PyTorch on CUDA"
cat > /tmp/daecl_bench <<EOB
#!/bin/sh
LD_LIBRARY_PATH="$lib" exec "$b/bin/daecl_bench" "\$@"
EOB
chmod +x /tmp/daecl_bench && mkdir -p /tmp/bb/bin && cp /tmp/daecl_bench /tmp/bb/bin/
timeout 210 python3 bench/bench.py --build /tmp/bb --cuda ${BENCH_ARGS:---quick} --results "$out/RESULTS-gpu.md"
echo "bench exit $?"
