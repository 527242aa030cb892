"""``dataset=digits``: scikit-learn's bundled 8x8 digits as harness images (issue 25).

The scaling is checked against an independent float computation, the split against its rule
re-implemented here, and the fingerprint against everything that identifies the images.
"""

from __future__ import annotations

import numpy as np
import pytest

from harness import config, data
from harness.api import compose
from harness.data import digits as digits_mod
from harness.errors import ConfigError

sklearn_datasets = pytest.importorskip("sklearn.datasets")


@pytest.fixture(scope="module")
def raw():
    d = sklearn_datasets.load_digits()
    return d.images, np.asarray(d.target)


def test_scaling_is_exact_and_grey_is_replicated(raw):
    images, _ = raw
    x = data.load_source("digits", split="all").read_all()
    assert x.dtype == np.uint8 and x.shape == (1797, 8, 8, 3)
    assert (x[..., 0] == x[..., 1]).all() and (x[..., 0] == x[..., 2]).all()
    # independent: float arithmetic, Python's round (half to even) on every distinct value
    table = {v: round(v * 255 / 16) for v in range(17)}
    assert table[0] == 0 and table[16] == 255 and table[8] == 128
    expected = np.vectorize(lambda v: table[int(v)])(images).astype(np.uint8)
    np.testing.assert_array_equal(x[..., 0], expected)
    assert set(np.unique(x)) <= set(table.values())


def _rule(labels: np.ndarray) -> tuple:
    """The documented split rule, written again from its description."""
    rng = np.random.default_rng(0)
    test = []
    for c in range(10):
        idx = np.where(labels == c)[0]
        perm = rng.permutation(len(idx))
        test.extend(idx[perm[: int(round(0.3 * len(idx)))]].tolist())
    test = sorted(test)
    train = sorted(set(range(len(labels))) - set(test))
    return np.array(train), np.array(test)


def test_split_is_stratified_disjoint_complete_fixed_and_recorded(raw):
    _, target = raw
    train, test = (
        data.load_source("digits", split="train"),
        data.load_source("digits", split="test"),
    )
    tr_idx, te_idx = train.original_indices, test.original_indices
    want_tr, want_te = _rule(target)
    np.testing.assert_array_equal(tr_idx, want_tr)
    np.testing.assert_array_equal(te_idx, want_te)
    assert len(tr_idx) + len(te_idx) == 1797 and len(tr_idx) == 1258 and len(te_idx) == 539
    assert not set(tr_idx) & set(te_idx)
    assert sorted({*tr_idx, *te_idx}) == list(range(1797))
    assert (np.diff(tr_idx) > 0).all() and (np.diff(te_idx) > 0).all()  # original order
    # stratified: every class has round(30%) of its images in test
    per_class = np.bincount(target, minlength=10)
    test_counts = np.bincount(test.labels, minlength=10)
    train_counts = np.bincount(train.labels, minlength=10)
    assert test_counts.tolist() == [int(round(0.3 * n)) for n in per_class]
    assert (train_counts + test_counts == per_class).all()
    # labels kept, and they are the images' own
    np.testing.assert_array_equal(test.labels, target[te_idx])
    # the same on every call
    again = data.load_source("digits", split="test")
    np.testing.assert_array_equal(again.original_indices, te_idx)
    np.testing.assert_array_equal(again.read_all(), test.read_all())
    p = test.provenance()
    assert "stratified per class" in p["split_rule"] and "default_rng(0)" in p["split_rule"]
    assert "sorted by original index" in p["split_rule"]
    assert p["split_counts"] == {"train": 1258, "test": 539, "all": 1797}
    assert p["class_counts"] == {str(c): int(n) for c, n in enumerate(test_counts)}
    assert p["class_names"] == [str(c) for c in range(10)]
    assert p["scaling"].startswith("uint8 = round(v * 255 / 16)")
    assert "3 equal channels" in p["channels"]
    assert p["scikit_learn"] == digits_mod._raw()[4] and len(p["raw_sha256"]) == 64


def test_all_keeps_the_original_order(raw):
    _, target = raw
    src = data.load_source("digits", split="all")
    np.testing.assert_array_equal(src.original_indices, np.arange(1797))
    np.testing.assert_array_equal(src.labels, target)


def test_upscale_is_exact_pixel_repetition():
    one = data.load_source("digits", split="test", n=20).read_all()
    four = data.load_source("digits", split="test", n=20, upscale=4).read_all()
    assert four.shape == (20, 32, 32, 3)
    np.testing.assert_array_equal(four, np.kron(one, np.ones((1, 4, 4, 1), np.uint8)))
    src = data.load_source("digits", split="test", upscale=4)
    assert src.provenance()["resolution"] == [32, 32] and src.provenance()["upscale"] == 4


def test_fingerprint_names_split_upscale_selection_and_the_raw_data(monkeypatch):
    fp = {
        s: data.load_source("digits", split=s).fingerprint() for s in digits_mod.SPLITS
    }  # three splits
    assert len(set(fp.values())) == 3
    assert data.load_source("digits", split="train").fingerprint() == fp["train"]  # stable
    assert data.load_source("digits", upscale=2).fingerprint() != fp["train"]
    assert data.load_source("digits", n=100).fingerprint() != fp["train"]
    assert data.load_source("digits", order="shuffled", order_seed=1).fingerprint() != fp["train"]
    ident = data.load_source("digits")._identity()
    assert {"raw_sha256", "labels_sha256", "scikit_learn", "scaling", "split_rule"} <= set(ident)
    # a changed bundle (other raw bytes, or another scikit-learn) changes the fingerprint
    grey, target, raw_sha, labels_sha, version = digits_mod._raw()
    monkeypatch.setattr(digits_mod, "_raw", lambda: (grey, target, "0" * 64, labels_sha, version))
    assert data.load_source("digits").fingerprint() != fp["train"]
    monkeypatch.setattr(
        digits_mod, "_raw", lambda: (grey, target, raw_sha, labels_sha, version + ".post1")
    )
    assert data.load_source("digits").fingerprint() != fp["train"]


def test_bad_values_are_one_line_config_errors():
    with pytest.raises(ConfigError) as exc:
        data.load_source("digits", split="bogus")
    msg = str(exc.value)
    assert "\n" not in msg and "split" in msg and "train, test, all" in msg
    for params, key in [({"upscale": 0}, "upscale"), ({"upscale": 1.5}, "upscale")]:
        with pytest.raises(ConfigError, match=key):
            data.load_source("digits", **params)
    with pytest.raises(ConfigError, match="unknown parameter 'splt'.*did you mean 'split'"):
        data.load_source("digits", splt="test")


def test_the_dataset_config_composes_and_every_key_refuses_wrong_values():
    from .test_settings import _probe

    values = config.resolved(compose("sanity", ["dataset=digits", "dataset.split=test"]))
    assert values["dataset"]["name"] == "digits" and values["dataset"]["split"] == "test"
    _probe("sanity", values, only="dataset.")
    src = data.from_config(values["dataset"])
    assert len(src) == 539 and src.labels is not None and src.label_space == "digits10"
