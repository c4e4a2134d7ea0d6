#!/usr/bin/env python3
"""Independent check of a daecl run, with numpy alone (no daecl code).

Reads checkpoint.safetensors by hand (8-byte header length, JSON header, raw
little-endian float32), rebuilds the network from its "daecl.layers"
metadata, recomputes the clean test NLL (nats per example) on an IDX test
set, and compares it with what summary.json reports.

usage: check_run.py RUN_DIR TEST_IDX [TEST_LIMIT]
Exit 0 when they agree within 1e-4 relative, 1 otherwise.
"""
import gzip
import json
import struct
import sys

import numpy as np


def load_safetensors(path):
    with open(path, "rb") as f:
        raw = f.read()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8 : 8 + n])
    meta = header.pop("__metadata__", {})
    data = raw[8 + n :]
    tensors = {}
    for name, t in header.items():
        assert t["dtype"] == "F32", name
        begin, end = t["data_offsets"]
        tensors[name] = np.frombuffer(data[begin:end], dtype="<f4").reshape(t["shape"])
    return tensors, meta


def load_idx(path, limit):
    opener = gzip.open if open(path, "rb").read(2) == b"\x1f\x8b" else open
    with opener(path, "rb") as f:
        raw = f.read()
    assert raw[0] == 0 and raw[1] == 0 and raw[2] == 0x08, "expects uint8 IDX"
    ndim = raw[3]
    dims = struct.unpack(">" + "I" * ndim, raw[4 : 4 + 4 * ndim])
    x = np.frombuffer(raw[4 + 4 * ndim :], dtype=np.uint8).reshape(dims[0], -1)
    if limit:
        x = x[:limit]
    return x.astype(np.float32) / np.float32(255)


def act(name, z):
    if name == "sigmoid":
        return 1.0 / (1.0 + np.exp(-z))
    if name == "tanh":
        return np.tanh(z)
    if name == "relu":
        return np.maximum(z, 0.0)
    return z


def nll_rows(likelihood, params, x, a, dim):
    if likelihood == "bernoulli":
        return np.sum(np.maximum(a, 0) - x * a + np.log1p(np.exp(-np.abs(a))), axis=1)
    if likelihood == "gaussian":
        s = params["sigma"]
        return np.sum(0.5 * ((x - a) / s) ** 2 + np.log(s) + 0.5 * np.log(2 * np.pi), axis=1)
    if likelihood == "gaussian_learned":
        mu, lv = a[:, :dim], np.clip(a[:, dim:], params["min_log_var"], params["max_log_var"])
        return np.sum(0.5 * (np.log(2 * np.pi) + lv + (x - mu) ** 2 * np.exp(-lv)), axis=1)
    raise SystemExit("unknown likelihood " + likelihood)


def forward(tensors, layers, x, encoder_only=False):
    """The network on x in float64 (daecl computes in float32): every layer,
    or the encoder's only (its last layer is the top code)."""
    h = x.astype(np.float64)
    for layer in layers:
        if encoder_only and not layer["name"].startswith("encoder."):
            break
        if layer["tied_to"] is None:
            w = tensors[layer["name"] + ".weight"].astype(np.float64)
        else:
            w = tensors[layer["tied_to"] + ".weight"].astype(np.float64).T
        b = tensors[layer["name"] + ".bias"].astype(np.float64)
        h = act(layer["activation"], h @ w.T + b)
    return h


def main():
    run_dir, test_path = sys.argv[1], sys.argv[2]
    limit = int(sys.argv[3]) if len(sys.argv) > 3 else 0
    tensors, meta = load_safetensors(run_dir + "/checkpoint.safetensors")
    layers = json.loads(meta["daecl.layers"])
    likelihood = meta["daecl.likelihood"]
    lik_params = json.loads(meta["daecl.likelihood_params"])
    x = load_idx(test_path, limit).astype(np.float64)
    h = forward(tensors, layers, x)
    ours = float(np.mean(nll_rows(likelihood, lik_params, x, h, x.shape[1])))
    with open(run_dir + "/summary.json") as f:
        reported = json.load(f)["test_nll_clean"]
    rel = abs(ours - reported) / max(1.0, abs(reported))
    print(f"numpy test NLL {ours:.6f}, summary.json {reported:.6f}, relative difference {rel:.2e}")
    return 0 if rel <= 1e-4 else 1


if __name__ == "__main__":
    sys.exit(main())
