#!/bin/sh
# daecl's data-parallel training against its PyTorch peer, in one run.
#   [ROUNDS=3] [BUSY=1] [MIN_IDLE=90] [DDP_OPTS="--bind --bucket-view"] \
#     bench/parallel_peer.sh [OUTDIR]
# Three configurations, each by both systems, on the cpu: 1 process x 1
# thread, 1 x 2 threads, 2 processes x 1 thread (daecl: 2 MPI ranks,
# mpirun --bind-to core; PyTorch: DistributedDataParallel over gloo,
# bench/torch_ddp.py with DDP_OPTS). PyTorch's 2 threads in one process are
# its BLAS's (OpenBLAS does the GEMMs: --threads 1 --blas-threads 2, the
# fastest of the forms tried; --threads 2 --blas-threads 2 spins its OpenMP
# threads against OpenBLAS's unless OMP_WAIT_POLICY=PASSIVE). daecl:
# bench/parallel.sh (the second epoch's examples/s, 20,000 images);
# PyTorch: bench/torch_ddp.py (median of 5 windows of about 2 s after a
# 2 s warm-up, the same 20,000 images,
# the same model, loss, noise and optimizer). Order: round 1 a b c with
# daecl first in each pair, round 2 c b a with PyTorch first, and so on.
# Every run first waits for quiet CPUs (bench/idle.sh); a PyTorch run that
# fails or passes 120 s (timeout kills its process group) is tried once
# more. BUSY=1 runs the whole set beside `python3 -c 'while True: pass'`
# (MIN_IDLE then defaults to 40) and kills that process, by its PID, on exit.
# Prints one line per run and, at the end, per configuration the medians,
# the ranges and the ratio daecl / PyTorch. Output under OUTDIR
# (default /tmp/p-data/peer/<time>).
set -e
cd "$(dirname "$0")/.."
. bench/idle.sh
out=${1:-/tmp/p-data/peer/$(date -u +%Y%m%dT%H%M%S)}
mkdir -p "$out"
py=/usr/bin/python3
ddp_opts=${DDP_OPTS---bind --bucket-view}
busy=""
if [ "${BUSY:-0}" = 1 ]; then
    MIN_IDLE=${MIN_IDLE:-40}; export MIN_IDLE
    python3 -c 'while True: pass' & busy=$!
    trap 'kill $busy 2>/dev/null; wait $busy 2>/dev/null || true
          if kill -0 $busy 2>/dev/null; then echo "busy process $busy still alive"; else echo "busy process $busy ended"; fi' EXIT
    trap 'exit 1' INT TERM
    echo "busy process: pid $busy"
fi
res=$out/results.tsv; : >"$res"

daecl() {  # config round
    case $1 in
    1x1) set -- "$1" "$2" 1 backend.plugin=cpu backend.threads=1 ;;
    1x2) set -- "$1" "$2" 1 backend.plugin=cpu backend.threads=2 ;;
    2x1) set -- "$1" "$2" 2 --mpi --bind-to core -- backend.plugin=cpu backend.threads=1 ;;
    esac
    c=$1 r=$2; shift 2
    for try in 1 2; do
        if line=$(bench/parallel.sh "peer-$c-r$r" "$@"); then break; fi
        echo "daecl $c round $r: failed (try $try)"; line=""
    done
    echo "daecl   $c round $r: $line"
    [ -n "$line" ] || return 0
    v=$(echo "$line" | sed -n 's/.*epoch2 \([0-9]*\) ex\/s.*/\1/p')
    l=$(echo "$line" | sed -n 's/.* load \(.*\)  epoch2.*/\1/p')
    printf '%s\t%s\tdaecl\t%s\t%s\n' "$r" "$c" "$v" "$l" >>"$res"
}

torch() {  # config round
    case $1 in
    1x1) o="--procs 1 --threads 1" ;;
    1x2) o="--procs 1 --threads 1 --blas-threads 2" ;;
    2x1) o="--procs 2 --threads 1 $ddp_opts" ;;
    esac
    for try in 1 2; do
        wait_idle
        rc=0; timeout -k 5 120 $py bench/torch_ddp.py $o >"$out/torch-$1-r$2.json" 2>"$out/torch-$1-r$2.err" || rc=$?
        if [ $rc = 0 ]; then ok=1; break; fi
        ok=0; echo "pytorch $1 round $2: failed, rc $rc (try $try): $(tail -1 "$out/torch-$1-r$2.err")"
    done
    [ $ok = 1 ] || return 0
    v=$($py -c 'import json,sys; d=json.load(open(sys.argv[1])); print(round(d["examples_per_s"]), " ".join(str(round(w)) for w in d["windows"]))' "$out/torch-$1-r$2.json")
    echo "pytorch $1 round $2: load $load  ${v%% *} ex/s (windows ${v#* }) [$o]"
    printf '%s\t%s\tpytorch\t%s\t%s\n' "$2" "$1" "${v%% *}" "$load" >>"$res"
}

for r in $(seq 1 "${ROUNDS:-3}"); do
    if [ $((r % 2)) = 1 ]; then cs="1x1 1x2 2x1"; else cs="2x1 1x2 1x1"; fi
    for c in $cs; do
        if [ $((r % 2)) = 1 ]; then daecl $c $r; torch $c $r; else torch $c $r; daecl $c $r; fi
    done
done

$py - "$res" <<'PY'
import sys, statistics, collections
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1]) if l.strip()]
v = collections.defaultdict(list)
for r, c, s, x, _ in rows:
    v[c, s].append(float(x))
print("\n| configuration | daecl median (range) | PyTorch median (range) | daecl / PyTorch |")
print("|---|---:|---:|---:|")
name = {"1x1": "1 process x 1 thread", "1x2": "1 process x 2 threads",
        "2x1": "2 processes x 1 thread"}
for c in ("1x1", "1x2", "2x1"):
    d, t = v.get((c, "daecl"), []), v.get((c, "pytorch"), [])
    if not d or not t:
        continue
    md, mt = statistics.median(d), statistics.median(t)
    print("| %s | %s (%s-%s, n=%d) | %s (%s-%s, n=%d) | %.2f |" % (
        name[c], f"{md:,.0f}", f"{min(d):,.0f}", f"{max(d):,.0f}", len(d),
        f"{mt:,.0f}", f"{min(t):,.0f}", f"{max(t):,.0f}", len(t), md / mt))
PY
echo "results: $res"
