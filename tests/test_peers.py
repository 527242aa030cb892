"""Parity with the peers' own installed code (issue 13): torch-fidelity, torchmetrics,
pytorch-fid and TF-GAN's scoring function.

The 2015 network with random weights and *non-trivial* BatchNorm scales (a graph built with
``scale_after_normalization=True``, which the original graph does not use and torch-fidelity's
converter ignores) is exported with :func:`harness.export.export_2015_weights` into the peers'
state-dict layout and loaded into their classes; the same uint8 images go through both.  The
IS parity runs ``+experiment=compare_protocols`` as a user would (``weights=random:0``) and
recomputes each preset's row with the peer library.  Nothing of the peers is copied: their
installed code is called.
"""

from __future__ import annotations

import importlib.util
import sys
import types
from pathlib import Path

import numpy as np
import pytest

from .conftest import has, needs_tf, needs_torch
from .fixtures import write_pngs

pytestmark = [needs_torch, needs_tf]


def rel(a, b) -> float:
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.abs(a - b).max() / np.abs(b).max())


@pytest.fixture(scope="module")
def scaled_graph(tmp_path_factory):
    """A random 2015-style graph whose BatchNorm applies gamma (uniform 0.6..1.5) and beta."""
    from harness.backbones.porting import to_1008_layout
    from harness.backbones.random_init import random_iv3_state
    from harness.backbones.tf2015_graph import build_graphdef

    sd = dict(random_iv3_state(5, 1008))
    rng = np.random.default_rng(5)
    for k in list(sd):
        if k.endswith(".bn.weight"):
            sd[k] = rng.uniform(0.6, 1.5, sd[k].shape).astype(np.float32)
        elif k.endswith(".bn.bias"):
            sd[k] = rng.normal(0, 0.05, sd[k].shape).astype(np.float32)
    # a trained network's logits are O(10); the canonical random fc gives O(500), where float32
    # noise of ~1e-6 between two implementations is amplified by exp() into the IS
    sd["fc.weight"] = sd["fc.weight"] * np.float32(0.005)
    pb = tmp_path_factory.mktemp("peers") / "classify_image_graph_def.pb"
    gd = build_graphdef(to_1008_layout(sd), scale_after_normalization=True)
    pb.write_bytes(gd.SerializeToString())
    return pb


@pytest.fixture(scope="module")
def exported(scaled_graph, tmp_path_factory):
    from harness.export import export_2015_weights

    return export_2015_weights(tmp_path_factory.mktemp("exp") / "w.pth", f"file:{scaled_graph}")


def _images(n, size, seed=0):
    """Smooth uint8 images (upsampled noise), so resizing does not alias everything away."""
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, (n, 8, 8, 3)).astype(np.float64)
    rep = -(-size // 8)
    big = small.repeat(rep, 1).repeat(rep, 2)[:, :size, :size]
    return np.clip(big + rng.normal(0, 12, big.shape), 0, 255).astype(np.uint8)


@pytest.mark.skipif(not has("torch_fidelity"), reason="torch-fidelity not installed")
def test_logits_and_pool_match_torch_fidelity_extractor(scaled_graph, exported):
    import torch
    from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3

    from harness import backbones

    x = _images(4, 32)
    net = backbones.load_backbone("tf2015_torch", weights=f"file:{scaled_graph}", batch_size=4)
    ext = FeatureExtractorInceptionV3(
        "inception-v3-compat",
        ["2048", "logits_unbiased"],
        feature_extractor_weights_path=str(exported),
    ).eval()
    with torch.no_grad():
        pool, logits = ext(torch.from_numpy(x).permute(0, 3, 1, 2).contiguous())
    assert rel(net.logits(x), logits.numpy()) < 1e-4
    assert 1 < np.abs(logits.numpy()).max() < 60  # a trained network's scale, not saturated
    assert rel(net.features(x), pool.numpy()) < 1e-4
    # the harness's TF1 graph reading the same file agrees too (BatchNorm gamma honoured)
    graph = backbones.load_backbone("tf2015", weights=f"file:{scaled_graph}", batch_size=4)
    assert rel(graph.logits(x), logits.numpy()) < 1e-4


@pytest.mark.skipif(not has("pytorch_fid"), reason="pytorch-fid not installed")
def test_pool_features_match_pytorch_fid(scaled_graph, exported, monkeypatch):
    import pytorch_fid.inception as pfi
    import torch

    from harness import backbones

    # pytorch-fid downloads its weights inside fid_inception_v3(); hand it the export instead
    monkeypatch.setattr(pfi, "load_state_dict_from_url", lambda *a, **k: torch.load(exported))
    model = pfi.InceptionV3([3], resize_input=False, normalize_input=False).eval()
    x = _images(2, 299, seed=1)  # 299 already: TF1 bilinear 299 -> 299 is the identity
    inp = (torch.from_numpy(x).permute(0, 3, 1, 2).float() - 128) / 128
    with torch.no_grad():
        (pool,) = model(inp)
    net = backbones.load_backbone("tf2015_torch", weights=f"file:{scaled_graph}", batch_size=2)
    assert rel(net.features(x), pool[:, :, 0, 0].numpy()) < 1e-4


def _u8_dataset(x):
    """The images as torch-fidelity takes them: a Dataset of uint8 CHW tensors."""
    import torch

    class U8(torch.utils.data.Dataset):
        def __init__(self):
            self.x = torch.from_numpy(x).permute(0, 3, 1, 2).contiguous()

        def __len__(self):
            return len(self.x)

        def __getitem__(self, i):
            return self.x[i]

    return U8()


@pytest.fixture(scope="module")
def samples(tmp_path_factory):
    wd = tmp_path_factory.mktemp("samples")
    return wd / "png", write_pngs(wd / "png", n=36, seed=3)


def _harness_is(folder, protocol, weights, tmp_path):
    """``+experiment=splits dataset=folder protocol=<name> weights=file:<graph>``: the row a user
    reads for "my IS under that tool's convention".
    """
    from harness import api

    out = api.run_experiment(
        "splits",
        [
            "dataset=folder",
            f"dataset.root={folder}",
            f"protocol={protocol}",
            f"weights=file:{weights}",
            "sample_sizes=[36]",
            "resamples=1",
            "progress=false",
        ],
        run_dir=tmp_path / f"run_{protocol}",
    )
    (row,) = out.table.itertuples()
    return row


@pytest.mark.skipif(not has("torch_fidelity"), reason="torch-fidelity not installed")
def test_protocol_torch_fidelity_reproduces_calculate_metrics(
    samples, scaled_graph, exported, tmp_path
):
    import torch_fidelity

    folder, x = samples
    row = _harness_is(folder, "torch_fidelity", scaled_graph, tmp_path)
    m = torch_fidelity.calculate_metrics(
        input1=_u8_dataset(x),
        isc=True,
        feature_extractor_weights_path=str(exported),
        isc_splits=10,
        samples_shuffle=True,
        rng_seed=2020,
        cuda=False,
        cache=False,
        verbose=False,
        batch_size=36,
        save_cpu_ram=True,
    )
    assert row.is_mean == pytest.approx(m["inception_score_mean"], rel=1e-6)
    assert row.is_std == pytest.approx(m["inception_score_std"], rel=1e-5)
    assert row.n_splits == 10 and "numpy_randomstate(2020)" in row.split_assignment


@pytest.mark.skipif(not has("torchmetrics"), reason="torchmetrics not installed")
def test_protocol_torchmetrics_reproduces_inception_score(
    samples, scaled_graph, exported, tmp_path
):
    import torch
    from torchmetrics.image.fid import NoTrainInceptionV3
    from torchmetrics.image.inception import InceptionScore

    folder, x = samples
    row = _harness_is(folder, "torchmetrics", scaled_graph, tmp_path)
    fe = NoTrainInceptionV3(
        "inception-v3-compat", ["logits_unbiased"], feature_extractor_weights_path=str(exported)
    )
    metric = InceptionScore(feature=fe, splits=10)
    metric.update(torch.from_numpy(x).permute(0, 3, 1, 2).contiguous())
    torch.manual_seed(0)  # the preset's splits.seed: torchmetrics permutes with the global RNG
    mean, std = (float(v) for v in metric.compute())
    assert row.is_mean == pytest.approx(mean, rel=1e-6)
    assert row.is_std == pytest.approx(std, rel=1e-5)
    assert len(torch.arange(len(x)).chunk(10)) == 9  # ceil(36/10) rows per chunk: 9 chunks
    assert row.std_ddof == 1


def _tfgan_classifier_metrics():
    """TF-GAN's ``classifier_metrics`` module.  The package's ``__init__`` imports modules that
    no longer import with current TensorFlow/TF-Probability, so load the one file it is in.
    """
    spec = importlib.util.find_spec("tensorflow_gan")
    if spec is None:
        pytest.skip("tensorflow-gan not installed")
    root = Path(spec.submodule_search_locations[0])
    for name, path in [
        ("tensorflow_gan", root),
        ("tensorflow_gan.python", root / "python"),
        ("tensorflow_gan.python.eval", root / "python" / "eval"),
    ]:
        if name not in sys.modules or not hasattr(sys.modules[name], "__path__"):
            pkg = types.ModuleType(name)
            pkg.__path__ = [str(path)]
            sys.modules[name] = pkg
    sys.modules.setdefault("tensorflow_probability", types.ModuleType("tensorflow_probability"))
    file = root / "python" / "eval" / "classifier_metrics.py"
    mspec = importlib.util.spec_from_file_location(
        "tensorflow_gan.python.eval.classifier_metrics", file
    )
    mod = importlib.util.module_from_spec(mspec)
    mspec.loader.exec_module(mod)
    return mod


def test_protocol_tfgan_reproduces_classifier_score_from_logits(samples, scaled_graph, tmp_path):
    import tensorflow as tf

    from harness import backbones

    cm = _tfgan_classifier_metrics()
    folder, x = samples
    row = _harness_is(folder, "tfgan", scaled_graph, tmp_path)
    logits = backbones.load_backbone(
        "tf2015", weights=f"file:{scaled_graph}", batch_size=36
    ).logits(x)
    score = float(cm.classifier_score_from_logits(tf.constant(logits.astype(np.float64))))
    assert row.is_mean == pytest.approx(score, rel=1e-6)
    assert row.n_splits == 1


def test_harness_stays_finite_where_float32_softmax_underflows():
    """Logits whose float32 softmax has exact zeros in a split's marginal: torchmetrics (float32
    softmax, ``log`` of the marginal) returns NaN; the harness (float64, 0 log 0 = 0) does not.
    """
    import torch

    from harness import scores

    logits = np.full((16, 1008), -200.0)
    logits[np.arange(16), np.arange(16) % 4] = 200.0  # 4 classes; the other 1004 underflow
    p32 = torch.softmax(torch.from_numpy(logits).float(), dim=1)
    assert (p32.mean(0) == 0).any()  # the marginal has exact zeros in float32
    if has("torchmetrics"):
        from torchmetrics.image.inception import InceptionScore

        class Logits(torch.nn.Module):  # "images" are row indices into the logits
            def forward(self, idx):
                return torch.from_numpy(logits).float()[idx.long().flatten()]

        metric = InceptionScore(feature=Logits(), splits=2)
        metric.update(torch.arange(16))
        torch.manual_seed(0)
        assert torch.isnan(metric.compute()[0])  # the peer's NaN, measured
    r = scores.inception_score(scores.softmax(logits), n_splits=2)
    # each split holds each of the 4 classes twice, predicted with certainty: IS = 4 exactly
    assert np.isfinite(r.mean) and r.mean == pytest.approx(4.0, rel=1e-12)
