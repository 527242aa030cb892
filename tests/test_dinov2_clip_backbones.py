"""The ``dinov2`` and ``clip`` backbones (issue 29, items 1 and 4): features-only encoders from
timm and open_clip, offline weights.

Expected features come from the libraries run directly: the same seeded network built here with
``timm.create_model`` / ``open_clip.create_model``, the positional embedding interpolated with
DINOv2's own formula (``interpolate_pos_encoding``) or loaded with ``open_clip.load_checkpoint``,
and the reference preprocessing done with PIL and torchvision transforms (dgm-eval's
``Resize((S, S), BICUBIC)`` on the PIL image, ``ToTensor``, ``Normalize``; CMMD's PIL centre
crop and BICUBIC resize, then CLIP's mean/std).  Small networks at small inputs keep it cheap:
DINOv2 ViT-S/14 at 28 px, open_clip ViT-S-32 at 64 px, all with random weights.
"""

from __future__ import annotations

import hashlib
import math
import os
import socket
import subprocess
import sys
import warnings

import numpy as np
import pytest

from harness import backbones
from harness.api import run_experiment
from harness.backbones import weights as W
from harness.errors import ConfigError, HarnessError, MissingInputError, ResourceUnavailable

from .conftest import needs_torch

pytestmark = needs_torch

NO_HEAD = "no classifier head (features only)"
IMAGENET = ([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])
DINO = {"variant": "vits14", "input_size": 28, "cache_dir": ":memory:"}
CLIP = {"model": "ViT-S-32", "input_size": 64, "cache_dir": ":memory:"}
OPENAI_336_SHA256 = "3035c92b350959924f9f00213499208652fc7ea050643e8b385c2dac08641f02"


@pytest.fixture(scope="module")
def timm():
    return pytest.importorskip("timm")


@pytest.fixture(scope="module")
def open_clip():
    return pytest.importorskip("open_clip")


@pytest.fixture(scope="module")
def images():
    """Five non-square uint8 images (CLIP crops their centre; DINOv2 squashes them)."""
    return np.random.default_rng(0).integers(0, 256, size=(5, 40, 48, 3), dtype=np.uint8)


@pytest.fixture
def offline(tmp_path, monkeypatch):
    """Empty library caches, and any network connection is a test failure."""
    for var, sub in (("HF_HUB_CACHE", "hf"), ("TORCH_HOME", "torch"), ("HOME", "home")):
        monkeypatch.setenv(var, str(tmp_path / sub))
    monkeypatch.delenv("HF_HOME", raising=False)
    monkeypatch.delenv("HUGGINGFACE_HUB_CACHE", raising=False)

    def refuse(*a, **k):
        raise AssertionError("a network connection was attempted")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    return tmp_path


def one_line(exc) -> str:
    msg = str(exc.value)
    assert "\n" not in msg, msg
    return msg


def state_sha256(model) -> str:
    """The sha256 of a network's arrays, recomputed here (weights.state_sha256 of numpy)."""
    return W.state_sha256({k: v.detach().numpy() for k, v in model.state_dict().items()})


# ------------------------------------------------------------------------------ references
def dino_native(timm, seed: int):
    """The documented random:<seed> network: timm's init at 518 px, layer scale 1.0."""
    import torch

    torch.manual_seed(seed)
    return timm.create_model(
        "vit_small_patch14_dinov2", pretrained=False, num_classes=0, init_values=1.0
    ).eval()


def dino_reference(timm, native, images, size: int = 28) -> np.ndarray:
    """dgm-eval's pipeline: PIL bicubic, ToTensor, ImageNet Normalize; the positional embedding
    interpolated as the DINOv2 hub model does at run time (offset 0.1, no antialias)."""
    import torch
    import torch.nn.functional as F
    import torchvision.transforms as TF
    from PIL import Image

    sd = {k: v.clone() for k, v in native.state_dict().items()}
    pe = sd["pos_embed"]
    n, dim = pe.shape[1] - 1, pe.shape[2]
    m, g = int(math.sqrt(n)), size // 14
    patch = F.interpolate(
        pe[:, 1:].reshape(1, m, m, dim).permute(0, 3, 1, 2),
        scale_factor=((g + 0.1) / m, (g + 0.1) / m),
        mode="bicubic",
        antialias=False,
    )
    sd["pos_embed"] = torch.cat([pe[:, :1], patch.permute(0, 2, 3, 1).reshape(1, g * g, dim)], 1)
    small = timm.create_model(
        "vit_small_patch14_dinov2", num_classes=0, init_values=1.0, img_size=size
    )
    small.load_state_dict(sd)
    tf = TF.Compose(
        [
            TF.Resize((size, size), TF.InterpolationMode.BICUBIC),
            TF.ToTensor(),
            TF.Normalize(*IMAGENET),
        ]
    )
    batch = torch.stack([tf(Image.fromarray(im)) for im in images])
    with torch.no_grad():
        return small.eval()(batch).numpy()


def clip_native(open_clip, seed: int):
    import torch

    torch.manual_seed(seed)
    return open_clip.create_model("ViT-S-32").eval()


def clip_reference(open_clip, native_path, images, size: int = 64) -> np.ndarray:
    """CMMD's pipeline: PIL centre crop + BICUBIC resize, /255, CLIP mean/std; the model at
    ``size`` loaded by open_clip's own load_checkpoint; encode_image(normalize=True)."""
    import torch
    import torchvision.transforms as TF
    from PIL import Image

    model = open_clip.create_model("ViT-S-32", force_image_size=size)
    open_clip.load_checkpoint(model, str(native_path))
    norm = TF.Normalize(open_clip.OPENAI_DATASET_MEAN, open_clip.OPENAI_DATASET_STD)

    def pre(im):
        p = Image.fromarray(im)
        w, h = p.size
        side = min(w, h)
        top, left = (h - side) // 2, (w - side) // 2
        p = p.crop((left, top, left + side, top + side)).resize((size, size), Image.BICUBIC)
        return norm(TF.ToTensor()(p))

    batch = torch.stack([pre(im) for im in images])
    with torch.no_grad():
        return model.eval().encode_image(batch, normalize=True).numpy()


# ------------------------------------------------------------------------------ lazy imports
def test_harness_imports_neither_timm_nor_open_clip():
    code = (
        "import sys, harness, harness.backbones as b, harness.backbones.dinov2, "
        "harness.backbones.clip; b.backbone_class('dinov2').settings(); "
        "b.backbone_class('clip').settings(); "
        "print(sorted(m for m in ('timm', 'open_clip', 'huggingface_hub') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize("name, module", [("dinov2", "timm"), ("clip", "open_clip")])
def test_a_missing_library_is_one_line_naming_the_extra(monkeypatch, name, module):
    monkeypatch.setitem(sys.modules, module, None)  # import fails as if not installed
    kw = DINO if name == "dinov2" else CLIP
    with pytest.raises(ResourceUnavailable) as e:
        backbones.load_backbone(name, weights="random:0", **kw)
    assert module in one_line(e) and "pip install -e '.[encoders]'" in str(e.value)


# ------------------------------------------------------------------------------ dinov2
def test_dinov2_random_features_match_timm_and_dgm_eval_preprocessing(timm, images):
    net = backbones.load_backbone("dinov2", weights="random:0", **DINO)
    f = net.features(images)
    assert f.shape == (5, 384) and f.dtype == np.float32
    assert net.forward(images)[0].shape == (5, 0) and not net.has_logits
    # the same seed: the same features; another seed: other features
    np.testing.assert_array_equal(
        backbones.load_backbone("dinov2", weights="random:0", **DINO).features(images), f
    )
    assert (
        np.abs(
            backbones.load_backbone("dinov2", weights="random:1", **DINO).features(images) - f
        ).max()
        > 0.1
    )
    # independent: timm's network with the documented init, dgm-eval's preprocessing
    native = dino_native(timm, 0)
    want = dino_reference(timm, native, images)
    np.testing.assert_allclose(f, want, rtol=1e-5, atol=1e-5)
    assert f.std(0).mean() > 0.1  # the images are told apart
    two = backbones.load_backbone("dinov2", weights="random:0", batch_size=2, **DINO).features(
        images
    )
    np.testing.assert_allclose(two, f, rtol=1e-5, atol=1e-5)  # batches do not matter
    p = net.provenance()
    assert p["weights_sha256"] == state_sha256(native) and p["weights_status"] == "random"
    assert p["weights_kind"] == "random" and p["resize"] == "pil_bicubic"
    assert p["variant"] == "vits14" and p["timm_model"] == "vit_small_patch14_dinov2"
    assert p["input_size"] == 28 and p["input_norm"] == "imagenet_mean_std"
    assert p["pos_embed_interpolation"].startswith("37x37 -> 2x2 by DINOv2's")
    assert p["framework_versions"]["timm"] == timm.__version__
    assert "x_norm_clstoken" in p["features"] and p["feature_dim"] == 384
    # every knob is in the cache key: another variant or input size is another entry
    ident = net.cache_identity()
    assert ident["weights_sha256"] == p["weights_sha256"]
    assert ident["knobs"]["variant"] == "vits14" and ident["knobs"]["input_size"] == 28


def test_dinov2_settings_refuse_sizes_that_are_not_patches(timm):
    with pytest.raises(ConfigError) as e:
        backbones.load_backbone("dinov2", weights="random:0", variant="vits14", input_size=30)
    assert "multiple of 14" in one_line(e)
    with pytest.raises(ConfigError):
        backbones.load_backbone("dinov2", weights="random:0", variant="vitx14")
    with pytest.raises(ConfigError) as e:
        backbones.load_backbone("dinov2", weights="trained:digits_cnn/torch/0", variant="vits14")
    assert "pretrained, file:<path> or random:<seed>" in one_line(e)


def test_dinov2_file_weights_timm_and_meta_formats(timm, images, tmp_path):
    import torch
    from safetensors.torch import save_file

    native = dino_native(timm, 5)
    sd = native.state_dict()
    save_file({k: v.contiguous() for k, v in sd.items()}, str(tmp_path / "m.safetensors"))
    torch.save(sd, tmp_path / "m.pth")
    torch.save({**sd, "mask_token": torch.zeros(1, 384)}, tmp_path / "meta.pth")  # Meta's keys
    want = dino_reference(timm, native, images)
    rand = backbones.load_backbone("dinov2", weights="random:5", **DINO).features(images)
    for name in ("m.safetensors", "meta.pth"):
        path = tmp_path / name
        net = backbones.load_backbone("dinov2", weights=f"file:{path}", **DINO)
        np.testing.assert_allclose(net.features(images), want, rtol=1e-5, atol=1e-5)
        np.testing.assert_array_equal(net.features(images), rand)
        p = net.provenance()
        assert p["weights_sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
        assert p["weights_status"] == "unverified"  # claims DINOv2, matches no pinned hash
    # a pin that does not match, another variant, a file that is no state dict: one line each
    with pytest.raises(HarnessError) as e:
        backbones.load_backbone(
            "dinov2", weights=f"file:{tmp_path / 'm.pth'}", weights_sha256="ab" * 32, **DINO
        )
    assert "weights_sha256=" in one_line(e)
    with pytest.raises(HarnessError) as e:
        backbones.load_backbone(
            "dinov2", weights=f"file:{tmp_path / 'm.pth'}", variant="vitb14", input_size=28
        )
    assert "does not fit DINOv2 ViT-B/14" in one_line(e)
    (tmp_path / "junk.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(HarnessError) as e:
        backbones.load_backbone("dinov2", weights=f"file:{tmp_path / 'junk.pth'}", **DINO)
    assert "cannot read weights file" in one_line(e)


def test_dinov2_pretrained_missing_offline_is_one_line_naming_file_and_place(offline, timm):
    with pytest.raises(MissingInputError) as e:
        backbones.load_backbone("dinov2", variant="vits14", input_size=28)
    msg = one_line(e)
    hf = offline / "hf" / "models--timm--vit_small_patch14_dinov2.lvd142m"
    for part in (
        "model.safetensors",
        "timm/vit_small_patch14_dinov2.lvd142m",
        str(hf),
        "dinov2_vits14_pretrain.pth",
        str(offline / "torch" / "hub" / "checkpoints"),
        "weights=file:<path>",
        "nothing is downloaded",
    ):
        assert part in msg, part


def fake_hf_cache(root, repo: str, filename: str, data: bytes, blob: str | None = None):
    """A Hugging Face hub cache entry laid out as huggingface_hub writes it."""
    d = root / ("models--" + repo.replace("/", "--"))
    blob = blob or hashlib.sha256(data).hexdigest()
    (d / "blobs").mkdir(parents=True, exist_ok=True)
    (d / "refs").mkdir(exist_ok=True)
    (d / "snapshots" / "rev0").mkdir(parents=True, exist_ok=True)
    (d / "blobs" / blob).write_bytes(data)
    (d / "refs" / "main").write_text("rev0")
    link = d / "snapshots" / "rev0" / filename
    if link.is_symlink() or link.exists():
        link.unlink()
    os.symlink(f"../../blobs/{blob}", link)
    return link


def test_dinov2_pretrained_from_the_library_caches_offline(offline, timm, images):
    import torch
    from safetensors.torch import save_file

    native = dino_native(timm, 7)
    want = dino_reference(timm, native, images)
    tmp = offline / "m.safetensors"
    save_file({k: v.contiguous() for k, v in native.state_dict().items()}, str(tmp))
    data = tmp.read_bytes()
    repo = "timm/vit_small_patch14_dinov2.lvd142m"
    link = fake_hf_cache(offline / "hf", repo, "model.safetensors", data)
    net = backbones.load_backbone("dinov2", variant="vits14", input_size=28)
    np.testing.assert_allclose(net.features(images), want, rtol=1e-5, atol=1e-5)
    p = net.provenance()
    assert p["weights_kind"] == "pretrained" and p["weights_path"] == str(link)
    assert p["weights_sha256"] == hashlib.sha256(data).hexdigest()
    assert p["weights_source"].startswith(f"Hugging Face hub cache ({repo}")
    assert p["weights_official_pin"].endswith("matches")
    assert p["weights_status"] == "unverified"  # no hash of timm's copy is pinned in code
    # a blob that is not what the hub said it was (truncated, replaced): one line
    fake_hf_cache(offline / "hf", repo, "model.safetensors", data, blob="0" * 64)
    with pytest.raises(HarnessError) as e:
        backbones.load_backbone("dinov2", variant="vits14", input_size=28)
    assert "does not match" in one_line(e) and "0" * 64 in str(e.value)
    # Meta's original file where torch.hub (dgm-eval) keeps it, when the hub cache has none
    import shutil

    shutil.rmtree(offline / "hf")
    ckpt = offline / "torch" / "hub" / "checkpoints"
    ckpt.mkdir(parents=True)
    torch.save(
        {**native.state_dict(), "mask_token": torch.zeros(1, 384)},
        ckpt / "dinov2_vits14_pretrain.pth",
    )
    net = backbones.load_backbone("dinov2", variant="vits14", input_size=28)
    np.testing.assert_allclose(net.features(images), want, rtol=1e-5, atol=1e-5)
    p = net.provenance()
    assert p["weights_source"].startswith("torch hub cache (Meta's original")
    assert p["weights_status"] == "unverified" and "no published hash" in p["weights_official_pin"]


# ------------------------------------------------------------------------------ clip
def test_clip_random_features_match_open_clip_and_cmmd_preprocessing(open_clip, images, tmp_path):
    import torch

    net = backbones.load_backbone("clip", weights="random:0", **CLIP)
    f = net.features(images)
    assert f.shape == (5, 384) and not net.has_logits
    np.testing.assert_allclose(np.linalg.norm(f.astype(np.float64), axis=1), 1.0, atol=1e-6)
    np.testing.assert_array_equal(
        backbones.load_backbone("clip", weights="random:0", **CLIP).features(images), f
    )
    assert (
        np.abs(
            backbones.load_backbone("clip", weights="random:1", **CLIP).features(images) - f
        ).max()
        > 1e-2
    )
    native = clip_native(open_clip, 0)
    torch.save(native.state_dict(), tmp_path / "native.pt")
    want = clip_reference(open_clip, tmp_path / "native.pt", images)
    np.testing.assert_allclose(f, want, rtol=1e-5, atol=1e-5)
    two = backbones.load_backbone("clip", weights="random:0", batch_size=2, **CLIP).features(images)
    np.testing.assert_allclose(two, f, rtol=1e-5, atol=1e-5)  # batches do not matter
    p = net.provenance()
    assert p["weights_sha256"] == state_sha256(native) and p["weights_status"] == "random"
    assert p["model"] == "ViT-S-32" and p["tag"] is None and p["crop"] == "center"
    assert p["input_size"] == 64 and p["native_input_size"] == 224 and p["resize"] == "pil_bicubic"
    assert p["input_norm"] == "zero_one" and p["clip_mean"] == list(open_clip.OPENAI_DATASET_MEAN)
    assert p["pos_embed_interpolation"].startswith("7x7 -> 2x2 by open_clip's resize_pos_embed")
    assert p["feature_norm"].startswith("L2-normalised") and p["feature_dim"] == 384
    assert p["framework_versions"]["open_clip_torch"] == open_clip.__version__


def test_clip_file_weights_state_dict_wrapped_and_torchscript(open_clip, images, tmp_path):
    import warnings

    import torch

    native = clip_native(open_clip, 3)
    torch.save(native.state_dict(), tmp_path / "sd.pt")
    torch.save({"state_dict": native.state_dict(), "epoch": 1}, tmp_path / "wrapped.pt")
    with warnings.catch_warnings():  # torch 2.14 deprecates jit.script; OpenAI's files are JIT
        warnings.simplefilter("ignore", FutureWarning)
        torch.jit.script(native).save(str(tmp_path / "jit.pt"))
    want = clip_reference(open_clip, tmp_path / "sd.pt", images)
    rand = backbones.load_backbone("clip", weights="random:3", **CLIP).features(images)
    for name in ("sd.pt", "wrapped.pt", "jit.pt"):
        net = backbones.load_backbone("clip", weights=f"file:{tmp_path / name}", **CLIP)
        got = net.features(images)
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
        np.testing.assert_array_equal(got, rand)
        p = net.provenance()
        assert p["weights_sha256"] == hashlib.sha256((tmp_path / name).read_bytes()).hexdigest()
        assert p["weights_status"] == "unverified"
    with pytest.raises(HarnessError) as e:
        backbones.load_backbone(
            "clip", weights=f"file:{tmp_path / 'sd.pt'}", model="ViT-S-32-alt", input_size=64
        )
    assert "does not fit open_clip ViT-S-32-alt" in one_line(e)


def test_clip_settings_and_model_checks_are_one_line(open_clip):
    with pytest.raises(ConfigError) as e:
        backbones.load_backbone("clip", weights="random:0", model="ViT-S-32", input_size=50)
    assert "not a multiple of ViT-S-32's patch size 32" in one_line(e)
    with pytest.raises(ConfigError) as e:
        backbones.load_backbone("clip", weights="random:0", model="ViT-S-23")
    assert "no model config 'ViT-S-23'" in one_line(e) and "ViT-S-32" in str(e.value)
    with pytest.raises(ConfigError) as e:
        backbones.load_backbone("clip", weights="random:0", model="hf-hub:org/x")
    assert "built-in open_clip config" in one_line(e)
    with pytest.raises(ConfigError) as e:  # tag applies to pretrained weights only
        backbones.load_backbone("clip", weights="random:0", tag="laion2b_s34b_b79k", **CLIP)
    assert "tag" in one_line(e)


def test_clip_pretrained_offline_lookup_pins_and_quickgelu(offline, open_clip):
    # nothing cached: one line naming both places open_clip would use, nothing downloaded
    with pytest.raises(MissingInputError) as e:
        backbones.load_backbone("clip")
    msg = one_line(e)
    hf = offline / "hf" / "models--timm--vit_large_patch14_clip_336.openai"
    for part in (
        "ViT-L-14-336-quickgelu",
        "open_clip_model.safetensors",
        "open_clip_pytorch_model.bin",
        str(hf),
        "ViT-L-14-336px.pt",
        OPENAI_336_SHA256,
        str(offline / "home" / ".cache" / "clip"),
        "weights=file:<path>",
    ):
        assert part in msg, part
    # OpenAI's file in open_clip's URL cache is checked against the sha256 in its URL
    cache = offline / "home" / ".cache" / "clip"
    cache.mkdir(parents=True)
    (cache / "ViT-L-14-336px.pt").write_bytes(b"a truncated download")
    with pytest.raises(HarnessError) as e:
        backbones.load_backbone("clip")
    assert f"does not match the official sha256 {OPENAI_336_SHA256}" in one_line(e)
    # OpenAI's weights need QuickGELU: the plain config would compute something else
    with pytest.raises(ConfigError) as e:
        backbones.load_backbone("clip", model="ViT-L-14-336")
    assert "use model=ViT-L-14-336-quickgelu" in one_line(e)
    with pytest.raises(ConfigError) as e:
        backbones.load_backbone("clip", model="ViT-S-32", tag="nope")
    assert "no pretrained tag 'nope'" in one_line(e)


def test_clip_pretrained_from_the_hub_cache_offline(offline, open_clip, images, monkeypatch):
    import torch

    native = clip_native(open_clip, 4)
    torch.save(native.state_dict(), offline / "native.pt")
    data = (offline / "native.pt").read_bytes()
    # no open_clip tag has a network this small: register one in open_clip's own table, with an
    # hf_hub entry as open_clip writes them ("org/name/": its default file names)
    pcfg = open_clip.pretrained._pcfg(hf_hub="harness-test/tiny-clip/")
    monkeypatch.setitem(open_clip.pretrained._PRETRAINED, "ViT-S-32", {"harness_test": pcfg})
    link = fake_hf_cache(
        offline / "hf", "harness-test/tiny-clip", "open_clip_pytorch_model.bin", data
    )
    net = backbones.load_backbone("clip", model="ViT-S-32", tag="harness_test", input_size=64)
    want = clip_reference(open_clip, offline / "native.pt", images)
    np.testing.assert_allclose(net.features(images), want, rtol=1e-5, atol=1e-5)
    p = net.provenance()
    assert p["tag"] == "harness_test" and p["weights_kind"] == "pretrained"
    assert p["weights_path"] == str(link)
    assert p["weights_sha256"] == hashlib.sha256(data).hexdigest()
    assert p["weights_status"] == "unverified" and p["weights_official_pin"].endswith("matches")
    assert p["weights_source"] == "Hugging Face hub cache (harness-test/tiny-clip)"


def test_clip_openai_pin_is_the_full_sha256_in_its_url(open_clip):
    from harness.backbones.clip import url_artifact

    url = open_clip.pretrained.get_pretrained_url("ViT-L-14-336-quickgelu", "openai")
    art = url_artifact(url)
    assert (art.pin_kind, art.pin, art.filename) == (
        "sha256",
        OPENAI_336_SHA256,
        "ViT-L-14-336px.pt",
    )


# ------------------------------------------------------------------------------ experiments
@pytest.fixture
def passes(monkeypatch):
    """Every network pass over an image set (logits-cache misses)."""
    from harness.cache import LogitsCache

    got, orig = [], LogitsCache.get

    def get(self, backbone, source, *a, **k):
        res = orig(self, backbone, source, *a, **k)
        if not res.from_cache:
            got.append((backbone.name, source.fingerprint()))
        return res

    monkeypatch.setattr(LogitsCache, "get", get)
    return got


def run(name, tmp_path, *overrides):
    return run_experiment(
        name,
        ["progress=false", f"cache.dir={tmp_path / 'cache'}", *overrides],
        run_dir=tmp_path / name,
    )


@pytest.mark.parametrize(
    "name, knobs",
    [
        ("dinov2", ["backbone.variant=vits14", "backbone.input_size=28"]),
        ("clip", ["backbone.model=ViT-S-32", "backbone.input_size=64"]),
    ],
)
def test_is_experiment_refuses_the_encoders_in_one_line_before_any_pass(
    timm, open_clip, tmp_path, passes, name, knobs
):
    with pytest.raises(HarnessError) as e:
        run(
            "splits",
            tmp_path,
            f"backbone={name}",
            "weights=random:0",
            *knobs,
            "dataset=synthetic",
            "dataset.count=20",
        )
    assert one_line(e).startswith(f"backbone {name} has {NO_HEAD}")
    assert passes == []


def fid_direct(a, b) -> float:
    from scipy import linalg

    a, b = a.astype(np.float64), b.astype(np.float64)
    s1, s2 = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    covmean = linalg.sqrtm(s1 @ s2).real
    return float(np.sum((a.mean(0) - b.mean(0)) ** 2) + np.trace(s1 + s2 - 2 * covmean))


def test_fid_sensitivity_smoke_run_on_both_encoders(timm, open_clip, tmp_path, passes):
    from harness import data

    res = run(
        "fid_sensitivity",
        tmp_path,
        *[f"~backbones.{k}" for k in ("tf2015", "tf2015_torch", "torchvision", "keras", "tfhub")],
        "+backbone@backbones.dino=dinov2",
        "backbones.dino.variant=vits14",
        "backbones.dino.input_size=28",
        "+backbone@backbones.clip=clip",
        "backbones.clip.model=ViT-S-32",
        "backbones.clip.input_size=64",
        "weights=random:0",
        "dataset=synthetic",
        "dataset.count=24",
        "dataset@reference=synthetic",
        "reference.count=24",
        "reference.seed=1",
        "resizes=[]",
        "extra_metrics=[cmmd]",
        "kid.subset_size=auto",
        "kid.subsets=5",
        "sample_sizes=[10,20]",
    )
    t = res.table.set_index("backbone_key")
    assert res.result.random_weights
    assert (t.weights_status == "random").all() and (t.is_note == NO_HEAD).all()
    assert t.is_mean.isna().all()
    x = data.load_source("synthetic", count=24, seed=0).read_all()
    xr = data.load_source("synthetic", count=24, seed=1).read_all()
    for key, name, kw in (("dino", "dinov2", DINO), ("clip", "clip", CLIP)):
        net = backbones.load_backbone(name, weights="random:0", **kw)
        assert t.loc[key, "backbone"] == name
        assert t.loc[key, "weights_sha256"] == net.provenance()["weights_sha256"]
        fs, fr = net.features(x), net.features(xr)
        want = fid_direct(fs, fr)
        assert t.loc[key, "fid"] == pytest.approx(want, rel=1e-4)
        # issue 29 item 3, N: the metrics on n seeded images of each set (the documented draw:
        # default_rng([seed, n]), samples first, without replacement, sorted)
        for n in (10, 20):
            rng = np.random.default_rng([0, n])
            si, ri = np.sort(rng.choice(24, n, replace=False)), np.sort(rng.choice(24, n, False))
            row = res.result.tables["by_n"].query("backbone_key == @key and n_subset == @n")
            assert len(row) == 1 and row.fid.iloc[0] == pytest.approx(
                fid_direct(fs[si], fr[ri]), rel=1e-4
            )
            # its provenance is the subset's; KID's subset (auto: min(1000, n)) is the whole
            # subset, so one draw and no std
            assert (row.n_samples.iloc[0], row.n_reference.iloc[0]) == (n, n)
            assert row.kid_subset_size_setting.iloc[0] == "auto"
            assert row.kid_subsets.iloc[0] == 1 and np.isnan(row.kid_std.iloc[0])
            assert "is_mean" not in row and "n_splits" not in row
            moved = res.result.tables["moves"].query("backbone_key == @key and metric == 'fid'")
            assert moved[f"at_n{n}_pct"].iloc[0] == pytest.approx(
                100 * (row.fid.iloc[0] / t.loc[key, "fid"] - 1), rel=1e-9
            )
    moves = res.result.tables["moves"]
    assert (
        set(moves.metric)
        == {"fid", "kid_mean", "precision", "recall", "density", "coverage", "cmmd"}
        and (moves.resize_variants == 1).all()
        and (moves.resize_spread_pct == 0).all()
    )
    assert len(passes) == 4  # each network over each image set, once: subsets cost no pass


@pytest.mark.parametrize(
    "backbone, knobs",
    [
        ("dinov2", ["backbone.variant=vits14", "backbone.input_size=28"]),
        ("clip", ["backbone.model=ViT-S-32", "backbone.input_size=64"]),
    ],
)
def test_random_weight_smoke_runs_of_metric_properties_and_sanity(tmp_path, backbone, knobs):
    """Issue 29: every new backbone through metric_properties (with CMMD) and the sanity
    report, random weights, tiny synthetic sets: both run, say RANDOM WEIGHTS and have no IS."""
    pytest.importorskip("timm" if backbone == "dinov2" else "open_clip")
    common = [
        f"backbone={backbone}",
        *knobs,
        "weights=random:0",
        "dataset=synthetic",
        "dataset.count=40",
        "reference.count=40",
        "reference.seed=1",
        "progress=false",
    ]
    mp = run_experiment(
        "metric_properties",
        [
            *common,
            "dataset@reference=synthetic",
            "n=null",
            "seeds=[0]",
            "detection.halvings=1",
            *[
                f"corruptions.{c}=[]"
                for c in ("mode_dropping", "memorization_jittered", "noise", "rotate", "jpeg")
                + ("blur", "shift")
            ],
            "corruptions.intra_class_collapse=[1]",
            "corruptions.memorization=[1.0]",
            "corruptions.sample_size=[20]",
            "kid.subset_size=auto",
            "extra_metrics=[cmmd]",
        ],
        tmp_path / "mp",
    ).result
    assert mp.random_weights and "is_mean" not in set(mp.table.metric)
    assert {"fid", "cmmd"} <= set(mp.table.metric) and (mp.table.backbone == backbone).all()
    san = run_experiment(
        "sanity", [*common, "+dataset@reference=synthetic", "~other_backbones"], tmp_path / "s"
    )
    text = (tmp_path / "s" / "report.md").read_text()
    assert "RANDOM WEIGHTS" in text and "IS: not applicable" in text
    assert san.result.random_weights


#: check 12 on pixel space (24 samples, 30 reference images) with a small random DINOv2
PIXELS_AND_DINO = [
    "backbone=pixels",
    "dataset=synthetic",
    "dataset.count=24",
    "+dataset@reference=synthetic",
    "reference.seed=1",
    "reference.count=30",
    "+backbone@encoders.dinov2=dinov2",
    "encoders.dinov2.variant=vits14",
    "encoders.dinov2.input_size=28",
    "encoders.dinov2.weights=random:0",
]


def pixel_fd(rows_s=slice(None), rows_r=slice(None)) -> float:
    """FID's formula on the pixel-space features of PIXELS_AND_DINO's images at the given rows,
    computed here from the images (float32 x / 255, as a pass returns them)."""
    from harness import data
    from harness import feature_metrics as fm

    pix = [
        np.concatenate(list(data.load_source("synthetic", count=n, seed=seed).batches(64)))
        .reshape(n, -1)
        .astype(np.float32)[rows]
        / 255
        for n, seed, rows in ((24, 0, rows_s), (30, 1, rows_r))
    ]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", fm.RankDeficientWarning)
        return fm.fid(*pix).value


def test_sanity_check_12_ranks_the_samples_under_each_network(offline, timm, tmp_path):
    """Issue 29 item 3: the sanity report's encoder spread.  Chosen network: pixel space (its FD
    recomputed here from the images themselves); encoders: DINOv2 (random weights, labelled) and
    CLIP with the default pretrained weights, absent offline: skipped, with the file named."""
    args = [*PIXELS_AND_DINO, "checks=[10,12]", "+backbone@encoders.clip=clip", "progress=false"]
    out = run_experiment("sanity", args, tmp_path / "s")
    report = out.result.objects["report"]
    c12 = next(c for c in report["checks"] if c["id"] == 12)
    assert c12["status"] == "NOT JUDGED" and "random weights" in c12["threshold"]
    assert set(c12["details"]["values"]) == {"fd_pixels", "fd_dinov2"}
    d = c12["details"]
    assert (d["n_samples"], d["n_reference"], d["permutations"]) == (24, 30, 39)
    assert set(d["calls"]) == {"pixels", "dinov2"}
    assert report["missing_backbones"].keys() == {"encoders.clip"}
    assert c12["details"]["values"]["fd_pixels"] == pytest.approx(pixel_fd(), rel=1e-9)
    rows = [r for r in report["passes"] if 12 in r["checks"]]
    assert [(r["network"], r["images"], r["how"]) for r in rows if r["how"] != "skipped"] == [
        ("pixels", "samples", "computed"),
        ("dinov2", "samples", "computed"),
        ("dinov2", "reference", "computed"),
        ("pixels", "reference", "computed"),
    ] and report["passes"][0]["checks"] == [10, 12]
    (skipped,) = [r for r in rows if r["how"] == "skipped"]
    assert skipped["network"] == "clip" and "ViT-L-14-336px.pt" in skipped["reason"]
    assert "random:0" in c12["details"]["networks_measured"]["dinov2"]
    md = (tmp_path / "s" / "report.md").read_text()
    assert "### 12. encoder_spread: **NOT JUDGED**" in md


def test_sanity_check_12_not_run_without_encoders_and_refused_without_reference_images(tmp_path):
    """Without encoders= the full report lists check 12 NOT RUN with the syntax that adds them;
    asked for by id without encoders or without reference images, with quick=true alone, or with
    an alpha its permutations cannot reach, it is a one-line error before any pass."""
    args = [
        "backbone=pixels",
        "dataset=synthetic",
        "dataset.count=12",
        "+dataset@reference=synthetic",
        "reference.count=12",
        "progress=false",
    ]
    out = run_experiment("sanity", args, tmp_path / "s")
    c12 = next(c for c in out.result.objects["report"]["checks"] if c["id"] == 12)
    assert c12["status"] == "NOT RUN" and "no encoders chosen" in c12["value"]
    assert "+backbone@encoders.dinov2=dinov2" in c12["fix"]
    enc = ["+backbone@encoders.dinov2=dinov2", "encoders.dinov2.weights=random:0"]
    bad = {
        r"check 12 \(encoder spread\), which needs encoders: add \+backbone@encoders": [
            *args,
            "checks=[12]",
        ],
        r"check 12\), which needs reference images": [*args[:3], *enc, "checks=[12]"],
        r"quick drops checks 5, 6, 12 .* nothing is left": [
            *args, *enc, "checks=[12]", "quick=true"
        ],
        r"alpha=0.01 is below the smallest p 3 permutations can give \(1/4\).*>= 99": [
            *args, *enc, "encoder_spread.permutations=3", "encoder_spread.alpha=0.01"
        ],
    }  # fmt: skip
    for i, (msg, over) in enumerate(bad.items()):
        with pytest.raises(ConfigError, match=msg) as e:
            run_experiment("sanity", over, tmp_path / f"bad{i}")
        assert "\n" not in str(e.value)


def test_fid_sensitivity_sample_sizes_larger_than_a_set_are_one_line_before_any_pass(
    tmp_path, passes
):
    args = [
        *[f"~backbones.{k}" for k in ("tf2015", "tf2015_torch", "torchvision", "keras", "tfhub")],
        "+backbone@backbones.pixels=pixels",
        "dataset=synthetic",
        "dataset.count=12",
        "dataset@reference=synthetic",
        "reference.count=30",
        "resizes=[]",
        "kid.subset_size=auto",
        "sample_sizes=[10,20]",
    ]
    with pytest.raises(
        ConfigError, match=r"sample_sizes=\[10, 20\]: \[20\] exceed the smaller"
    ) as e:
        run_experiment("fid_sensitivity", args, tmp_path / "f")
    assert "\n" not in str(e.value) and not passes


def test_sanity_check_12_encodes_only_the_drawn_rows(timm, tmp_path):
    """encoder_spread.max_images caps the encoders' passes too (the test's rows, drawn before
    any pass), not only the test: with 10 of 24 samples and 10 of 30 reference images the
    encoder passes are over 10 images each, and the chosen network's distance is FID's formula
    on the documented draw (default_rng(seed): choice of the samples' rows, then the
    reference's, sorted)."""
    args = [
        *PIXELS_AND_DINO,
        "checks=[12]",
        "encoder_spread.max_images=10",
        "encoder_spread.permutations=19",
        "progress=false",
    ]
    report = run_experiment("sanity", args, tmp_path / "s").result.objects["report"]
    (c12,) = report["checks"]
    enc = [r for r in report["passes"] if r["network"] == "dinov2"]
    assert [(r["images"], r["n_images"]) for r in enc] == [("samples", 10), ("reference", 10)]
    assert (c12["details"]["n_samples"], c12["details"]["n_reference"]) == (10, 10)
    rng = np.random.default_rng(0)
    si, ri = np.sort(rng.choice(24, 10, replace=False)), np.sort(rng.choice(30, 10, False))
    assert c12["details"]["values"]["fd_pixels"] == pytest.approx(pixel_fd(si, ri), rel=1e-9)


def test_sanity_check_12_counts_networks_not_names(timm, tmp_path):
    """An encoder named like the chosen network gets its own entry (it once overwrote the
    chosen one's), and one identical to the chosen network is measured once, said in a note."""
    dino = ["variant=vits14", "input_size=28"]
    args = [
        "backbone=dinov2",
        *[f"backbone.{k}" for k in dino],
        "backbone.weights=random:0",
        "+backbone@encoders.dinov2=dinov2",
        *[f"encoders.dinov2.{k}" for k in dino],
        "encoders.dinov2.weights=random:1",
        "+backbone@encoders.same=dinov2",
        *[f"encoders.same.{k}" for k in dino],
        "encoders.same.weights=random:0",
        "dataset=synthetic",
        "dataset.count=12",
        "+dataset@reference=synthetic",
        "reference.count=12",
        "reference.seed=1",
        "checks=[12]",
        "encoder_spread.permutations=19",
        "progress=false",
    ]
    out = run_experiment("sanity", args, tmp_path / "s")
    (c12,) = out.result.objects["report"]["checks"]
    assert set(c12["details"]["calls"]) == {"dinov2", "dinov2 (encoders.dinov2)"}
    assert c12["details"]["notes"] == ["encoders.same is the chosen network: measured once"]
    assert c12["value"]["networks"] == 2 and c12["details"]["permutations"] == 19
