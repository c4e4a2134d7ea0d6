#!/usr/bin/env python3
"""daecl's benchmark: daecl (cpu and opencl backends) against PyTorch at its
best on this machine, and against the machine's GEMM ceiling, in one run;
and the cpu backend beside a busy process (the contention case).

Runs build/bin/daecl_bench and bench/torch_dae.py as separate processes, one
at a time, each after its own warm-up, and takes the median of timed windows.
Prints a report and appends it to bench/RESULTS.md with the command, the
machine and the date. Numbers are what this run measured, nothing else.

usage: bench/run.sh [--quick] [--no-opencl] [--no-torch] [--cuda]
                    [--contention] [--peer] [--rounds N] [--before REV]
  (bench/run.sh installs what is missing, builds, then runs this script;
  --before REV builds revision REV beside it and passes --before-build)
"""
import argparse
import contextlib
import datetime
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
R1 = os.path.join(ROOT, "bench", "r1.yaml")


def run_json(cmd, env=None, timeout=1800):
    e = dict(os.environ)
    if env:
        e.update(env)
    out = subprocess.run(cmd, capture_output=True, text=True, env=e, timeout=timeout)
    if out.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({out.returncode}): {out.stderr.strip()[-800:]}")
    return [json.loads(line) for line in out.stdout.splitlines() if line.startswith("{")]


SMALL = os.path.join(ROOT, "bench", "small.yaml")
SMALL_DATA = "/tmp/daecl-bench/small-2d.npy"  # where bench/small.yaml reads it


def small_data(path=SMALL_DATA, n=100000, seed=1):
    """The small model's data: n 2-D points on two noisy interleaved spirals,
    float32, written as a .npy without numpy. The same bytes every time."""
    import array
    import math
    import random
    rng = random.Random(seed)
    xs = array.array("f")
    for i in range(n):
        t = 3.0 * math.pi * math.sqrt(rng.random())
        arm = math.pi * (i % 2)
        xs.append(0.3 * t * math.cos(t + arm) + rng.gauss(0.0, 0.1))
        xs.append(0.3 * t * math.sin(t + arm) + rng.gauss(0.0, 0.1))
    if sys.byteorder != "little":
        xs.byteswap()
    header = "{'descr': '<f4', 'fortran_order': False, 'shape': (%d, 2), }" % n
    header += " " * (63 - (10 + len(header)) % 64) + "\n"
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(b"\x93NUMPY\x01\x00" + len(header).to_bytes(2, "little") + header.encode())
        f.write(xs.tobytes())
    os.replace(tmp, path)
    return path


class Bench:
    def __init__(self, a):
        self.a = a
        self.bin = os.path.join(a.build, "bin", "daecl_bench")
        self.window = ["--window-s", "1.5" if a.quick else "3", "--windows",
                       "3" if a.quick else "5", "--warmup-s", "2"]
        self.lines = []

    def daecl(self, mode, overrides, extra=(), env=None, config=R1, binary=None):
        return run_json([binary or self.bin, mode, config, *overrides, *extra], env=env)

    def torch(self, **kw):
        cmd = [sys.executable, os.path.join(ROOT, "bench", "torch_dae.py"),
               "--window-s", "1.5" if self.a.quick else "3",
               "--windows", "3" if self.a.quick else "5", "--warmup-s", "2"]
        env = {}
        for k, v in kw.items():
            if k == "wait_policy":
                if v:
                    env["OMP_WAIT_POLICY"] = v
                continue
            cmd += [f"--{k.replace('_', '-')}", str(v)]
        return run_json(cmd, env=env)[0]

    def say(self, text=""):
        print(text, flush=True)
        self.lines.append(text)


@contextlib.contextmanager
def busy_beside(on=True):
    """One busy process (`yes > /dev/null`) for the duration, when on."""
    busy = subprocess.Popen(["yes"], stdout=subprocess.DEVNULL) if on else None
    try:
        yield
    finally:
        if busy:
            busy.kill()
            busy.wait()


def machine():
    cpu = "unknown CPU"
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return f"{cpu}, {os.cpu_count()} cores, {mem:.0f} GiB, {platform.platform()}"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default=os.path.join(ROOT, "build-bench"))
    ap.add_argument("--quick", action="store_true", help="R1 only, shorter windows")
    ap.add_argument("--no-opencl", action="store_true")
    ap.add_argument("--no-torch", action="store_true")
    ap.add_argument("--cuda", action="store_true", help="the peer is PyTorch on CUDA, daecl on the GPU")
    ap.add_argument("--results", default=os.path.join(ROOT, "bench", "RESULTS.md"))
    ap.add_argument("--contention", action="store_true",
                    help="only the contention case (the cpu backend beside a busy process)")
    ap.add_argument("--peer", action="store_true",
                    help="only the paired comparison of the cpu backend with PyTorch at its best")
    ap.add_argument("--rounds", type=int, default=0,
                    help="alternating rounds of the contention case (default 3, 1 with --quick)")
    ap.add_argument("--before-build", default="",
                    help="a build folder of the code to compare with (bin/daecl_bench): the "
                         "contention case runs it too, alternating with this build")
    a = ap.parse_args()
    b = Bench(a)
    now = datetime.datetime.now().strftime("%Y-%m-%d %H:%M")
    b.say(f"## {now}: `bench/run.sh {' '.join(sys.argv[1:])}`".rstrip())
    b.say()
    b.say(f"Machine: {machine()}. Load average at start: {os.getloadavg()[0]:.2f}.")
    backends = ["cpu"] + ([] if a.no_opencl else ["opencl"])
    ocl_env = {"DAECL_DEVICE": "type=gpu"} if a.cuda else None
    if a.contention:
        contention(b, a)
        return finish(b, a)
    if a.peer:
        peer(b, a)
        return finish(b, a)

    # ---- R1: throughput and the time split ------------------------------------
    b.say()
    b.say("### R1: 784-1000-784 sigmoid, Bernoulli, masking 0.25, plain SGD, batch 128")
    b.say()
    r1 = {}
    for be in backends:
        res = b.daecl("step", [f"backend.plugin={be}"], ["--split", *b.window],
                      env=ocl_env if be == "opencl" else None)[0]
        r1[be] = res
    if "opencl" in backends:
        # opencl above is backend.gemm=auto (a stored `daecl tune` tuning
        # applies; untuned, daecl's CPU kernels on a CPU device, CLBlast on a
        # GPU). Then each GEMM choice by name, in the same run: CLBlast with
        # its own defaults (DAECL_CACHE=0 ignores any tuning) and, except
        # with --cuda, daecl's CPU kernels at the device's default variant.
        e = dict(ocl_env or {}, DAECL_CACHE="0")
        r1["opencl, gemm=clblast (built-in parameters)"] = b.daecl(
            "step", ["backend.plugin=opencl", "backend.gemm=clblast"], ["--split", *b.window],
            env=e)[0]
        if not a.cuda:
            r1["opencl, gemm=daecl_cpu"] = b.daecl(
                "step", ["backend.plugin=opencl", "backend.gemm=daecl_cpu"],
                ["--split", *b.window], env=ocl_env)[0]
    peers = []
    if not a.no_torch:
        if a.cuda:
            # PyTorch eager, with the whole step as a CUDA graph, and under
            # torch.compile where this PyTorch has it; TF32 off (daecl
            # computes in FP32). A mode that cannot run says why.
            for mode in ("eager", "graphs", "compile"):
                p = b.torch(device="cuda", mode=mode)
                if "unavailable" in p:
                    b.say(f"- PyTorch {mode}: not measured: {p['unavailable']}")
                else:
                    peers.append(p)
        else:
            for threads in (1, os.cpu_count()):
                for wait in ("", "passive"):
                    p = b.torch(threads=threads, wait_policy=wait)
                    p["wait_policy"] = wait or "default"
                    peers.append(p)
    best = max(peers, key=lambda p: p["examples_per_s"]) if peers else None
    b.say("| system | device | examples/s | vs PyTorch | vs daecl cpu | step ms | GEMM ms | "
          "elementwise ms | rest ms | step / GEMM | GEMM GFLOP/s |")
    b.say("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    cpu_rate = r1["cpu"]["examples_per_s"]
    for be, res in r1.items():
        ratio = f"{res['examples_per_s'] / best['examples_per_s']:.2f}x" if best else "-"
        name = "opencl, gemm=auto" if be == "opencl" else be
        b.say(f"| daecl {name} | {res['device']} | {res['examples_per_s']:.0f} | {ratio} | "
              f"{res['examples_per_s'] / cpu_rate:.2f}x | "
              f"{res['step_ms']:.2f} | {res['gemm_ms']:.2f} | {res['elementwise_ms']:.2f} | "
              f"{res['overhead_ms']:.2f} | {res['step_over_gemm']:.2f} | {res['gemm_gflops']:.1f} |")
    for p in peers:
        tag = (f"{p['mode']}, TF32 {'on' if p['tf32'] else 'off'}" if p["device"] == "cuda" else
               f"threads {p['threads']}" + (f", OMP_WAIT_POLICY={p['wait_policy']}" if 'wait_policy' in p else ""))
        b.say(f"| PyTorch {p['torch']} ({tag}){' **the peer**' if p is best else ''} | "
              f"{p['device_name']} | {p['examples_per_s']:.0f} | "
              f"{p['examples_per_s'] / best['examples_per_s']:.2f}x | "
              f"{p['examples_per_s'] / cpu_rate:.2f}x | | | | | | |")

    # ---- the GEMM ceiling --------------------------------------------------------
    b.say()
    b.say("GEMM GFLOP/s at R1's shapes (best of 3 half-second runs each):")
    b.say()
    ceil = b.daecl("gemm", ["backend.plugin=cpu"], ["--openblas"])
    rows = {f"{g['m']}x{g['n']}x{g['k']} {g['op']}": {"openblas": g["gflops"]} for g in ceil}
    for be in backends:
        for g in b.daecl("gemm", [f"backend.plugin={be}"], env=ocl_env if be == "opencl" else None):
            rows[f"{g['m']}x{g['n']}x{g['k']} {g['op']}"][be] = g["gflops"]
    b.say("| shape (m x n x k) | OpenBLAS (all cores) | " + " | ".join(f"daecl {be}" for be in backends) + " |")
    b.say("|---|---:|" + "---:|" * len(backends))
    for shape, v in rows.items():
        b.say(f"| {shape} | {v['openblas']:.1f} | " + " | ".join(f"{v.get(be, 0):.1f}" for be in backends) + " |")
    mean_ceiling = sum(v["openblas"] for v in rows.values()) / len(rows)
    b.say()
    for be, res in r1.items():
        if be not in backends:  # the named GEMM choices: R1's table only
            continue
        share = res["gemm_ms"] / res["step_ms"]
        b.say(f"- daecl {be}: GEMMs run at {res['gemm_gflops']:.1f} GFLOP/s inside training, "
              f"{100 * res['gemm_gflops'] / mean_ceiling:.0f}% of OpenBLAS's mean "
              f"{mean_ceiling:.1f}; they take {100 * share:.0f}% of the step.")

    # ---- start-up ------------------------------------------------------------------
    b.say()
    b.say("Start-up to the end of the first training step (process start; data loading included):")
    b.say()
    for be in backends:
        env = dict(ocl_env or {}) if be == "opencl" else {}
        if be == "opencl":
            cold = tempfile.mkdtemp(prefix="daecl-cold-")
            e = dict(env, DAECL_CACHE_DIR=cold, POCL_CACHE_DIR=os.path.join(cold, "pocl"))
            c = b.daecl("start", [f"backend.plugin={be}"], env=e)[0]
            w = b.daecl("start", [f"backend.plugin={be}"], env=e)[0]
            shutil.rmtree(cold, ignore_errors=True)
            b.say(f"- daecl {be}: cold caches (daecl and POCL) {c['first_step_s']:.2f} s, "
                  f"warm {w['first_step_s']:.2f} s (of which opening: {w['open_s']:.2f} s)")
        else:
            w = b.daecl("start", [f"backend.plugin={be}"])[0]
            b.say(f"- daecl {be}: {w['first_step_s']:.2f} s (opening: {w['open_s']:.2f} s)")

    # ---- memory ----------------------------------------------------------------------
    b.say()
    b.say("Memory on R1 (MiB): peak host RSS and device memory against what the model needs:")
    b.say()
    for be, res in r1.items():
        if be not in backends:  # the named GEMM choices: R1's table only
            continue
        need = (res["params_mib"] + res["grads_mib"] + res["optim_state_mib"] +
                res["activations_mib"] + (res["train_set_mib"] if res["resident"] else 0))
        b.say(f"- daecl {be}: host {res['peak_host_mib']:.0f}, device {res['peak_device_mib']:.0f}; "
              f"needed {need:.1f} = parameters {res['params_mib']:.1f} + gradients "
              f"{res['grads_mib']:.1f} + optimiser state {res['optim_state_mib']:.1f} + "
              f"activations {res['activations_mib']:.1f} + resident data "
              f"{res['train_set_mib'] if res['resident'] else 0:.1f}")

    if not a.no_torch and not a.cuda:
        peer(b, a)
    contention(b, a)
    if a.quick:
        return finish(b, a)

    # ---- the sweep -------------------------------------------------------------------
    b.say()
    b.say("### Sweep (examples/s; PyTorch with the best R1 setting)")
    b.say()
    cases = [(f"batch {bs}", [f"train.batch_size={bs}"], {"batch": bs, "hidden": "1000"})
             for bs in (32, 64, 128, 256)]
    cases += [(f"hidden {h}", [f"model.encoder=[{{units: {h}}}]"], {"hidden": str(h)})
              for h in (500, 1000, 2000, 4000)]
    cases += [("3 hidden layers of 1000", ["model.encoder=[{units: 1000}, {units: 1000}]"],
               {"hidden": "1000,1000"})]
    b.say("| case | " + " | ".join(f"daecl {be}" for be in backends) + " | PyTorch | daecl cpu / PyTorch |")
    b.say("|---|" + "---:|" * (len(backends) + 2))
    tkw = {}
    if best and not a.cuda:
        tkw = {"threads": best["threads"], "wait_policy": "" if best.get("wait_policy") == "default" else best["wait_policy"]}
    elif best:
        tkw = {"device": "cuda", "mode": best["mode"]}
    for name, ov, tor in cases:
        got = {be: b.daecl("step", [f"backend.plugin={be}", *ov], b.window,
                           env=ocl_env if be == "opencl" else None)[0]["examples_per_s"]
               for be in backends}
        t = b.torch(**tkw, **tor)["examples_per_s"] if best else None
        tail = f" | {t:.0f} | {got['cpu'] / t:.2f}x |" if t else " | - | - |"
        b.say(f"| {name} | " + " | ".join(f"{got[be]:.0f}" for be in backends) + tail)

    # ---- time per epoch against data-set size ---------------------------------------
    b.say()
    b.say("Seconds per epoch against data-set size (the training set repeated 1, 2 and 4 times):")
    b.say()
    tmp = tempfile.mkdtemp(prefix="daecl-bench-data-")
    try:
        import numpy as np  # noqa: local: only this part needs it
        sys.path.insert(0, os.path.join(ROOT, "bench"))
        from torch_dae import load_idx, FMNIST
        base = (load_idx(FMNIST) * 255 + 0.5).astype(np.uint8)
        for be in backends:
            cells = []
            rows_base = base if be == "cpu" else base[:10000]
            for k in (1, 2, 4):
                path = os.path.join(tmp, f"x{k}-{be}.npy")
                np.save(path, np.concatenate([rows_base] * k))
                e = b.daecl("epoch", [f"backend.plugin={be}", f"data.train={path}"],
                            env=ocl_env if be == "opencl" else None)[0]
                cells.append(f"{k}x ({e['train_rows']} rows): {e['epoch_s']:.1f} s")
            note = "" if be == "cpu" else " (a 10,000-row subset: POCL's epochs are long)"
            b.say(f"- daecl {be}{note}: " + "; ".join(cells))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return finish(b, a)


def contention(b, a):
    """The cpu backend with its default thread count and with one thread, on
    a quiet machine and beside one busy process (`yes > /dev/null`), on R1
    and on the small model (bench/small.yaml). Runs alternate (every case
    once per round, rounds repeated) and the report gives medians, so a
    drift in the machine's load touches every case alike. With
    --before-build, the same runs of that build's default thread count
    alternate with this one's: the quiet figure now against before."""
    rounds = a.rounds or (1 if a.quick else 3)
    window = ["--window-s", "2", "--windows", "3", "--warmup-s", "1"]
    builds = {"now": b.bin}
    if a.before_build:
        builds["before"] = os.path.join(a.before_build, "bin", "daecl_bench")
    usable = len(os.sched_getaffinity(0))
    small_data()
    workloads = [("R1", R1), ("small", SMALL)]
    cases = [(build, threads) for build in builds for threads in (0, 1)
             if build == "now" or threads == 0]
    got = {}  # (workload, build, threads, load) -> [examples/s per round]
    for r in range(rounds):
        for wname, config in workloads:
            for load in ("quiet", "busy"):
                for build, threads in cases:
                    with busy_beside(load == "busy"):
                        res = b.daecl("step", ["backend.plugin=cpu", f"backend.threads={threads}"],
                                      window, config=config, binary=builds[build])[0]
                    got.setdefault((wname, build, threads, load), []).append(res["examples_per_s"])
    med = {k: statistics.median(v) for k, v in got.items()}
    b.say()
    b.say("### Contention: the cpu backend beside one busy process (`yes > /dev/null`)")
    b.say()
    b.say(f"examples/s, medians of {rounds} alternating round{'s' if rounds > 1 else ''}; "
          f"default threads = {usable} usable CPUs here. R1: bench/r1.yaml; small: "
          "bench/small.yaml (100,000 2-D points, 2-128-128 tanh, mirrored decoder, batch 256, "
          "Gaussian noise and decoder, Adam).")
    b.say()
    b.say("| workload | build | threads | quiet | busy | busy / busy one-thread |")
    b.say("|---|---|---|---:|---:|---:|")
    for wname, _ in workloads:
        one = med[(wname, "now", 1, "busy")]
        for build, threads in cases:
            q, y = med[(wname, build, threads, "quiet")], med[(wname, build, threads, "busy")]
            tag = f"default ({usable})" if threads == 0 else str(threads)
            b.say(f"| {wname} | {build} | {tag} | {q:.0f} | {y:.0f} | {y / one:.2f}x |")
    b.say()
    for wname, _ in workloads:
        ratio = med[(wname, "now", 0, "busy")] / med[(wname, "now", 1, "busy")]
        line = (f"- {wname}: busy, default threads / one thread = {ratio:.2f}x "
                f"({'meets' if ratio >= 0.9 else 'misses'} the 0.9x target)")
        if "before" in builds:
            pairs = [n / o for n, o in zip(got[(wname, "now", 0, "quiet")],
                                           got[(wname, "before", 0, "quiet")])]
            q = med[(wname, "now", 0, "quiet")] / med[(wname, "before", 0, "quiet")]
            line += (f"; quiet, default threads, now / before = {q:.2f}x (per round: "
                     + ", ".join(f"{x:.2f}" for x in pairs) + ")")
        b.say(line)
    b.say(f"- load average after the contention case: {os.getloadavg()[0]:.2f}")


def peer(b, a):
    """The cpu backend on R1 against PyTorch at its best, quiet and beside one
    busy process, in paired rounds: each round runs daecl with each GEMM
    (daecl's kernels: backend.gemm auto; OpenBLAS) and PyTorch in each of its
    settings (1 thread and all, OMP_WAIT_POLICY default and passive; the
    round's best is the peer), under the same load, one after another. The
    report gives each round's ratio and their median, so a change in the
    machine's load between rounds touches both sides alike."""
    rounds = max(3, a.rounds)
    window = ["--window-s", "2", "--windows", "3", "--warmup-s", "2"]
    settings = [(t, w) for t in sorted({1, os.cpu_count()}) for w in ("", "passive")]
    gemms = ("auto", "openblas")
    got = {}  # (load, what) -> [examples/s per round]
    best_setting = {}
    for r in range(rounds):
        for load in ("quiet", "busy"):
            with busy_beside(load == "busy"):
                for g in gemms:
                    res = b.daecl("step", ["backend.plugin=cpu", f"backend.gemm={g}"], window)[0]
                    got.setdefault((load, g), []).append(res["examples_per_s"])
                peers = [(b.torch(threads=t, wait_policy=w, window_s=2, windows=3)
                          ["examples_per_s"], t, w) for t, w in settings]
                top = max(peers)
                got.setdefault((load, "torch"), []).append(top[0])
                best_setting.setdefault(load, []).append(
                    f"{top[1]} thread{'s' if top[1] > 1 else ''}{', passive' if top[2] else ''}")
    b.say()
    b.say("### The cpu backend against PyTorch at its best (paired rounds)")
    b.say()
    b.say(f"R1, examples/s, {rounds} rounds; in each round and load, daecl with each GEMM and "
          "PyTorch in each setting (1 thread and all, OMP_WAIT_POLICY default and passive), one "
          "after another; the round's best PyTorch is the peer. Busy: one `yes > /dev/null` "
          "beside every run of that load.")
    b.say()
    b.say("| load | daecl, gemm auto (median) | daecl, gemm openblas | PyTorch best | "
          "auto / PyTorch per round | median | openblas / PyTorch (median) | peer's setting |")
    b.say("|---|---:|---:|---:|---|---:|---:|---|")
    for load in ("quiet", "busy"):
        t = got[(load, "torch")]
        ra = [x / y for x, y in zip(got[(load, "auto")], t)]
        ro = [x / y for x, y in zip(got[(load, "openblas")], t)]
        b.say(f"| {load} | {statistics.median(got[(load, 'auto')]):.0f} | "
              f"{statistics.median(got[(load, 'openblas')]):.0f} | {statistics.median(t):.0f} | "
              + ", ".join(f"{x:.2f}" for x in ra)
              + f" | **{statistics.median(ra):.2f}x** | {statistics.median(ro):.2f}x | "
              + "; ".join(best_setting[load]) + " |")
    b.say()
    for load in ("quiet", "busy"):
        m = statistics.median(x / y for x, y in zip(got[(load, "auto")], got[(load, "torch")]))
        b.say(f"- {load}: daecl cpu / PyTorch's best = {m:.2f}x "
              f"({'meets' if m >= 1.5 else 'misses'} the 1.5x target)")


def finish(b, a):
    b.say()
    with open(a.results, "a") as f:
        f.write("\n".join(b.lines) + "\n")
    print(f"appended to {a.results}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
