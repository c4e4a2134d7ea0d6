#!/usr/bin/env bash
# bench/gemm_kernels.sh [--build DIR] [--config YAML] [--rounds N] [--tune-s S]
#                       [--out DIR] — GFLOP/s of daecl's CPU GEMM kernels
# (`backend.gemm: daecl_cpu`, every variant `daecl tune` tries) at a model's
# training shapes (R1 by default: batch 128, 784-1000-784), against CLBlast
# with its built-in parameters, CLBlast tuned by `daecl tune` (--tune-s
# seconds of search; 0 skips it), the tuned routes (`gemm: auto`, which may
# pick a CPU variant per shape), daecl's tiled kernel, OpenBLAS on every
# core and the cpu backend's own AVX-512 and AVX2 kernels (a kernel the
# CPU lacks drops out of the table). Each case is one `daecl_bench gemm` run (best of 3 half-second
# windows per shape after a warm-up); rounds run every case once, in the
# same order, so a drift in the machine's load touches every case alike.
# Prints a markdown table of the medians over rounds; the raw JSON lines
# and the tunings' logs are kept in OUT (default
# /tmp/daecl-bench/gemm-kernels). The program cache and the tunings live in
# OUT, apart from the user's. Run on a quiet machine: two timing jobs at
# once on few cores distort both.
set -euo pipefail
cd "$(dirname "$0")/.."
build=build config=bench/r1.yaml rounds=3 tune_s=300 out=/tmp/daecl-bench/gemm-kernels
while [ $# -gt 0 ]; do
  case "$1" in
    --build) build="$2"; shift 2 ;;
    --config) config="$2"; shift 2 ;;
    --rounds) rounds="$2"; shift 2 ;;
    --tune-s) tune_s="$2"; shift 2 ;;
    --out) out="$2"; shift 2 ;;
    *) echo "usage: $0 [--build DIR] [--config YAML] [--rounds N] [--tune-s S] [--out DIR]" >&2
       exit 2 ;;
  esac
done
bench="$build/bin/daecl_bench" daecl="$build/bin/daecl"
[ -x "$bench" ] && [ -x "$daecl" ] || { echo "no $bench or $daecl: build first" >&2; exit 1; }
mkdir -p "$out"
rm -f "$out"/round-*.jsonl
export DAECL_CACHE_DIR="$out/cache" DAECL_DEVICE=
ocl=(backend.plugin=opencl)
# The variants tune tries, from the header that lists them.
mapfile -t variants < <(grep -o '"MR=[^"]*"' backends/opencl/gemm_cpu_variants.h | tr -d '"')

# CLBlast's built-in parameters: measured before any tuning exists.
rm -rf "$out/cache/clblast-tuning" "$out/cache/tuning-aside"
cases=("openblas|--openblas" "cpu backend avx512|backend.plugin=cpu backend.gemm=avx512"
       "cpu backend avx2|backend.plugin=cpu backend.gemm=avx2"
       "clblast|${ocl[*]} backend.gemm=clblast" "daecl tiled|${ocl[*]} backend.gemm=daecl")
for v in "${variants[@]}"; do
  cases+=("daecl_cpu $v|${ocl[*]} backend.gemm=daecl_cpu|backend.gemm_cpu=$v")
done
run_case() { # label, round
  local label="${1%%|*}" rest="${1#*|}" args=()
  IFS='|' read -r -a parts <<<"$rest"
  read -r -a args <<<"${parts[0]}"
  [ "${#parts[@]}" -gt 1 ] && args+=("${parts[1]}")
  "$bench" gemm "$config" "${args[@]}" 2>/dev/null |
    sed "s/^{/{\"case\": \"$label\", /" >>"$out/round-$2.jsonl"
}
# Two tunings, each in a tuning folder of its own, swapped in for the cases
# that use it: CLBlast's parameters alone (daecl's kernels made to look
# slow with DAECL_TUNE_FAKE, so the search keeps its best CLBlast sets),
# and everything (what `gemm: auto` runs after a plain `daecl tune`).
tuned=()
if [ "$tune_s" != 0 ]; then
  for t in clblast all; do
    echo "gemm_kernels: tuning ($t) for ${tune_s} s (daecl tune)" >&2
    fake=""
    [ "$t" = clblast ] && fake="daecl:1000,cpu:1000"
    DAECL_TUNE_FAKE="$fake" "$daecl" tune "$config" "${ocl[@]}" --budget-s "$tune_s" \
      >"$out/tune-$t.log" 2>&1
    rm -rf "$out/tuning-$t"
    mv "$out/cache/clblast-tuning" "$out/tuning-$t"
  done
  tuned=("clblast tuned|${ocl[*]} backend.gemm=clblast|tuning-clblast"
         "auto tuned|${ocl[*]} backend.gemm=auto|tuning-all")
fi
for r in $(seq 1 "$rounds"); do
  echo "gemm_kernels: round $r of $rounds" >&2
  for c in "${cases[@]}"; do
    run_case "$c" "$r"
  done
  for c in "${tuned[@]}"; do
    cp -r "$out/${c##*|}" "$out/cache/clblast-tuning"
    run_case "${c%|*}" "$r"
    rm -rf "$out/cache/clblast-tuning"
  done
done
/usr/bin/python3 - "$out" <<'PY'
import glob, json, statistics, sys
rows = {}
shapes = []
for path in sorted(glob.glob(sys.argv[1] + "/round-*.jsonl")):
    for line in open(path):
        d = json.loads(line)
        shape = (d["layer"], d["op"], d["m"], d["n"], d["k"], d["ta"], d["tb"])
        if shape not in shapes:
            shapes.append(shape)
        rows.setdefault(d["case"], {}).setdefault(shape, []).append(d["gflops"])
def op(s):
    return {(0, 1): "A B^T", (1, 0): "A^T B", (0, 0): "A B", (1, 1): "A^T B^T"}[(s[5], s[6])]
print("| case | " + " | ".join(f"{s[1]} {s[2]}x{s[3]}x{s[4]} ({op(s)})" for s in shapes) + " |")
print("|---" * (len(shapes) + 1) + "|")
for case, per in rows.items():
    cells = [f"{statistics.median(per[s]):.1f}" if s in per else "-" for s in shapes]
    print(f"| {case} | " + " | ".join(cells) + " |")
print(f"\nGFLOP/s, median of {len(glob.glob(sys.argv[1] + '/round-*.jsonl'))} rounds.")
PY
