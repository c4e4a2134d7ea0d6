#!/usr/bin/env python3
"""The PyTorch peer of daecl's data-parallel training (bench/parallel.sh).

The model is torch_dae.py's (imported: build_model, load_idx), on the
settings of configs/fashion-mnist.yaml rather than torch_dae.py's R1
defaults: 784-1000-784 sigmoid, BCEWithLogits summed over the pixels and
averaged over the global batch, masking noise p = 0.25, SGD lr 0.01
momentum 0.9, global batch 128, the first 20,000 training images.

--procs 1 trains in this process (no DDP wrapper); --procs N > 1 spawns N
processes (torch.multiprocessing) that train under DistributedDataParallel
with the gloo backend over 127.0.0.1. Every process calls
torch.set_num_threads(--threads) and runs its BLAS (OpenBLAS, which does
the GEMMs) on OPENBLAS_NUM_THREADS = --blas-threads (default --threads). All ranks draw the same shuffled order
(same seed); each step rank r takes its slice of the global batch (64 rows
each for 2 ranks), averages its loss over its own rows, and DDP averages the
gradients over the ranks: the gradient of the mean over the 128 rows.

Timing as torch_dae.py: a warm-up, then the median of timed windows. For
N > 1 the ranks must run the same number of steps, so the warm-up measures
rank 0's rate and every window runs the fixed step count that takes about
--window-s at that rate; a window's time is the slowest rank's.

Prints one JSON line.

usage: torch_ddp.py [--procs 1] [--threads 1] [--blas-threads T]
                    [--bucket-view] [--bind]
                    [--window-s 2] [--windows 5] [--warmup-s 2]
"""
import argparse
import json
import os
import socket
import statistics
import sys
import time

if __name__ == "__main__":
    # The GEMMs run in the BLAS (Debian's torch: BLAS_INFO=generic, i.e.
    # libblas.so.3, OpenBLAS pthread here), whose own threads
    # torch.set_num_threads does not set and which default to every CPU:
    # fix them before torch loads; spawned ranks inherit the variable.
    _pre = argparse.ArgumentParser(add_help=False)
    _pre.add_argument("--threads", type=int, default=1)
    _pre.add_argument("--blas-threads", type=int, default=0)
    _k, _ = _pre.parse_known_args()
    os.environ["OPENBLAS_NUM_THREADS"] = str(_k.blas_threads or _k.threads)

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torch_dae import FMNIST, build_model, load_idx  # noqa: E402


def worker(rank, a, port, q):
    if a.threads:
        torch.set_num_threads(a.threads)
    if a.bind:
        cpus = sorted(os.sched_getaffinity(0))
        os.sched_setaffinity(0, {cpus[rank % len(cpus)]})
    ddp = a.procs > 1
    if ddp:
        os.environ["MASTER_ADDR"] = "127.0.0.1"
        os.environ["MASTER_PORT"] = str(port)
        dist.init_process_group("gloo", rank=rank, world_size=a.procs)
    torch.manual_seed(0)  # the same initial weights and order on every rank
    x_all = torch.from_numpy(load_idx(FMNIST)[: a.images])
    n, d = x_all.shape
    model = build_model(d, a.hidden)
    if ddp:
        model = torch.nn.parallel.DistributedDataParallel(
            model, gradient_as_bucket_view=a.bucket_view)
    opt = torch.optim.SGD(model.parameters(), lr=a.lr, momentum=a.momentum)
    loss_fn = torch.nn.BCEWithLogitsLoss(reduction="sum")
    local = a.batch // a.procs
    noise = torch.Generator().manual_seed(1000 + rank)  # each rank its own noise

    order = torch.randperm(n)
    pos = 0

    def step():
        nonlocal pos, order
        if pos + a.batch > n:
            order = torch.randperm(n)
            pos = 0
        x = x_all[order[pos + rank * local : pos + (rank + 1) * local]]
        pos += a.batch
        xt = x * (torch.rand(x.shape, generator=noise) >= a.p)
        loss = loss_fn(model(xt), x) / local
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return loss

    def flag(v):  # rank 0's decision, for every rank
        if not ddp:
            return v
        t = torch.tensor([int(v)])
        dist.broadcast(t, 0)
        return bool(t.item())

    # warm-up: at least --warmup-s on rank 0's clock, then rank 0's rate
    steps = 0
    t0 = time.perf_counter()
    while True:
        step()
        steps += 1
        if steps % 5 == 0 and flag(time.perf_counter() - t0 >= a.warmup_s):
            break
    rate = steps / (time.perf_counter() - t0)
    t = torch.tensor([max(5, round(rate * a.window_s))])
    if ddp:
        dist.broadcast(t, 0)
    per_window = int(t.item())

    rates = []
    for _ in range(a.windows):
        if ddp:
            dist.barrier()
        t0 = time.perf_counter()
        for _ in range(per_window):
            step()
        el = torch.tensor([time.perf_counter() - t0], dtype=torch.float64)
        if ddp:
            dist.all_reduce(el, op=dist.ReduceOp.MAX)
        rates.append(per_window * a.batch / el.item())
    if rank == 0:
        q.put({
            "system": "pytorch", "mode": "ddp" if ddp else "single",
            "torch": torch.__version__, "procs": a.procs,
            "threads": torch.get_num_threads(),
            "blas_threads": int(os.environ["OPENBLAS_NUM_THREADS"]), "backend": "gloo" if ddp else None,
            "gradient_as_bucket_view": a.bucket_view if ddp else None,
            "bind": a.bind, "hidden": a.hidden, "batch": a.batch,
            "local_batch": local, "images": n, "lr": a.lr, "momentum": a.momentum,
            "steps_per_window": per_window,
            "examples_per_s": statistics.median(rates), "windows": rates,
        })
    if ddp:
        dist.destroy_process_group()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--procs", type=int, default=1)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--blas-threads", type=int, default=0,
                    help="OPENBLAS_NUM_THREADS per process (default: --threads)")
    ap.add_argument("--bucket-view", action="store_true",
                    help="DDP gradient_as_bucket_view=True")
    ap.add_argument("--bind", action="store_true",
                    help="pin rank r to the r-th CPU of this process's affinity")
    ap.add_argument("--hidden", default="1000")
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--images", type=int, default=20000)
    ap.add_argument("--p", type=float, default=0.25)
    ap.add_argument("--lr", type=float, default=0.01)
    ap.add_argument("--momentum", type=float, default=0.9)
    ap.add_argument("--window-s", type=float, default=2.0)
    ap.add_argument("--windows", type=int, default=5)
    ap.add_argument("--warmup-s", type=float, default=2.0)
    a = ap.parse_args()
    assert a.batch % a.procs == 0, "the global batch must split evenly"
    if a.procs == 1:
        import queue
        q = queue.Queue()
        worker(0, a, 0, q)
    else:
        with socket.socket() as s:  # a free port for the rendezvous
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        ctx = mp.get_context("spawn")
        q = ctx.SimpleQueue()
        mp.spawn(worker, args=(a, port, q), nprocs=a.procs, join=True)
    print(json.dumps(q.get()))


if __name__ == "__main__":
    main()
