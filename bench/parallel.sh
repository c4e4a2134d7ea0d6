#!/bin/sh
# Data-parallel training on this machine: one configuration, one run.
#   [MIN_IDLE=90] bench/parallel.sh NAME RANKS [--mpi MPIRUN_OPTIONS --] [OVERRIDES...]
# Trains configs/fashion-mnist.yaml on 20,000 images for 2 epochs without
# evaluation extras, under /tmp/p-data/par/NAME, and prints one line: the
# load before the run, the second epoch's examples/s, and per replica its
# share and its sync_s and wait_s per step (the epoch line's counters cover
# the whole second epoch because log_every exceeds an epoch's 157 steps).
set -e
name=$1 ranks=$2; shift 2
mpi=""
if [ "$1" = "--mpi" ]; then shift; while [ "$1" != "--" ]; do mpi="$mpi $1"; shift; done; shift; fi
out=/tmp/p-data/par/$name; rm -rf "$out"
# Wait (up to 60 s) until the CPUs were at least MIN_IDLE % idle over one
# second (default 90; 40 beside a deliberate busy process): the load
# average lags by a minute, other users' builds come and go.
idle() { set -- $(head -1 /proc/stat); t1=$(($2+$3+$4+$5+$6+$7+$8)) i1=$5; sleep 1
         set -- $(head -1 /proc/stat); t2=$(($2+$3+$4+$5+$6+$7+$8)) i2=$5
         echo $((100 * (i2 - i1) / (t2 - t1))); }
tries=0
while id=$(idle); [ "$id" -lt "${MIN_IDLE:-90}" ] && [ $tries -lt 60 ]; do tries=$((tries+1)); done
load="$(cut -d' ' -f1 /proc/loadavg), idle $id%"
set -- configs/fashion-mnist.yaml data.train_limit=20000 train.epochs=2 \
    eval.probe=false eval.denoising=false train.log_every=1000 output.dir="$out" "$@"
if [ "$ranks" -gt 1 ]; then
    mpirun --allow-run-as-root -np "$ranks" $mpi build/bin/daecl train "$@" >"$out.log" 2>&1
else
    build/bin/daecl train "$@" >"$out.log" 2>&1
fi
python3 - "$out" "$name" "$load" <<'PY'
import json, sys, glob
out, name, load = sys.argv[1:]
f = glob.glob(out + "/*/metrics.jsonl")[0]
ep = [json.loads(l) for l in open(f) if '"epoch"' in l]
ep = [e for e in ep if e["type"] == "epoch"]
e = ep[-1]
steps = 157
s = "%s load %s  epoch2 %.0f ex/s (%.3f s)" % (name, load, e["examples_per_s"], e["seconds"])
for r in e.get("replicas", []):
    s += " | r%d %s share %.3f %d ex, compute %.0f ex/s, sync %.3f ms/step, wait %.3f ms/step" % (
        r["rank"], r["device"][:14], r["share"], r["examples"], r["examples_per_s"],
        1e3 * r["sync_s"] / steps, 1e3 * r["wait_s"] / steps)
print(s)
PY
grep -i 'warn\|left out\|drop' "$out.log" | head -3 || true
