"""Pre-publication checks of an Inception Score: each one PASS / WARN / FAIL with the measured
value, the threshold, why it matters and how to fix it.

The checks are plain functions over images, probabilities and features, so each can be tested
on crafted inputs; :mod:`.registry` says what each one needs and runs them on a researcher's
samples; :mod:`.report` words the results.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import asdict, dataclass, field
from types import SimpleNamespace

import numpy as np

from .. import metric_set, scores, stats_files
from ..sweeps import sample_size_sweep

PASS, WARN, FAIL = "PASS", "WARN", "FAIL"
#: a check that ran but whose verdict would mean nothing here (check 8 on random weights)
NOT_JUDGED = "NOT JUDGED"
#: a check whose input the run lacks (check 10 without a reference): listed, never left out
NOT_RUN = "NOT RUN"
#: a check that needs class probabilities, on a backbone without a classifier head
NOT_APPLICABLE = "N/A"
NO_HEAD = "no classifier head (features only)"
REPORT_VERSION = 1
# paper 4.2.1: mean H(y|x) under Inception v3
H_IMAGENET, H_CIFAR, H_NOISE = 1.97, 4.664, 6.512
IMAGENET_MEAN_RGB = np.array([0.485, 0.456, 0.406]) * 255


@dataclass
class Check:
    id: int
    name: str
    status: str
    value: object
    threshold: str
    why: str
    fix: str
    details: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)


def _worst(*statuses) -> str:
    return FAIL if FAIL in statuses else WARN if WARN in statuses else PASS


# ------------------------------------------------------------------------------ 1 sample count
MIN_EXTRAPOLATION = 1000  # fewer samples: too few subsample sizes for a meaningful fit


def _infinity(prep, features, reference, extrapolation) -> dict:
    """IS_inf and FID_inf (Chong & Forsyth 2020; harness/extrapolation.py) with their standard
    errors, from the samples' one pass; FID_inf only with pool features and a reference."""
    cfg = extrapolation or EXTRAPOLATION_DEFAULTS
    out = metric_set.is_inf_columns(prep.probs, cfg)
    if features is None:
        out["fid_inf_note"] = "not computed: this backbone gives no pool features"
    elif reference is None:
        out["fid_inf_note"] = (
            "not computed: no reference (+dataset@reference=... or reference_stats=...)"
        )
    else:
        out.update(metric_set.fid_inf_columns(features, reference, cfg))
    return out


#: ``extrapolation.*`` when a caller passes none (the schema's defaults)
EXTRAPOLATION_DEFAULTS = SimpleNamespace(count=15, n_min=None, seed=0)


def _infinity_phrase(details: dict) -> str:
    """ "; IS_inf = a ± se; FID_inf = b ± se" for the values that were computed."""
    parts = []
    for key, name in (("is_inf", "IS_inf"), ("fid_inf", "FID_inf")):
        v, se = details.get(key), details.get(f"{key}_se")
        if v is not None and np.isfinite(v):
            parts.append(f"{name} = {v:.4g} ± {se:.2g} (extrapolated to N = inf; ± the fit's SE)")
    return "".join(f"; {p}" for p in parts)


def check_sample_count(
    prep: scores.PreparedProbs,
    splits: scores.SplitSpec,
    resamples: int = 5,
    seed: int = 0,
    features=None,
    reference=None,
    extrapolation=None,
) -> Check:
    """N against 50,000, the bias of classic IS at this N extrapolated by subsampling, and the
    extrapolated scores IS_inf and FID_inf (N >= 1,000).

    IS with S splits of n = N/S samples behaves like IS_inf - b / n (the marginal of each split is
    estimated from n samples); fitting that on subsamples of N/8 .. N predicts IS at 50,000.
    IS_inf / FID_inf: Chong & Forsyth's line in 1/N over ``extrapolation.count`` subset sizes
    (one split per size for the IS), with the intercept's standard error; FID_inf needs the
    samples' pool ``features`` and a ``reference`` (features or statistics).  With fewer than
    1,000 samples no fit is attempted (the reason is stated instead).
    """
    n, k = prep.n, splits.n_splits
    details: dict = {}
    bias_pct = None
    if n < MIN_EXTRAPOLATION:
        details["extrapolation"] = (
            f"not attempted: {n:,} samples are fewer than "
            f"{MIN_EXTRAPOLATION:,}, too few to fit how IS grows with N"
        )
    else:
        details.update(_infinity(prep, features, reference, extrapolation))
        sizes = sorted({max(2 * k, n // d) for d in (8, 4, 2, 1)})
        sweep = sample_size_sweep(prep, sizes, resamples, k, seed, splits=splits)
        details.update({"sizes": sweep.n_samples.tolist(), "is_mean": sweep.is_mean.tolist()})
        x = k / sweep.n_samples.to_numpy(dtype=float)  # 1 / split size
        b, a = np.polyfit(x, sweep.is_mean.to_numpy(), 1)  # IS(n) = a + b / n_per_split
        pred50k = float(a + b * k / 50_000)
        at_n = float(sweep.is_mean.iloc[-1])
        bias_pct = 100 * (at_n / pred50k - 1)
        details.update(
            {
                "fit_is_infinite_n": float(a),
                "predicted_is_at_50000": pred50k,
                "is_at_n": at_n,
                "bias_vs_50000_pct": bias_pct,
            }
        )
    status = PASS if n >= 50_000 else FAIL if n < 5_000 else WARN
    return Check(
        1,
        "sample_count",
        status,
        n,
        "PASS >= 50,000; WARN 5,000-49,999; FAIL < 5,000",
        "Classic IS estimates p(y) per split: fewer samples per split give a lower, "
        "noisier IS, so numbers at different N are not comparable"
        + (
            f"; at this N the {k}-split IS is {bias_pct:+.2f}% off its predicted value at 50,000"
            if bias_pct is not None
            else ""
        )
        + _infinity_phrase(details),
        "Report IS on 50,000 samples (10 splits of 5,000), as the original code and most papers "
        "do; IS_inf / FID_inf (details) remove the 1/N bias and can be reported beside them",
        details,
    )


# ------------------------------------------------------------------------------ 2 range / format
def check_input_format(images: np.ndarray, backbone_desc: str = "") -> Check:
    """Pixel statistics that betray a wrong value range, constant images, BGR order, resolution."""
    x = images.astype(np.float32)
    vmax, vmin = float(x.max()), float(x.min())
    frac_zero = float((images == 0).mean())
    frac_top = float((images == 255).mean())
    per_img_std = x.reshape(len(x), -1).std(axis=1)
    frac_constant = float((per_img_std < 2.0).mean())
    ch_mean = x.reshape(-1, 3).mean(axis=0)
    problems, status = [], PASS
    if vmax <= 1.0:
        status = FAIL
        problems.append(f"max pixel value is {vmax:g}: [0, 1] floats were cast to uint8 (all 0/1)")
    elif vmax < 64:
        status = FAIL
        problems.append(f"max pixel value is only {vmax:g}: values look scaled down")
    if frac_zero > 0.25 and vmax > 1:
        status = _worst(status, WARN)
        problems.append(
            f"{100 * frac_zero:.0f}% of pixels are exactly 0: [-1, 1] data clipped at 0 when "
            "written as uint8?"
        )
    if frac_constant > 0.5:
        status = FAIL
        problems.append(f"{100 * frac_constant:.0f}% of images are (near-)constant (pixel std < 2)")
    elif frac_constant > 0.01:
        status = _worst(status, WARN)
        problems.append(f"{100 * frac_constant:.1f}% of images are (near-)constant")
    # BGR: natural photographs average brighter red than blue (ImageNet mean RGB 124/116/104).
    # Suspect swapped channels only when blue clearly exceeds red AND the channel-swapped means
    # are much closer to natural-image statistics; confidence from how much closer.
    d_rgb = float(np.linalg.norm(ch_mean - IMAGENET_MEAN_RGB))
    d_bgr = float(np.linalg.norm(ch_mean[::-1] - IMAGENET_MEAN_RGB))
    bgr_confidence = "none"
    if ch_mean[2] - ch_mean[0] > 10 and d_bgr < d_rgb:
        ratio = d_rgb / max(d_bgr, 1e-6)
        bgr_confidence = "high" if ratio > 3 else "medium" if ratio > 1.5 else "low"
        if bgr_confidence != "low":
            status = _worst(status, WARN)
            problems.append(
                f"blue is brighter than red on average ({ch_mean[2]:.0f} vs {ch_mean[0]:.0f}) and "
                f"the channel-swapped means are {ratio:.1f}x closer to natural-image statistics: "
                f"BGR channel order? (confidence {bgr_confidence})"
            )
    h, w = images.shape[1:3]
    return Check(
        2,
        "input_format",
        status,
        {
            "min": vmin,
            "max": vmax,
            "mean_rgb": ch_mean.round(2).tolist(),
            "bgr_suspicion": bgr_confidence,
            "resolution": f"{h}x{w}",
            "constant_fraction": frac_constant,
        },
        "FAIL: max <= 1, max < 64, or > 50% constant images; WARN: > 25% zeros, > 1% constant, or "
        "blue > red by 10 grey levels with channel-swapped means >= 1.5x closer to ImageNet's",
        "A silent value-range mismatch is among the commonest ways IS goes wrong; constant images "
        "and swapped channels change the classifier's output",
        "Write images as uint8 0..255 RGB (or declare the float range with dataset.value_range)",
        {
            "problems": problems,
            "zero_fraction": frac_zero,
            "saturated_fraction": frac_top,
            "resized_to": backbone_desc,
            "distance_to_imagenet_mean_rgb": d_rgb,
            "distance_if_channels_swapped": d_bgr,
        },
    )


# ------------------------------------------------------------------------------ 3 order
def check_order(prep: scores.PreparedProbs, splits: scores.SplitSpec, seed: int = 0) -> Check:
    pred = prep.probs.argmax(axis=1)
    run_len = scores.mean_run_length(pred)
    n_cls = len(np.unique(pred))
    # a well-mixed sequence changes class almost every step: expected run ~ 1 / (1 - sum q_c^2)
    q = np.bincount(pred, minlength=prep.num_classes) / len(pred)
    expected = 1.0 / max(1e-12, 1.0 - float((q**2).sum()))
    as_given = dataclasses.replace(splits, shuffle="none", seed=None)
    loaded = scores.inception_score(prep, splits=as_given)
    shuffled = scores.inception_score(
        prep, splits=dataclasses.replace(splits, shuffle="numpy_rng", seed=seed)
    )
    diff = 100 * (loaded.mean / shuffled.mean - 1)
    sorted_like = run_len > 3 * expected and run_len > 2
    status = (
        WARN if sorted_like or abs(loaded.mean - shuffled.mean) > max(shuffled.std, 1e-12) else PASS
    )
    return Check(
        3,
        "order",
        status,
        {
            "mean_run_length": run_len,
            "expected_if_shuffled": expected,
            "is_as_loaded": loaded.mean,
            "is_shuffled": shuffled.mean,
            "diff_pct": diff,
        },
        "WARN when predicted classes come in runs > 3x what a shuffled order gives, or "
        "when as-loaded and shuffled IS differ by more than the shuffled std",
        "Splits are contiguous: class-sorted samples put few classes in each split, "
        "which lowers IS and inflates its std (ImageNet val sorted: ~63 +- 8 instead of "
        "hundreds)",
        f"Shuffle with a fixed seed before splitting and say so (splits.shuffle=numpy_rng "
        f"splits.seed={seed})",
        {
            "predicted_classes": int(n_cls),
            "std_as_loaded": loaded.std,
            "std_shuffled": shuffled.std,
            "split_scores_as_loaded": loaded.split_scores.tolist(),
            "split_scores_shuffled": shuffled.split_scores.tolist(),
        },
    )


# ------------------------------------------------------------------------------ 4 splits
def check_splits(prep: scores.PreparedProbs, splits: scores.SplitSpec) -> Check:
    k = splits.n_splits
    rk = scores.inception_score(prep, splits=splits)
    r1 = scores.inception_score(prep, splits=dataclasses.replace(splits, n_splits=1, ddof=0))
    sg = scores.improved_score(prep)
    gap = r1.mean - rk.mean
    status = WARN if gap > max(rk.std, 1e-12) else PASS
    return Check(
        4,
        "splits",
        status,
        {
            f"is_{k}_splits": rk.mean,
            f"is_{k}_splits_std": rk.std,
            "is_1_split": r1.mean,
            "sg_nats": sg.nats,
            "sg_bits": sg.bits,
            "sg_sem_nats": sg.sem,
        },
        f"WARN when IS(1 split) - IS({k} splits) exceeds the reported std",
        "The split count changes the number (paper Table 2: 9.91 at 1 split, 9.09 at "
        "200); the std over splits does not cover that bias",
        "Report n_splits with the number, and S(G) (no splits, no exp) beside it",
        {
            "gap": gap,
            "n_splits": rk.n_splits,
            "split_sizes": list(rk.split_sizes),
            "std_ddof": splits.ddof,
        },
    )


# ------------------------------------------------------------------------------ 5 backbone spread
def check_backbone_spread(is_by_backbone: dict, chosen: str, compare_to: str) -> Check:
    vals = {k: v for k, v in is_by_backbone.items() if v is not None}
    if len(vals) < 2:
        return Check(
            5,
            "backbone_spread",
            WARN,
            vals,
            "needs >= 2 backbones with weights",
            "IS differs by up to 11.5% between Inception implementations on the same images (paper "
            "Table 1)",
            "Put the other backbones' weights in place (see README) to measure the spread",
            {},
        )
    lo, hi = min(vals.values()), max(vals.values())
    spread = 100 * (hi / lo - 1)
    status = WARN if spread > 5 or not same_network(chosen, compare_to) else PASS
    return Check(
        5,
        "backbone_spread",
        status,
        {"spread_pct": spread, **vals},
        "WARN when the spread exceeds 5%, or when the chosen backbone is not the one the "
        "comparison "
        f"papers used ({compare_to})",
        "Numbers from different Inception networks are not comparable; most GAN papers used the "
        "2015 TF "
        "graph of the original code (tf2015)",
        f"Compare only numbers from one backbone; report with {compare_to} when comparing to "
        "published IS",
        {"chosen": chosen, "comparison_papers_used": compare_to},
    )


def same_network(a: str, b: str) -> bool:
    """Two backbone names for the same pretrained network (e.g. the 2015 graph in TensorFlow and
    its PyTorch port): the backbones' own ``official_artifact`` says so."""
    if a == b:
        return True
    from ..backbones import backbone_class

    try:
        return backbone_class(a).official_artifact() == backbone_class(b).official_artifact()
    except Exception:  # an unknown name, or an artifact that needs knobs: not provably the same
        return False


# ------------------------------------------------------------------------------ 6 preprocessing
def check_preprocessing(is_by_resize: dict, chosen: str) -> Check:
    vals = {k: v for k, v in is_by_resize.items() if v is not None}
    lo, hi = min(vals.values()), max(vals.values())
    spread = 100 * (hi / lo - 1)
    status = WARN if spread > 2 else PASS
    return Check(
        6,
        "preprocessing",
        status,
        {"spread_pct": spread, **vals},
        "WARN when the spread exceeds 2%",
        "Resizing to 299 by TF1 bilinear, torch bilinear (either align_corners), antialiasing or "
        "PIL "
        "bicubic gives different IS on the same images",
        "State the resize method with the number; use tf1_bilinear to match the original code",
        {"chosen": chosen},
    )


# ------------------------------------------------------------------------------ 7 memorization / co
#: cosine similarity of an image's centred pool features with the same image's (float32 noise):
#: above this, two samples are copies of one image whatever the backbone
EXACT_COPY_SIMILARITY = 1 - 1e-6


def check_memorization(
    samples_f: np.ndarray,
    ref_f: np.ndarray | None,
    threshold: float,
    random_weights: bool = False,
    data_copying=None,
) -> Check:
    """Copies of reference images and duplicates within the samples, in centred pool features.

    Two levels, so the status does not depend on how semantic a backbone's features are:
    *copies* (similarity >= 1 - 1e-6: the same image up to float32 noise, whatever the backbone)
    decide FAIL/WARN; *near copies* (>= ``threshold``, calibrated for trained Inception features)
    add a WARN, except with random weights, whose features put unrelated images close together
    (reported, not judged).  With a reference, two statistics of the literature are reported
    beside them (not judged): Meehan et al.'s C_T (k-means cells on one seeded half of the
    reference, the other half as the held-out test sample; ``data_copying.*``) and Alaa et al.'s
    authenticity (against the whole reference).
    """
    from ..neighbors import nearest_similarity, normalise_features, within_set_similarity

    # within the samples: centred on their own mean, independent of the reference
    self_sim = within_set_similarity(samples_f)
    within = float((self_sim >= EXACT_COPY_SIMILARITY).mean())
    within_near = float((self_sim >= threshold).mean())
    copy = copy_near = None
    details = {
        "within_sample_copy_rate": within,
        "within_sample_near_copy_rate": within_near,
        "copy_similarity": EXACT_COPY_SIMILARITY,
        "near_copy_threshold": threshold,
        "near_copies_judged": not random_weights,
        "mean_nn_similarity_within": float(self_sim.mean()),
    }
    if ref_f is not None:  # samples vs reference: both centred on the reference's mean
        center = ref_f.mean(axis=0)
        s, r = normalise_features(samples_f, center), normalise_features(ref_f, center)
        ref_sim, _ = nearest_similarity(s, r)
        copy = float((ref_sim >= EXACT_COPY_SIMILARITY).mean())
        copy_near = float((ref_sim >= threshold).mean())
        details.update(
            {
                "copied_from_reference_rate": copy,
                "near_copies_of_reference_rate": copy_near,
                "mean_nn_similarity_to_reference": float(ref_sim.mean()),
            }
        )
        details.update(_copying_statistics(samples_f, ref_f, data_copying))
    status = PASS
    if (copy is not None and copy > 0.01) or within > 0.10:
        status = FAIL
    elif (copy is not None and copy > 0.001) or within > 0.01:
        status = WARN
    elif not random_weights and ((copy_near or 0) > 0.01 or within_near > 0.10):
        status = WARN
    return Check(
        7,
        "memorization_collapse",
        status,
        {
            "copied_from_reference": copy,
            "duplicates_within": within,
            "near_copies_of_reference": copy_near,
            "near_duplicates_within": within_near,
            "ct": _finite(details.get("ct")),
            "authenticity": _finite(details.get("authenticity")),
        },
        "copies (cosine >= 1 - 1e-6: the same image): FAIL > 1% of samples copy a reference image "
        "or > 10% duplicate another sample, WARN > 0.1% / > 1%; near copies (>= "
        f"{threshold}, for trained features; not judged with random weights): WARN > 1% / > 10%; "
        "C_T (<< 0: copying) and authenticity are reported, not judged",
        "IS cannot detect a generator that replays training images or emits the same image many "
        "times",
        "Check nearest training neighbours of your samples; report the copy rate; pass "
        "reference=<train set>",
        details,
    )


def _finite(v):
    return None if v is None or not np.isfinite(v) else float(v)


#: ``data_copying.*`` when a caller passes none (the schema's defaults)
DATA_COPYING_DEFAULTS = SimpleNamespace(cells=None, min_per_cell=20, seed=0)


def _copying_statistics(samples_f, ref_f, data_copying) -> dict:
    """C_T (reference halves as training / held-out test) and authenticity (whole reference)."""
    cfg = data_copying or DATA_COPYING_DEFAULTS
    train, test = metric_set.reference_halves(len(ref_f), int(cfg.seed))
    out = metric_set.data_copying_columns(ref_f[train], ref_f[test], samples_f, cfg)
    out["ct_sets"] = "train / held-out: seeded halves of the reference set"
    out.update(metric_set.authenticity_columns(ref_f, samples_f))
    return out


# ------------------------------------------------------------------------------ 8 domain fit
#: check 8's limits for 1000 (or more) classes, in bits; for C < 1000 classes they scale with
#: log2(C) / log2(1000) (the same fraction of the maximum), so a 10-class classifier is judged
#: as an ImageNet one is
DOMAIN_WARN_BITS, DOMAIN_FAIL_BITS = 3.0, 6.0


def check_domain_fit(prep: scores.PreparedProbs, random_weights: bool = False) -> Check:
    """H(y|x) against ImageNet-like and noise-like limits; with random weights the entropy is
    measured and reported but not judged (a random network's confidence says nothing about how
    well a trained one fits these images)."""
    h = scores.conditional_entropy(prep, 2)
    hmax = math.log2(prep.num_classes)
    scale = min(1.0, hmax / math.log2(1000))
    warn, fail = DOMAIN_WARN_BITS * scale, DOMAIN_FAIL_BITS * scale
    status = FAIL if h >= fail else WARN if h >= warn else PASS
    if scale == 1.0:
        limits = "PASS < 3 bits (ImageNet-like); WARN 3-6; FAIL >= 6 (noise-like)"
    else:  # the same fractions of the maximum (30% / 60% of log2(C))
        limits = (
            f"PASS < {warn:.3g} bits (ImageNet-like); WARN {warn:.3g}-{fail:.3g}; FAIL >= "
            f"{fail:.3g} (noise-like): 3 and 6 bits of log2(1000), scaled to "
            f"log2({prep.num_classes})"
        )
    if random_weights:
        status = NOT_JUDGED
        limits = f"not judged on random weights (with trained weights: {limits})"
    return Check(
        8,
        "domain_fit",
        status,
        h,
        limits,
        "IS assumes the classifier is confident on your images; paper (Inception V3, 1000 "
        f"classes): ImageNet {H_IMAGENET}, "
        f"CIFAR-10 {H_CIFAR}, noise {H_NOISE} bits (max 9.97; this network's max {hmax:.2f})",
        "For non-ImageNet domains report a domain-specific score (or FID with a domain classifier) "
        "beside IS",
        {
            "max_bits": hmax,
            "warn_bits": warn,
            "fail_bits": fail,
            "paper_imagenet": H_IMAGENET,
            "paper_cifar10": H_CIFAR,
            "paper_noise": H_NOISE,
            "judged": not random_weights,
        },
    )


# ------------------------------------------------------------------------------ 9 numerics
def check_numerics(logits: np.ndarray, prep: scores.PreparedProbs) -> Check:
    finite = bool(np.isfinite(logits).all())
    under = scores.underflow_count(prep.probs)
    status = PASS if finite else FAIL
    return Check(
        9,
        "numerics",
        status,
        {"finite": finite, "underflowed_rows": under, "dtype": str(prep.probs.dtype)},
        "FAIL on any NaN/inf",
        "The original code takes log(0) = -inf -> NaN on underflowed softmax outputs; this harness "
        "uses "
        "float64 and 0 log 0 = 0",
        "Compute in float64 with 0 log 0 = 0 (as here)",
        {"rows_with_exact_zero_probability": under, "n": prep.n},
    )


# ------------------------------------------------------------------------------ 10 FID / KID
FID_MIN_SAMPLES = 2048  # fewer than the feature dimension: singular covariance, FID biased up


def _kid_details(samples_f, ref_f, kid_cfg, details: dict) -> float | None:
    """KID (``kid_cfg``: subsets, subset_size or auto = min(1000, N), seed, matmul_dtype) into
    ``details``; None without the reference's features (statistics only)."""
    from .. import feature_metrics as fm

    if ref_f is None or kid_cfg is None:
        details["kid_mean"] = None
        details["kid_note"] = "KID needs the reference's features, not only its mean/covariance"
        return None
    size = kid_cfg["subset_size"]
    n = min(len(samples_f), len(ref_f))
    size = min(1000, n) if size == "auto" else int(size)
    k = fm.kid(
        samples_f,
        ref_f,
        int(kid_cfg["subsets"]),
        size,
        int(kid_cfg["seed"]),
        matmul_dtype=kid_cfg["matmul_dtype"],
    )
    details.update({"kid_mean": k.mean, "kid_std": k.std, **k.provenance()})
    return k.mean


def check_feature_distance(
    samples_f,
    ref_f=None,
    ref_stats=None,
    stats_notes=(),
    kid_cfg=None,
    ref_label: str = "reference",
) -> Check:
    """FID (and KID when reference features exist) of the samples against a reference set or a
    statistics file, with what makes the number comparable (N, stats provenance).
    """
    import warnings

    from .. import feature_metrics as fm

    with warnings.catch_warnings():  # recorded below as fid_rank_deficient
        warnings.simplefilter("ignore", fm.RankDeficientWarning)
        if ref_f is not None:
            f = fm.fid(samples_f, ref_f)
        else:
            f = fm.fid_against_stats(samples_f, ref_stats)
    verified = None if ref_stats is None else stats_files.stats_verified(stats_notes)
    # notes that are not UNVERIFIED are knobs allowed to differ (allow_mismatched_stats=true)
    mismatched = ref_stats is not None and any(
        not str(n).startswith(stats_files.UNVERIFIED) for n in stats_notes
    )
    details = {
        "fid": f.value,
        **f.provenance(),
        "reference": ref_label,
        "stats_verified": verified,
        "stats_mismatch_allowed": mismatched,
        "stats_notes": list(stats_notes),
    }
    kid = _kid_details(samples_f, ref_f, kid_cfg, details)
    small = f.n1 < FID_MIN_SAMPLES
    status = WARN if (small or stats_notes) else PASS
    value = {"fid": f.value, "kid": kid, "n_samples": f.n1}
    fix = (
        "Report FID with N, the backbone and weights hash and the reference set; use >= 10,000 "
        "samples (50,000 is customary) and statistics made with the same backbone and resize"
    )
    if verified is not None:
        value["reference_stats"] = (
            "UNVERIFIED" if not verified else "MISMATCHED (allowed)" if mismatched else "verified"
        )
    if verified is False:
        fix += (
            "; the reference statistics are UNVERIFIED (no or incomplete provenance sidecar): "
            "recompute them with `python -m harness +experiment=reference_stats`, which writes "
            "one, before comparing this FID with anything"
        )
    return Check(
        10,
        "fid_kid",
        status,
        value,
        f"WARN below {FID_MIN_SAMPLES:,} samples (singular covariance: FID biased upwards, not "
        "comparable across N) or when the reference statistics could not be fully checked "
        "(UNVERIFIED: no or incomplete sidecar) or differ from this run (allowed)",
        "FID and KID depend on the network, its weights, the resize and N; a number is only "
        "comparable with one computed the same way",
        fix,
        details,
    )


# ------------------------------------------------------------------------------ 11 peer conventions
def check_peer_conventions(prep: scores.PreparedProbs, presets: dict, chosen: str) -> Check:
    """This backbone's probabilities under each tool's split convention (assignment, shuffle,
    seed, split count, ddof): what each tool would print for these logits.  The tools' networks
    and resizes differ too; checks 5 and 6 measure those."""
    vals, details = {}, {}
    for key, p in presets.items():
        n_splits = min(p.splits.n_splits, prep.n)
        spec = dataclasses.replace(
            p.splits, n_splits=n_splits, ddof=min(p.splits.ddof, n_splits - 1)
        )
        r = scores.inception_score(prep, splits=spec)
        vals[key] = r.mean
        details[key] = {
            "is_mean": r.mean,
            "is_std": r.std,
            "splits": spec.label(),
            "n_splits_used": r.n_splits,
            "std_ddof": spec.ddof,
            "tool_network": p.backbone.get("name"),
            "mirrors": p.mirrors,
            "network_differs": not same_network(p.backbone.get("name") or chosen, chosen),
        }
    lo, hi = min(vals.values()), max(vals.values())
    spread = 100 * (hi / lo - 1)
    return Check(
        11,
        "peer_conventions",
        WARN if spread > 1 else PASS,
        {"spread_pct": spread, **vals},
        "WARN when the tools' split conventions alone move this IS by more than 1%",
        "Each tool cuts and shuffles the samples differently (torchmetrics: torch.chunk after a "
        "random permutation, ddof 1; torch-fidelity: RandomState(2020) shuffle; the original "
        "code: contiguous; TF-GAN: one split); at small N the convention alone moves the number",
        "Compare only with numbers made under the same convention; say which (protocol=<tool> "
        "reproduces one exactly; +experiment=compare_protocols applies each tool's network too)",
        details,
    )


# ------------------------------------------------------------------------------ 12 encoder spread
#: the distances check 12 reports, as each network declares them (``distance_metrics``)
DISTANCES = ("fd", "cmmd")
#: a network's call on the samples
TELLS_APART, CANNOT_TELL = "tells them apart", "cannot tell them apart"


def feature_distance(metric: str, a: np.ndarray, b: np.ndarray, cmmd_estimator: str):
    """(value, rank deficient) of FD (FID's formula on any network's features) or CMMD, float64."""
    import warnings

    from .. import feature_metrics as fm

    if metric == "cmmd":
        return float(fm.cmmd(a, b, estimator=cmmd_estimator).value), False
    with warnings.catch_warnings():  # recorded as rank_deficient
        warnings.simplefilter("ignore", fm.RankDeficientWarning)
        f = fm.fid(a, b)
    return float(f.value), bool(f.rank_deficient)


def permutation_draws(n_samples: int, n_reference: int, cfg) -> tuple:
    """The rows of samples and reference used (at most ``max_images`` of each) and the
    ``permutations`` relabellings of the pooled rows, from ``default_rng(seed)``: the same for
    every network, so each judges the same images."""
    rng = np.random.default_rng(int(cfg.seed))
    cap = int(cfg.max_images)
    si = np.sort(rng.choice(n_samples, min(n_samples, cap), replace=False))
    ri = np.sort(rng.choice(n_reference, min(n_reference, cap), replace=False))
    perms = [rng.permutation(len(si) + len(ri)) for _ in range(int(cfg.permutations))]
    return si, ri, perms


def encoder_test(samples_f, ref_f, metric: str, draws: tuple, cfg) -> dict:
    """Can one network's features tell the samples from the reference?  A permutation test of
    d(samples, reference): under "the samples are drawn as the reference is", the labels of the
    pooled images are exchangeable, so d over relabelled splits of the same sizes is its null
    distribution, whatever the distance's bias at this N (a less diverse sample set is told
    apart, not called close).  p = (1 + #{d_perm >= d}) / (1 + permutations); z = (d - mean of
    d_perm) / their std compares networks and distances on one scale."""
    si, ri, perms = draws
    s, r = samples_f[si], ref_f[ri]
    pool, m = np.concatenate([s, r]), len(s)
    est = str(cfg.cmmd_estimator)
    value, deficient = feature_distance(metric, s, r, est)
    null = np.array([feature_distance(metric, pool[p[:m]], pool[p[m:]], est)[0] for p in perms])
    p_value = (1 + int((null >= value).sum())) / (1 + len(null))
    spread = float(null.std(ddof=1)) if len(null) > 1 else 0.0
    return {
        "value": value,
        "p_value": p_value,
        "z": (value - float(null.mean())) / spread if spread > 0 else math.nan,
        "null_mean": float(null.mean()),
        "call": TELLS_APART if p_value <= float(cfg.alpha) else CANNOT_TELL,
        "rank_deficient": deficient,
    }


def check_encoder_spread(
    tests: dict, primary: dict, random_weights: bool, setup: dict, notes=()
) -> Check:
    """Do the networks agree whether the samples can be told from the reference?  ``tests``:
    :func:`encoder_test` per ``<metric>_<network>``; ``primary``: network -> the key of its
    first distance (its call is the network's).  PASS when every network (two or more) makes
    the same call, WARN when they differ or fewer than two were measured; with random weights
    anywhere the values are reported, not judged."""
    calls = {net: tests[key]["call"] for net, key in primary.items()}
    z = {k: t["z"] for k, t in tests.items()}
    status = PASS if len(calls) >= 2 and len(set(calls.values())) == 1 else WARN
    limits = (
        "PASS when every network makes the same call on your samples (a permutation test of "
        f"its distance to the reference, p <= {setup['alpha']} with {setup['permutations']} "
        "relabellings: tells them apart, or cannot); WARN when the networks differ, or fewer "
        "than two were measured"
    )
    if random_weights:
        status = NOT_JUDGED
        limits = f"not judged with random weights (with trained weights: {limits})"
    return Check(
        12,
        "encoder_spread",
        status,
        {"networks": len(calls), **{f"{k}_z": v for k, v in z.items()}},
        limits,
        "Distances in different networks' features can disagree about the same samples: FID in "
        "Inception features vs FD in DINOv2 features (Stein et al. 2023) or CMMD on CLIP "
        "embeddings (Jayasumana et al. 2024); a number one network calls close another may not",
        "Report FD_DINOv2 and CMMD beside FID, each with its network, weights hash and N "
        "(all values, below); where the networks differ, say so",
        {
            "calls": calls,
            "values": {k: t["value"] for k, t in tests.items()},
            "p_values": {k: t["p_value"] for k, t in tests.items()},
            "null_means": {k: t["null_mean"] for k, t in tests.items()},
            "rank_deficient": {k: t["rank_deficient"] for k, t in tests.items()},
            **setup,
            "notes": list(notes),
        },
    )
