"""paper_figs' digits section (issue 25, item 6) and the Inception items' guard against digits runs.

Fake run dirs, laid out as ``+experiment=paper`` writes its digits items (``table.csv`` and the
other files each experiment writes, ``provenance.json`` with the config's backbone and dataset
nodes and the argv of ``paper``), keep the section's tests fast; one real end-to-end check runs
two digits items of ``+experiment=paper`` through :func:`harness.api.run_experiment` on the
digits CNN trained in the test session, then ``paper_figs``.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pandas as pd
import pytest

from experiments import paper_figs
from experiments.weights_sensitivity import pairwise
from harness import api

from .conftest import needs_torch

PAPER_ARGV = "/x/harness/__main__.py"
SHA = {
    "pytorch": "4dbd1516f21b185a" + "1" * 48,
    "keras": "da5627e1d456e1ee" + "2" * 48,
    "pytorch_seed1": "dd772414f6834e7a" + "3" * 48,
}
WEIGHTS = {
    "pytorch": "trained:digits_cnn/torch/0",
    "keras": "trained:digits_cnn/keras/0",
    "pytorch_seed1": "trained:digits_cnn/torch/1",
}
KIND = {"pytorch": "torch_model", "keras": "keras_model", "pytorch_seed1": "torch_model"}


def node(key: str) -> dict:
    """A digits backbone node as the config records it (torch_model / keras_model presets)."""
    return {"name": KIND[key], "weights": WEIGHTS[key], "input_size": 8, "label_space": "digits10"}


def digits_set(split: str = "test", arrangement: str = "as_loaded") -> dict:
    return {"name": "digits", "split": split, "arrangement": arrangement}


def net_cols(key: str) -> dict:
    return {"backbone": KIND[key], "weights": WEIGHTS[key], "weights_sha256": SHA[key]}


THREE = {k: node(k) for k in ("keras", "pytorch", "pytorch_seed1")}


def fake_run(root: Path, label: str, experiment: str, config: dict, files: dict, **rec) -> Path:
    """A finished run of ``experiment`` made inside ``+experiment=paper`` (as ``label``)."""
    d = root / "paper" / "2026-01-01_00-00-00" / label
    d.mkdir(parents=True)
    for name, content in files.items():
        if isinstance(content, pd.DataFrame):
            content.to_csv(d / name, index=False)
        else:
            (d / name).write_text(json.dumps(content))
    argv = [PAPER_ARGV, "+experiment=paper", f"hydra.run.dir={d.parent}"]
    prov = {
        "experiment": experiment,
        "finished": "2026-01-01T00:00:00+00:00",
        "config": config,
        "host": {"argv": argv},
        "outputs": {},
        **rec,
    }
    (d / "provenance.json").write_text(json.dumps(prov))
    return d


# ------------------------------------------------------------------ the fake digits runs
def weights_sensitivity_run(root: Path, label="digits_weights_sensitivity", **rec) -> Path:
    vals = {  # (IS, std, top1) on the test digits; IS, std on noise
        "keras": (9.0864, 0.3957, 0.9833, 3.0978, 0.2594),
        "pytorch": (9.0768, 0.4009, 0.9870, 3.3663, 0.1555),
        "pytorch_seed1": (9.0656, 0.4089, 0.9852, 2.8499, 0.2071),
    }
    rows = []
    for key, (m, s, top1, mn, sn) in vals.items():
        for dkey, kind, mean, std, top in (
            ("digits_test", "digits", m, s, top1),
            ("noise", "noise", mn, sn, None),
        ):
            rows.append(
                {
                    "backbone_key": key,
                    "paper_label": "(not in paper)",
                    "dataset_key": dkey,
                    "paper_dataset": "noise" if kind == "noise" else None,
                    "is_mean": mean,
                    "is_std": std,
                    "paper_is_mean": None,
                    "paper_is_std": None,
                    "top1": top,
                    "n_samples": 539,
                    "dataset": kind,
                    **net_cols(key),
                }
            )
    t = pd.DataFrame(rows)
    cfg = {
        "backbones": THREE,
        "datasets": {"digits_test": digits_set(), "noise": {"name": "noise"}},
    }
    files = {"table.csv": t, "pairwise.csv": pairwise(t)}
    return fake_run(root, label, "weights_sensitivity", cfg, files, **rec)


def splits_run(root: Path, label="digits_splits", **rec) -> Path:
    t = pd.DataFrame(
        {
            "n_splits": [1, 2, 10, 50],
            "split_size": [539, 269, 53, 10],
            "is_mean": [9.7917, 9.7483, 9.0768, 6.6322],
            "is_std": [0.0, 0.0519, 0.4009, 0.9489],
            "exp_sg": 9.7917,
            "n_samples": 539,
            **net_cols("pytorch"),
        }
    )
    sizes = pd.DataFrame(
        {
            "n_samples": [100, 400],
            "is_mean": [6.0237, 8.8409],
            "is_lo95": [5.5598, 8.6208],
            "is_hi95": [6.4876, 9.0610],
            "exp_sg_mean": [9.4420, 9.7647],
            "sg_lo95": [2.2006, 2.2709],
            "sg_hi95": [2.2893, 2.2866],
        }
    )
    cfg = {"backbone": node("pytorch"), "dataset": digits_set(), "source": "network"}
    files = {"table.csv": t, "sample_sizes.csv": sizes}
    return fake_run(root, label, "splits", cfg, files, **rec)


def ordering_run(root: Path) -> Path:
    t = pd.DataFrame(
        {
            "split_order": ["as_loaded", "shuffled(seed=0)", "shuffled(seed=1)"],
            "is_mean": [1.1546, 9.0894, 9.0844],
            "is_std": [0.0888, 0.2098, 0.3332],
            "mean_distinct_predicted_classes_per_split": [2.2, 10.0, 9.9],
            **net_cols("pytorch"),
        }
    )
    per_split = pd.DataFrame(
        {
            "split_order": ["as_loaded"] * 2 + ["shuffled(seed=0)"] * 2,
            "split": [0, 1, 0, 1],
            "is_split": [1.08, 1.00, 9.1, 9.0],
            "distinct_classes": [2, 1, 10, 10],
        }
    )
    summary = pd.DataFrame(
        [
            {
                "as_loaded_is": 1.1546,
                "as_loaded_std": 0.0888,
                "shuffled_is_mean_over_seeds": 9.0869,
                "shuffled_is_sd_over_seeds": 0.0025,
                "order_effect_pct": 687.0,
            }
        ]
    )
    cfg = {
        "backbones": {"pytorch": node("pytorch")},
        "datasets": {"digits_test": digits_set(arrangement="class_sorted")},
    }
    files = {"table.csv": t, "per_split.csv": per_split, "summary.csv": summary}
    return fake_run(root, "digits_ordering", "ordering", cfg, files)


def memorization_run(root: Path) -> Path:
    t = pd.DataFrame(
        {
            "generator": [
                "replays 1,258 memorised training images",
                "held-out images (generalises, no copies)",
            ],
            "memorised_images": [1258, 0],
            "is_mean": [9.0972, 9.0768],
            "is_std": [0.2753, 0.4009],
            "nn_dup_rate_vs_train": [1.0, 0.0148],
            "fid_vs_train": [1.2658, 0.8253],
            **net_cols("pytorch"),
        }
    )
    cfg = {
        "backbones": {"pytorch": node("pytorch")},
        "datasets": {"train": digits_set("train"), "heldout": digits_set()},
    }
    return fake_run(root, "digits_memorization", "memorization", cfg, {"table.csv": t})


def beyond_imagenet_run(root: Path) -> Path:
    rows = []
    bits = {"digits_test": 0.0299, "noise": 1.3252, "photo_tiles": 1.9857}
    kind = {"digits_test": "digits", "noise": "noise", "photo_tiles": "photo_tiles"}
    for key in THREE:
        for dkey, b in bits.items():
            rows.append(
                {
                    "backbone_key": key,
                    "dataset_key": dkey,
                    "dataset": kind[dkey],
                    "h_y_given_x_bits": b + (0.001 if key == "pytorch" else 0.0),
                    "max_bits": 3.321928,
                    "paper_h_y_given_x_bits": None,
                    "n_samples": 120 if dkey == "photo_tiles" else 539,
                    **net_cols(key),
                }
            )
    top = pd.DataFrame(
        {
            "backbone": list(THREE) * 2,
            "dataset_key": "photo_tiles",
            "rank": [1, 1, 1, 2, 2, 2],
            "class_index": [1, 1, 9, 9, 9, 1],
            "class_name": ["1", "1", "9", "9", "9", "1"],
            "marginal_prob": [0.27, 0.30, 0.21, 0.19, 0.15, 0.14],
        }
    )
    cfg = {
        "backbones": THREE,
        "datasets": {
            "noise": {"name": "noise"},
            "digits_test": digits_set(),
            "photo_tiles": {"name": "photo_tiles"},
        },
    }
    files = {"table.csv": pd.DataFrame(rows), "top_classes.csv": top}
    return fake_run(root, "digits_beyond_imagenet", "beyond_imagenet", cfg, files)


def adversarial_run(root: Path, label: str, start: str, before_after: tuple) -> Path:
    (b10, a10), (b1, a1), (bp, ap) = before_after
    stages = [
        "start (before the attack)",
        "after 100 iterations, float, highest",
        "after, quantised to uint8 (what would be published)",
    ]
    t = pd.DataFrame(
        {
            "stage": stages,
            "is_mean": [b10, a10, a10],
            "is_1split": [b1, a1, a1],
            "mean_target_prob": [bp, ap, ap],
            "max_possible_is": 10,
            "n_samples": 100,
            "dataset": start,
            "n_splits": 10,
            "eps": 0.001,
            "eps_units": "minus_one_one",
            "iterations": 100,
            **net_cols("pytorch"),
        }
    )
    hist = pd.DataFrame(
        {
            "iteration": [0, 1, 2],
            "is_mean": [b10, (b10 + a10) / 2, a10],
            "is_1split": [b1, (b1 + a1) / 2, a1],
            "sg_nats": [1.3, 1.4, 1.5],
            "mean_target_prob": [bp, (bp + ap) / 2, ap],
            "target_hit_rate": [0.1, 0.5, 0.9],
            "linf_pixels": [0.0, 0.13, 0.26],
        }
    )
    dataset = digits_set() if start == "digits" else {"name": "noise", "size": 8}
    cfg = {"backbone": node("pytorch"), "dataset": dataset, "attack": {"eps": 0.001}}
    files = {"table.csv": t, "history.csv": hist}
    return fake_run(root, label, "adversarial", cfg, files)


def fid_rows(keys: dict, fids: dict, nets: dict) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {
                "backbone_key": key,
                "resize_variant": "native",
                "fid": fids[key],
                "kid_mean": -0.5423,
                "kid_std": 0.1743,
                "precision": 0.8831,
                "recall": 0.9237,
                "density": 0.9562,
                "coverage": 0.8585,
                "is_mean": 9.0768,
                **nets[key],
            }
            for key in keys
        ]
    )


def fid_sensitivity_run(root: Path, **rec) -> Path:
    fids = {"keras": 0.8182, "pytorch": 0.8253, "pytorch_seed1": 1.1270}
    t = fid_rows(THREE, fids, {k: net_cols(k) for k in THREE})
    cfg = {
        "backbones": THREE,
        "dataset": digits_set(),
        "reference": digits_set("train"),
        "weights": None,
    }
    return fake_run(root, "digits_fid_sensitivity", "fid_sensitivity", cfg, {"table.csv": t}, **rec)


def metric_properties_run(root: Path) -> Path:
    long = pd.DataFrame(
        [
            {
                "corruption": c,
                "strength": s,
                "seed": 0,
                "metric": m,
                "value": v,
                "uncorrupted": u,
                **net_cols("pytorch"),
            }
            for c in ("intra_class_collapse", "memorization")
            for m, u in (("is_mean", 9.0768), ("fid", 0.8253))
            for s, v in ((5, u * 1.01), (1, u * (0.97 if m == "is_mean" else 49.0)))
        ]
    )
    detects = pd.DataFrame(
        {
            "metric": ["is_mean", "fid"],
            "intra_class_collapse": ["no", "yes"],
            "memorization": ["no", "no"],
        }
    )
    detail = pd.DataFrame(
        {
            "corruption": ["intra_class_collapse"] * 2 + ["memorization"] * 2,
            "metric": ["is_mean", "fid"] * 2,
            "detects": [False, True, False, False],
            "change_at_strongest": [-0.2445, 39.9787, 0.1653, 0.2366],
            "noise_std": [0.1100, 0.4886, 0.1100, 0.4886],
            "monotone": True,
        }
    )
    cfg = {"backbone": node("pytorch"), "dataset": digits_set(), "reference": digits_set("train")}
    properties = pd.DataFrame(
        {
            "metric": ["is_mean", "mmd2"],
            "mode_collapse": ["no", "yes, worse"],
            "xu_et_al": ["does not do well", "does well on all properties"],
            "disagrees_with_xu": ["agrees (fails mode_collapse)", "agrees"],
        }
    )
    files = {
        "table.csv": long,
        "detects.csv": detects,
        "detects_detail.csv": detail,
        "properties.csv": properties,
    }
    return fake_run(root, "digits_metric_properties", "metric_properties", cfg, files)


REPORTING_LINE = "IS = 9.08 ± 0.40 (mean ± std over 10 splits of 53-54; digits classifier"


def sanity_run(root: Path) -> Path:
    t = pd.DataFrame(
        {
            "check": ["1. sample_count", "8. domain_fit"],
            "status": ["FAIL", "PASS"],
            "value": ["539", "0.02977"],
            "threshold": ["PASS >= 50,000", "PASS < 1 bits"],
        }
    )
    report = {
        "reporting_line": REPORTING_LINE,
        "summary": {"n_pass": 4, "n_warn": 6, "n_fail": 1, "n_samples": 539},
        "backbone": {"backbone": "torch_model", "weights_sha256": SHA["pytorch"]},
    }
    cfg = {
        "backbone": node("pytorch"),
        "other_backbones": {"keras": node("keras")},
        "dataset": digits_set(),
        "reference": digits_set("train"),
    }
    return fake_run(root, "digits_sanity", "sanity", cfg, {"table.csv": t, "report.json": report})


def all_digits_runs(root: Path) -> dict:
    return {
        "digits_weights_sensitivity": weights_sensitivity_run(root),
        "digits_splits": splits_run(root),
        "digits_ordering": ordering_run(root),
        "digits_memorization": memorization_run(root),
        "digits_beyond_imagenet": beyond_imagenet_run(root),
        "digits_adversarial": adversarial_run(
            root, "digits_adversarial", "digits", ((6.65, 6.44), (9.37, 9.01), (0.12, 0.13))
        ),
        "digits_adversarial_noise": adversarial_run(
            root, "digits_adversarial_noise", "noise", ((3.00, 4.20), (3.60, 4.63), (0.08, 0.68))
        ),
        "digits_fid_sensitivity": fid_sensitivity_run(root),
        "digits_metric_properties": metric_properties_run(root),
        "digits_sanity": sanity_run(root),
    }


def regenerate(tmp_path: Path, root: Path, name: str, *extra: str):
    out = tmp_path / "pf"
    args = [f"output_root={root}", f"paper_figs.out_dir={out}", "progress=false", *extra]
    res = api.run_experiment("paper_figs", args, run_dir=tmp_path / name)
    return res.table.set_index("experiment"), out


def tree_bytes(d: Path) -> dict:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(d.iterdir())}


def digits_readme(out: Path) -> str:
    text = (out / "README.md").read_text()
    return text[text.index(f"## {paper_figs.DIGITS_HEADING}") :]


# ------------------------------------------------------------------ the tests
def test_digits_runs_never_fill_the_inception_items(tmp_path):
    """The digits fid_sensitivity and metric_properties runs of ``make run`` have real weights,
    but no ImageNet Inception network: they fill the digits section, never the additions."""
    root = tmp_path / "results"
    fid_digits = fid_sensitivity_run(root)
    mp_digits = metric_properties_run(root)
    src, out = regenerate(tmp_path, root, "run1")
    for exp in ("fid_sensitivity", "metric_properties"):
        assert src.loc[exp, "source"] == "none", src.loc[exp].to_dict()
        assert "digits10" in src.loc[exp, "why_not_real"]
        assert "ImageNet Inception" in src.loc[exp, "why_not_real"]
    assert src.loc["digits_fid_sensitivity", "source_run"] == str(fid_digits)
    assert src.loc["digits_metric_properties", "source_run"] == str(mp_digits)
    readme = (out / "README.md").read_text()
    additions = readme[readme.index("## The harness's additions") : readme.index("## Reproduced")]
    assert str(fid_digits) not in additions and str(mp_digits) not in additions
    assert str(fid_digits) in digits_readme(out)
    # not even as a watermarked smoke run
    src, _ = regenerate(tmp_path, root, "run2", "paper_figs.allow_smoke=true")
    assert src.loc["fid_sensitivity", "source"] == "none"
    assert src.loc["metric_properties", "source"] == "none"


def test_inception_runs_still_fill_their_items_and_not_the_digits_section(tmp_path):
    """An Inception fid_sensitivity run (backbone nodes without a declared label space: their
    class's, ImageNet's) is the additions' item, also when a digits run is newer."""
    root = tmp_path / "results"
    nets = {"torchvision": {"name": "torchvision", "weights": "pretrained"}}
    nets["keras"] = {"name": "keras", "weights": "pretrained"}
    cols = {
        k: {"backbone": k, "weights": "pretrained", "weights_sha256": f"{k}beef" + "0" * 40}
        for k in nets
    }
    d = root / "fid_sensitivity" / "inception"
    d.mkdir(parents=True)
    fid_rows(nets, {"torchvision": 3.21, "keras": 3.45}, cols).to_csv(d / "table.csv", index=False)
    rec = {
        "experiment": "fid_sensitivity",
        "finished": "2025-01-01T00:00:00+00:00",  # older than the digits run
        "config": {"backbones": nets},
        "host": {"argv": [PAPER_ARGV, "+experiment=fid_sensitivity", f"hydra.run.dir={d}"]},
    }
    (d / "provenance.json").write_text(json.dumps(rec))
    fid_sensitivity_run(root)
    src, out = regenerate(tmp_path, root, "run")
    assert src.loc["fid_sensitivity", "source"] == "real"
    assert src.loc["fid_sensitivity", "source_run"] == str(d)
    assert src.loc["digits_fid_sensitivity", "source_run"] != str(d)
    assert "torchvisionbeef" in (out / "README.md").read_text()
    # label spaces as the run dirs record them, never from a backbone's name
    assert set(paper_figs.label_spaces(d, rec)) == {"imagenet1000"}


def test_digits_section_from_fake_runs(tmp_path):
    root = tmp_path / "results"
    runs = all_digits_runs(root)
    # a newer smoke run (random weights) of a digits item is never drawn, not even watermarked
    weights_sensitivity_run(
        root,
        label="digits_weights_sensitivity_smoke",
        weights_note="RANDOM WEIGHTS: not a real Inception Score",
    )
    smoke = root / "paper" / "2026-01-01_00-00-00" / "digits_weights_sensitivity_smoke"
    prov = json.loads((smoke / "provenance.json").read_text())
    prov["finished"] = "2026-06-01T00:00:00+00:00"
    (smoke / "provenance.json").write_text(json.dumps(prov))
    src, out = regenerate(tmp_path, root, "run1", "paper_figs.allow_smoke=true")
    for label, d in runs.items():
        assert src.loc[label, "source"] == "real", (label, src.loc[label, "why_not_real"])
        assert src.loc[label, "source_run"] == str(d)
        assert src.loc[label, "section"] == "digits"
    for item in paper_figs.ITEMS:  # none of them is a digits run, real or smoke
        if item.experiment != "toy_gaussian":
            assert src.loc[item.experiment, "source"] == "none", item.experiment

    def md(name: str) -> str:
        text = (out / f"{name}.md").read_text()
        assert "not Inception V3" in text and "orientation only" in text  # every caption
        assert "no digits run" not in text and "SMOKE" not in text
        assert (out / f"{name}.tex").exists()
        return text

    t1 = md("digits_table1_is_per_network")
    for row in (
        "| keras | trained:digits_cnn/keras/0 | digits_test (539) | 9.086 ± 0.396 | 0.983 |",
    ):
        assert row in t1
    assert "9.077 ± 0.401" in t1 and "2.850 ± 0.207" in t1  # PyTorch on digits, seed 1 on noise
    assert "| IV3 Keras | the framework's ImageNet weights | CIFAR-10 train (50,000) | 10.852" in t1
    diffs = md("digits_table1_differences")
    # keras vs pytorch on the digits: +0.11%, (9.0864 - 9.0768) / 0.4009 = +0.024 split stds
    assert "| keras vs pytorch | digits_test | 9.086 / 9.077 | +0.11% | +0.024 |" in diffs
    assert (
        "| IV3 Keras vs IV3 Torch | CIFAR-10 train | 10.852 / 9.737 | +11.45% | +7.534 |" in diffs
    )
    splits = md("digits_table2_is_vs_splits")
    assert "| 50 | 10 | 6.6322 ± 0.9489 | 0.677 |  |  |  |" in splits
    assert "| 200 |  |  |  | 9.0884 | 250 | 0.917 |" in splits
    assert "| 10 | 53 | 9.0768 ± 0.4009 | 0.927 | 9.7370 | 5,000 | 0.982 |" in splits
    by_n = md("digits_table2_is_vs_n")
    assert "| 400 | 8.8409 | 8.6208 to 9.0610 | 9.7647 |" in by_n and "| 539 | 9.0768 |" in by_n
    order = md("digits_ordering")
    assert (
        "1.155 ± 0.089 | 2.2 |" in order and "9.087 (sd 0.003 over seeds; 9.084 to 9.089)" in order
    )
    assert "+687.0%" in order and "63.702 ± 7.869" in order
    mem = md("digits_sec423_memorization")
    assert "| replays 1,258 memorised training images | 9.097 ± 0.275 | 100.0% | 1.266 |" in mem
    ent = md("digits_sec421_conditional_entropy")
    assert "| photo_tiles (120) | keras 1.986; pytorch 1.987; pytorch_seed1 1.986 |" in ent
    assert "keras 1; pytorch 1; pytorch_seed1 9 | CIFAR-10 train (out of domain) | 4.664" in ent
    assert "| uniform noise | 6.512 | 65.3% of 9.97 bits |" in ent
    attack = md("digits_sec422_attack")
    assert (
        "| test digits | 100 | eps 0.001 (minus_one_one) x 100 | 9.37 -> 9.01 | 6.65 -> 6.44"
        in attack
    )
    assert (
        "| 8x8 uniform noise | 100 |" in attack
        and "3.60 -> 4.63 | 3.00 -> 4.20 | 46.3% of 10" in attack
    )
    assert "| uniform noise | 986.10 | 98.6% of 1000 |" in attack
    assert "| CIFAR-10 WGAN samples | 900.15 | 90.0% of 1000 |" in attack
    fid = md("digits_fid_sensitivity")
    assert "| pytorch_seed1 | 1.127 | -0.542 ± 0.174 |" in fid
    assert "| spread: max / min - 1 | 37.7% |" in fid and "| 11.45% |" in fid
    assert "| fid | yes | no |" in md("digits_metric_properties")
    props = md("digits_metric_properties_properties")
    assert "| mmd2 | yes, worse | does well on all properties | agrees |" in props
    detail = md("digits_metric_properties_detail")
    assert "| intra_class_collapse | fid | +39.979 | 0.489 | +81.8 | yes |" in detail
    assert "| memorization | is_mean | +0.165 | 0.110 | +1.5 | no | no: Section 4.2.3" in detail
    sanity = md("digits_sanity")
    assert REPORTING_LINE in sanity and "4 PASS, 6 WARN, 1 FAIL on 539 samples" in sanity
    assert "| 1. sample_count | FAIL | 539 |" in sanity
    # figures: PNG + PDF under stable names, each real one (the grids need images.npz)
    for item in paper_figs.DIGITS_ITEMS:
        for _, name in item.figures:
            if not name.endswith("_before_after"):
                assert (out / f"{name}.png").exists() and (out / f"{name}.pdf").exists(), name
    # README: per item its source run, the command line (inside +experiment=paper), the sha256
    section = digits_readme(out)
    for label, d in runs.items():
        row = next(ln for ln in section.splitlines() if f"`{d}`" in ln)
        item = next(i for i in paper_figs.DIGITS_ITEMS if i.label == label)
        assert f"{item.command} (run inside python -m harness +experiment=paper" in row
        assert "4dbd1516f21b185a" in row, label
    assert "da5627e1d456e1ee, dd772414f6834e7a" in section  # the three networks' weights
    assert "SMOKE" not in section and str(smoke) not in (out / "README.md").read_text()
    # regenerating from the same runs changes no bytes
    before = tree_bytes(out)
    regenerate(tmp_path, root, "run2", "paper_figs.allow_smoke=true")
    assert tree_bytes(out) == before


def test_digits_placeholders_name_their_commands(tmp_path):
    """No digits run: each item is a placeholder naming +experiment=paper and its own command;
    the tables keep the paper's values, measured cells empty. A smoke run never stands in."""
    root = tmp_path / "results"
    splits_run(root, weights_note="RANDOM WEIGHTS: not a real Inception Score")
    src, out = regenerate(tmp_path, root, "run", "paper_figs.allow_smoke=true")
    section = digits_readme(out)
    for item in paper_figs.DIGITS_ITEMS:
        assert src.loc[item.label, "source"] == "none"
        cell = item.paper.replace("|", "\\|")  # a pipe is escaped in a markdown cell
        row = next(ln for ln in section.splitlines() if ln.startswith(f"| {cell} |"))
        assert f"`{paper_figs.DIGITS_COMMAND}`" in row and f"`{item.command}`" in row
        if item.figures:  # the placeholder takes the name the real figure will have
            assert (out / f"{item.figures[0][1]}.png").exists()
    assert "random weights" in src.loc["digits_splits", "why_not_real"]
    # the item's own command is the one +experiment=paper runs (experiments/paper.py)
    assert paper_figs.digits_command("digits_splits") == (
        "python -m harness +experiment=splits backbone=digits_torch dataset=digits "
        "dataset.split=test 'n_splits=[1,2,5,10,20,50]' 'sample_sizes=[100,200,400]'"
    )
    t2 = (out / "digits_table2_is_vs_splits.md").read_text()
    assert "(no digits run of digits_splits: python -m harness +experiment=paper)" in t2
    assert "| 200 |  |  |  | 9.0884 | 250 | 0.917 |" in t2
    attack = (out / "digits_sec422_attack.md").read_text()
    assert "| test digits |  |  |  |  |  |  | CIFAR-10 WGAN samples | 900.15 |" in attack


@needs_torch
@pytest.mark.slow
def test_digits_section_from_real_runs(tmp_path):
    """Two digits items of +experiment=paper (splits, ordering: digits_torch, trained here on
    first use) through the Python API, then paper_figs: the section's tables hold their numbers."""
    from experiments.paper import DIGITS_ITEMS

    root = tmp_path / "results"
    ran = {}
    for item in DIGITS_ITEMS:
        if item["label"] in ("digits_splits", "digits_ordering"):
            ran[item["label"]] = api.run_experiment(
                item["name"],
                [*item["overrides"], "progress=false"],
                run_dir=root / "paper" / "r" / item["label"],
            )
    src, out = regenerate(tmp_path, root, "run1")
    assert src.loc["digits_splits", "source"] == "real"
    assert src.loc["digits_ordering", "source"] == "real"
    assert src.loc["splits", "source"] == "none"  # not the paper's Table 2
    t = ran["digits_splits"].table
    splits = (out / "digits_table2_is_vs_splits.md").read_text()
    for r in t.itertuples():
        assert f"| {r.n_splits} | {r.split_size} | {r.is_mean:.4f} ± {r.is_std:.4f} |" in splits
    by_n = (out / "digits_table2_is_vs_n.md").read_text()
    for r in ran["digits_splits"].tables["sample_sizes"].itertuples():
        assert f"| {r.n_samples:,} | {r.is_mean:.4f} | {r.is_lo95:.4f} to {r.is_hi95:.4f} |" in by_n
    o = ran["digits_ordering"].tables["summary"].iloc[0]
    order = (out / "digits_ordering.md").read_text()
    assert f"{o.as_loaded_is:.3f} ± {o.as_loaded_std:.3f}" in order
    assert f"{o.shuffled_is_mean_over_seeds:.3f} (sd {o.shuffled_is_sd_over_seeds:.3f}" in order
    assert o.as_loaded_is < o.shuffled_is_mean_over_seeds  # class-sorted splits lower IS
    section = digits_readme(out)
    sha = str(t.weights_sha256.iloc[0])[:16]
    for label in ran:
        row = next(ln for ln in section.splitlines() if str(root / "paper" / "r" / label) in ln)
        assert sha in row and "run through the Python API" in row
    assert (out / "digits_table2_splits.png").exists() and (out / "digits_ordering.pdf").exists()
    before = tree_bytes(out)
    regenerate(tmp_path, root, "run2")
    assert tree_bytes(out) == before
