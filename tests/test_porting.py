"""Porting weights between torchvision, Keras and the 2015 graph; the pooling compat knobs."""

import json
from pathlib import Path

import numpy as np
import pytest

from harness import backbones
from harness.backbones import porting
from harness.backbones.random_init import random_iv3_state
from harness.errors import HarnessError

from .conftest import needs_tf, needs_torch

keras_iv3 = pytest.importorskip("harness.backbones.keras_iv3")
torchvision_state_to_keras = keras_iv3.torchvision_state_to_keras
keras_to_torchvision_state = keras_iv3.keras_to_torchvision_state

pytestmark = [needs_torch, needs_tf]


def rel(a, b):
    return float(np.abs(a - b).max() / np.abs(b).max())


@pytest.fixture(scope="module")
def keras_model():
    from harness.backbones.keras_iv3 import import_keras

    keras = import_keras("tensorflow")
    return keras.applications.InceptionV3(
        weights=None, input_shape=(75, 75, 3), classifier_activation=None
    )


def test_round_trip_torchvision_keras_torchvision_is_exact(keras_model):
    sd = random_iv3_state(5, 1000)  # gamma = 1: the folding is the identity
    torchvision_state_to_keras(keras_model, sd)
    back = keras_to_torchvision_state(keras_model)
    assert set(back) == set(sd)
    for k in sd:
        np.testing.assert_array_equal(back[k], sd[k], err_msg=k)


def test_round_trip_keras_torchvision_keras_is_exact_and_gamma_folds(keras_model):
    rng = np.random.default_rng(0)
    ws = [
        w + rng.normal(0, 0.01, w.shape).astype(w.dtype) if w.ndim else w
        for w in keras_model.get_weights()
    ]
    for w in ws:  # keep variances positive
        np.abs(w, out=w) if w.ndim == 1 else None
    keras_model.set_weights(ws)
    sd = keras_to_torchvision_state(keras_model)
    torchvision_state_to_keras(keras_model, sd)
    for a, b in zip(keras_model.get_weights(), ws):
        np.testing.assert_array_equal(a, b)
    # gamma != 1 has no place in Keras (BatchNormalization(scale=False)): it is folded into the
    # kernel and the mean; the port is then exact as a function, not tensor for tensor
    sd = random_iv3_state(5, 1000)
    sd = {k: (v * 1.7 if k.endswith("bn.weight") else v) for k, v in sd.items()}
    torchvision_state_to_keras(keras_model, sd)
    back = keras_to_torchvision_state(keras_model)
    c = "Conv2d_1a_3x3"
    np.testing.assert_allclose(back[f"{c}.conv.weight"], 1.7 * sd[f"{c}.conv.weight"], rtol=1e-6)
    np.testing.assert_allclose(
        back[f"{c}.bn.running_mean"], 1.7 * sd[f"{c}.bn.running_mean"], rtol=1e-6
    )
    assert (back[f"{c}.bn.weight"] == 1).all()


def test_layer_by_layer_agreement_and_the_compat_knob(rnd_images):
    """Block outputs mixed0..mixed10 of torchvision (Keras pooling) and Keras agree; without it they
    do not.
    """
    import torch

    x = rnd_images[:2]
    tv = backbones.load_backbone(
        "torchvision", weights="random:3", input_size=75, resize="tf2_bilinear", pool_compat="keras"
    )
    tv_plain = backbones.load_backbone(
        "torchvision", weights="random:3", input_size=75, resize="tf2_bilinear"
    )
    k = backbones.load_backbone("keras", weights="ported:torchvision:random:3", input_size=75)
    import keras

    names = [f"mixed{i}" for i in range(11)]
    sub = keras.Model(k.model.inputs, [k.model.get_layer(n).output for n in names])
    k_outs = [np.asarray(o) for o in sub.predict_on_batch(k.preprocess(x))]
    from harness.backbones.torchvision_iv3 import _POOL_BLOCKS, _STAGES

    for net, expect_close in ((tv, True), (tv_plain, False)):
        with torch.inference_mode():
            h = net.preprocess(x)
            outs = []
            for stage in _STAGES:
                blk = getattr(net.model, stage)
                if net.pool_compat != "torchvision" and stage in _POOL_BLOCKS:
                    h = _POOL_BLOCKS[stage](blk, h, net._pool_fn(stage))
                else:
                    h = blk(h)
                if stage.startswith("Mixed"):
                    outs.append(h.permute(0, 2, 3, 1).numpy())
        errs = [rel(a, b) for a, b in zip(outs, k_outs)]
        if expect_close:
            assert max(errs) < 1e-4, errs
        else:
            assert errs[0] > 1e-3  # the very first block already differs
    # the compat knob closes the gap on the logits, measured with and without
    base = tv_plain.logits(x)
    k_native = k.logits(x)
    k_tvpool = backbones.load_backbone(
        "keras", weights="ported:torchvision:random:3", input_size=75, pool_compat="torchvision"
    ).logits(x)
    assert rel(k_native, base) > 0.05 and rel(k_tvpool, base) < 1e-4


def test_2015_graph_runs_in_pytorch_and_keras_from_the_graphdef(tmp_path, rnd_images):
    """The GraphDef's constants -> torchvision module (1008 classes, TF pooling, no bias): same
    logits.
    """
    import tarfile

    from harness.backbones.tf2015_graph import random_graph_path

    pb = random_graph_path(1)
    tgz = tmp_path / "inception-2015-12-05.tgz"
    with tarfile.open(tgz, "w:gz") as t:
        t.add(pb, arcname="classify_image_graph_def.pb")
    x = rnd_images[:2]
    graph = backbones.load_backbone("tf2015", weights=f"file:{tgz}", batch_size=2).logits(x)
    common = dict(resize="tf1_bilinear", input_norm="centered_128", bias=False, batch_size=2)
    tv = backbones.load_backbone(
        "torchvision", weights=f"ported:tf2015:file:{tgz}", pool_compat="tf2015", **common
    )
    tv_wrong = backbones.load_backbone("torchvision", weights=f"ported:tf2015:file:{tgz}", **common)
    assert tv.num_classes == 1008 and tv.class_layout == "tf2015_1008"
    assert rel(tv.logits(x), graph) < 1e-4
    assert rel(tv_wrong.logits(x), graph) > 1e-2  # torchvision's own pooling: not the 2015 network
    k = backbones.load_backbone(
        "keras", weights=f"ported:tf2015:file:{tgz}", pool_compat="tf2015", **common
    )
    assert rel(k.logits(x), graph) < 1e-4
    # the first-class name for that network, reading the graph without TensorFlow
    t2 = backbones.load_backbone("tf2015_torch", weights=f"file:{tgz}", batch_size=2)
    assert rel(t2.logits(x), graph) < 1e-4 and t2.class_layout == "tf2015_1008"
    np.testing.assert_array_equal(t2.logits(x), tv.logits(x))
    prov = tv.provenance()
    assert (
        prov["weights_sha256"].startswith("ported:tf2015:")
        and prov["port_version"] == porting.PORT_VERSION
    )
    side = json.loads(Path(prov["ported_cache"]).with_suffix(".json").read_text())
    assert side["source_sha256"] == prov["source_sha256"] and side["source_backbone"] == "tf2015"


def test_keras_weights_in_the_2015_graph(rnd_images):
    from harness import imagenet

    x = rnd_images[:2]
    kk = backbones.load_backbone(
        "keras",
        weights="random:2",
        pool_compat="tf2015",
        input_norm="centered_128",
        resize="tf1_bilinear",
        batch_size=2,
    )
    g = backbones.load_backbone(
        "tf2015", weights="ported:keras:random:2", classes="imagenet1000", bias=True, batch_size=2
    )
    dev = imagenet.devkit_id_to_index()
    assert rel(g.logits(x), kk.logits(x)[:, [dev[i] for i in range(1, 1001)]]) < 1e-4
    assert g.class_names[448] == "tench"  # class names follow the weights into the 1008 layout


def test_class_layout_mappings_are_inverse():
    sd = random_iv3_state(0, 1000)
    back = porting.to_1000_layout(porting.to_1008_layout(sd))
    np.testing.assert_array_equal(back["fc.weight"], sd["fc.weight"])


def test_unsupported_pairs_are_one_line_errors():
    with pytest.raises(
        HarnessError, match="ported:tfhub: backbone torchvision runs ported weights of keras"
    ):
        backbones.load_backbone("torchvision", weights="ported:tfhub")
    with pytest.raises(HarnessError, match="tfhub runs ported weights of none only"):
        backbones.load_backbone("tfhub", weights="ported:torchvision:random:0")
    with pytest.raises(HarnessError, match="runs ported weights of keras, tf2015 only"):
        backbones.load_backbone("torchvision", weights="ported:torchvision:random:0")
    with pytest.raises(HarnessError, match="ported:resnet: backbone keras runs ported weights"):
        backbones.load_backbone("keras", weights="ported:resnet")
    with pytest.raises(HarnessError, match="pool_compat must be"):
        backbones.load_backbone("torchvision", weights="random:0", pool_compat="caffe")
