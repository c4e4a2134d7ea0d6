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
# Wait for quiet CPUs (bench/idle.sh: MIN_IDLE, default 90 % idle over
# one second; 40 beside a deliberate busy process).
. "$(dirname "$0")/idle.sh"
wait_idle
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
