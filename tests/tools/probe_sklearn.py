#!/usr/bin/env python3
"""daecl's linear probe against scikit-learn's, on the same features.

daecl's probe minimises, over W (C, F) and b (C),

    f(W, b) = mean_i [logsumexp(W x_i + b) - (W x_i + b)_{y_i}] + (l2/2) ||W||^2

(docs/config.md, eval.probe_l2). scikit-learn 1.2's LogisticRegression with
solver="lbfgs" and multinomial loss minimises sum_i loss_i + ||W||^2 / (2 C),
intercept unpenalised (sklearn/linear_model/_logistic.py, _linear_loss.py):
n times f when C = 1 / (l2 n). Its `tol` bounds the gradient of that sum,
so it is n times stricter than daecl's eval.probe_tol of the same value.

usage:
  probe_sklearn.py npy TRAIN_X TRAIN_Y TEST_X TEST_Y --l2 L [--tol T] [--max-iter N]
      .npy files (features float32/float64 (n, F), labels integer (n,)); prints
      one JSON object: accuracy, test_nll, objective, grad_max (max |df/dtheta|
      of f above at scikit-learn's solution), n_iter, seconds.
  probe_sklearn.py run RUN_DIR [--l2 L] [--tol T] [--max-iter N] [--baseline]
                    [--from FILE] [--train-limit N] [--test-limit N]
      computes the top code of the run's training and test sets from
      RUN_DIR/checkpoint.safetensors with numpy (data, limits and eval.probe_l2
      from RUN_DIR/config.yaml unless given), fits scikit-learn's probe with
      the same l2 and prints its numbers beside daecl's from RUN_DIR/eval.json
      (else summary.json; --from picks one). --baseline: the raw inputs
      instead of the code. Give the limits and l2 an eval was run with
      (`daecl eval RUN data.train_limit=0 ...`): config.yaml keeps the run's.

Exit 0, or 2 when scikit-learn is missing (Debian: python3-sklearn).
"""
import argparse
import json
import os
import sys
import time
import warnings

import numpy as np

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from check_run import forward, load_idx, load_safetensors  # noqa: E402


def objective(coef, intercept, x, y, l2):
    """f above and its gradient's largest entry, in float64."""
    z = x @ coef.T + intercept
    m = z.max(axis=1, keepdims=True)
    lse = (m + np.log(np.exp(z - m).sum(axis=1, keepdims=True)))[:, 0]
    n = x.shape[0]
    f = float(np.mean(lse - z[np.arange(n), y]) + 0.5 * l2 * np.sum(coef * coef))
    p = np.exp(z - lse[:, None])
    p[np.arange(n), y] -= 1
    g_w = p.T @ x / n + l2 * coef
    g_b = p.sum(axis=0) / n
    return f, float(max(np.abs(g_w).max(), np.abs(g_b).max()))


def scores(coef, intercept, x, y):
    z = x @ coef.T + intercept
    m = z.max(axis=1, keepdims=True)
    lse = (m + np.log(np.exp(z - m).sum(axis=1, keepdims=True)))[:, 0]
    nll = float(np.mean(lse - z[np.arange(x.shape[0]), y]))
    return float(np.mean(np.argmax(z, axis=1) == y)), nll


def fit(x_tr, y_tr, x_te, y_te, l2, tol, max_iter):
    from sklearn.linear_model import LogisticRegression

    n = x_tr.shape[0]
    kw = dict(C=1.0 / (l2 * n), solver="lbfgs", tol=tol, max_iter=max_iter)
    if "multi_class" in LogisticRegression().get_params():
        kw["multi_class"] = "multinomial"
    model = LogisticRegression(**kw)
    t0 = time.monotonic()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ConvergenceWarning: n_iter and grad_max say it
        model.fit(x_tr, y_tr)
    seconds = time.monotonic() - t0
    classes = model.classes_
    c = int(max(y_tr.max(), y_te.max())) + 1
    if len(classes) != c or np.any(classes != np.arange(c)):
        raise SystemExit("probe_sklearn: the training labels must hold every class 0..C-1")
    coef, intercept = model.coef_.astype(np.float64), model.intercept_.astype(np.float64)
    f, gmax = objective(coef, intercept, x_tr, y_tr, l2)
    acc, nll = scores(coef, intercept, x_te, y_te)
    return {"accuracy": acc, "test_nll": nll, "objective": f, "grad_max": gmax,
            "n_iter": int(np.max(model.n_iter_)), "seconds": seconds}


def have_sklearn():
    try:
        import sklearn  # noqa: F401
    except ImportError:
        print("probe_sklearn: scikit-learn is missing; install Debian's python3-sklearn "
              "(scripts/deps.sh does)", file=sys.stderr)
        return False
    return True


# ---- a run folder ---------------------------------------------------------------


def resolved_config(path):
    """The two-level `section: / key: value` scalars of daecl's resolved config.yaml."""
    cfg, section = {}, None
    with open(path) as f:
        for line in f:
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            indent = len(line) - len(line.lstrip(" "))
            key, _, value = line.strip().partition(":")
            value = value.strip()
            if indent == 0:
                section = key
                if value:
                    cfg[key] = value
            elif indent == 2 and section and value and not key.startswith("- "):
                cfg[section + "." + key] = value
    return cfg


def load_data(path, limit):
    with open(path, "rb") as f:
        magic = f.read(6)
    if magic == b"\x93NUMPY":
        x = np.load(path)
        x = x.reshape(x.shape[0], -1)
        if limit:
            x = x[:limit]
        if x.dtype == np.uint8:
            return x.astype(np.float32) / np.float32(255)  # as daecl scales uint8 data
        return x.astype(np.float32)
    return load_idx(path, limit)


def load_labels(path, limit):
    with open(path, "rb") as f:
        magic = f.read(6)
    if magic == b"\x93NUMPY":
        y = np.load(path).reshape(-1)
    else:
        import gzip
        import struct

        opener = gzip.open if open(path, "rb").read(2) == b"\x1f\x8b" else open
        with opener(path, "rb") as f:
            raw = f.read()
        ndim = raw[3]
        (n,) = struct.unpack(">I", raw[4:8])
        dtype = {0x08: np.uint8, 0x0C: ">i4"}[raw[2]]
        y = np.frombuffer(raw[4 + 4 * ndim:], dtype=dtype)[:n]
    if limit:
        y = y[:limit]
    return y.astype(np.int64)


def top_code(tensors, layers, x):
    """The encoder's last layer on clean inputs, in float64 (daecl: float32)."""
    return forward(tensors, layers, x, encoder_only=True)


def run_mode(a):
    cfg = resolved_config(os.path.join(a.path, "config.yaml"))
    l2 = a.l2 if a.l2 is not None else float(cfg["eval.probe_l2"])
    lim_tr = a.train_limit if a.train_limit is not None else int(cfg.get("data.train_limit", 0))
    lim_te = a.test_limit if a.test_limit is not None else int(cfg.get("data.test_limit", 0))
    x_tr = load_data(cfg["data.train"], lim_tr)
    x_te = load_data(cfg["data.test"], lim_te)
    y_tr = load_labels(cfg["data.train_labels"], lim_tr)
    y_te = load_labels(cfg["data.test_labels"], lim_te)
    if a.baseline:
        f_tr, f_te = x_tr.astype(np.float64), x_te.astype(np.float64)
        prefix = "probe_baseline_"
    else:
        tensors, meta = load_safetensors(os.path.join(a.path, "checkpoint.safetensors"))
        layers = json.loads(meta["daecl.layers"])
        f_tr, f_te = top_code(tensors, layers, x_tr), top_code(tensors, layers, x_te)
        prefix = "probe_"
    ours = {}
    for name in [a.from_file] if a.from_file else ["eval.json", "summary.json"]:
        p = os.path.join(a.path, name)
        if os.path.exists(p):
            with open(p) as f:
                j = json.load(f)
            if prefix + "accuracy" in j:
                ours = {k[len(prefix):]: v for k, v in j.items() if k.startswith(prefix)}
                ours["from"] = name
                ours["test_examples"] = j.get("test_examples")
                break
    print(f"{a.path}: {'raw inputs' if a.baseline else 'top code'}, {f_tr.shape[0]} training "
          f"and {f_te.shape[0]} test rows, {f_tr.shape[1]} features, l2 = {l2:g} "
          f"(scikit-learn C = {1 / (l2 * f_tr.shape[0]):.6g})")
    if ours.get("l2") is not None and abs(ours["l2"] - l2) > 1e-12 * l2:
        print(f"note: {ours['from']} was fitted with l2 = {ours['l2']:g}, not {l2:g}; give --l2")
    if ours.get("test_examples") not in (None, f_te.shape[0]):
        print(f"note: {ours['from']} scored {ours['test_examples']} test rows, not "
              f"{f_te.shape[0]}; give --train-limit and --test-limit")
    sk = fit(f_tr, y_tr, f_te, y_te, l2, a.tol, a.max_iter)
    print(f"{'':14}{'accuracy':>10}{'objective':>14}{'test NLL':>10}{'max|grad|':>11}"
          f"{'iterations':>12}")
    if ours:
        print(f"{'daecl':14}{100 * ours['accuracy']:9.2f}%{ours['objective']:14.8f}"
              f"{ours['test_nll']:10.4f}{ours['grad_max']:11.2e}{ours['iterations']:12d}"
              f"   ({ours['from']})")
    print(f"{'scikit-learn':14}{100 * sk['accuracy']:9.2f}%{sk['objective']:14.8f}"
          f"{sk['test_nll']:10.4f}{sk['grad_max']:11.2e}{sk['n_iter']:12d}"
          f"   ({sk['seconds']:.1f} s)")
    if ours:
        rel = abs(ours["objective"] - sk["objective"]) / abs(sk["objective"])
        print(f"difference: accuracy {100 * (ours['accuracy'] - sk['accuracy']):+.2f} points, "
              f"objective {rel:.2e} relative")
    return 0


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("mode", choices=("npy", "run"))
    ap.add_argument("path", help="run: the run folder; npy: the training features")
    ap.add_argument("files", nargs="*", help="npy: TRAIN_Y TEST_X TEST_Y")
    ap.add_argument("--l2", type=float, default=None)
    ap.add_argument("--tol", type=float, default=1e-6, help="scikit-learn's tol (default 1e-6)")
    ap.add_argument("--max-iter", type=int, default=100000)
    ap.add_argument("--baseline", action="store_true")
    ap.add_argument("--from", dest="from_file", choices=("eval.json", "summary.json"))
    ap.add_argument("--train-limit", type=int, default=None)
    ap.add_argument("--test-limit", type=int, default=None)
    a = ap.parse_args()
    if not have_sklearn():
        return 2
    if a.mode == "run":
        return run_mode(a)
    if len(a.files) != 3 or a.l2 is None:
        ap.error("npy needs TRAIN_X TRAIN_Y TEST_X TEST_Y and --l2")
    x_tr, y_tr, x_te, y_te = (np.load(p) for p in [a.path] + a.files)
    r = fit(x_tr.astype(np.float64), y_tr.astype(np.int64), x_te.astype(np.float64),
            y_te.astype(np.int64), a.l2, a.tol, a.max_iter)
    print(json.dumps(r))
    return 0


if __name__ == "__main__":
    sys.exit(main())
