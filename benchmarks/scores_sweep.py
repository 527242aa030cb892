"""Time a full split / sample-size sweep over cached 50,000 x 1,008 probabilities.

    python benchmarks/scores_sweep.py [--n 50000] [--classes 1008]

Baseline, in the same process: the straightforward implementation most IS code uses (per
split: marginal, then KL with fresh logarithms of the whole split), on the same array.  The
harness takes the logarithms once (``scores.prepare``) and reuses them for every split count.
Target (issue 5): the whole n_splits sweep plus S(G) in under 2 seconds on the 2-core machine.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from harness import scores  # noqa: E402
from harness.simulated import SimulatedProbs  # noqa: E402

SPLITS = (1, 2, 5, 10, 20, 50, 100, 200)


def naive_is(p, n_splits):
    n = p.shape[0]
    out = []
    for i in range(n_splits):
        part = p[i * n // n_splits : (i + 1) * n // n_splits]
        py = part.mean(axis=0, keepdims=True)
        with np.errstate(divide="ignore", invalid="ignore"):
            kl = np.where(part > 0, part * (np.log(part) - np.log(py)), 0.0).sum(axis=1)
        out.append(np.exp(kl.mean()))
    return float(np.mean(out))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=50_000)
    ap.add_argument("--classes", type=int, default=1008)
    ap.add_argument("--resamples", type=int, default=10)
    a = ap.parse_args(argv)
    p = SimulatedProbs(num_classes=a.classes).sample(a.n)

    t = time.perf_counter()
    naive = {k: naive_is(p, k) for k in SPLITS}
    t_naive = time.perf_counter() - t

    t = time.perf_counter()
    prep = scores.prepare(p)
    t_prep = time.perf_counter() - t
    t = time.perf_counter()
    ours = {k: scores.inception_score(prep, k).mean for k in SPLITS}
    sg = scores.improved_score(prep)
    t_sweep = time.perf_counter() - t
    assert all(abs(ours[k] - naive[k]) < 1e-9 * naive[k] for k in SPLITS), (
        "implementations disagree"
    )

    from harness.sweeps import sample_size_sweep

    t = time.perf_counter()
    sizes = [s for s in (500, 1000, 2000, 5000, 10000, 20000, 50000) if s <= a.n]
    sample_size_sweep(prep, sizes, a.resamples, n_splits=10, seed=0)
    t_sizes = time.perf_counter() - t

    rows = [
        ("naive: n_splits sweep (logs recomputed per split)", t_naive),
        ("harness: prepare (validate + logs once)", t_prep),
        ("harness: n_splits sweep (8 values) + S(G)", t_sweep),
        ("harness: prepare + sweep (the cached-probabilities case)", t_prep + t_sweep),
        (f"harness: sample-size sweep ({len(sizes)} sizes x {a.resamples} resamples)", t_sizes),
    ]
    print(f"\n{a.n:,} x {a.classes:,} probabilities (float64)")
    print(f"{'step':62s} {'seconds':>8s}")
    for name, sec in rows:
        print(f"{name:62s} {sec:8.3f}")
    print(
        f"\nspeed-up of the sweep over the naive loop: {t_naive / (t_prep + t_sweep):.1f}x; "
        f"S(G) = {sg.nats:.6f} nats; target < 2 s: n_splits sweep "
        f"{'met' if t_prep + t_sweep < 2 else 'MISSED'}, "
        f"sample-size sweep {'met' if t_sizes < 2 else 'MISSED'}"
    )


if __name__ == "__main__":
    main()
