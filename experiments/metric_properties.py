"""Experiment ``metric_properties``: which generator failure each metric detects.

Controlled corruptions of a base set (Xu et al. 2018's method), each at several strengths and
seeds, scored by IS (10 splits), S(G), FID, KID, precision, recall, density and coverage:

1. ``intra_class_collapse``: each class's images replaced by copies of k of them;
2. ``mode_dropping``: only m classes kept, resampled to the same N;
3. ``memorization``: a fraction of samples replaced by copies of reference images (exact: their
   rows of the reference pass; ``jittered``: +-2 grey levels of noise, new pixels);
4. ``noise``: a fraction replaced by uniform noise images;
5. small transforms: ``shift`` (px), ``rotate`` (degrees), ``jpeg`` (quality), ``blur`` (sigma);
6. ``sample_size``: seeded subsets of N.

Re-selections of rows (1, 2, 3 exact, 6) reuse the cached logits and features of the base and
reference sets; new pixels (3 jittered, 4, 5) are written once per (corruption, strength, seed)
under ``<cache.dir>/corruptions/`` and go through the logits cache like any image set.  Classes
are the dataset's labels when it has them, else the backbone's predicted classes (stated).

"Detects" (per metric x corruption): the mean over seeds moves monotonically (never back by more
than the noise) from the uncorrupted value to the strongest corruption, and by more than 3x the
metric's own noise (the std of the metric over disjoint random halves of the uncorrupted set,
two per seed, divided by sqrt(2) for the full N).
"""

from __future__ import annotations

import hashlib
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from harness import config, inputs, scores
from harness import feature_metrics as fm
from harness.errors import ConfigError
from harness.pipeline import outputs
from harness.plotting import subplots
from harness.rows import provenance_columns
from harness.runner import Result

METRICS = ["is_mean", "sg_nats", "fid", "kid", "precision", "recall", "density", "coverage"]
ROW_SELECTIONS = ("intra_class_collapse", "mode_dropping", "memorization", "sample_size")
PIXEL_CORRUPTIONS = ("memorization_jittered", "noise", "shift", "rotate", "jpeg", "blur")
#: which direction is "worse" for each metric (for the figure's caption only)
LOWER_IS_BETTER = {"fid", "kid"}
NOISE = "none (random halves)"


# ---------------------------------------------------------------- row selections (pure, tested)
def collapse_rows(labels: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """Each position keeps its class, but shows one of k images of that class (cycled)."""
    out = np.arange(len(labels))
    for c in np.unique(labels):
        members = np.flatnonzero(labels == c)
        keep = rng.choice(members, size=min(k, len(members)), replace=False)
        out[members] = keep[np.arange(len(members)) % len(keep)]
    return out


def drop_rows(labels: np.ndarray, m: int, rng: np.random.Generator) -> np.ndarray:
    """Rows of m randomly chosen classes, resampled (with replacement) to the original N."""
    classes = np.unique(labels)
    kept = rng.choice(classes, size=min(m, len(classes)), replace=False)
    pool = np.flatnonzero(np.isin(labels, kept))
    return rng.choice(pool, size=len(labels), replace=True)


def subset_rows(n: int, size: int, rng: np.random.Generator) -> np.ndarray:
    return np.sort(rng.choice(n, size=size, replace=False))


# ---------------------------------------------------------------- pixel corruptions (pure)
def _per_image(x: np.ndarray, fn) -> np.ndarray:
    from PIL import Image

    return np.stack([np.asarray(fn(Image.fromarray(im)).convert("RGB")) for im in x])


def shift_images(x: np.ndarray, px: int) -> np.ndarray:
    """Shift right and down by ``px`` with the edge replicated."""
    px = int(px)
    pad = np.pad(x, ((0, 0), (px, 0), (px, 0), (0, 0)), mode="edge")
    return np.ascontiguousarray(pad[:, : x.shape[1], : x.shape[2]])


def rotate_images(x: np.ndarray, deg: float) -> np.ndarray:
    from PIL import Image

    return _per_image(x, lambda im: im.rotate(float(deg), resample=Image.BILINEAR))


def jpeg_images(x: np.ndarray, quality: int) -> np.ndarray:
    import io

    from PIL import Image

    def once(im):
        buf = io.BytesIO()
        im.save(buf, format="JPEG", quality=int(quality))
        return Image.open(io.BytesIO(buf.getvalue()))

    return _per_image(x, once)


def blur_images(x: np.ndarray, sigma: float) -> np.ndarray:
    from PIL import ImageFilter

    return _per_image(x, lambda im: im.filter(ImageFilter.GaussianBlur(float(sigma))))


def replace_with(
    x: np.ndarray, other: np.ndarray, frac: float, rng
) -> tuple[np.ndarray, np.ndarray]:
    """A fraction of positions replaced by rows of ``other`` (random rows); returns the images
    and the positions replaced."""
    n = len(x)
    pos = rng.choice(n, size=int(round(frac * n)), replace=False)
    out = x.copy()
    out[pos] = other[rng.integers(0, len(other), size=len(pos))]
    return out, pos


def noise_images(x: np.ndarray, frac: float, rng) -> np.ndarray:
    noise = rng.integers(
        0, 256, size=(max(1, int(round(frac * len(x)))), *x.shape[1:]), dtype=np.uint8
    )
    return replace_with(x, noise, frac, rng)[0]


def jitter_copies(x: np.ndarray, ref: np.ndarray, frac: float, rng) -> np.ndarray:
    out, pos = replace_with(x, ref, frac, rng)
    j = rng.integers(-2, 3, size=(len(pos), *x.shape[1:]))
    out[pos] = np.clip(out[pos].astype(np.int16) + j, 0, 255).astype(np.uint8)
    return out


# ---------------------------------------------------------------- metrics of one configuration
def metric_values(probs, feats, ref_feats, n_splits: int, kid_cfg, prdc_cfg, seed: int) -> dict:
    n = len(probs)
    prep = scores.prepare(probs)
    spec = scores.SplitSpec(min(n_splits, n))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", fm.RankDeficientWarning)
        f = fm.fid(feats, ref_feats)
    size = min(int(kid_cfg.subset_size), n, len(ref_feats))
    k = fm.kid(
        feats, ref_feats, int(kid_cfg.subsets), size, int(seed), matmul_dtype=kid_cfg.matmul_dtype
    )
    p = fm.prdc(
        ref_feats, feats, int(prdc_cfg.k_precision_recall), int(prdc_cfg.k_density_coverage)
    )
    return {
        "is_mean": scores.inception_score(prep, splits=spec).mean,
        "sg_nats": scores.improved_score(prep).nats,
        "fid": f.value,
        "kid": k.mean,
        "precision": p.precision,
        "recall": p.recall,
        "density": p.density,
        "coverage": p.coverage,
        "kid_subset_size": size,
        "kid_matmul_dtype": k.matmul_dtype,
    }


def _pixel_source(cfg, images: np.ndarray, key: str):
    """New pixels as an ``arrays`` source, written once under ``<cache.dir>/corruptions``."""
    from harness import data
    from harness.backbones.weights import cache_root
    from harness.results import atomic_path

    path = cache_root((cfg.get("cache") or {}).get("dir")) / "corruptions" / f"{key}.npy"
    if not path.exists():
        with atomic_path(path, suffix=".npy") as tmp, open(tmp, "wb") as fh:
            np.save(fh, images)
    src = data.load("arrays", path=str(path), progress=False)
    if src.read_all().shape != images.shape:  # a stale file under the same key: rewrite
        path.unlink()
        return _pixel_source(cfg, images, key)
    return src


#: corruption -> (kind of strength, lowest allowed, highest allowed)
STRENGTHS = {
    "intra_class_collapse": (int, 1, None),
    "mode_dropping": (int, 1, None),
    "memorization": (float, 0, 1),
    "memorization_jittered": (float, 0, 1),
    "noise": (float, 0, 1),
    "shift": (int, 0, None),
    "rotate": (float, None, None),
    "jpeg": (int, 1, 95),
    "blur": (float, 0, None),
    "sample_size": (int, 2, None),
}


def check_settings(cfg) -> None:
    """Every strength and seed of the right type and range, before any network pass (one-line
    errors naming the key)."""

    def bad(key, v, want):
        raise ConfigError(f"metric_properties: {key} has {v!r}; each value must be {want}")

    fm.check_kid_matmul_dtype(cfg.kid.matmul_dtype)
    for s in cfg.seeds:
        if isinstance(s, bool) or not isinstance(s, int):
            bad("seeds", s, "an integer")
    if not cfg.seeds:
        raise ConfigError("metric_properties: seeds must name at least one seed")
    for name, (kind, lo, hi) in STRENGTHS.items():
        key = f"corruptions.{name}"
        want = ("an integer" if kind is int else "a number") + (
            f" in [{lo}, {hi}]" if hi is not None else f" >= {lo}" if lo is not None else ""
        )
        for v in cfg.corruptions.get(name) or []:
            ok_type = not isinstance(v, bool) and (
                isinstance(v, int) if kind is int else isinstance(v, (int, float))
            )
            if not ok_type or (lo is not None and v < lo) or (hi is not None and v > hi):
                bad(key, v, want)


def compute(cfg) -> Result:
    check_settings(cfg)
    c = cfg.corruptions
    seeds = [int(s) for s in cfg.seeds]
    got = inputs.load(cfg, nets=("backbone",), sources=("dataset", "reference"))
    net, base, ref = got.net(), got.source("dataset"), got.source("reference")
    if cfg.n is not None:
        base = base.first(min(int(cfg.n), len(base)))
    spec = config.split_spec(cfg)
    got.require_splits(spec.n_splits, keys=["dataset"])
    b = outputs(cfg, net, base, features=True, label="base set")
    r = outputs(cfg, net, ref, features=True, label="reference set")
    labels, label_source = base.labels, "dataset labels"
    if labels is None:
        labels, label_source = b.probs.argmax(axis=1), f"classes predicted by {net.name}"
    labels = np.asarray(labels)
    n = len(b.probs)

    def score(probs, feats, seed):
        return metric_values(probs, feats, r.pool, spec.n_splits, cfg.kid, cfg.prdc, seed)

    rows = []

    def add(corruption, strength, seed, vals):
        rows.append({"corruption": corruption, "strength": strength, "seed": seed, **vals})

    # the uncorrupted set, and the metrics' own noise: disjoint random halves of it, per seed
    base_vals = score(b.probs, b.pool, seeds[0])
    for s in seeds:
        perm = np.random.default_rng([s, 999]).permutation(n)
        for name, idx in (("half A", perm[: n // 2]), ("half B", perm[n // 2 :])):
            add(NOISE, name, s, score(b.probs[idx], b.pool[idx], s))
    # row selections: cached outputs, no network pass
    for s in seeds:
        rng = np.random.default_rng([s, 1])
        for k in c.intra_class_collapse:
            idx = collapse_rows(labels, int(k), rng)
            add("intra_class_collapse", f"k={k}", s, score(b.probs[idx], b.pool[idx], s))
        for m in c.mode_dropping:
            idx = drop_rows(labels, int(m), rng)
            add("mode_dropping", f"m={m}", s, score(b.probs[idx], b.pool[idx], s))
        for frac in c.memorization:
            pos = rng.choice(n, size=int(round(float(frac) * n)), replace=False)
            src = rng.integers(0, len(r.probs), size=len(pos))
            probs, feats = b.probs.copy(), b.pool.copy()
            probs[pos], feats[pos] = r.probs[src], r.pool[src]
            add("memorization", f"{frac:g}", s, score(probs, feats, s))
        for size in c.sample_size:
            if int(size) <= n:
                idx = subset_rows(n, int(size), rng)
                add("sample_size", f"N={size}", s, score(b.probs[idx], b.pool[idx], s))
    # new pixels: computed once (cached), then through the logits cache
    x = base.read_all()
    xr = ref.read_all() if c.memorization_jittered else None
    fp = base.fingerprint()[:16]
    pixel_jobs = []
    for s in seeds:
        for frac in c.memorization_jittered:
            pixel_jobs.append(
                (
                    "memorization_jittered",
                    f"{frac:g}",
                    s,
                    lambda f=frac, s=s: jitter_copies(
                        x, xr, float(f), np.random.default_rng([s, 2])
                    ),
                )
            )
        for frac in c.noise:
            pixel_jobs.append(
                (
                    "noise",
                    f"{frac:g}",
                    s,
                    lambda f=frac, s=s: noise_images(x, float(f), np.random.default_rng([s, 3])),
                )
            )
    for px in c.shift:
        pixel_jobs.append(("shift", f"{px}px", seeds[0], lambda p=px: shift_images(x, p)))
    for deg in c.rotate:
        pixel_jobs.append(("rotate", f"{deg}deg", seeds[0], lambda d=deg: rotate_images(x, d)))
    for q in c.jpeg:
        pixel_jobs.append(("jpeg", f"q={q}", seeds[0], lambda q=q: jpeg_images(x, q)))
    for sg in c.blur:
        pixel_jobs.append(("blur", f"sigma={sg}", seeds[0], lambda g=sg: blur_images(x, g)))
    for corruption, strength, s, make in pixel_jobs:
        key = hashlib.sha256(f"{fp}|{corruption}|{strength}|{s}|v1".encode()).hexdigest()[:24]
        src = _pixel_source(cfg, make(), key)
        o = outputs(cfg, net, src, features=True, label=f"{corruption} {strength}")
        add(corruption, strength, s, score(o.probs, o.pool, s))

    long = _long_table(pd.DataFrame(rows), base_vals)
    summary = detects(long)
    prov = provenance_columns(net, base, spec, cfg.seed)
    prov.update(
        {
            "classes_from": label_source,
            "reference_dataset": ref.provenance()["dataset"],
            "reference_fingerprint": ref.fingerprint(),
            "n_reference": len(ref),
        }
    )
    for k, v in prov.items():
        long[k] = v
    return Result(
        {"table": long, "detects": summary},
        got.random_weights,
        extra={"classes_from": label_source, "baseline": base_vals},
    )


def _long_table(wide: pd.DataFrame, base_vals: dict) -> pd.DataFrame:
    out = wide.melt(
        id_vars=["corruption", "strength", "seed"],
        value_vars=METRICS,
        var_name="metric",
        value_name="value",
    )
    out["uncorrupted"] = out.metric.map(base_vals)
    out["relative_change"] = out.value / out.uncorrupted - 1
    return out


def detects(long: pd.DataFrame) -> pd.DataFrame:
    """Per metric x corruption: monotone response beyond 3x the metric's own noise."""
    # halves have N/2 samples: the std at N is about the halves' std / sqrt(2)
    noise = long[long.corruption == NOISE].groupby("metric").value.std(ddof=1) / np.sqrt(2)
    rows = []
    for (corr, metric), g in long[long.corruption != NOISE].groupby(
        ["corruption", "metric"], sort=False
    ):
        means = g.groupby("strength", sort=False).value.mean()
        base = float(g.uncorrupted.iloc[0])
        path = np.array([base, *means.to_numpy()])
        steps = np.diff(path)
        eps = float(noise.get(metric, 0.0))
        eps = 0.0 if not np.isfinite(eps) else eps
        direction = np.sign(path[-1] - path[0])
        monotone = bool(np.all(direction * steps >= -eps)) if direction else False
        moved = abs(path[-1] - path[0])
        rows.append(
            {
                "corruption": corr,
                "metric": metric,
                "detects": bool(monotone and moved > 3 * eps and moved > 0),
                "change_at_strongest": path[-1] - path[0],
                "noise_std": eps,
                "monotone": monotone,
            }
        )
    return pd.DataFrame(rows)


RULE = (
    "detects = the mean over seeds moves from the uncorrupted value to the strongest "
    "corruption monotonically (no step back larger than the noise) and by more than 3x the "
    "metric's noise (std of the metric over disjoint random halves of the uncorrupted set, "
    "two per seed, / sqrt(2)); small transforms have one deterministic result per strength."
)


def present(result: Result, run) -> None:
    long, det = result.table, result.tables["detects"]
    run.table(
        long,
        title="Each metric under controlled corruptions (long format)",
        quiet=True,
        notes=[f"classes: {result.extra['classes_from']}"],
    )
    grid = det.pivot(index="metric", columns="corruption", values="detects")
    grid = grid.reindex(METRICS).map(lambda v: "yes" if v else "no").reset_index()
    run.table(grid, name="detects", title="Which corruption each metric detects", notes=[RULE])
    run.table(det, name="detects_detail", title="Detection detail", quiet=True)
    for corr in [c for c in dict.fromkeys(long.corruption) if c != NOISE]:
        run.figure(figure(long, corr), f"metric_properties_{corr}")


def headline(result: Result) -> str:
    det = result.tables["detects"]
    is_det = det[det.metric == "is_mean"].set_index("corruption").detects
    missed = [c for c, v in is_det.items() if not v]
    return f"IS misses: {', '.join(missed) or 'none'}"


def figure(long: pd.DataFrame, corruption: str):
    g = long[long.corruption == corruption]
    order = list(dict.fromkeys(g.strength))
    fig, ax = subplots(figsize=(7, 3.8))
    for metric in METRICS:
        m = g[g.metric == metric]
        mean = m.groupby("strength", sort=False).value.mean().reindex(order)
        base = float(m.uncorrupted.iloc[0])
        y = [1.0, *(mean.to_numpy() / base if base else mean.to_numpy())]
        ax.plot(range(len(order) + 1), y, "o-", label=metric)
    ax.axhline(1.0, color="0.6", lw=0.8)
    ax.set_xticks(range(len(order) + 1), ["none", *order], fontsize=8)
    ax.set_xlabel(f"{corruption} strength")
    ax.set_ylabel("metric / its uncorrupted value")
    ax.legend(fontsize=7, ncol=2)
    ax.set_title(f"{corruption}: every metric normalised to the uncorrupted set", fontsize=9)
    fig.tight_layout()
    return fig


def paper_figures(run_dir):
    long = pd.read_csv(Path(run_dir) / "table.csv")
    return {
        f"metric_properties_{c}": figure(long, c)
        for c in ("intra_class_collapse", "memorization")
        if (long.corruption == c).any()
    }
