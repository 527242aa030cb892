"""Experiment ``memorization`` (paper 4.2.3): IS rewards a generator that replays training data.

A "generator" that memorised K training images and replays them (uniformly, with
replacement) is scored against held-out images (a generator that generalises perfectly).  IS
cannot tell them apart; a nearest-neighbour check in the backbone's pool features can: every
replayed sample has an exact twin in the training set.  Replayed samples *are* training images,
so their logits and features are the cached training ones (no recomputation).
"""

from __future__ import annotations

import dataclasses
import warnings

import numpy as np
import pandas as pd

from harness import config, inputs, metric_set, scores
from harness import feature_metrics as fm
from harness import settings as S
from harness.neighbors import nearest_similarity, normalise_features
from harness.pipeline import outputs
from harness.plotting import subplots
from harness.rows import dataset_label, provenance_columns, score_row
from harness.runner import Result

SETTINGS = S.ExperimentSettings(
    "Paper 4.2.3: a generator replaying training images scores like real data; NN copies expose "
    "it.",
    S.Schema(
        [
            S.NodeMap("backbones", "backbone", {"torchvision": "torchvision"}),
            S.NodeMap("datasets", "dataset", {"train": "cifar10", "heldout": "cifar10_test"}),
            config.weights_override(),
            S.Setting(
                "replay_sizes",
                S.ListOf(S.Int(lo=1), unique=True),
                [10, 100, 1000, 10000, 50000],
                "memorised training images K (first K of the train set)",
            ),
            S.Setting(
                "n_samples",
                S.Int(lo=1),
                10000,
                "samples per generator (held-out: the first n_samples test images)",
            ),
            S.Setting(
                "dup_threshold",
                S.Float(lo=-1, hi=1),
                0.995,
                "cosine similarity of centred pool features that counts as a copy",
            ),
            config.kid_section(doc="KID of each generator's samples against the training set"),
            config.data_copying_section(),
        ]
    ),
    uses_splits=True,
)


#: ``kid.subset_size=auto``: min(this, N samples, N train), as ``sanity`` and ``fid_sensitivity``
KID_AUTO_MAX = 1000


def kid_subset_size(setting, n: int, n_train: int) -> int:
    """The KID subset size: ``auto`` = min(1000, n, n_train); an integer must fit in both sets
    (a one-line error otherwise)."""
    if setting == "auto":
        return min(KID_AUTO_MAX, int(n), int(n_train))
    fm.check_kid_subset(int(setting), min(int(n), int(n_train)))
    return int(setting)


def duplicate_rates(samples_f, ref_f, threshold: float) -> dict:
    nn_ref, _ = nearest_similarity(samples_f, ref_f)
    nn_self, _ = nearest_similarity(samples_f, samples_f, exclude_self=True)
    return {
        "nn_dup_rate_vs_train": float((nn_ref >= threshold).mean()),
        "mean_nn_similarity_vs_train": float(nn_ref.mean()),
        "within_sample_dup_rate": float((nn_self >= threshold).mean()),
    }


def compute(cfg) -> Result:
    fm.check_kid_matmul_dtype(cfg.kid.matmul_dtype)
    got = inputs.load_inputs(cfg, nets=("backbones",), sources=("datasets",))
    ((bname, net),) = got.nets.items()
    train, held = got.source("train"), got.source("heldout")
    tr = outputs(cfg, net, train, features=True, label="train")
    he = outputs(cfg, net, held, features=True, label="held-out")
    center = tr.pool.mean(axis=0)
    tr_f = normalise_features(tr.pool, center)
    he_f = normalise_features(he.pool, center)
    n = min(int(cfg.n_samples), len(held)) if cfg.n_samples else len(held)
    spec, thr = config.split_spec(cfg), float(cfg.dup_threshold)
    kid_size = kid_subset_size(cfg.kid.subset_size, n, len(train))
    # C_T's held-out test sample: the second half of the held-out set, the same for every row
    # (the held-out generator's samples in it are left out of its C_T: ct_n_generated)
    test_start = len(held) // 2
    m = _Measures(cfg, tr.pool, tr_f, he.pool[test_start:], spec, thr, kid_size)

    rows = []
    for K in [int(v) for v in cfg.replay_sizes if int(v) <= len(train)]:
        # replay the first K training images, uniformly with replacement
        idx = np.random.default_rng([int(cfg.seed), K]).integers(0, K, size=n)
        rows.append(
            m.row(
                f"replays {K:,} memorised training images",
                K,
                tr.probs[idx],
                tr_f[idx],
                tr.pool[idx],
                tr.pool[idx],
            )
        )
    hi = np.arange(n)
    rows.append(
        m.row(
            "held-out images (generalises, no copies)",
            0,
            he.probs[hi],
            he_f[hi],
            he.pool[hi],
            he.pool[hi[hi < test_start]],
        )
    )
    table = pd.DataFrame(rows)
    full = dataclasses.replace(spec, n_splits=min(spec.n_splits, len(train)))
    table["train_is_full"] = scores.inception_score(tr.probs, splits=full).mean
    for kk, v in _provenance(cfg, net, spec, n, thr, tr.pool, train, held).items():
        table[kk] = v
    return Result({"table": table}, got.random_weights, objects={"what": bname, "n": n, "thr": thr})


@dataclasses.dataclass
class _Measures:
    """What every generator's row is measured against: the training set (pool features, raw and
    centred-normalised), C_T's held-out test sample, and the run's settings."""

    cfg: object
    train_pool: np.ndarray
    train_f: np.ndarray
    ct_test: np.ndarray
    spec: object
    thr: float
    kid_size: int

    def row(self, generator: str, memorised: int, probs, feats, pool, generated) -> dict:
        """One generator's row: IS and S(G) of ``probs``, its copy rates (``feats``: centred,
        normalised), FID/KID of ``pool`` against train and C_T/authenticity of ``generated``."""
        r = {"generator": generator, "memorised_images": memorised}
        r.update(score_row(probs, self.spec))
        r.update(duplicate_rates(feats, self.train_f, self.thr))
        r.update(self.vs_train(pool))
        r.update(self.copying(generated))
        return r

    def vs_train(self, sample_pool) -> dict:
        """FID/KID against the training set, as FID is used."""
        kid = self.cfg.kid
        with warnings.catch_warnings():  # recorded per row (fid_rank_deficient)
            warnings.simplefilter("ignore", fm.RankDeficientWarning)
            f = fm.fid(sample_pool, self.train_pool)
        k = fm.kid(
            sample_pool,
            self.train_pool,
            int(kid.subsets),
            self.kid_size,
            int(kid.seed),
            matmul_dtype=kid.matmul_dtype,
        )
        return {
            "fid_vs_train": f.value,
            "kid_vs_train": k.mean,
            "kid_std_vs_train": k.std,
            **f.provenance(),
            **k.provenance(),
        }

    def copying(self, generated) -> dict:
        """Data-copying (C_T) and authenticity columns of ``generated``."""
        out = metric_set.data_copying_columns(
            self.train_pool, self.ct_test, generated, self.cfg.data_copying
        )
        out.update(metric_set.authenticity_columns(self.train_pool, generated))
        return {**out, "ct_n_generated": len(generated), "ct_n_test": len(self.ct_test)}


def _provenance(cfg, net, spec, n: int, thr: float, train_pool, train, held) -> dict:
    """The table's provenance columns: the backbone's, the settings and both image sets'."""
    prov = provenance_columns(net, None, spec, cfg.seed)
    prov.update(
        {
            "n_samples": n,
            "dup_threshold_cosine": thr,
            "features": f"pool ({train_pool.shape[1]}), centred on the train mean",
            "ct_sets": "train: the training set; held-out test: the second half of the "
            "held-out set (the held-out generator's C_T uses its samples in the first half)",
            "authenticity_real": "the training set",
            **{f"data_copying_{k}": v for k, v in cfg.data_copying.items()},
            "kid_subset_size_setting": str(cfg.kid.subset_size),
            "train_fingerprint": train.fingerprint(),
            "heldout_fingerprint": held.fingerprint(),
            "train_dataset": train.kind,
            "heldout_dataset": held.kind,
            "train_dataset_label": dataset_label(train),
            "heldout_dataset_label": dataset_label(held),
        }
    )
    return prov


def present(result: Result, run) -> None:
    o = result.objects
    run.table(
        result.table,
        title=f"IS rewards memorisation; nearest neighbours catch it "
        f"({o['what']}, {o['n']:,} samples each)",
        notes=[
            f"A sample counts as a copy when its nearest training image has cosine "
            f"similarity >= {o['thr']} in centred pool features.",
            "fid_vs_train / kid_vs_train: FID and KID of each generator's samples against the "
            "training set (pool features), as FID is usually computed: a generator that "
            "replays training images gets a *better* (lower) FID than one that generalises.",
            f"ct: {metric_set.FAMILIES['ct']}: k-means cells on the training set, the second "
            "half of the held-out set as its held-out test sample; about 0 without copying.",
            f"authenticity: {metric_set.FAMILIES['authenticity']}: a sample is inauthentic when "
            "it is closer to its nearest training image than that image is to its own nearest "
            "training neighbour.",
            *metric_set.notes_of(result.table),
        ],
        print_columns=[
            "generator",
            "is_mean",
            "is_std",
            "sg_nats",
            "fid_vs_train",
            "kid_vs_train",
            "nn_dup_rate_vs_train",
            "within_sample_dup_rate",
            "ct",
            "authenticity",
        ],
    )
    run.figure(figure(result.table), "memorization")


def headline(result: Result) -> str:
    """IS and copy rate of the largest replaying generator beside the held-out images."""
    t = result.table
    rep, held = t[t.memorised_images > 0], t[t.memorised_images == 0]
    parts = []
    if len(rep):
        r = rep.loc[rep.memorised_images.idxmax()]
        parts.append(
            f"replaying {int(r.memorised_images):,} training images: IS {r.is_mean:.4g}, "
            f"copies {r.nn_dup_rate_vs_train:.0%}"
        )
    if len(held):
        h = held.iloc[0]
        parts.append(f"held-out: IS {h.is_mean:.4g}, copies {h.nn_dup_rate_vs_train:.1%}")
    return "; ".join(parts)


def figure(table: pd.DataFrame):
    fig, ax = subplots(figsize=(8, 3.8))
    x = np.arange(len(table))
    ax.bar(x - 0.2, table.is_mean, width=0.4, yerr=table.is_std, capsize=3, label="IS (mean ± std)")
    ax.set_ylabel("Inception Score")
    ax2 = ax.twinx()
    ax2.bar(
        x + 0.2,
        table.nn_dup_rate_vs_train,
        width=0.4,
        color="tab:red",
        label="fraction copied from train",
    )
    ax2.set_ylim(0, 1.05)
    ax2.set_ylabel("nearest-neighbour copy rate")
    ax.set_xticks(
        x,
        [
            g.replace(" memorised training images", "\nmemorised").replace(
                " (generalises, no copies)", ""
            )
            for g in table.generator
        ],
        fontsize=7,
    )
    h1, l1 = ax.get_legend_handles_labels()
    h2, l2 = ax2.get_legend_handles_labels()
    ax.legend(h1 + h2, l1 + l2, fontsize=8, loc="upper left")
    ax.set_xlabel("generator (samples each)")
    parts = [", ".join(dict.fromkeys(map(str, table.backbone)))] if "backbone" in table else []
    for col, what in (("train", "train"), ("heldout", "held-out")):
        for c in (f"{col}_dataset_label", f"{col}_dataset"):  # older tables: the kind only
            if c in table:
                parts.append(f"{what}: {table[c].iloc[0]}")
                break
    ax.set_title(
        "IS rewards memorisation; nearest neighbours catch it"
        + (f" ({'; '.join(parts)})" if parts else ""),
        fontsize=9,
    )
    fig.tight_layout()
    return fig


def paper_figures(run_dir):
    return {"memorization": figure(pd.read_csv(f"{run_dir}/table.csv"))}


def paper_tables(run_dir) -> dict:
    """Section 4.2.3 beside the paper's claim (no values given): a replaying generator's IS is
    that of real data; the nearest-neighbour copy rate and FID vs train are the harness's."""
    cols = ["generator", "is_mean", "nn_dup_rate_vs_train", "fid_vs_train"]
    claim = "IS cannot detect a generator that replays training images"
    if not run_dir:
        return {"sec423_memorization": pd.DataFrame([{**dict.fromkeys(cols), "paper": claim}])}
    t = pd.read_csv(f"{run_dir}/table.csv")
    t = t[[c for c in cols if c in t]].copy()
    t["paper"] = claim
    return {"sec423_memorization": t}
