#!/usr/bin/env python3
"""The step-time model of docs/scaling.md, as tables. Every input is named
below with where it comes from (measured here, measured on the lent H200,
or assumed); change one and rerun to see what moves.

    python3 bench/scaling_model.py
"""

# ---- the models: 784-h-784, untied weights, Bernoulli decoder -------------
D = 784
MODELS = {"default (h=1000)": 1000, "10x wider (h=10000)": 10000}


def n_params(h):
    return 2 * D * h + h + D  # W1 (h, D), b1, W2 (D, h), b2


# ---- compute: measured for the default model, scaled for the wide one ------
# daecl opencl on one NVIDIA H200, R1 (784-1000-784, batch 128):
# 592,095 examples/s, bench/RESULTS.md, run of 2026-11-26 22:10 (measured).
R_DEFAULT = 592095.0
# Assumed: the wide model does 10x the FLOPs per example (5 GEMM products of
# D x h each, forward and backward) at the same FLOP rate. Larger GEMMs
# usually run nearer the peak, which would make it faster, not slower.


def rate(h):
    return R_DEFAULT * n_params(1000) / n_params(h)


# ---- the host-staged reduction ---------------------------------------------
PCIE = {"PCIe 4 x16": 25e9, "PCIe 5 x16": 50e9}  # bytes/s each way (assumed, the brief's figures)
HOST_SUM = 50e9  # bytes/s read+written by one host thread summing arrays of
# 63 MB from DRAM: 50.4 GB/s for k=3, 61.5 for k=2 (bench/hostreduce.c, cold,
# measured here on the 2-core AMD EPYC VM; bench/RESULTS.md). Assumed alike
# on a server core.
NET_BW = 25e9  # InfiniBand HDR 200 Gb/s, bytes/s (assumed: line rate)
NET_ALPHA = 3e-6  # seconds per ring step between nodes (assumed: MPI over IB
# is 1-2 us for small messages; 3 us leaves room for software)


def t_reduce(p_floats, n_dev, m_nodes, pcie_bw, serial_pcie=False):
    """Seconds for one step's reduction: every device's gradients read to the
    host, summed there in one pass, allreduced between nodes (one rank per
    node, ring), and written back. 0 for one device on one node."""
    if n_dev * m_nodes == 1:
        return 0.0
    b = 4.0 * p_floats
    copies = n_dev if serial_pcie else 1  # parallel links, or one after another
    d2h = copies * b / pcie_bw
    host = (n_dev + 1) * b / HOST_SUM if n_dev > 1 else 0.0
    net = 0.0
    if m_nodes > 1:
        net = 2 * (m_nodes - 1) / m_nodes * b / NET_BW + 2 * (m_nodes - 1) * NET_ALPHA
    return d2h + host + net + copies * b / pcie_bw


def row(h, n_dev, m_nodes, b_per_dev, pcie_name, serial=False):
    p = n_params(h)
    tc = b_per_dev / rate(h)
    tr = t_reduce(p, n_dev, m_nodes, PCIE[pcie_name], serial)
    g = n_dev * m_nodes
    thr = g * b_per_dev / (tc + tr)
    thr_overlap = g * b_per_dev / max(tc, tr)  # the bound if all of it overlapped
    return tc, tr, thr, thr / rate(h), thr_overlap / rate(h)


def table(title, cases):
    print(f"\n{title}\n")
    print("| model | GPUs (N x M) | batch/GPU | PCIe | compute ms | T_reduce ms | examples/s | speedup vs 1 GPU | with full overlap |")
    print("|---|---|---:|---|---:|---:|---:|---:|---:|")
    for name, h, n, m, b, pcie in cases:
        tc, tr, thr, sp, spo = row(h, n, m, b, pcie)
        print(f"| {name} | {n} x {m} = {n * m} | {b:g} | {pcie} | {tc * 1e3:.3f} | {tr * 1e3:.3f} | "
              f"{thr:,.0f} | {sp:.2f}x | {spo:.2f}x |")


def main():
    for name, h in MODELS.items():
        p = n_params(h)
        print(f"{name}: P = {p:,} floats = {4 * p / 1e6:.2f} MB; assumed rate {rate(h):,.0f} examples/s/GPU")
    for pcie in PCIE:
        cases = []
        for name, h in MODELS.items():
            for m in (1, 4, 64):
                cases.append((name, h, 8, m, 128, pcie))
        table(f"Weak scaling, 128 examples per GPU per step (global batch 1024 x M), {pcie}", cases)
    cases = []
    for name, h in MODELS.items():
        for m in (1, 4, 64):
            cases.append((name, h, 8, m, 8192 / (8 * m), "PCIe 5 x16"))
    table("Strong scaling, global batch 8192, PCIe 5 x16", cases)
    cases = []
    for name, h in MODELS.items():
        for n in (1, 2, 4, 8):
            cases.append((name, h, n, 1, 128, "PCIe 5 x16"))
    table("One node, N = 1, 2, 4, 8 GPUs, 128 examples per GPU, PCIe 5 x16", cases)
    print("\nBatch per GPU at which compute equals T_reduce (8 GPUs per node):\n")
    print("| model | PCIe | M = 1 | M = 4 | M = 64 |")
    print("|---|---|---:|---:|---:|")
    for name, h in MODELS.items():
        for pcie, bw in PCIE.items():
            cells = [f"{rate(h) * t_reduce(n_params(h), 8, m, bw):,.0f}" for m in (1, 4, 64)]
            print(f"| {name} | {pcie} | " + " | ".join(cells) + " |")
    print("\nT_reduce split, 8 GPUs x 64 nodes, PCIe 5 x16 (ms): D2H, host sum, network, H2D")
    for name, h in MODELS.items():
        b = 4.0 * n_params(h)
        net = 2 * 63 / 64 * b / NET_BW + 2 * 63 * NET_ALPHA
        print(f"- {name}: {b / 50e9 * 1e3:.3f}, {9 * b / HOST_SUM * 1e3:.3f}, {net * 1e3:.3f} "
              f"(of which latency {2 * 63 * NET_ALPHA * 1e3:.3f}), {b / 50e9 * 1e3:.3f}")
    print("\nIf the engine reads the 8 devices one after another (one queue), PCIe 5, 1 node:")
    for name, h in MODELS.items():
        print(f"- {name}: T_reduce {t_reduce(n_params(h), 8, 1, 50e9, True) * 1e3:.3f} ms "
              f"(parallel links: {t_reduce(n_params(h), 8, 1, 50e9) * 1e3:.3f} ms)")


if __name__ == "__main__":
    main()
