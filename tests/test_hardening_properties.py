"""metric_properties and fid_sensitivity hardening: per-row seeds in the table, derived pixels
keyed by everything they depend on (verified, never touched with the cache off), strengths the
data cannot take refused before any network pass, seeds in range, ``kid.subset_size=auto``.

Every run is tiny (random weights, synthetic sets of a few dozen images, 75 px input) and shares
the session's cache directory (random weights are made once); each test uses its own dataset seed
so its derived pixels are its own.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from experiments import metric_properties as mp
from harness.errors import ConfigError

from .conftest import needs_torch

NO_CORRUPTIONS = [
    f"corruptions.{name}=[]"
    for name in (
        "intra_class_collapse",
        "mode_dropping",
        "memorization",
        "memorization_jittered",
        "noise",
        "shift",
        "rotate",
        "jpeg",
        "blur",
        "sample_size",
    )
]


def small(
    data_seed: int, count: int = 12, ref_count: int = 8, ref_seed: int = 1, dataset="synthetic"
) -> list[str]:
    """A tiny metric_properties run with every corruption off (tests switch on what they need)."""
    return [
        "weights=random:0",
        f"dataset={dataset}",
        f"dataset.count={count}",
        f"dataset.seed={data_seed}",
        "dataset@reference=synthetic",
        f"reference.count={ref_count}",
        f"reference.seed={ref_seed}",
        "n=null",
        "backbone.input_size=75",
        "seeds=[0]",
        "kid.subset_size=4",
        "kid.subsets=3",
        "progress=false",
        *NO_CORRUPTIONS,
    ]


def run_mp(overrides):
    """The experiment's numbers (``compute``: no tables or figures written)."""
    from harness import api

    return mp.compute(api.compose("metric_properties", overrides))


def corruption_dir() -> Path:
    return Path(os.environ["INCEPTION_NOTE_CACHE"]) / "corruptions"


def listing(d: Path) -> dict:
    """Every file under ``d`` with its size and mtime (what a read-only run must leave alone)."""
    if not d.exists():
        return {}
    return {
        str(p.relative_to(d)): (p.stat().st_size, p.stat().st_mtime_ns)
        for p in d.rglob("*")
        if p.is_file()
    }


def rows(res, corruption):
    t = res.table
    return t[t.corruption == corruption].set_index(["strength", "seed", "metric"]).value


def tamper(paths):
    """Overwrite each pixel file with other pixels of the same shape and dtype."""
    for p in paths:
        arr = np.load(p)
        np.save(p, (255 - arr).astype(arr.dtype))


# ---------------------------------------------------------------- 1: per-row seeds
@needs_torch
def test_table_keeps_each_rows_seed_and_records_the_run_seed_apart(tmp_path):
    from harness import api

    api.run_experiment(
        "metric_properties",
        [*small(31, count=16), "seeds=[0,1,2]", "corruptions.sample_size=[8]", "seed=7"],
        run_dir=tmp_path / "run",
    )
    t = pd.read_csv(tmp_path / "run" / "table.csv")
    for corruption in (mp.NOISE, "sample_size"):
        assert set(t[t.corruption == corruption].seed) == {0, 1, 2}, corruption
    # one row per (corruption, strength, seed, metric): the seed tells the repeats apart
    assert not t.duplicated(["corruption", "strength", "seed", "metric"]).any()
    assert set(t.run_seed) == {7}
    # the three subsets really are different draws (so a shared label would hide real rows)
    fid = t[(t.corruption == "sample_size") & (t.metric == "fid")].value
    assert fid.nunique() == 3


# ---------------------------------------------------------------- 2: derived pixels
@needs_torch
def test_jittered_copies_follow_the_reference_set_not_a_stale_cache_entry():
    on = [*small(41), "corruptions.memorization_jittered=[0.5]"]
    a = run_mp([*on, "reference.seed=11"])
    b = run_mp([*on, "reference.seed=12"])
    fresh = run_mp([*on, "reference.seed=12", "cache.enabled=false"])
    ja, jb = rows(a, "memorization_jittered"), rows(b, "memorization_jittered")
    jf = rows(fresh, "memorization_jittered")
    # IS and S(G) see only the samples: other copied reference images give other values
    for metric in ("is_mean", "sg_nats"):
        assert ja.xs(metric, level="metric").iloc[0] != jb.xs(metric, level="metric").iloc[0]
    # with the cache: the same numbers as computed from scratch without it
    pd.testing.assert_series_equal(jb, jf, rtol=1e-12, atol=0)


@needs_torch
def test_a_cached_pixel_file_that_fails_its_check_is_recomputed():
    on = [*small(51), "corruptions.memorization_jittered=[0.5]", "corruptions.blur=[1.0]"]
    before = set(listing(corruption_dir()))
    first = run_mp(on)
    new = [corruption_dir() / p for p in set(listing(corruption_dir())) - before]
    npys = [p for p in new if p.suffix == ".npy"]
    assert len(npys) == 2  # one file per derived pixel set
    tamper(npys)
    with pytest.warns(UserWarning, match="fail their check"):
        again = run_mp(on)
    for corruption in ("memorization_jittered", "blur"):
        pd.testing.assert_series_equal(
            rows(again, corruption), rows(first, corruption), rtol=1e-12, atol=0
        )
    # the bad files were moved aside (not deleted) and good ones written in their place
    assert all(p.exists() for p in npys)
    assert len(list((corruption_dir() / "bad").glob("*.npy.*"))) >= 2


@needs_torch
def test_cache_disabled_neither_reads_nor_writes_derived_pixels():
    on = [*small(61), "corruptions.memorization_jittered=[0.5]", "corruptions.noise=[0.5]"]
    before = set(listing(corruption_dir()))
    cached = run_mp(on)
    new = [corruption_dir() / p for p in set(listing(corruption_dir())) - before]
    tamper([p for p in new if p.suffix == ".npy"])
    snapshot = listing(corruption_dir())
    off = run_mp([*on, "cache.enabled=false"])
    assert listing(corruption_dir()) == snapshot  # nothing written, moved or touched
    for corruption in ("memorization_jittered", "noise"):  # and the tampered files not read
        pd.testing.assert_series_equal(
            rows(off, corruption), rows(cached, corruption), rtol=1e-12, atol=0
        )


# ---------------------------------------------------------------- 3: strengths the data cannot take
@needs_torch
@pytest.mark.parametrize(
    "override, match",
    [
        # 10 classes (synthetic families) of 3 images each, 30 samples
        ("corruptions.mode_dropping=[2,11]", r"mode_dropping has 11, .*10 classes.*\[1, 10\]"),
        ("corruptions.intra_class_collapse=[4]", r"intra_class_collapse has 4, .*\[1, 3\]"),
        ("corruptions.sample_size=[10,31]", r"sample_size has 31, .*30 samples.*\[2, 30\]"),
        # 0.01 x 30 rounds to no replaced image: a label without a corruption
        ("corruptions.memorization=[0.01]", r"memorization has 0.01, .*replaces no image"),
        ("corruptions.noise=[0.5,0.015]", r"noise has 0.015, .*0 or in \(0.01667, 1\]"),
    ],
)
def test_strengths_the_labelled_data_cannot_take_fail_before_any_pass(monkeypatch, override, match):
    def no_pass(*a, **k):
        raise AssertionError("a network pass ran before the strengths were checked")

    monkeypatch.setattr(mp, "outputs", no_pass)
    with pytest.raises(ConfigError, match=match) as e:
        run_mp([*small(71, count=30), override])
    assert "\n" not in str(e.value)


@needs_torch
def test_mode_dropping_beyond_the_predicted_classes_fails_after_the_base_pass_only(
    monkeypatch,
):
    passes = []
    real = mp.outputs

    def counted(cfg, net, source, features=False, label=""):
        passes.append(label)
        if len(passes) > 1:
            raise AssertionError(f"a further pass ({label}) ran before the strengths were checked")
        return real(cfg, net, source, features=features, label=label)

    monkeypatch.setattr(mp, "outputs", counted)
    # noise images carry no labels: classes are the backbone's predictions (at most 12 here)
    overrides = [*small(81, dataset="noise"), "corruptions.mode_dropping=[13]"]
    with pytest.raises(ConfigError, match=r"mode_dropping has 13, .*classes predicted by") as e:
        run_mp(overrides)
    assert "\n" not in str(e.value) and passes == ["base set"]


def test_applicable_strengths_pass_at_their_limits_and_with_the_default_config():
    from harness import api

    labels = np.repeat(np.arange(10), 1000)  # CIFAR-10 train's first 10,000: ~1,000 per class
    cfg = api.compose("metric_properties", ["weights=random:0"])
    mp.check_fits(cfg.corruptions, 10000, labels)  # the defaults: no error
    # the limits themselves are applicable: all classes, the largest class, all samples
    limits = {"mode_dropping": [10], "intra_class_collapse": [7], "sample_size": [30]}
    uneven = np.array([0] * 7 + [1] * 3 + list(range(2, 10)) * 2 + [9] * 4)
    assert len(uneven) == 30 and np.bincount(uneven).max() == 7
    mp.check_fits(limits, 30, uneven)
    with pytest.raises(ConfigError, match=r"intra_class_collapse has 8, .*\[1, 7\]"):
        mp.check_fits({"intra_class_collapse": [8]}, 30, uneven)


# ---------------------------------------------------------------- 4: seeds and kid.subset_size=auto
@pytest.mark.parametrize("seeds", ["[-1]", "[0,4294967296]"])
def test_seeds_outside_numpys_range_are_one_line_errors(seeds):
    from harness import api

    try:
        cfg = api.compose("metric_properties", ["weights=random:0", f"seeds={seeds}"])
    except ConfigError as e:  # refused already by the config's validation: equally fine
        assert "seeds" in str(e) and "\n" not in str(e)
        return
    with pytest.raises(ConfigError, match=r"seeds has .*\[0, 4294967295\]") as e:
        mp.check_settings(cfg)
    assert "\n" not in str(e.value)


@needs_torch
def test_metric_properties_kid_subset_size_auto_resolves_per_row_and_is_recorded():
    res = run_mp(
        [
            *small(91, count=16, ref_count=10),
            "kid.subset_size=auto",
            "corruptions.sample_size=[6]",
            "corruptions.memorization=[0.5]",
        ],
    )
    t = res.table
    size = t.groupby("corruption").kid_subset_size.unique().map(sorted)
    # min(1000, N samples, N reference): halves hold 8, the subset 6, a full set 16 (ref 10)
    assert size[mp.NOISE] == [8] and size["sample_size"] == [6] and size["memorization"] == [10]
    assert set(t.kid_subset_size_setting) == {"auto"}
    assert np.isfinite(t[t.metric == "kid"].value).all()


@needs_torch
def test_fid_sensitivity_kid_subset_size_auto_matches_kid_at_the_smaller_set():
    from experiments import fid_sensitivity as fs
    from harness import api, backbones, data
    from harness import feature_metrics as fm

    cfg = api.compose(
        "fid_sensitivity",
        [
            "weights=random:0",
            "~backbones.tf2015",
            "~backbones.torchvision",
            "~backbones.keras",
            "~backbones.tfhub",
            "backbones.tf2015_torch.input_size=75",
            "resizes=[]",
            "dataset=synthetic",
            "dataset.count=10",
            "dataset@reference=synthetic",
            "reference.count=7",
            "reference.seed=5",
            "kid.subset_size=auto",
            "kid.subsets=4",
            "progress=false",
        ],
    )
    row = fs.compute(cfg).table.iloc[0]
    assert row.kid_subset_size == 7 and row.kid_subset_size_setting == "auto"
    # independent: features straight from the backbone, KID at min(1000, 10, 7) = 7
    net = backbones.load_backbone("tf2015_torch", weights="random:0", input_size=75)
    fs = net.features(data.load_source("synthetic", count=10).read_all())
    fr = net.features(data.load_source("synthetic", count=7, seed=5).read_all())
    want = fm.kid(fs, fr, 4, 7, 2020)
    assert row.kid_mean == pytest.approx(want.mean, rel=1e-6)


@pytest.mark.parametrize("seed", [-1, 2**32])
def test_fid_sensitivity_kid_seed_out_of_range_is_refused_before_any_input(tmp_path, seed):
    from harness import api

    # the default datasets are absent here: the seed must be refused before they are read
    with pytest.raises(ConfigError, match="kid.seed") as e:
        api.run_experiment(
            "fid_sensitivity",
            ["weights=random:0", f"kid.seed={seed}", "progress=false"],
            run_dir=tmp_path / "run",
        )
    assert "\n" not in str(e.value)
