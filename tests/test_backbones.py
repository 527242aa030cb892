"""The four backbones on random weights, loaded through the real loading code.

Weights files are written here in each ecosystem's official format (a torch ``.pth`` state
dict, Keras 2's legacy ``.h5`` as keras-applications ships it, a Keras 3 ``.weights.h5``, an
exported SavedModel, a GraphDef and a ``.tgz`` with the 2015 graph's names), including files
with the wrong hash and truncated files.
"""

import os
import subprocess
import sys
import tarfile
from pathlib import Path

import numpy as np
import pytest

from harness import backbones, cache, data, imagenet
from harness.backbones import weights as W
from harness.backbones.random_init import random_iv3_state
from harness.errors import HarnessError, MissingInputError

from .conftest import needs_tf, needs_torch

ROOT = Path(__file__).resolve().parent.parent
REQUIRED_PROVENANCE = {
    "backbone",
    "weights",
    "weights_sha256",
    "resize",
    "bias",
    "classes",
    "num_classes",
    "input_norm",
    "value_range",
    "dtype",
    "device",
    "input_size",
    "framework_versions",
    "class_layout",
    "batch_size",
}


def rel(a, b):
    return float(np.abs(a - b).max() / max(np.abs(b).max(), 1e-12))


ALL = ["tv_net", "keras_net", "tfhub_net", "tf2015_net"]
SHAPES = {"tv_net": 1000, "keras_net": 1000, "tfhub_net": 1001, "tf2015_net": 1008}


@needs_torch
@needs_tf
@pytest.mark.parametrize("fixture", ALL)
def test_shape_batch_independence_determinism_provenance(fixture, request, rnd_images):
    net = request.getfixturevalue(fixture)
    x = rnd_images[:4]
    out = net.logits(x)
    assert out.shape == (4, SHAPES[fixture]) and out.dtype == np.float32
    assert net.num_classes == SHAPES[fixture] == len(net.class_names)
    bs = net.batch_size
    try:
        net.batch_size = 1
        one = net.logits(x)
        net.batch_size = 3
        three = net.logits(x)
    finally:
        net.batch_size = bs
    assert rel(one, out) <= 1e-5 and rel(three, out) <= 1e-5
    np.testing.assert_array_equal(net.logits(x), out)  # deterministic
    prov = net.provenance()
    assert REQUIRED_PROVENANCE <= set(prov), REQUIRED_PROVENANCE - set(prov)
    assert prov["weights"] == "random:0" and prov["weights_note"] == "random weights"
    # the sha256 of the arrays the network was built from, not a label
    assert prov["weights_sha256"] == W.state_sha256(random_iv3_state(0, net.raw_outputs))


@needs_torch
@needs_tf
@pytest.mark.parametrize("fixture", ALL)
def test_bad_inputs_are_one_line_errors(fixture, request, rnd_images):
    net = request.getfixturevalue(fixture)
    bad = [
        (rnd_images.astype(np.float32) / 255, "uint8"),
        (rnd_images[..., :1], "3 \\(RGB\\) channels"),
        (rnd_images[..., 0], "N x H x W x 3"),
        (rnd_images[:0], "empty batch"),
        (rnd_images[:, :8, :8], "minimum side is 16"),
        (np.transpose(rnd_images, (0, 3, 1, 2)), "transpose"),
    ]
    for x, msg in bad:
        with pytest.raises(HarnessError, match=msg) as ei:
            net.logits(x)
        assert "\n" not in str(ei.value)


@needs_torch
@needs_tf
def test_same_random_weights_agree_across_frameworks_given_same_pooling(
    tv_net, keras_net, tfhub_net, rnd_images
):
    """random:<seed> is one network: Keras and TF-Hub match each other; torchvision differs by
    pooling.
    """
    x = rnd_images
    k = backbones.load_backbone("keras", weights="random:0", input_size=75, input_norm="zero_one")
    assert rel(tfhub_net.logits(x)[:, :1000], k.logits(x)) < 1e-5
    tv = backbones.load_backbone(
        "torchvision", weights="random:0", input_size=75, resize="tf2_bilinear"
    )
    assert rel(keras_net.logits(x), tv.logits(x)) > 0.05  # count_include_pad differs


@needs_torch
def test_bias_and_classes_knobs(tv_net, rnd_images):
    x = rnd_images
    with_b = tv_net.logits(x)
    nb = backbones.load_backbone(
        "torchvision", weights="random:0", input_size=75, bias=False, batch_size=4
    )
    fc_b = tv_net.model.fc.bias.detach().numpy()
    np.testing.assert_allclose(
        with_b - nb.logits(x), np.broadcast_to(fc_b, with_b.shape), atol=1e-4
    )
    first = backbones.load_backbone(
        "torchvision", weights="random:0", input_size=75, classes="first1000"
    )
    assert rel(first.logits(x), with_b) < 1e-5
    with pytest.raises(HarnessError, match="classes must be one of all, first1000"):
        backbones.load_backbone("torchvision", weights="random:0", input_size=75, classes="top5")


@needs_tf
def test_tf2015_classes_and_bias(tf2015_net, rnd_images):
    x = rnd_images[:2]
    full = tf2015_net.logits(x)
    sub = backbones.load_backbone("tf2015", weights="random:0", classes="imagenet1000", bias=True)
    np.testing.assert_allclose(
        sub.logits(x), full[:, 1:1001] + tf2015_net._b[1:1001], rtol=1e-5, atol=1e-4
    )
    assert sub.class_names[448] == imagenet.class_names("tf2015_1008")[449] == "tench"
    last = backbones.load_backbone("tf2015", weights="random:0", classes="last1000")
    np.testing.assert_array_equal(last.logits(x), full[:, 8:])


@needs_torch
def test_every_knob_changes_the_cache_key(rnd_images):
    src = data.load_source("synthetic", count=4)
    lc = cache.LogitsCache(enabled=False)
    base = dict(weights="random:0", input_size=75)
    variants = [
        {},
        {"weights": "random:1"},
        {"resize": "tf1_bilinear"},
        {"resize": "torch_bilinear", "align_corners": False},
        {"resize": "antialias"},
        {"resize": "pil_bicubic"},
        {"bias": False},
        {"classes": "imagenet1000"},
        {"input_norm": "zero_one"},
        {"dtype": "float64"},
        {"input_size": 80},
        {"transform_input": True},
    ]
    keys = {lc.key(src, backbones.load_backbone("torchvision", **{**base, **v})) for v in variants}
    assert len(keys) == len(variants)
    # the batch size does not change the numbers, so it does not change the key
    assert lc.key(src, backbones.load_backbone("torchvision", **base, batch_size=2)) in keys
    # the memory layout moves float32 logits by ~5e-5 (measured): it is part of the key
    assert (
        lc.key(src, backbones.load_backbone("torchvision", **base, channels_last=False)) not in keys
    )
    # and the images do
    assert (
        lc.key(
            data.load_source("synthetic", count=4, seed=1),
            backbones.load_backbone("torchvision", **base),
        )
        not in keys
    )


@needs_torch
def test_float64_and_resize_methods_run(rnd_images):
    x = rnd_images[:2]
    ref = backbones.load_backbone("torchvision", weights="random:0", input_size=75).logits(x)
    f64 = backbones.load_backbone(
        "torchvision", weights="random:0", input_size=75, dtype="float64"
    ).logits(x)
    assert rel(f64, ref) < 1e-4
    for r in ("tf1_bilinear", "antialias", "pil_bicubic", "tf2_bilinear"):
        out = backbones.load_backbone(
            "torchvision", weights="random:0", input_size=75, resize=r
        ).logits(x)
        assert out.shape == (2, 1000) and rel(out, ref) > 0  # resize changes the numbers
    with pytest.raises(HarnessError, match="align_corners"):
        backbones.load_backbone("torchvision", weights="random:0", resize="torch_bilinear")
    with pytest.raises(HarnessError, match="resize=none needs 75x75"):
        backbones.load_backbone(
            "torchvision", weights="random:0", input_size=75, resize="none"
        ).logits(x)


def test_unknown_backbone_knob_and_weights():
    with pytest.raises(HarnessError, match="unknown backbone 'inception_v4'"):
        backbones.load_backbone("inception_v4")
    with pytest.raises(HarnessError, match="not understood"):
        W.WeightsSpec.parse("imagenet")


@needs_torch
def test_unknown_knob_and_cuda_without_gpu():
    with pytest.raises(HarnessError, match="unknown parameter 'colour'"):
        backbones.load_backbone("torchvision", weights="random:0", colour="blue")
    import torch

    if not torch.cuda.is_available():
        with pytest.raises(HarnessError, match="no CUDA GPU"):
            backbones.load_backbone("torchvision", weights="random:0", device="cuda")
    with pytest.raises(HarnessError, match="no CUDA path"):
        backbones.load_backbone("tf2015", weights="random:0", device="cuda")
    with pytest.raises(HarnessError, match="float32 only"):
        backbones.load_backbone("tf2015", weights="random:0", dtype="float64")
    with pytest.raises(HarnessError, match="299x299 input only"):
        backbones.load_backbone("tf2015", weights="random:0", input_size=75)


# ------------------------------------------------------------------------------ weights files
@needs_torch
def test_torchvision_pth_file_pretrained_lookup_pin_and_truncation(
    tmp_path, monkeypatch, tv_net, rnd_images
):
    import torch

    sd = {k: v.clone() for k, v in tv_net.model.state_dict().items()}
    path = tmp_path / "mine.pth"
    torch.save(sd, path)
    net = backbones.load_backbone(
        "torchvision", weights=f"file:{path}", input_size=75, batch_size=4
    )
    np.testing.assert_array_equal(net.logits(rnd_images), tv_net.logits(rnd_images))
    assert net.provenance()["weights_sha256"] == W.sha256_of(path)
    # missing official file: one line naming file, pin, directory and both fixes
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "th"))
    with pytest.raises(MissingInputError) as ei:
        backbones.load_backbone("torchvision")
    msg = str(ei.value)
    for part in (
        "inception_v3_google-0cc3c7bd.pth",
        "0cc3c7bd",
        str(tmp_path / "th" / "hub" / "checkpoints"),
        "weights=file:",
        "download.pytorch.org",
    ):
        assert part in msg
    assert "\n" not in msg
    # a file under the official name whose sha256 does not start with the pinned prefix
    ck = tmp_path / "th" / "hub" / "checkpoints"
    ck.mkdir(parents=True)
    (ck / "inception_v3_google-0cc3c7bd.pth").write_bytes(path.read_bytes())
    with pytest.raises(HarnessError, match="does not match the official sha256 0cc3c7bd"):
        backbones.load_backbone("torchvision")
    # user pin
    with pytest.raises(HarnessError, match="weights_sha256=" + "ab" * 32 + " was required"):
        backbones.load_backbone("torchvision", weights=f"file:{path}", weights_sha256="ab" * 32)
    with pytest.raises(HarnessError, match="weights_sha256 must be a full sha256"):
        backbones.load_backbone("torchvision", weights=f"file:{path}", weights_sha256="abc")
    # truncated file
    trunc = tmp_path / "trunc.pth"
    trunc.write_bytes(path.read_bytes()[:1000])
    with pytest.raises(HarnessError, match="truncated, corrupt or not a PyTorch state dict"):
        backbones.load_backbone("torchvision", weights=f"file:{trunc}")
    # a state dict of something else
    torch.save({"w": torch.zeros(3)}, tmp_path / "other.pth")
    with pytest.raises(HarnessError, match="not a torchvision Inception V3 state dict"):
        backbones.load_backbone("torchvision", weights=f"file:{tmp_path / 'other.pth'}")


@needs_torch
@needs_tf
def test_keras_legacy_h5_as_keras_applications_ships_it(tmp_path, rnd_images):
    """A Keras 2 (tf_keras) InceptionV3 saved with save_weights('.h5') loads into Keras 3."""
    tfk = pytest.importorskip("tf_keras")
    tfk.utils.set_random_seed(3)
    old = tfk.applications.InceptionV3(
        weights=None, input_shape=(75, 75, 3), classifier_activation=None
    )
    h5 = tmp_path / "inception_v3_weights_tf_dim_ordering_tf_kernels.h5"
    old.save_weights(str(h5))
    net = backbones.load_backbone("keras", weights=f"file:{h5}", input_size=75)
    x = rnd_images
    from harness import resize as rs

    ref = old.predict_on_batch(rs.resize_numpy(x, (75, 75), "tf2_bilinear") / 127.5 - 1)
    assert rel(net.logits(x), np.asarray(ref)) < 1e-5
    # Keras 3 .weights.h5 round trip
    w3 = tmp_path / "k3.weights.h5"
    net.model.save_weights(str(w3))
    np.testing.assert_allclose(
        backbones.load_backbone("keras", weights=f"file:{w3}", input_size=75).logits(x),
        net.logits(x),
        rtol=1e-6,
        atol=1e-6,
    )
    # float64 (Keras dtype policy): the same function to float32 precision
    f64 = backbones.load_backbone("keras", weights=f"file:{w3}", input_size=75, dtype="float64")
    assert rel(f64.logits(x), net.logits(x)) < 1e-4 and f64.provenance()["dtype"] == "float64"
    # truncated file
    bad = tmp_path / "bad.h5"
    bad.write_bytes(h5.read_bytes()[:4096])
    with pytest.raises(HarnessError, match="cannot load Keras weights"):
        backbones.load_backbone("keras", weights=f"file:{bad}", input_size=75)


@needs_tf
def test_keras_pretrained_lookup_and_md5_pin(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "kh"))
    with pytest.raises(MissingInputError) as ei:
        backbones.load_backbone("keras")
    msg = str(ei.value)
    assert (
        "inception_v3_weights_tf_dim_ordering_tf_kernels.h5" in msg
        and "9a0d58056eeedaa3f26cb7ebd46da564" in msg
    )
    assert str(tmp_path / "kh" / "models") in msg
    (tmp_path / "kh" / "models").mkdir(parents=True)
    (tmp_path / "kh" / "models" / "inception_v3_weights_tf_dim_ordering_tf_kernels.h5").write_bytes(
        b"x" * 100
    )
    with pytest.raises(HarnessError, match="does not match the official md5"):
        backbones.load_backbone("keras")


@needs_tf
def test_tfhub_savedmodel_dir_and_errors(tmp_path, monkeypatch, tfhub_net, rnd_images):
    exported = Path(tfhub_net.provenance()["network_file"])
    net = backbones.load_backbone("tfhub", weights=f"file:{exported}", input_size=75, batch_size=4)
    np.testing.assert_allclose(
        net.logits(rnd_images), tfhub_net.logits(rnd_images), rtol=1e-6, atol=1e-6
    )
    assert len(net.provenance()["weights_sha256"]) == 64
    (tmp_path / "notamodel").mkdir()
    with pytest.raises(HarnessError, match="not a SavedModel directory"):
        backbones.load_backbone("tfhub", weights=f"file:{tmp_path / 'notamodel'}")
    monkeypatch.setenv("TFHUB_CACHE_DIR", str(tmp_path / "hubcache"))
    with pytest.raises(MissingInputError) as ei:
        backbones.load_backbone("tfhub")
    assert "tfhub.dev/google/imagenet/inception_v3/classification/5" in str(ei.value)
    assert str(tmp_path / "hubcache") in str(ei.value)
    by_handle = backbones.load_backbone(
        "tfhub", handle=str(exported), input_size=75, batch_size=4
    )  # a local directory
    np.testing.assert_allclose(
        by_handle.logits(rnd_images), tfhub_net.logits(rnd_images), rtol=1e-6, atol=1e-6
    )
    nb = backbones.load_backbone(
        "tfhub",
        weights=f"file:{exported}",
        input_size=75,
        bias=False,
        classes="imagenet1000",
        batch_size=4,
    )
    np.testing.assert_allclose(
        nb.logits(rnd_images),
        (tfhub_net.logits(rnd_images) - tfhub_net._bias)[:, 1:],
        rtol=1e-5,
        atol=1e-5,
    )


@needs_tf
def test_tf2015_graphdef_tgz_label_map_and_errors(tmp_path, monkeypatch, tf2015_net, rnd_images):
    from harness.backbones.tf2015_graph import random_graph_path

    pb = random_graph_path(0)
    x = rnd_images[:2]
    ref = tf2015_net.logits(x)
    net = backbones.load_backbone("tf2015", weights=f"file:{pb}", batch_size=4)
    np.testing.assert_array_equal(net.logits(x), ref)
    # the official archive layout, with a label map that names output 7 'tench'
    tgz = tmp_path / "inception-2015-12-05.tgz"
    lm = tmp_path / "imagenet_2012_challenge_label_map_proto.pbtxt"
    lm.write_text('entry {\n  target_class: 7\n  target_class_string: "n01440764"\n}\n')
    with tarfile.open(tgz, "w:gz") as t:
        t.add(pb, arcname="classify_image_graph_def.pb")
        t.add(lm, arcname=lm.name)
    monkeypatch.setenv("INCEPTION_NOTE_WEIGHTS", str(tmp_path))
    official = backbones.load_backbone(
        "tf2015", batch_size=4
    )  # pretrained: found in the weights directory
    np.testing.assert_array_equal(official.logits(x), ref)
    assert (
        official.class_names[7] == "tench" and official.provenance()["label_map"] == "from the tgz"
    )
    # truncated archive / GraphDef, and a GraphDef that is not the 2015 graph
    (tmp_path / "t.tgz").write_bytes(tgz.read_bytes()[:5000])
    with pytest.raises(HarnessError, match="truncated or corrupt"):
        backbones.load_backbone("tf2015", weights=f"file:{tmp_path / 't.tgz'}")
    (tmp_path / "t.pb").write_bytes(pb.read_bytes()[:5000])
    with pytest.raises(HarnessError, match="tf2015"):
        backbones.load_backbone("tf2015", weights=f"file:{tmp_path / 't.pb'}")
    import tensorflow as tf

    other = tf.compat.v1.GraphDef()
    other.node.add(name="x", op="NoOp")
    (tmp_path / "o.pb").write_bytes(other.SerializeToString())
    with pytest.raises(HarnessError, match="not the 2015-12-05 Inception graph"):
        backbones.load_backbone("tf2015", weights=f"file:{tmp_path / 'o.pb'}")
    monkeypatch.setenv("INCEPTION_NOTE_WEIGHTS", str(tmp_path / "empty"))
    with pytest.raises(MissingInputError, match="inception-2015-12-05.tgz"):
        backbones.load_backbone("tf2015")


@needs_tf
def test_tf2015_native_resize_happens_inside_the_graph(tf2015_net, rnd_images):
    """native (graph-internal TF1 resize from 32x32) == harness tf1 resize to 299 fed at 299."""
    x = rnd_images[:2]
    ours = backbones.load_backbone("tf2015", weights="random:0", resize="tf2_bilinear")
    assert rel(ours.logits(x), tf2015_net.logits(x)) > 1e-4  # a different resize moves the numbers
    assert tf2015_net.provenance()["resize_location"].startswith("inside the graph")


@needs_torch
@needs_tf
def test_import_order_guard_instead_of_segfault(tmp_path):
    code = (
        "import tensorflow\nfrom harness import backbones\n"
        "backbones.load_backbone('torchvision', weights='random:0', input_size=75)\n"
    )
    r = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        timeout=300,
    )
    assert r.returncode == 1 and "must be imported before TensorFlow" in r.stderr


# ------------------------------------------------------------------------------ cache
class _FlakySource(data.ImageSource):
    """Synthetic images that fail once after ``fail_after`` samples (an interrupted run)."""

    kind = "flaky"

    def __init__(self, n, fail_after=None):
        super().__init__(n=None, order="as_loaded", order_seed=None, progress=False)
        self.inner = data.load_source("synthetic", count=n)
        self.fail_after = fail_after
        self.served = 0

    def _total(self):
        return self.inner._total()

    def _read(self, idx):
        if self.fail_after is not None and self.served >= self.fail_after:
            self.fail_after = None
            raise KeyboardInterrupt
        self.served += len(idx)
        return self.inner._read(idx)

    def _identity(self):
        return self.inner._identity()

    def _resolution(self):
        return (32, 32)


@needs_torch
def test_cache_hit_resume_and_corruption(tmp_path, tv_net):
    lc = cache.LogitsCache(tmp_path / "c", chunk_size=4)
    src = _FlakySource(10, fail_after=4)
    with pytest.raises(KeyboardInterrupt):
        lc.get(tv_net, src, progress=False)
    assert len(list((lc.entry_dir(lc.key(src, tv_net)) / "chunks").glob("*.npz"))) == 1
    resumed = lc.get(tv_net, src, progress=False, features=False)
    assert resumed.n_computed == 6 and not resumed.from_cache
    full = tv_net.logits(data.load_source("synthetic", count=10).read_all())
    np.testing.assert_allclose(resumed.logits, full, rtol=1e-6, atol=1e-6)
    hit = lc.get(tv_net, src, progress=False)
    assert hit.from_cache and hit.n_computed == 0
    np.testing.assert_array_equal(hit.logits, resumed.logits)
    # features asked for later: recomputed with them, then cached
    f = lc.get(tv_net, src, features=True, progress=False)
    assert f.pool.shape == (10, 2048) and not f.from_cache
    assert lc.get(tv_net, src, features=True, progress=False).from_cache
    # corrupt the array: detected, warned, recomputed
    d = lc.entry_dir(hit.key)
    arr = d / "logits.npy"
    arr.write_bytes(arr.read_bytes()[:-8] + b"\0" * 8)
    with pytest.warns(UserWarning, match="corrupt"):
        again = lc.get(tv_net, src, progress=False)
    assert not again.from_cache
    np.testing.assert_array_equal(again.logits, resumed.logits)
    assert not list(d.glob(".*"))  # no temp files left


# ------------------------------------------------------------------------------ numpy reference
@needs_torch
@needs_tf
def test_frameworks_match_the_numpy_reference_implementation(
    tv_net, keras_net, tf2015_net, rnd_images
):
    """An independent float64 numpy Inception V3 (iv3_numpy) with each framework's pooling."""
    from harness import resize as rs
    from harness.backbones.iv3_arch import PoolSemantics
    from harness.backbones.iv3_numpy import NumpyIV3
    from harness.backbones.random_init import random_iv3_state

    x = rnd_images[:2]
    sd = random_iv3_state(0, 1008)
    sd1000 = {**sd, "fc.weight": sd["fc.weight"][:1000], "fc.bias": sd["fc.bias"][:1000]}
    x75_tv = rs.resize_numpy(x, (75, 75), "torch_bilinear", True, dtype=np.float64) / 127.5 - 1
    ref_tv = NumpyIV3(sd1000, PoolSemantics.of("torchvision")).logits(x75_tv)
    assert rel(tv_net.logits(x), ref_tv) < 1e-4
    x75_k = rs.resize_numpy(x, (75, 75), "tf2_bilinear", dtype=np.float64) / 127.5 - 1
    ref_k = NumpyIV3(sd1000, PoolSemantics.of("keras")).logits(x75_k)
    assert rel(keras_net.logits(x), ref_k) < 1e-4
    x299 = (rs.resize_numpy(x, (299, 299), "tf1_bilinear", dtype=np.float64) - 128) / 128
    ref_tf = NumpyIV3(sd, PoolSemantics.of("tf2015")).logits(x299, bias=False)
    assert rel(tf2015_net.logits(x), ref_tf) < 1e-4
    # and the pooling semantics really matter: the same weights under torchvision's pools differ
    assert rel(NumpyIV3(sd1000, PoolSemantics.of("torchvision")).logits(x75_k), ref_k) > 1e-2


def test_random_weights_are_input_sensitive():
    """The calibrated canonical random network gives different images different classes."""
    from harness import scores
    from harness.backbones.iv3_arch import PoolSemantics
    from harness.backbones.iv3_numpy import NumpyIV3
    from harness.backbones.random_init import calibration_batch, random_iv3_state

    sd = random_iv3_state(0, 1000)
    p = scores.softmax(NumpyIV3(sd, PoolSemantics.of("keras")).logits(calibration_batch(0)))
    assert scores.inception_score(p, 1).mean > 1.2  # uncalibrated (identity BN): 1.0003
    assert len(set(p.argmax(1))) >= 6


@needs_torch
@needs_tf
def test_keras_on_the_torch_backend_matches_tensorflow_backend(tmp_path, rnd_images):
    """keras_backend=torch (a fresh process: the backend is fixed at Keras' first import)."""
    np.save(tmp_path / "x.npy", rnd_images[:2])
    code = (
        "import numpy as np\nfrom harness import backbones\n"
        f"x = np.load({str(tmp_path / 'x.npy')!r})\n"
        "net = backbones.load_backbone('keras', weights='random:0', input_size=75,\n"
        "                              keras_backend='torch')\n"
        f"np.save({str(tmp_path / 'out.npy')!r}, net.logits(x))\n"
        "print(net.provenance()['framework_versions'])\n"
    )
    r = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert r.returncode == 0, r.stderr[-2000:]
    assert "'torch'" in r.stdout
    tf_backend = backbones.load_backbone("keras", weights="random:0", input_size=75).logits(
        rnd_images[:2]
    )
    assert rel(np.load(tmp_path / "out.npy"), tf_backend) < 1e-4
    # and a process that already has Keras on TensorFlow refuses the other backend in one line
    with pytest.raises(HarnessError, match="already loaded with backend tensorflow"):
        backbones.load_backbone("keras", weights="random:0", input_size=75, keras_backend="torch")
