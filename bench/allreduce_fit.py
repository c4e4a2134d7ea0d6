#!/usr/bin/env python3
"""Fits the ring allreduce's alpha-beta model to daecl_allreduce output and
checks it on the sizes left out of the fit (docs/scaling.md):

    T(bytes) = 2 (p - 1) alpha + 2 (p - 1) / p x bytes / beta

Reads the output of any number of daecl_allreduce runs (concatenated, as
files or on stdin), takes per rank count and size the median of the runs'
medians, and fits by least squares on relative error to sizes up to
--fit-max bytes (default 4 MiB).

    python3 bench/allreduce_fit.py [--fit-max BYTES] [FILE...]
"""
import statistics
import sys


def read(lines):
    med = {}
    for line in lines:
        f = line.split()
        if len(f) == 7 and f[0].isdigit() and f[1].isdigit():
            med.setdefault((int(f[0]), int(f[1])), []).append(float(f[3]) * 1e-6)
    return {k: statistics.median(v) for k, v in med.items()}


def fit(points, p):
    # Weighted by 1/T: minimises relative error. Unknowns alpha and 1/beta.
    s_aa = s_ab = s_bb = s_ay = s_by = 0.0
    for b, t in points:
        u, v = 2 * (p - 1) / t, 2 * (p - 1) / p * b / t
        s_aa, s_ab, s_bb = s_aa + u * u, s_ab + u * v, s_bb + v * v
        s_ay, s_by = s_ay + u, s_by + v
    det = s_aa * s_bb - s_ab * s_ab
    return (s_ay * s_bb - s_ab * s_by) / det, (s_aa * s_by - s_ab * s_ay) / det


def main(argv):
    fit_max = 4 << 20
    if argv[:1] == ["--fit-max"]:
        fit_max, argv = int(argv[1]), argv[2:]
    lines = [l for name in argv for l in open(name)] if argv else sys.stdin.readlines()
    med = read(lines)
    for p in sorted({k[0] for k in med}):
        sizes = sorted(b for q, b in med if q == p)
        used = [(b, med[(p, b)]) for b in sizes if b <= fit_max]
        if len(used) < 2:
            continue
        alpha, inv_beta = fit(used, p)
        print(f"{p} ranks, fitted to {len(used)} sizes up to {fit_max} bytes: "
              f"alpha {alpha * 1e6:.2f} us, beta {1 / inv_beta / 1e9:.2f} GB/s (bus bandwidth)")
        for b in sizes:
            pred = 2 * (p - 1) * alpha + 2 * (p - 1) / p * b * inv_beta
            t = med[(p, b)]
            print(f"  {b:>11,} {'fit ' if b <= fit_max else 'left'}  predicted {pred * 1e6:11.1f} us  "
                  f"measured {t * 1e6:11.1f} us  measured/predicted {t / pred:5.2f}")


if __name__ == "__main__":
    main(sys.argv[1:])
