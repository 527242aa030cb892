"""Any trained classifier or encoder as a backbone: ``torch_model`` and ``keras_model``.

Every number is compared with the framework run directly on the same images (an independent
computation of what the backbone should return); nothing ImageNet-specific may apply.
"""

from __future__ import annotations

import numpy as np
import pytest

from harness import backbones, cache
from harness.errors import ConfigError, HarnessError

from .conftest import needs_tf, needs_torch

BUILDER = """
import torch


def build():
    torch.manual_seed(11)
    return torch.nn.Sequential(
        torch.nn.Conv2d(1, 4, 3, padding=1),
        torch.nn.ReLU(),
        torch.nn.Flatten(),
        torch.nn.Linear(256, 16),
        torch.nn.ReLU(),
        torch.nn.Linear(16, 10),
    )


def encoder():
    torch.manual_seed(12)
    return torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(192, 24))
"""


@pytest.fixture(scope="module")
def images():
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, size=(7, 8, 8, 3), dtype=np.uint8)


@pytest.fixture(scope="module")
def torch_files(tmp_path_factory):
    import torch

    d = tmp_path_factory.mktemp("torch_model")
    (d / "mynet.py").write_text(BUILDER)
    import importlib.util

    spec = importlib.util.spec_from_file_location("mynet_for_tests", d / "mynet.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    model = mod.build().eval()
    torch.save(model.state_dict(), d / "w.pth")
    return d, model, mod


def _grey(x, how="mean"):
    x = x.astype(np.float64)
    if how == "mean":
        return x.mean(-1)
    return x @ np.array([0.299, 0.587, 0.114])


@needs_torch
def test_state_dict_with_builder_gives_the_models_own_logits_and_penultimate_features(
    torch_files, images
):
    import torch

    d, model, _ = torch_files
    net = backbones.load_backbone(
        "torch_model",
        weights=f"file:{d / 'w.pth'}",
        builder=f"{d / 'mynet.py'}:build",
        input_size=8,
        channels=1,
        class_names=[f"digit {i}" for i in range(10)],
    )
    logits, feats = net.forward(images, features=True)
    x = torch.from_numpy((_grey(images) / 255.0)[:, None].astype(np.float32))
    with torch.no_grad():
        ref = model(x).numpy()
        ref_f = model[:5](x).numpy()  # the input of the last Linear: penultimate activations
    np.testing.assert_allclose(logits, ref, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(feats, ref_f, rtol=1e-5, atol=1e-6)
    assert net.num_classes == 10 and net.class_names[3] == "digit 3"
    p = net.provenance()
    assert p["grey_conversion"] == "mean of R, G, B" and p["feature_dim"] == 16
    assert p["weights_sha256"] and p["builder_sha256"] and not net.random_weights
    # nothing of ImageNet's contract applies
    assert "classes" not in net.settings() and "bias" not in net.settings()
    with pytest.raises(ConfigError, match="unknown parameter 'classes'"):
        backbones.load_backbone(
            "torch_model", weights=f"file:{d / 'w.pth'}", input_size=8, classes="all"
        )


@needs_torch
def test_torchscript_random_luma_and_resize(torch_files, images):
    import torch

    d, model, mod = torch_files
    torch.jit.script(model).save(str(d / "m.pt"))
    net = backbones.load_backbone(
        "torch_model", weights=f"file:{d / 'm.pt'}", input_size=8, channels=1
    )
    x = torch.from_numpy((_grey(images) / 255.0)[:, None].astype(np.float32))
    with torch.no_grad():
        np.testing.assert_allclose(net.logits(images), model(x).numpy(), rtol=1e-5, atol=1e-6)
    assert not net.has_features  # hooks do not reach inside TorchScript: said, not guessed
    with pytest.raises(HarnessError, match="feature_layer needs a builder"):
        backbones.load_backbone(
            "torch_model", weights=f"file:{d / 'm.pt'}", input_size=8, feature_layer="3"
        )
    # luma grey
    luma = backbones.load_backbone(
        "torch_model", weights=f"file:{d / 'm.pt'}", input_size=8, channels=1, grey="luma"
    )
    xl = torch.from_numpy((_grey(images, "luma") / 255.0)[:, None].astype(np.float32))
    with torch.no_grad():
        np.testing.assert_allclose(luma.logits(images), model(xl).numpy(), rtol=1e-5, atol=1e-6)
    # random:<seed> is the builder's own initialisation under torch.manual_seed, labelled
    r1 = backbones.load_backbone(
        "torch_model",
        weights="random:5",
        builder=f"{d / 'mynet.py'}:build",
        input_size=8,
        channels=1,
    )
    r2 = backbones.load_backbone(
        "torch_model",
        weights="random:5",
        builder=f"{d / 'mynet.py'}:build",
        input_size=8,
        channels=1,
    )
    assert (
        r1.random_weights and r1.provenance()["weights_sha256"] == r2.provenance()["weights_sha256"]
    )
    np.testing.assert_array_equal(r1.logits(images), r2.logits(images))
    # images of another size need a declared resize
    big = np.repeat(np.repeat(images, 2, axis=1), 2, axis=2)
    with pytest.raises(HarnessError, match="takes 8x8 and resize=none"):
        net.logits(big)
    small = backbones.load_backbone(
        "torch_model", weights=f"file:{d / 'm.pt'}", input_size=8, channels=1, resize="antialias"
    )
    assert small.logits(big).shape == (7, 10)


@needs_torch
def test_one_line_errors_for_the_users_files(torch_files, tmp_path):
    d, _, _ = torch_files
    with pytest.raises(ConfigError, match="random:<seed> needs builder"):
        backbones.load_backbone("torch_model", weights="random:0", input_size=8)
    with pytest.raises(ConfigError, match="input_size is required"):
        backbones.load_backbone("torch_model", weights=f"file:{d / 'w.pth'}")
    bad = tmp_path / "bad.pth"
    bad.write_bytes(b"not torch")
    with pytest.raises(HarnessError, match="not a state dict torch can read"):
        backbones.load_backbone(
            "torch_model",
            weights=f"file:{bad}",
            builder=f"{d / 'mynet.py'}:build",
            input_size=8,
            channels=1,
        )
    with pytest.raises(HarnessError, match="does not fit"):
        backbones.load_backbone(
            "torch_model",
            weights=f"file:{d / 'w.pth'}",
            builder=f"{d / 'mynet.py'}:encoder",
            input_size=8,
        )
    with pytest.raises(HarnessError, match="is not a TorchScript module"):
        backbones.load_backbone("torch_model", weights=f"file:{d / 'w.pth'}", input_size=8)
    with pytest.raises(HarnessError, match="class_names has 3 names but the network has 10"):
        backbones.load_backbone(
            "torch_model",
            weights=f"file:{d / 'w.pth'}",
            builder=f"{d / 'mynet.py'}:build",
            input_size=8,
            channels=1,
            class_names=["a", "b", "c"],
        )


@needs_torch
def test_an_encoder_gives_features_and_refuses_the_inception_score(torch_files, images):
    import torch

    d, _, mod = torch_files
    enc = mod.encoder().eval()
    torch.save(enc.state_dict(), d / "enc.pth")
    net = backbones.load_backbone(
        "torch_model",
        weights=f"file:{d / 'enc.pth'}",
        builder=f"{d / 'mynet.py'}:encoder",
        input_size=8,
        head="features",
    )
    x = torch.from_numpy(images.astype(np.float32).transpose(0, 3, 1, 2) / 255.0)
    with torch.no_grad():
        np.testing.assert_allclose(net.features(images), enc(x).numpy(), rtol=1e-5, atol=1e-6)
    with pytest.raises(HarnessError, match="no classifier head .features only."):
        net.logits(images)
    from harness.inputs import Inputs

    with pytest.raises(HarnessError, match="no classifier head"):
        Inputs(nets={"backbone": net}).require_splits(2)


@needs_torch
def test_the_cache_key_follows_the_file_and_the_builders_code(torch_files, tmp_path, images):
    import torch

    from harness import data

    d, model, mod = torch_files
    src = data.load_source("synthetic", count=4, size=8)
    lc = cache.LogitsCache(tmp_path / "c")
    kw = {"builder": f"{d / 'mynet.py'}:build", "input_size": 8, "channels": 1}
    a = backbones.load_backbone("torch_model", weights=f"file:{d / 'w.pth'}", **kw)
    other = mod.build()
    with torch.no_grad():
        other[5].bias.add_(1.0)
    torch.save(other.state_dict(), tmp_path / "w2.pth")
    b = backbones.load_backbone("torch_model", weights=f"file:{tmp_path / 'w2.pth'}", **kw)
    assert lc.key(src, a) != lc.key(src, b)
    (tmp_path / "mynet.py").write_text(BUILDER + "\n# a comment changes the code identity\n")
    c = backbones.load_backbone(
        "torch_model",
        weights=f"file:{d / 'w.pth'}",
        **{**kw, "builder": f"{tmp_path}/mynet.py:build"},
    )
    assert lc.key(src, a) != lc.key(src, c)


@needs_torch
@needs_tf
def test_keras_model_logits_features_and_attack(tmp_path, images):
    from harness import attack
    from harness.backbones.keras_iv3 import import_keras

    keras = import_keras("tensorflow")
    keras.utils.set_random_seed(3)
    inp = keras.Input((8, 8, 1))
    h = keras.layers.Flatten()(inp)
    h = keras.layers.Dense(16, activation="relu", name="penultimate")(h)
    out = keras.layers.Dense(10, name="logits")(h)
    model = keras.Model(inp, out)
    model.save(tmp_path / "m.keras")
    net = backbones.load_backbone(
        "keras_model",
        weights=f"file:{tmp_path / 'm.keras'}",
        input_size=8,
        channels=1,
        label_space="digits10",
    )
    x = (_grey(images) / 255.0)[..., None].astype(np.float32)
    logits, feats = net.forward(images, features=True)
    np.testing.assert_allclose(logits, model.predict(x, verbose=0), rtol=1e-5, atol=1e-6)
    pen = keras.Model(inp, model.get_layer("penultimate").output)
    np.testing.assert_allclose(feats, pen.predict(x, verbose=0), rtol=1e-5, atol=1e-6)
    assert net.top1_accuracy(logits, logits.argmax(1), "digits10") == 1.0
    assert net.top1_accuracy(logits, logits.argmax(1), "imagenet1000") is None
    # FGSM through the grey conversion: the target classes gain probability
    res = attack.run_attack(
        net,
        images,
        attack.AttackSettings(eps=0.05, iterations=5, n_splits=1, batch_size=7),
        targets=np.arange(7) % 10,
        progress=False,
    )
    assert (
        res.final["float_exact_fp32"]["mean_target_prob"] > res.final["start"]["mean_target_prob"]
    )
    with pytest.raises(ConfigError, match="takes file:<model.keras>"):
        backbones.load_backbone("keras_model", weights="random:0", input_size=8)


@needs_torch
def test_reporting_lines_name_random_and_own_weights_truthfully(torch_files):
    """A random user network must carry the RANDOM WEIGHTS label like a random Inception."""
    from harness.sanity import weights_label

    d, _, _ = torch_files
    kw = {"builder": f"{d / 'mynet.py'}:build", "input_size": 8, "channels": 1}
    rnd = backbones.load_backbone("torch_model", weights="random:5", **kw)
    assert "RANDOM WEIGHTS" in weights_label(rnd.provenance())
    own = backbones.load_backbone(
        "torch_model", weights=f"file:{d / 'w.pth'}", title="my digits net", **kw
    )
    assert "RANDOM" not in weights_label(own.provenance())
