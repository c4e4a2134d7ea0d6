#!/usr/bin/env python3
"""The peer of daecl's benchmark: the same denoising autoencoder in PyTorch.

Model and step match daecl's R1 workload (bench/README.md): Fashion-MNIST
scaled to [0, 1], masking noise, dense layers with sigmoid units, a linear
output layer of logits, Bernoulli NLL summed over the 784 pixels and averaged
over the batch (BCEWithLogits), plain SGD. Data stay on the device; each step
draws a shuffled batch by index, as daecl does.

Prints one JSON line: examples/s as the median of timed windows after a
warm-up, with the settings used.

--mode picks how the step runs: `eager` (op by op), `graphs` (CUDA only:
the whole step, forward, backward and the SGD update, captured once as a
CUDA graph and replayed; the batch's indices are copied into the graph's
input before each replay), or `compile` (torch.compile of the step's
forward and loss, mode max-autotune-no-cudagraphs, or reduce-overhead on
CUDA, which adds CUDA graphs; PyTorch 2.0 or later, with a C compiler).
A mode this PyTorch or device cannot run prints {"unavailable": REASON}
and exits 0, so the benchmark reports why. On CUDA, TF32 is off for
matrix products (daecl computes in FP32) unless --tf32.

usage: torch_dae.py [--device cpu|cuda] [--mode eager|graphs|compile] [--tf32]
                    [--threads N] [--hidden 1000[,1000...]] [--batch 128]
                    [--window-s 2] [--windows 5] [--warmup-s 2]
"""
import argparse
import gzip
import json
import statistics
import struct
import time

import numpy as np
import torch

FMNIST = "/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz"


def load_idx(path):
    with gzip.open(path, "rb") as f:
        raw = f.read()
    ndim = raw[3]
    dims = struct.unpack(">" + "I" * ndim, raw[4 : 4 + 4 * ndim])
    x = np.frombuffer(raw[4 + 4 * ndim :], dtype=np.uint8).reshape(dims[0], -1)
    return x.astype(np.float32) / np.float32(255)


def build_model(d, hidden):
    """Encoder hidden layers (comma-separated widths), the decoder mirror,
    then the linear output layer of d logits; sigmoid units between."""
    hidden = [int(h) for h in hidden.split(",")]
    widths = [d] + hidden + hidden[-2::-1] + [d]
    layers = []
    for i in range(len(widths) - 1):
        layers.append(torch.nn.Linear(widths[i], widths[i + 1]))
        if i < len(widths) - 2:
            layers.append(torch.nn.Sigmoid())
    return torch.nn.Sequential(*layers)


def unavailable(a, dev):
    """Why this PyTorch or device cannot run --mode, or None."""
    if dev.type == "cuda" and not torch.cuda.is_available():
        return "no CUDA device"
    if a.mode == "graphs" and dev.type != "cuda":
        return "CUDA graphs need --device cuda"
    if a.mode == "compile":
        if not hasattr(torch, "compile"):
            return f"torch.compile needs PyTorch 2.0 or later (this is {torch.__version__})"
        import shutil
        if not (shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")):
            return "torch.compile needs a C compiler, and none is on PATH"
    return None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--mode", choices=("eager", "graphs", "compile"), default="eager")
    ap.add_argument("--tf32", action="store_true", help="allow TF32 matrix products on CUDA")
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--hidden", default="1000")
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--p", type=float, default=0.25)
    ap.add_argument("--lr", type=float, default=0.1)
    ap.add_argument("--window-s", type=float, default=2.0)
    ap.add_argument("--windows", type=int, default=5)
    ap.add_argument("--warmup-s", type=float, default=2.0)
    a = ap.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    dev = torch.device(a.device)
    why = unavailable(a, dev)
    if why:
        print(json.dumps({"system": "pytorch", "device": a.device, "mode": a.mode,
                          "torch": torch.__version__, "unavailable": why}))
        return
    if dev.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = a.tf32
        torch.backends.cudnn.allow_tf32 = a.tf32
    torch.manual_seed(0)
    x_all = torch.from_numpy(load_idx(FMNIST)).to(dev)
    n, d = x_all.shape
    model = build_model(d, a.hidden).to(dev)
    opt = torch.optim.SGD(model.parameters(), lr=a.lr)
    loss_fn = torch.nn.BCEWithLogitsLoss(reduction="sum")
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)

    def loss_of(x):
        xt = x * (torch.rand_like(x) >= a.p)
        return loss_fn(model(xt), x) / a.batch

    if a.mode == "compile":
        loss_of = torch.compile(loss_of, mode="reduce-overhead" if dev.type == "cuda"
                                else "max-autotune-no-cudagraphs")

    def train_on(idx):
        loss = loss_of(x_all[idx])
        opt.zero_grad(set_to_none=a.mode != "graphs")
        loss.backward()
        opt.step()
        return loss

    order = torch.randperm(n, device=dev)
    pos = 0

    def next_indices():
        nonlocal pos, order
        if pos + a.batch > n:
            order = torch.randperm(n, device=dev)
            pos = 0
        idx = order[pos : pos + a.batch]
        pos += a.batch
        return idx

    if a.mode == "graphs":
        # The whole step as one CUDA graph (PyTorch's "whole network
        # capture"): warm up on a side stream, capture, then replay with the
        # batch's indices copied into the captured input.
        static_idx = next_indices().clone()
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            for _ in range(3):
                train_on(static_idx)
        torch.cuda.current_stream().wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            train_on(static_idx)

        def step():
            static_idx.copy_(next_indices())
            graph.replay()
    else:
        def step():
            train_on(next_indices())

    def window(seconds):
        steps = 0
        sync()
        t0 = time.perf_counter()
        while True:
            step()
            steps += 1
            if steps % 5 == 0:
                sync()
                if time.perf_counter() - t0 >= seconds:
                    break
        sync()
        return steps * a.batch / (time.perf_counter() - t0)

    window(a.warmup_s)
    rates = [window(a.window_s) for _ in range(a.windows)]
    print(json.dumps({
        "system": "pytorch", "device": a.device, "mode": a.mode,
        "tf32": bool(a.tf32 and dev.type == "cuda"),
        "device_name": torch.cuda.get_device_name() if dev.type == "cuda" else "cpu",
        "torch": torch.__version__, "threads": torch.get_num_threads(),
        "hidden": a.hidden, "batch": a.batch,
        "examples_per_s": statistics.median(rates), "windows": rates,
    }))


if __name__ == "__main__":
    main()
