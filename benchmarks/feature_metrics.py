"""Time FID, KID and precision/recall/density/coverage on cached-size pool features.

    python benchmarks/feature_metrics.py [--n 50000] [--dim 2048] [--prdc-n 10000]
    python benchmarks/feature_metrics.py --new [--new-n 10000] [--n 50000]
    python benchmarks/feature_metrics.py --extrapolation [--n 50000]

``--extrapolation``: FID_inf and IS_inf alone at ``--n``, with the per-size route FID_inf took
before (each subset's statistics from its rows, ``fid_against_stats``) as the baseline on the
same subsets (the values must agree).

``--new`` (issue 27): each new metric at ``--new-n`` x ``--dim`` (seconds and peak numpy memory
by tracemalloc) and IS_inf / FID_inf from cached arrays at ``--n`` (target: < 30 s at 50,000),
with FID and IS at N once in the same run as the baseline.

Targets (issue 14, 2-core CPU): FID from 50,000 x 2,048 features and KID (100 x 1,000) each
under 5 s; PRDC at 10,000 x 10,000 under 60 s with peak memory under 2 GB.  Baselines in the
same process on the same arrays: pytorch-fid's ``calculate_frechet_distance`` (``scipy.linalg.
sqrtm``) from the same statistics, and torch-fidelity's KID.  Peak memory of PRDC is measured
with tracemalloc (numpy allocations) over the call.
"""

from __future__ import annotations

import argparse
import sys
import time
import tracemalloc
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from harness import feature_metrics as fm  # noqa: E402


def timed(fn, *a, **k):
    t = time.perf_counter()
    out = fn(*a, **k)
    return out, time.perf_counter() - t


def features(n, d, seed, shift=0.0):
    rng = np.random.default_rng(seed)
    # correlated, ReLU-like non-negative features as the pool layer gives (float32 as cached)
    base = rng.standard_normal((n, 64), dtype=np.float32) @ rng.standard_normal(
        (64, d), dtype=np.float32
    )
    return np.maximum(base * 0.1 + shift + rng.standard_normal((n, d), dtype=np.float32) * 0.2, 0)


def products_floor(x, y, subsets=100, m=1000):
    """Seconds for KID's float64 matrix products alone (x x^T, y y^T, x y^T per subset)."""
    rng = np.random.default_rng(0)
    xs = x[rng.choice(len(x), m, replace=False)].astype(np.float64)
    ys = y[rng.choice(len(y), m, replace=False)].astype(np.float64)
    t = time.perf_counter()
    for _ in range(subsets):
        xs @ xs.T, ys @ ys.T, xs @ ys.T
    return time.perf_counter() - t


def dgemm_rate(n=4096):
    """This machine's float64 matrix-product rate (GFLOP/s), to read the seconds against."""
    a = np.random.default_rng(0).random((n, n))
    a @ a.T.copy()
    t = time.perf_counter()
    a @ a.T.copy()
    return 2 * n**3 / (time.perf_counter() - t) / 1e9


def peak_timed(fn, *a, **k):
    """(result, seconds, peak numpy-traced GiB) of one call."""
    tracemalloc.start()
    out, sec = timed(fn, *a, **k)
    peak = tracemalloc.get_traced_memory()[1] / 2**30
    tracemalloc.stop()
    return out, sec, peak


def new_metrics(a) -> None:
    """Issue 27's metrics: each at new_n x dim; the extrapolations at n (from arrays)."""
    import warnings

    from harness import extrapolation as ex
    from harness import memorization_stats as ms
    from harness import sample_metrics as sm
    from harness import scores
    from harness.simulated import SimulatedProbs

    m = a.new_n
    x, y = features(m, a.dim, 0), features(m, a.dim, 1, 0.05)
    half = m // 2
    probs = SimulatedProbs().sample(m)
    sm._import_ot()  # POT's import (~2 s) is not the metric's time
    rows = [
        ("FID (baseline, same arrays)", *peak_timed(lambda: fm.fid(x, y).value)),
        ("Mode Score (xu form)", *peak_timed(lambda: sm.mode_score(probs, probs[::-1]).value)),
        ("MMD^2 Gaussian, median heuristic", *peak_timed(lambda: sm.mmd2_gaussian(x, y).value)),
        (
            "W1 (sliced above 2,000 rows, 500 directions)",
            *peak_timed(lambda: sm.wasserstein1(x, y).value),
        ),
        (
            "W1 exact (POT emd2) at 2,000 x 2,000",
            *peak_timed(lambda: sm.wasserstein1(x[:2000], y[:2000]).value),
        ),
        ("1-NN two-sample test", *peak_timed(lambda: sm.one_nn_two_sample(y, x).accuracy)),
        (
            "C_T (train/test halves of y)",
            *peak_timed(lambda: ms.data_copying_ct(y[:half], y[half:], x).value),
        ),
        ("authenticity", *peak_timed(lambda: ms.authenticity(y, x).value)),
    ]
    print(f"\nissue 27 metrics at {m:,} x {a.dim:,} per set")
    print(f"{'metric':48s} {'seconds':>8s} {'peak GiB':>9s} {'value':>12s}")
    for name, val, sec, peak in rows:
        print(f"{name:48s} {sec:8.2f} {peak:9.2f} {val:12.5g}")
    n = a.n
    xb, yb = features(n, a.dim, 0), features(n, a.dim, 1, 0.05)
    pb = SimulatedProbs().sample(n)
    ref = fm.feature_stats(yb)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", fm.RankDeficientWarning)
        f_n, t_fid_n = timed(fm.fid_against_stats, xb, ref)
        f_inf, t_fid_inf = timed(ex.fid_infinity, xb, ref)
    i_n, t_is_n = timed(lambda: scores.inception_score(pb, n_splits=1).mean)
    i_inf, t_is_inf = timed(ex.is_infinity, pb)
    print(f"\nextrapolations from cached arrays at N = {n:,} (reference statistics fixed)")
    print(
        f"FID at N {f_n.value:.5g}: {t_fid_n:.2f} s; FID_inf {f_inf.value:.5g} ± "
        f"{f_inf.stderr:.2g}: {t_fid_inf:.2f} s ({'met' if t_fid_inf < 30 else 'MISSED'} < 30 s)"
    )
    print(
        f"IS at N (1 split) {i_n:.5g}: {t_is_n:.2f} s; IS_inf {i_inf.value:.5g} ± "
        f"{i_inf.stderr:.2g}: {t_is_inf:.2f} s ({'met' if t_is_inf < 30 else 'MISSED'} < 30 s)"
    )
    print(f"float64 matrix product rate of this machine: {dgemm_rate():.0f} GFLOP/s")


def extrapolation_only(a):
    """FID_inf (complement covariances, the reference factored once) against the per-size
    route on the same 15 subsets, and IS_inf, from cached-size arrays at ``--n``."""
    import warnings

    from harness import extrapolation as ex
    from harness.simulated import SimulatedProbs

    n = a.n
    xb, yb = features(n, a.dim, 0), features(n, a.dim, 1, 0.05)
    ref = fm.feature_stats(yb)
    sizes = ex.sample_sizes(n)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", fm.RankDeficientWarning)
        f_inf, t_new = timed(ex.fid_infinity, xb, ref)
        old, t_old = timed(
            lambda: [fm.fid_against_stats(xb[r], ref).value for r in ex._subsets(n, sizes, 0)]
        )
    worst = float(np.max(np.abs(np.asarray(old) - f_inf.values) / np.abs(old)))
    pb = SimulatedProbs().sample(n)
    i_inf, t_is = timed(ex.is_infinity, pb)
    print(f"extrapolations from cached arrays at N = {n:,} x {a.dim:,} (15 sizes)")
    print(
        f"FID_inf {f_inf.value:.6g} ± {f_inf.stderr:.2g}: {t_new:.2f} s "
        f"({'met' if t_new < 30 else 'MISSED'} < 30 s)"
    )
    print(
        f"  baseline, each subset's statistics from its rows: {t_old:.2f} s "
        f"(same subsets; largest relative difference of the 15 values {worst:.1e})"
    )
    print(
        f"IS_inf {i_inf.value:.6g} ± {i_inf.stderr:.2g}: {t_is:.2f} s "
        f"({'met' if t_is < 30 else 'MISSED'} < 30 s)"
    )
    print(f"float64 matrix product rate of this machine: {dgemm_rate():.0f} GFLOP/s")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=50_000)
    ap.add_argument("--dim", type=int, default=2048)
    ap.add_argument("--prdc-n", type=int, default=10_000)
    ap.add_argument("--new", action="store_true", help="issue 27's metrics instead")
    ap.add_argument("--new-n", type=int, default=10_000)
    ap.add_argument("--extrapolation", action="store_true", help="FID_inf / IS_inf only")
    a = ap.parse_args(argv)
    if a.new:
        return new_metrics(a)
    if a.extrapolation:
        return extrapolation_only(a)
    x, y = features(a.n, a.dim, 0), features(a.n, a.dim, 1, 0.05)
    rows = []
    (s1, s2), t_stats = timed(lambda: (fm.feature_stats(x), fm.feature_stats(y)))
    r, t_fid = timed(fm.frechet_distance, s1, s2)
    rows += [
        ("harness: mean + covariance of both sets (float64)", t_stats),
        (f"harness: FID from the statistics ({r.method})", t_fid),
        ("harness: FID from features (total)", t_stats + t_fid),
    ]
    try:
        from pytorch_fid.fid_score import calculate_frechet_distance

        ref, t_ref = timed(calculate_frechet_distance, s1.mu, s1.sigma, s2.mu, s2.sigma)
        rows.append(("pytorch-fid: FID from the same statistics (scipy sqrtm)", t_ref))
        agree = abs(ref - r.value) / abs(ref)
    except ImportError:
        agree = None
    k, t_kid = timed(fm.kid, x, y, 100, 1000)
    rows.append(("harness: KID, 100 subsets x 1,000 (float64)", t_kid))
    k32, t_kid32 = timed(fm.kid, x, y, 100, 1000, matmul_dtype="float32")
    rows.append(("harness: KID, kid.matmul_dtype=float32", t_kid32))
    rows.append(("  float64 matrix products alone (3 per subset), the floor", products_floor(x, y)))
    try:
        import torch
        from torch_fidelity.metric_kid import kid_features_to_metric

        _, t_tf = timed(
            kid_features_to_metric,
            torch.from_numpy(x),
            torch.from_numpy(y),
            kid_subsets=100,
            kid_subset_size=1000,
            rng_seed=2020,
            verbose=False,
        )
        rows.append(("torch-fidelity: KID, same subsets (float32 features)", t_tf))
    except ImportError:
        pass
    xp, yp = x[: a.prdc_n], y[: a.prdc_n]
    tracemalloc.start()
    p, t_prdc = timed(fm.prdc, xp, yp)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    rows.append((f"harness: PRDC {a.prdc_n:,} x {a.prdc_n:,} (exact k-NN in blocks)", t_prdc))

    print(f"\n{a.n:,} x {a.dim:,} features per set; PRDC on the first {a.prdc_n:,}")
    print(f"{'step':62s} {'seconds':>8s}")
    for name, sec in rows:
        print(f"{name:62s} {sec:8.3f}")
    print(
        f"\nFID = {r.value:.6g} (pytorch-fid relative difference {agree:.2g}); "
        f"KID = {k.mean:.4g} (matmul float32: relative change "
        f"{abs(k32.mean - k.mean) / abs(k.mean):.2g}); "
        f"precision {p.precision:.3f} recall {p.recall:.3f} "
        f"density {p.density:.3f} coverage {p.coverage:.3f}"
    )
    print(f"PRDC peak numpy memory: {peak / 2**30:.2f} GiB")
    print(f"float64 matrix product rate of this machine: {dgemm_rate():.0f} GFLOP/s")
    print(
        f"targets: FID < 5 s {'met' if t_stats + t_fid < 5 else 'MISSED'}; "
        f"KID < 5 s {'met' if t_kid < 5 else 'MISSED'}; PRDC < 60 s "
        f"{'met' if t_prdc < 60 else 'MISSED'}, < 2 GiB {'met' if peak < 2 * 2**30 else 'MISSED'}"
    )


if __name__ == "__main__":
    main()
