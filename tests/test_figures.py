"""Every experiment's figure says what it shows (issue 26, item 7).

Each figure function is drawn on a small table (a tiny smoke run where the finding lives in the
compute path: a folder loaded under ``datasets.cifar10_train``, simulated probabilities, a
reference set; hand-made tables elsewhere) and its texts are checked against that table: the x
tick labels are the table's categories, the y label names the metric, the title names the
network and the images actually used.  Conventions every figure keeps: no "+-" (``±``), no legend
with a single entry, no lines joining categories on a categorical x axis, no ratio of values that
are not both positive drawn as a number.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from harness import results
from harness.api import compose, run_with_config

from .conftest import needs_torch
from .fixtures import write_pngs


# ------------------------------------------------------------------------------------ helpers
def flat(s: str) -> str:
    return " ".join(str(s).split())


def suptitle(fig) -> str:
    return flat(fig.get_suptitle())


def ticks(ax, axis: str = "x") -> list[str]:
    ax.figure.canvas.draw()
    labels = ax.get_xticklabels() if axis == "x" else ax.get_yticklabels()
    return [flat(t.get_text()) for t in labels]


def texts(fig) -> list[str]:
    """Every text a reader sees: titles, axis and tick labels, legends, annotations."""
    fig.canvas.draw()
    out = [fig.get_suptitle(), *(t.get_text() for t in fig.texts)]
    for ax in fig.axes:
        out += [ax.get_title(loc) for loc in ("left", "center", "right")]
        out += [ax.get_xlabel(), ax.get_ylabel()]
        out += [t.get_text() for t in (*ax.get_xticklabels(), *ax.get_yticklabels(), *ax.texts)]
        leg = ax.get_legend()
        if leg is not None:
            out += [leg.get_title().get_text(), *(t.get_text() for t in leg.get_texts())]
    return [flat(t) for t in out if t and t.strip()]


def all_text(fig) -> str:
    return " | ".join(texts(fig))


def check_conventions(fig, categorical=()) -> None:
    """± not +-; no one-entry legend; on the ``categorical`` axes no line joins categories (a
    horizontal reference line is fine)."""
    for t in texts(fig):
        assert "+-" not in t, t
    for ax in fig.axes:
        leg = ax.get_legend()
        if leg is not None:
            assert len(leg.get_texts()) >= 2, [t.get_text() for t in leg.get_texts()]
    for ax in categorical:
        for line in ax.get_lines():
            y = np.asarray(line.get_ydata(), dtype=float)
            joined = line.get_linestyle() not in ("None", "none", "", " ")
            if joined and len(y) > 1:
                assert np.allclose(y, y[0], equal_nan=True), (
                    f"line {line.get_label()!r} joins categories {ticks(ax)}"
                )


@pytest.fixture
def saved(monkeypatch):
    """Every figure a run saves, as ``{name: figure}`` (after the runner's watermark)."""
    figs = {}
    real = results.save_figure

    def spy(fig, run_dir, name, *args, **kwargs):
        paths = real(fig, run_dir, name, *args, **kwargs)
        figs[name] = fig
        return paths

    monkeypatch.setattr(results, "save_figure", spy)
    return figs


#: a tiny classifier (random weights through its builder): smoke runs in a second, not the ~50 s
#: a random Inception V3 costs to build on a loaded 2-core machine
BUILDER = """
import torch.nn as nn


def build():
    return nn.Sequential(
        nn.Conv2d(3, 4, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(2), nn.Flatten(), nn.Linear(16, 10)
    )
"""


@pytest.fixture(scope="module")
def tiny_net(tmp_path_factory):
    """Overrides that put the tiny classifier under ``backbones.<key>`` (random weights)."""
    d = tmp_path_factory.mktemp("tiny_net")
    (d / "tiny.py").write_text(BUILDER)

    def knobs(key: str) -> list[str]:
        node = f"backbones.{key}"
        return [
            f"+backbone@{node}=torch_model",
            f"{node}.weights=random:0",
            f"{node}.builder={d / 'tiny.py'}:build",
            f"{node}.input_size=8",
            f"{node}.resize=antialias",
        ]

    return knobs


def run(name, tmp_path, *overrides):
    cfg = compose(name, [f"output_root={tmp_path}", "progress=false", *overrides])
    return run_with_config(cfg, tmp_path / name)


def close(*figs):
    import matplotlib.pyplot as plt

    for f in figs:
        plt.close(f)


# ----------------------------------------------------------------------- finding: splits.png
def test_splits_figure_of_simulated_probabilities_says_so(tmp_path, saved):
    res = run(
        "splits",
        tmp_path,
        "source=simulated",
        "simulated.num_classes=10",
        "simulated.n=300",
        "sample_sizes=[50,300]",
        "resamples=2",
        "n_splits=[1,2,5]",
    )
    fig = saved["splits"]
    title = suptitle(fig).lower()
    assert "simulated probabilities" in title, title
    assert "10 classes" in title and "300 samples" in title, title  # the simulation's own size
    legends = [ax.get_legend() for ax in fig.axes if ax.get_legend() is not None]
    assert len(legends) == 2
    for leg in legends:
        assert "simulated probabilities" in leg.get_title().get_text()
    left, right = fig.axes[:2]
    assert left.get_xlabel() == "number of splits" and "Inception Score" in left.get_ylabel()
    classic = next(ln for ln in left.get_lines() if ln.get_label().startswith("classic IS"))
    assert list(classic.get_xdata()) == list(res.table.n_splits)
    assert right.get_xlabel().startswith("number of samples N")
    check_conventions(fig)


def test_splits_figure_of_a_network_names_it_and_its_images():
    from experiments import splits

    table = pd.DataFrame(
        {
            "n_splits": [1, 2, 5],
            "is_mean": [3.0, 2.9, 2.7],
            "is_std": [0.0, 0.1, 0.2],
            "exp_sg": [3.0] * 3,
            "paper_value": [None] * 3,
            "n_samples": [300] * 3,
            "backbone": ["torchvision"] * 3,
            "dataset": ["folder"] * 3,
            "dataset_label": ["folder my_gan (300 images)"] * 3,
        }
    )
    sizes = pd.DataFrame(
        {
            "n_samples": [50, 300],
            "is_mean": [2.5, 3.0],
            "is_lo95": [2.4, 3.0],
            "is_hi95": [2.6, 3.0],
            "exp_sg_mean": [2.6, 3.0],
            "sg_lo95": [0.9, 1.09],
            "sg_hi95": [1.0, 1.1],
        }
    )
    fig = splits.figure(table, sizes)
    title = suptitle(fig)
    assert "torchvision on folder my_gan (300 images)" in title, title
    assert "simulat" not in all_text(fig).lower()
    check_conventions(fig)
    close(fig)


# ----------------------------------------------- finding: a folder under datasets.cifar10_train
@needs_torch
def test_weights_sensitivity_names_the_folder_loaded_under_the_cifar10_key(
    tmp_path, saved, tiny_net
):
    folder = tmp_path / "gan_samples"
    write_pngs(folder, n=12)
    res = run(
        "weights_sensitivity",
        tmp_path,
        *[f"~backbones.{k}" for k in ("tf2015", "torchvision", "keras", "tfhub")],
        *tiny_net("tiny"),
        "~datasets.imagenet_val",
        "dataset@datasets.cifar10_train=folder",
        f"datasets.cifar10_train.root={folder}",
        "n_splits=3",
    )
    label = "folder gan_samples (12 images)"  # what was loaded: kind, folder name, count
    t = res.table
    assert list(t.dataset_key) == ["cifar10_train"]  # the config key, in its own column
    assert list(t.dataset_label) == [label]
    assert t.paper_dataset.isna().all() and t.paper_is_mean.isna().all()  # not the paper's set
    md = (tmp_path / "weights_sensitivity" / "table.md").read_text()
    md_title = md.splitlines()[0]
    assert label in md_title and "cifar10_train" not in md_title, md_title
    assert "(paper Table 1)" not in md_title and "analogue" in md_title  # other images: said
    fig = saved["weights_sensitivity"]
    (ax,) = fig.axes
    assert ax.get_title() == label
    assert "cifar10_train" not in all_text(fig)
    assert "±" in ax.get_ylabel() and "Inception Score" in ax.get_ylabel()
    assert ticks(ax) == [f"{b} {p}" for b, p in zip(t.backbone_key, t.paper_label)]
    assert ax.get_legend() is None  # one entry (no paper values beside a folder): no legend
    assert "(paper Table 1)" not in suptitle(fig) and "analogue" in suptitle(fig)
    check_conventions(fig, categorical=[ax])
    from experiments import weights_sensitivity

    assert label in weights_sensitivity.headline(res.result)


def test_weights_sensitivity_figure_with_paper_values_keeps_its_legend():
    from experiments import weights_sensitivity

    table = pd.DataFrame(
        {
            "backbone_key": ["torchvision", "keras"],
            "paper_label": ["IV3 Torch", "IV3 Keras"],
            "dataset_key": ["cifar10_train"] * 2,
            "dataset_label": ["cifar10 train (50,000 images)"] * 2,
            "paper_dataset": ["cifar10_train"] * 2,
            "is_mean": [9.7, 10.8],
            "is_std": [0.15, 0.18],
            "paper_is_mean": [9.737, 10.852],
            "paper_is_std": [0.148, 0.181],
        }
    )
    fig = weights_sensitivity.figure(table)
    (ax,) = fig.axes
    assert ax.get_title() == "cifar10 train (50,000 images)"
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["measured", "paper"]
    assert "(paper Table 1)" in suptitle(fig)
    assert ticks(ax) == ["torchvision IV3 Torch", "keras IV3 Keras"]
    check_conventions(fig, categorical=[ax])
    close(fig)


# --------------------------------------------------------------------- finding: fid_sensitivity
def fid_table(kid) -> pd.DataFrame:
    keys = ["torchvision", "keras", "tf2015"]
    return pd.DataFrame(
        {
            "backbone_key": keys,
            "resize_variant": ["native"] * 3,
            "fid": [120.0, 150.0, 90.0],
            "kid_mean": kid,
            "is_mean": [3.0, 3.3, 2.7],
            "backbone": keys,
            "dataset": ["folder"] * 3,
            "dataset_label": ["folder samples (500 images)"] * 3,
            "reference_dataset": ["folder"] * 3,
            "reference_label": ["folder refs (300 images)"] * 3,
        }
    )


def test_fid_sensitivity_figure_draws_no_ratio_of_negative_kids_and_no_joined_categories():
    from experiments import fid_sensitivity

    # unbiased KID below zero for two networks: -0.004 / -0.0114 = 0.35 would mean nothing
    table = fid_table([-0.0114, -0.004, 0.02])
    fig = fid_sensitivity.figure(table)
    a1, a2 = fig.axes
    keys = list(table.backbone_key)
    assert ticks(a1) == keys and ticks(a2) == keys  # the categories, as bars / markers
    assert "FID" in a1.get_ylabel() and a1.get_xlabel() == "backbone"
    assert a1.get_legend() is None  # one resize variant: the y label says which
    assert "native" in a1.get_ylabel()
    by = {ln.get_label().split(" ")[0]: ln for ln in a2.get_lines() if ln.get_label()[0] != "_"}
    assert set(by) == {"fid", "kid_mean", "is_mean"}
    kid = np.asarray(by["kid_mean"].get_ydata(), dtype=float)
    assert np.isnan(kid[:2]).all()  # not 0.35, not 2.85: not defined
    assert kid[2] == pytest.approx(1.0)  # the only positive KID is its own base
    assert "(/ tf2015)" in by["kid_mean"].get_label()
    fid = np.asarray(by["fid"].get_ydata(), dtype=float)
    assert fid == pytest.approx(np.array([120.0, 150.0, 90.0]) / 120.0)
    note = " ".join(t.get_text() for t in a2.texts)
    assert "not defined" in note and "kid_mean" in note and "torchvision, keras" in note
    title = suptitle(fig)
    assert "folder samples (500 images)" in title and "folder refs (300 images)" in title
    check_conventions(fig, categorical=[a1, a2])
    close(fig)
    # the pairwise table: no % difference of two negative KIDs either
    pw = fid_sensitivity.pairwise(table).set_index(["backbone_a", "backbone_b"])
    assert math.isnan(pw.loc[("torchvision", "keras"), "kid_mean_diff_pct"])
    assert pw.loc[("torchvision", "keras"), "fid_diff_pct"] == pytest.approx(-20.0)


def test_fid_sensitivity_watermark_does_not_call_an_fid_chart_an_inception_score(tmp_path):
    """Passes once harness/results.py's banner says "not a real score" (issue 26, another part)."""
    from experiments import fid_sensitivity

    fig = fid_sensitivity.figure(fid_table([0.01, 0.02, 0.015]))
    results.save_figure(fig, tmp_path, "fid", random_weights=True)
    marks = [t.get_text() for t in fig.texts if "RANDOM WEIGHTS" in t.get_text()]
    assert marks, [t.get_text() for t in fig.texts]
    assert not any("Inception Score" in m for m in marks), marks


@needs_torch
def test_fid_sensitivity_smoke_run_titles_name_samples_and_reference(tmp_path, saved, tiny_net):
    a, b = tmp_path / "my_samples", tmp_path / "my_refs"
    write_pngs(a, n=16, seed=1)
    write_pngs(b, n=12, seed=2)
    res = run(
        "fid_sensitivity",
        tmp_path,
        *[f"~backbones.{k}" for k in ("tf2015", "tf2015_torch", "torchvision", "keras", "tfhub")],
        *tiny_net("tiny"),
        "dataset=folder",
        f"dataset.root={a}",
        "dataset@reference=folder",
        f"reference.root={b}",
        "resizes=[]",
        "kid.subset_size=auto",
        "n_splits=2",
    )
    t = res.table
    assert list(t.dataset_label) == ["folder my_samples (16 images)"]
    assert list(t.reference_label) == ["folder my_refs (12 images)"]
    fig = saved["fid_sensitivity"]
    title = suptitle(fig)
    assert "folder my_samples (16 images)" in title and "folder my_refs (12 images)" in title
    a1, a2 = fig.axes[:2]
    assert ticks(a1) == ["tiny"] and ticks(a2) == ["tiny"]
    check_conventions(fig, categorical=[a1, a2])


# ------------------------------------------------- item 7: every other experiment's figure
NET, IMAGES = "net_under_test", "folder my_imgs (40 images)"


def prov(n: int) -> dict:
    return {"backbone": [NET] * n, "dataset": ["folder"] * n, "dataset_label": [IMAGES] * n}


def test_beyond_imagenet_figure():
    from experiments import beyond_imagenet

    keys = ["cifar10_train", "noise"]
    labels = ["folder photos (40 images)", "noise (40 images)"]
    t = pd.DataFrame(
        {
            "backbone_key": ["tv", "tv"],
            "backbone": [NET, NET],
            "dataset_key": keys,
            "dataset": ["folder", "noise"],
            "dataset_label": labels,
            "h_y_given_x_bits": [4.0, 6.0],
            "paper_h_y_given_x_bits": [None, 6.512],
            "max_bits": [9.97, 9.97],
        }
    )
    fig = beyond_imagenet.figure(t)
    (ax,) = fig.axes
    assert ticks(ax) == labels  # what was loaded, not the config keys
    assert "cifar10_train" not in all_text(fig)
    assert "H(y|x)" in ax.get_ylabel() and "tv" in ax.get_title()
    check_conventions(fig, categorical=[ax])
    close(fig)


def test_compare_protocols_figure():
    from experiments import compare_protocols

    t = pd.DataFrame(
        {
            "protocol": ["openai", "torch_fidelity"],
            "is_mean": [3.0, 3.1],
            "is_std": [0.1, 0.2],
            "diff_vs_min_pct": [0.0, 3.33],
            **prov(2),
        }
    )
    fig = compare_protocols.figure(t)
    (ax,) = fig.axes
    assert ticks(ax) == list(t.protocol)
    assert "Inception Score" in ax.get_ylabel() and "±" in ax.get_ylabel()
    assert IMAGES in ax.get_title()
    check_conventions(fig, categorical=[ax])
    close(fig)


def test_implementation_vs_weights_figure():
    from experiments import implementation_vs_weights

    pairs = pd.DataFrame(
        {
            "pair": ["tf2015 vs torchvision", "keras vs torchvision"],
            "total_pct": [5.0, -2.0],
            "implementation_pct": [1.0, -1.0],
            "weights_pct": [3.0, -0.5],
            "remainder_pct": [1.0, -0.5],
            "dataset_label": [IMAGES] * 2,
        }
    )
    res = pd.DataFrame(
        {
            "resize": ["tf1_bilinear", "antialias"],
            "diff_vs_tf1_bilinear_pct": [0.0, 1.5],
            "reference_implementation": ["torchvision"] * 2,
        }
    )
    fig = implementation_vs_weights.figure(pairs, res)
    ax, ax2 = fig.axes
    assert ticks(ax, "y") == list(pairs.pair)
    assert ticks(ax2) == list(res.resize)
    assert "IS difference" in ax.get_xlabel() and "IS change" in ax2.get_ylabel()
    assert IMAGES in suptitle(fig) and "torchvision" in ax2.get_title()
    check_conventions(fig, categorical=[ax2])
    close(fig)


def test_memorization_figure():
    from experiments import memorization

    t = pd.DataFrame(
        {
            "generator": ["replays 10 memorised training images", "held-out images"],
            "is_mean": [3.0, 3.1],
            "is_std": [0.1, 0.1],
            "nn_dup_rate_vs_train": [1.0, 0.0],
            "backbone": [NET] * 2,
            "train_dataset_label": ["cifar10 train (50,000 images)"] * 2,
            "heldout_dataset_label": ["cifar10 test (10,000 images)"] * 2,
        }
    )
    fig = memorization.figure(t)
    ax, ax2 = fig.axes
    assert ticks(ax) == ["replays 10 memorised", "held-out images"]
    assert ax.get_ylabel() == "Inception Score" and "copy rate" in ax2.get_ylabel()
    title = ax.get_title()
    assert NET in title and "cifar10 train (50,000 images)" in title, title
    assert "cifar10 test (10,000 images)" in title
    assert "IS (mean ± std)" in [t.get_text() for t in ax.get_legend().get_texts()]
    check_conventions(fig, categorical=[ax, ax2])
    close(fig)


def test_metric_properties_figure_leaves_out_ratios_to_a_negative_base():
    from experiments import metric_properties

    strengths = ["s1", "s2"]
    rows = []
    for metric, base, vals in (
        ("fid", 10.0, [20.0, 40.0]),
        ("kid", -0.002, [0.01, 0.03]),  # uncorrupted KID below zero: no ratio
        ("precision", 0.8, [0.4, 0.0]),
    ):
        for s, v in zip(strengths, vals):
            rows.append(
                {"corruption": "blur", "strength": s, "metric": metric, "value": v}
                | {"uncorrupted": base, "seed": 0}
            )
    long = pd.DataFrame(rows)
    for k, v in {**prov(1), "reference_label": ["folder refs (30 images)"]}.items():
        long[k] = v[0]
    fig = metric_properties.figure(long, "blur")
    (ax,) = fig.axes
    assert ticks(ax) == ["none", *strengths]
    assert ax.get_xlabel() == "blur strength" and "uncorrupted" in ax.get_ylabel()
    title = flat(ax.get_title())
    assert NET in title and IMAGES in title and "folder refs (30 images)" in title
    lines = {ln.get_label(): ln for ln in ax.get_lines() if ln.get_label()[0] != "_"}
    assert set(lines) == {"fid", "precision"}  # KID over a negative base is not drawn ...
    assert list(lines["precision"].get_ydata()) == pytest.approx([1.0, 0.5, 0.0])
    assert "not defined" in " ".join(t.get_text() for t in ax.texts)  # ... and that is said
    assert "kid" in " ".join(t.get_text() for t in ax.texts)
    check_conventions(fig)
    close(fig)


def test_ordering_figure():
    from experiments import ordering

    per_split = pd.DataFrame(
        {
            "split_order": ["as_loaded"] * 2 + ["shuffled(seed=0)"] * 2,
            "split": [0, 1, 0, 1],
            "is_split": [2.0, 2.1, 3.0, 3.1],
        }
    )
    t = pd.DataFrame(
        {
            "split_order": ["as_loaded", "shuffled(seed=0)"],
            "is_mean": [2.05, 3.05],
            "is_std": [0.05, 0.05],
            **prov(2),
        }
    )
    fig = ordering.figure(per_split, t)
    ax, ax2 = fig.axes
    assert ticks(ax2) == list(t.split_order)
    assert "±" in ax2.get_ylabel() and ax.get_ylabel() == "IS of the split"
    assert f"{NET} on {IMAGES}" in suptitle(fig)
    check_conventions(fig, categorical=[ax2])
    close(fig)


def test_adversarial_curve_figure():
    from experiments import adversarial

    hist = pd.DataFrame(
        {
            "iteration": [0, 1, 2],
            "is_mean": [2.0, 5.0, 9.0],
            "is_1split": [2.1, 5.5, 9.5],
            "sg_nats": [0.7, 1.6, 2.2],
            "mean_target_prob": [0.0, 0.5, 0.9],
            "target_hit_rate": [0.0, 0.4, 1.0],
            "linf_pixels": [0.0, 1.0, 2.0],
        }
    )
    t = pd.DataFrame({"eps": [1.0], "eps_units": ["grey_levels"], **prov(1)})
    fig = adversarial.curve_figure(hist, 10, adversarial._curve_title(t))
    title = suptitle(fig)
    assert NET in title and IMAGES in title and "eps=1 grey_levels" in title
    assert fig.axes[0].get_ylabel() == "Inception Score"
    assert fig.axes[0].get_xlabel() == "FGSM iteration"
    check_conventions(fig)
    close(fig)


def test_toy_gaussian_figure():
    from experiments import toy_gaussian

    cfg = compose("toy_gaussian", ["toy.mc_samples=200"])
    df = toy_gaussian.compute_table(cfg.toy)
    fig = toy_gaussian.make_figure(cfg.toy, df)
    ax, axb = fig.axes[0], fig.axes[1]
    assert ticks(axb) == [g.replace("_", " ") for g in df.generator]
    assert axb.get_ylabel() == "Inception Score" and "toy" in ax.get_title().lower()
    check_conventions(fig, categorical=[axb])
    close(fig)


# ------------------------------------------------------------ item 7: the sanity report's figures
@needs_torch
def test_sanity_figures_show_the_report_and_name_network_and_images(tmp_path, saved, tiny_net):
    """A tiny full report (the tiny classifier as the chosen backbone and as one other backbone):
    each of its four figures is checked against report.json and the tables it draws."""
    import json

    from matplotlib.colors import to_rgba

    from harness.sanity import report as exp

    builder = next(o for o in tiny_net("x") if ".builder=" in o).split("=", 1)[1]

    def tiny(node: str, seed: int) -> list[str]:
        return [
            f"{node}.weights=random:{seed}",
            f"{node}.builder={builder}",
            f"{node}.input_size=8",
            f"{node}.resize=antialias",
        ]

    res = run(
        "sanity",
        tmp_path,
        "dataset=synthetic",
        "dataset.count=40",
        "n_splits=4",
        "backbone=torch_model",
        *tiny("backbone", 0),
        *[f"~other_backbones.{k}" for k in ("tf2015", "torchvision", "keras", "tfhub")],
        "+backbone@other_backbones.tiny_b=torch_model",
        *tiny("other_backbones.tiny_b", 1),
    )
    rep = json.loads((tmp_path / "sanity" / "report.json").read_text())
    assert (
        set(saved)
        == set(rep["figures"])
        == {
            "check3_order",
            "check4_splits",
            "check5_backbones",
            "check6_resize",
        }
    )
    net, images = rep["backbone"]["backbone"], "synthetic (40 images)"
    assert net == "torch_model" and rep["samples"]["dataset_label"] == images
    by, s = {c["id"]: c for c in rep["checks"]}, rep["summary"]
    for name, fig in saved.items():
        (ax,) = fig.axes
        title = flat(ax.get_title())
        assert title.startswith(f"check {name[5]}:") and f"{net} on {images}" in title, title
        assert "Inception Score" in ax.get_ylabel() or "IS" in ax.get_ylabel().split()
        marks = [t.get_text() for t in fig.texts if "WEIGHTS" in t.get_text()]
        assert marks == [results.RANDOM_WEIGHTS_BANNER], (name, marks)  # an IS figure: may say so
        check_conventions(fig, categorical=[ax] if name[5] in "56" else ())

    # check 3: one point per split actually used, as loaded and shuffled
    ax = saved["check3_order"].axes[0]
    d = by[3]["details"]
    lines = {ln.get_label(): ln for ln in ax.get_lines()}
    assert set(lines) == {"as loaded", "shuffled"} and ax.get_xlabel() == "split"
    assert ax.get_ylabel() == "IS of the split"
    for label, key in (
        ("as loaded", "split_scores_as_loaded"),
        ("shuffled", "split_scores_shuffled"),
    ):
        assert list(lines[label].get_ydata()) == pytest.approx(d[key])
        assert len(lines[label].get_ydata()) == s["n_splits"] == 4

    # check 4: the x ticks are the split counts swept (used, not asked), the reported one among them
    ax = saved["check4_splits"].axes[0]
    t = res.result.objects["splits"]
    assert ax.get_xlabel() == "number of splits" and ax.get_ylabel() == "Inception Score"
    assert ticks(ax) == [str(k) for k in t.n_splits]
    assert s["n_splits"] in list(t.n_splits)
    classic = max(ax.get_lines(), key=lambda ln: len(ln.get_xdata()))
    assert list(classic.get_xdata()) == list(t.n_splits)
    assert list(classic.get_ydata()) == pytest.approx(list(t.is_mean))
    at = dict(zip(t.n_splits, t.is_mean))
    assert at[1] == pytest.approx(by[4]["value"]["is_1_split"])
    assert at[s["n_splits"]] == pytest.approx(s["is_mean"])
    hline = next(ln for ln in ax.get_lines() if ln.get_label() == "exp S(G)")
    assert hline.get_ydata()[0] == pytest.approx(math.exp(s["sg_nats"]))
    assert [x.get_text() for x in ax.get_legend().get_texts()] == ["exp S(G)", "classic IS"]

    # checks 5 and 6: one bar per value of the check, the one used highlighted, spread as reported
    chosen = {"check5_backbones": net, "check6_resize": exp.chosen_resize(rep["backbone"])}
    for name, cid in (("check5_backbones", 5), ("check6_resize", 6)):
        ax = saved[name].axes[0]
        vals = {k: v for k, v in by[cid]["value"].items() if k != "spread_pct"}
        assert ticks(ax) == list(vals), name
        assert [p.get_height() for p in ax.patches] == pytest.approx(list(vals.values()))
        notes = [a.get_text() for a in ax.texts]
        assert notes == [f"{v:.4g}" for v in vals.values()]
        orange = [k for k, p in zip(vals, ax.patches) if p.get_facecolor() == to_rgba("tab:orange")]
        assert orange == [chosen[name]], (name, orange)
        assert f"spread {by[cid]['value']['spread_pct']:.2f}%" in ax.get_title()
        assert ax.get_xlabel().startswith("backbone" if cid == 5 else "resize method")
        assert ax.get_ylabel() == "Inception Score (axis not from 0)"
    assert list(by[5]["value"])[1:] == [net, "tiny_b"]
