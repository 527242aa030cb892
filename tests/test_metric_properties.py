"""Properties that hold by construction (issue 15), each checked against an independent
computation (scipy entropies, brute-force loops), and the experiment run offline."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from experiments import metric_properties as mp
from harness import detection

from .conftest import needs_torch

#: 120 synthetic samples against 120 others, random weights at the smallest input size
SYNTHETIC_120 = [
    "weights=random:0",
    "dataset=synthetic",
    "dataset.count=120",
    "dataset@reference=synthetic",
    "reference.count=120",
    "reference.seed=1",
    "n=null",
    "backbone.input_size=75",
]


def brute_is(p, n_splits):
    n, out = len(p), []
    for i in range(n_splits):
        part = p[i * n // n_splits : (i + 1) * n // n_splits]
        py = part.mean(0)
        out.append(math.exp(np.mean([stats.entropy(r, py) for r in part])))
    return float(np.mean(out))


def brute_sg(p):
    """S(G) = H(mean p) - mean H(p), nats, by scipy."""
    return float(stats.entropy(p.mean(0)) - np.mean([stats.entropy(r) for r in p]))


def test_collapse_to_one_per_class_leaves_is_and_sg_unchanged_when_classes_share_a_posterior():
    rng = np.random.default_rng(0)
    posterior = rng.dirichlet(np.ones(12) * 0.3, size=6)  # one posterior per class
    labels = np.repeat(np.arange(6), 20)[rng.permutation(120)]
    p = posterior[labels]
    idx = mp.collapse_rows(labels, 1, np.random.default_rng(1))
    assert len(np.unique(idx)) == 6 and (labels[idx] == labels).all()  # one image per class
    assert brute_is(p[idx], 10) == brute_is(p, 10)  # exactly: the rows are identical
    assert brute_sg(p[idx]) == brute_sg(p)


def test_dropping_to_m_classes_bounds_is_by_m_on_one_hot_posteriors():
    labels = np.repeat(np.arange(10), 30)
    p = np.eye(10)[labels]
    for m in (5, 2, 1):
        idx = mp.drop_rows(labels, m, np.random.default_rng(m))
        assert len(idx) == len(labels) and len(np.unique(labels[idx])) <= m
        assert brute_is(p[idx], 10) <= m + 1e-12
        assert math.exp(brute_sg(p[idx])) <= m + 1e-12


def test_duplicated_rows_leave_sg_unchanged():
    from harness import scores

    p = np.random.default_rng(2).dirichlet(np.ones(20) * 0.5, size=50)
    dup = np.repeat(p, 4, axis=0)
    assert brute_sg(dup) == pytest.approx(brute_sg(p), abs=1e-12)
    assert scores.improved_score(dup).nats == pytest.approx(brute_sg(p), abs=1e-12)


def test_pixel_corruptions_do_what_they_say():
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (6, 16, 16, 3), dtype=np.uint8)
    s = mp.shift_images(x, 2)
    np.testing.assert_array_equal(s[:, 2:, 2:], x[:, :-2, :-2])
    np.testing.assert_array_equal(s[:, 0, 2:], x[:, 0, :-2])  # edge replicated
    n = mp.noise_images(x, 0.5, np.random.default_rng(1))
    assert (np.all(n == x, axis=(1, 2, 3))).sum() == 3
    ref = np.zeros_like(x)
    j = mp.jitter_copies(x, ref, 1.0, np.random.default_rng(2))
    assert j.max() <= 2 and not np.array_equal(j, ref) or j.max() == 0
    assert mp.jpeg_images(x, 30).shape == x.shape and mp.blur_images(x, 1.0).shape == x.shape
    assert mp.rotate_images(x, 0).shape == x.shape


@needs_torch
def test_experiment_offline_collapse_moves_fid_and_recall_beyond_their_noise(tmp_path):
    from harness import api

    res = api.run_experiment(
        "metric_properties",
        [
            *SYNTHETIC_120,
            "seeds=[0,1,2]",
            "corruptions.intra_class_collapse=[10,5,2,1]",
            # the other corruptions off: this test is about collapse against the noise floor
            *(
                f"corruptions.{name}=[]"
                for name in ("mode_dropping", "memorization", "memorization_jittered", "noise")
                + ("shift", "rotate", "jpeg", "blur", "sample_size")
            ),
            "kid.subset_size=50",
            "progress=false",
        ],
        run_dir=tmp_path / "run",
    )
    long = res.table
    assert {"corruption", "strength", "metric", "value", "relative_change"} <= set(long.columns)
    assert long.weights.iloc[0] == "random:0" and res.result.random_weights
    # the rule recomputed from the raw rows, independently of detects(): set noise =
    # sqrt(mean((A - B)^2) / 2) over the halvings, combined with the std (ddof 1) of the k=1
    # values over the seeds; effect = mean over seeds at k=1 - mean of the seeded uncorrupted
    # rows; detected when |effect| > 3 x the combined noise
    halves = long[long.corruption == mp.NOISE]
    assert len(halves) == 3 * 2 * 2 * long.metric.nunique()  # seeds x halvings x (A, B)
    detail = res.result.tables["detects"].set_index("metric")
    for metric, g in halves.groupby("metric"):
        a = g[g.strength.str.startswith("half A")].sort_values(["seed", "strength"]).value
        b = g[g.strength.str.startswith("half B")].sort_values(["seed", "strength"]).value
        noise = math.sqrt(np.mean((a.to_numpy() - b.to_numpy()) ** 2) / 2)
        rows = long[long.metric == metric]
        base = rows[rows.corruption == mp.UNCORRUPTED].value
        k1 = rows[(rows.corruption == "intra_class_collapse") & (rows.strength == "k=1")].value
        effect = k1.mean() - base.mean()
        total = math.sqrt(noise**2 + np.var(k1.to_numpy(), ddof=1))
        got = detail.loc[metric]
        assert got.set_noise_std == pytest.approx(noise, rel=1e-12, abs=1e-15)
        assert got.noise_std == pytest.approx(total, rel=1e-12, abs=1e-15)
        assert got.change_at_strongest == pytest.approx(effect, rel=1e-12, abs=1e-15)
        assert got.detects == (abs(effect) > 3 * total)
    for metric in ("fid", "recall"):
        assert detail.loc[metric, "detects"] and detail.loc[metric, "direction"] == "worse"
    # 120 samples of 3 synthetic classes, one image each: every sample has 39 exact twins
    assert detail.loc["recall", "degenerate"].startswith("100% of the samples have >= 3")
    assert pd.isna(detail.loc["fid", "degenerate"])
    grid = pd.read_csv(tmp_path / "run" / "detects.csv").set_index("metric")
    assert grid.loc["recall", "intra_class_collapse"] == "yes, worse (degenerate)"
    assert grid.loc["fid", "intra_class_collapse"] == "yes, worse"
    assert (tmp_path / "run" / "metric_properties_intra_class_collapse.png").exists()
    text = (tmp_path / "run" / "detects.md").read_text()
    assert "detects = at the strongest corruption" in text
    assert detection.rule_power(3.0, 6).text() in text  # 3 seeds x 2 halvings
    # sample efficiency: k=1 re-scored on subsets of the configured sizes (none here: [])
    assert not (tmp_path / "run" / "sample_efficiency.csv").exists()


@pytest.mark.parametrize(
    "override, match",
    [
        (
            "corruptions.intra_class_collapse=[a]",
            r"corruptions.intra_class_collapse\[0\] must be an integer >= 1, got 'a'",
        ),
        ("corruptions.noise=[1.5]", r"corruptions.noise\[0\] must be a number > 0 and <= 1"),
        ("corruptions.jpeg=[0]", r"corruptions.jpeg\[0\] must be an integer from 1 to 100"),
        ("seeds=[]", "seeds must be a non-empty list"),
    ],
)
def test_bad_strengths_are_one_line_errors_before_any_pass(override, match):
    """Refused by the schema when the config is composed, before any input is read."""
    from harness import api
    from harness.errors import ConfigError

    with pytest.raises(ConfigError, match=match) as e:
        api.compose("metric_properties", ["weights=random:0", override])
    assert "\n" not in str(e.value)


@needs_torch
def test_extra_metrics_respond_to_copies_of_the_reference(tmp_path):
    """Issue 27 in metric_properties: IS_inf / FID_inf (with their standard errors), Xu et al.'s
    metrics, C_T and authenticity are rows of the table; replacing every sample by a copy of a
    reference image makes each copy inauthentic (its nearest real image at distance 0), drives
    C_T below its uncorrupted value (half the copies are of C_T's training half) and the 1-NN
    accuracy far below 0.5 (each copy's nearest neighbour is its twin of the other label)."""
    from harness import api

    overrides = [
        *SYNTHETIC_120,
        "seeds=[0]",
        "corruptions.memorization=[1.0]",
        *(
            f"corruptions.{name}=[]"
            for name in ("intra_class_collapse", "mode_dropping", "memorization_jittered")
            + ("noise", "shift", "rotate", "jpeg", "blur")
        ),
        "corruptions.sample_size=[12]",  # too small for 15 extrapolation sizes: n/a
        "kid.subset_size=10",
        "progress=false",
    ]
    long = api.run_experiment("metric_properties", overrides, run_dir=tmp_path / "run").table
    assert set(mp.metric_set.DEFAULT_FAMILIES) <= set(long.metric)
    mem = long[long.corruption == "memorization"].set_index("metric")
    assert mem.loc["authenticity", "value"] == 0.0
    assert mem.loc["authenticity", "uncorrupted"] > 0.5
    assert mem.loc["ct", "value"] < mem.loc["ct", "uncorrupted"] - 2
    # every copy's nearest other row is a real twin (ties: real rows first): fake accuracy 0;
    # a real row loses whenever it was copied: the copies are 120 draws from the seed's copied
    # half (60 rows), so an expected 1 - (59/60)^120 = 86% of that half, 43% of the reference:
    # accuracy ~ (0 + 0.57) / 2 = 0.28
    assert mem.loc["one_nn_accuracy", "detail"].endswith("fake 0.0000")
    assert mem.loc["one_nn_accuracy", "value"] < 0.32
    assert np.isfinite(mem.loc[["is_inf", "fid_inf"], "stderr"]).all()
    assert mem.loc["w1", "detail"] == "exact (POT emd2)" and "sigma=" in mem.loc["mmd2", "detail"]
    small = long[long.corruption == "sample_size"].set_index("metric")
    assert np.isnan(small.loc["fid_inf", "value"])
    assert small.loc["fid_inf", "detail"].startswith("not computed: count=15")
    grid = pd.read_csv(tmp_path / "run" / "detects.csv", keep_default_na=False)
    grid = grid.set_index("metric")
    assert grid.loc["fid_inf", "sample_size"] == "n/a"
    # memorization judged by its contrast (against the copied reference half - against the
    # other): copies are inauthentic against their own half only; IS has no reference, its
    # contrast is exactly 0; FID *improves* against the half it copies
    assert grid.loc["authenticity", "memorization"] == "yes, worse"
    assert grid.loc["is_mean", "memorization"] == "no"
    assert grid.loc["fid", "memorization"] == "yes, better"
    contrast = pd.read_csv(tmp_path / "run" / "memorization_contrast.csv")
    is_rows = contrast[contrast.metric == "is_mean"].pivot_table(
        index=["corruption", "strength", "seed", "halving"], columns="against", values="value"
    )
    assert (is_rows["copied half"] == is_rows["other half"]).all()
    fid = contrast[(contrast.metric == "fid") & (contrast.corruption == "memorization")]
    fid = fid.set_index("against").value
    assert fid["copied half"] < fid["other half"]
    assert long.extra_metrics.iloc[0] == ",".join(mp.metric_set.DEFAULT_FAMILIES)
    assert long.extrapolation_count.iloc[0] == 15 and long.survey_mode_score_form.iloc[0] == "xu"
    # cost: each metric's seconds at the configured N (120 against 120) and per configuration
    cost = pd.read_csv(tmp_path / "run" / "cost.csv").set_index("metric")
    assert set(cost.index) == set(long.metric) and (cost.seconds_at_n > 0).all()
    # rows: the uncorrupted set, 2 halvings x 2 halves, memorization, sample_size
    assert (cost.n == 120).all() and (cost.configurations == 7).all()
    assert cost.loc["recall", "seconds_at_n"] == cost.loc["precision", "seconds_at_n"]
    # extra_metrics=[]: the metrics before issue 27 only (the same values), nothing else
    few = api.run_experiment(
        "metric_properties", [*overrides, "extra_metrics=[]"], run_dir=tmp_path / "few"
    ).table
    assert set(few.metric) == set(mp.METRICS) - set(mp.metric_set.FAMILIES)
    # cmmd by name: the authors' estimator on these features, against feature_metrics.cmmd
    # (itself tested pair by pair, tests/test_cmmd.py) on the rows the run used
    one = api.run_experiment(
        "metric_properties",
        [*overrides, "extra_metrics=[cmmd]", "survey.cmmd_estimator=unbiased"],
        run_dir=tmp_path / "cmmd",
    ).table
    cm = one[(one.metric == "cmmd") & (one.corruption == mp.UNCORRUPTED)]
    assert len(cm) == 1 and cm.detail.iloc[0] == "estimator=unbiased"
    assert one.survey_cmmd_estimator.iloc[0] == "unbiased"
    both = long.merge(few, on=["corruption", "strength", "seed", "metric"], suffixes=("", "_few"))
    assert len(both) == len(few) and (both.value == both.value_few).all()


@needs_torch
def test_every_corruption_switched_off_still_writes_the_uncorrupted_rows(tmp_path):
    from harness import api

    res = api.run_experiment(
        "metric_properties",
        [
            *SYNTHETIC_120,
            "seeds=[0]",
            *(f"corruptions.{c}=[]" for c in mp.STRENGTHS),
            "extra_metrics=[]",
            "kid.subset_size=10",
            "progress=false",
        ],
        run_dir=tmp_path / "run",
    ).result
    assert set(res.table.corruption) == {mp.UNCORRUPTED, mp.NOISE}
    assert res.tables["detects"].empty and list(res.tables["detects"]) == mp.DETECT_COLUMNS
    props = res.tables["properties"].set_index("metric")
    assert props.loc["is_mean", "disagrees_with_xu"] == "not measured here"
