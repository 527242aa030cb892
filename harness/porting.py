"""Moving Inception V3 weights between torchvision, Keras and the 2015 TF graph.

The canonical layout is torchvision's state dict (conv OIHW, BatchNorm weight/bias/running
stats, ``fc.weight`` C x 2048).  Conversions:

* torchvision -> Keras: conv kernels OIHW -> HWIO.  Keras' InceptionV3 BatchNorm has no scale
  (``scale=False``), so gamma is folded into the conv kernel and the moving mean:
  gamma (x - mu) / sqrt(v + eps) + beta == (gamma x - gamma mu) / sqrt(v + eps) + beta,
  i.e. kernel' = gamma * kernel, mean' = gamma * mean, var and beta unchanged (exact).
* Keras -> torchvision: HWIO -> OIHW, gamma = 1.
* 2015 graph -> torchvision layout: ``<prefix>/conv2d_params`` (HWIO) and
  ``<prefix>/batchnorm/{beta,gamma,moving_mean,moving_variance}`` per :mod:`iv3_arch`; gamma is
  used only if the graph's BatchNorm op has ``scale_after_normalization``; ``softmax/weights``
  (2048 x 1008) -> ``fc.weight``.
"""

from __future__ import annotations

import re

import numpy as np

from .backbones.iv3_arch import all_convs
from .errors import HarnessError

PORT_VERSION = 1
BN_EPS = 1e-3


# ------------------------------------------------------------------------------ Keras
def _suffix(name: str) -> int:
    m = re.search(r"_(\d+)$", name)
    return int(m.group(1)) if m else 0


def keras_conv_bn_layers(model):
    """Conv2D and BatchNormalization layers of a Keras InceptionV3 in creation order."""
    convs = [lay for lay in model.layers if type(lay).__name__ == "Conv2D"]
    bns = [lay for lay in model.layers if type(lay).__name__ == "BatchNormalization"]
    convs.sort(key=lambda lay: _suffix(lay.name))
    bns.sort(key=lambda lay: _suffix(lay.name))
    if len(convs) != len(all_convs()) or len(bns) != len(convs):
        raise HarnessError(f"model has {len(convs)} convs / {len(bns)} BatchNorms; not Inception V3 (94)")
    return convs, bns


def torchvision_state_to_keras(model, sd: dict) -> None:
    """Load a torchvision-layout state dict (numpy or torch tensors) into a Keras InceptionV3."""
    convs, bns = keras_conv_bn_layers(model)
    for spec, conv, bn in zip(all_convs(), convs, bns):
        w = _np(sd[f"{spec.torch}.conv.weight"]).astype(np.float64)       # O I H W
        gamma = _np(sd[f"{spec.torch}.bn.weight"]).astype(np.float64)
        kernel = np.transpose(w * gamma[:, None, None, None], (2, 3, 1, 0))   # H W I O
        if tuple(conv.kernel.shape) != kernel.shape:
            raise HarnessError(f"{spec.torch}: kernel {kernel.shape} does not fit Keras layer {conv.name} {tuple(conv.kernel.shape)}")
        conv.set_weights([kernel.astype(conv.kernel.dtype)])
        mean = _np(sd[f"{spec.torch}.bn.running_mean"]).astype(np.float64) * gamma
        var = _np(sd[f"{spec.torch}.bn.running_var"]).astype(np.float64)
        beta = _np(sd[f"{spec.torch}.bn.bias"]).astype(np.float64)
        dt = bn.moving_mean.dtype
        bn.set_weights([beta.astype(dt), mean.astype(dt), var.astype(dt)])
    dense = model.get_layer("predictions")
    fw, fb = _np(sd["fc.weight"]), _np(sd["fc.bias"])
    if tuple(dense.kernel.shape) != (fw.shape[1], fw.shape[0]):
        raise HarnessError(f"classifier {fw.shape} does not fit Keras predictions {tuple(dense.kernel.shape)}")
    dense.set_weights([fw.T.astype(dense.kernel.dtype), fb.astype(dense.kernel.dtype)])


def keras_to_torchvision_state(model) -> dict:
    """torchvision-layout numpy state dict from a Keras InceptionV3 (gamma = 1)."""
    convs, bns = keras_conv_bn_layers(model)
    sd = {}
    for spec, conv, bn in zip(all_convs(), convs, bns):
        (kernel,) = conv.get_weights()
        beta, mean, var = bn.get_weights()
        sd[f"{spec.torch}.conv.weight"] = np.transpose(kernel, (3, 2, 0, 1)).copy()
        sd[f"{spec.torch}.bn.weight"] = np.ones_like(beta)
        sd[f"{spec.torch}.bn.bias"] = beta
        sd[f"{spec.torch}.bn.running_mean"] = mean
        sd[f"{spec.torch}.bn.running_var"] = var
    w, b = model.get_layer("predictions").get_weights()
    sd["fc.weight"], sd["fc.bias"] = w.T.copy(), b
    return sd


def _np(v) -> np.ndarray:
    if hasattr(v, "detach"):
        return v.detach().cpu().numpy()
    return np.asarray(v)


# ------------------------------------------------------------------------------ 2015 graph
def tf2015_graph_to_torchvision_state(gd) -> dict:
    """torchvision-layout numpy state (1008 classes) from the 2015 GraphDef's constants."""
    from .backbones.tf2015_graph import graph_constants

    consts = graph_constants(gd)
    bn_nodes = {n.name: n for n in gd.node if n.op == "BatchNormWithGlobalNormalization"}
    sd, eps_seen = {}, set()
    for c in all_convs():
        try:
            w = consts[f"{c.tf}/conv2d_params"]
            beta = consts[f"{c.tf}/batchnorm/beta"]
            mean = consts[f"{c.tf}/batchnorm/moving_mean"]
            var = consts[f"{c.tf}/batchnorm/moving_variance"]
            gamma = consts[f"{c.tf}/batchnorm/gamma"]
        except KeyError as exc:
            raise HarnessError(f"2015 graph lacks {exc.args[0]}; cannot port it") from None
        node = bn_nodes.get(f"{c.tf}/batchnorm")
        if node is not None:
            eps_seen.add(round(node.attr["variance_epsilon"].f, 9))
            if not node.attr["scale_after_normalization"].b:
                gamma = np.ones_like(gamma)  # the op ignores gamma then
        sd[f"{c.torch}.conv.weight"] = np.transpose(w, (3, 2, 0, 1)).astype(np.float32)
        sd[f"{c.torch}.bn.weight"] = gamma.astype(np.float32)
        sd[f"{c.torch}.bn.bias"] = beta.astype(np.float32)
        sd[f"{c.torch}.bn.running_mean"] = mean.astype(np.float32)
        sd[f"{c.torch}.bn.running_var"] = var.astype(np.float32)
    if eps_seen and eps_seen != {round(BN_EPS, 9)}:
        raise HarnessError(f"2015 graph uses BatchNorm epsilon {sorted(eps_seen)}, not {BN_EPS}; port not exact")
    sd["fc.weight"] = consts["softmax/weights"].T.astype(np.float32).copy()
    sd["fc.bias"] = consts["softmax/biases"].astype(np.float32)
    return sd


def to_1008_layout(sd: dict) -> dict:
    """A 1000-class (sorted-wnid) classifier placed at the 2015 graph's indices (devkit ids);
    the 8 unused outputs get zero weights and zero bias."""
    from .imagenet import devkit_table, sorted_wnids

    if sd["fc.weight"].shape[0] == 1008:
        return sd
    if sd["fc.weight"].shape[0] != 1000:
        raise HarnessError(f"cannot map a {sd['fc.weight'].shape[0]}-class classifier to the 2015 graph's 1008")
    pos = {w: i for i, w in enumerate(sorted_wnids())}
    w = np.zeros((1008, sd["fc.weight"].shape[1]), np.float32)
    b = np.zeros(1008, np.float32)
    for dev_id, wnid, _ in devkit_table():
        w[dev_id] = sd["fc.weight"][pos[wnid]]
        b[dev_id] = sd["fc.bias"][pos[wnid]]
    return {**sd, "fc.weight": w, "fc.bias": b}


def to_1000_layout(sd: dict) -> dict:
    """The 2015 graph's 1008 outputs reduced to the 1000 ImageNet classes in sorted-wnid order."""
    from .imagenet import devkit_table, sorted_wnids

    if sd["fc.weight"].shape[0] == 1000:
        return sd
    pos = {w: i for i, w in enumerate(sorted_wnids())}
    w = np.zeros((1000, sd["fc.weight"].shape[1]), np.float32)
    b = np.zeros(1000, np.float32)
    for dev_id, wnid, _ in devkit_table():
        w[pos[wnid]] = sd["fc.weight"][dev_id]
        b[pos[wnid]] = sd["fc.bias"][dev_id]
    return {**sd, "fc.weight": w, "fc.bias": b}


# ------------------------------------------------------------------------------ ported:<src>
PORTABLE = {"torchvision": ("keras", "tf2015"), "keras": ("torchvision", "tf2015"),
            "tf2015": ("torchvision", "keras")}


def _load_source(spec, allow_download: bool):
    """(torchvision-layout numpy state, source sha256 label, source path) of the source weights."""
    from .backbones import weights as W
    from .backbones.weights import WeightsSpec

    src, sub = spec.source_backbone, WeightsSpec.parse(spec.source_spec)
    if sub.kind == "ported":
        raise HarnessError("weights=ported:... cannot itself take ported source weights")
    if sub.kind == "random":
        from .backbones.random_init import random_iv3_state

        return random_iv3_state(sub.seed, 1008 if src == "tf2015" else 1000), f"random:{sub.seed}", None
    path, hashes = W.locate(src, sub, allow_download)
    if src == "torchvision":
        from .backbones.base import import_torch
        from .backbones.torchvision_iv3 import load_state_dict_file

        torch = import_torch()
        sd = {k: v.numpy() for k, v in load_state_dict_file(path, torch).items()
              if not k.startswith("AuxLogits.") and not k.endswith("num_batches_tracked")}
    elif src == "keras":
        import sys

        from .backbones.keras_iv3 import import_keras

        keras = import_keras(sys.modules["keras"].backend.backend() if "keras" in sys.modules else "tensorflow")
        model = keras.applications.InceptionV3(include_top=True, weights=None, classifier_activation=None)
        try:
            model.load_weights(str(path))
        except Exception as exc:
            raise HarnessError(f"cannot load Keras weights {path} ({type(exc).__name__})") from None
        sd = keras_to_torchvision_state(model)
    elif src == "tf2015":
        from .backbones.base import import_tensorflow
        from .backbones.tf2015_graph import parse_graphdef, read_graph_bytes

        data, _ = read_graph_bytes(path)
        sd = tf2015_graph_to_torchvision_state(parse_graphdef(data, path, import_tensorflow()))
    else:
        raise HarnessError(f"cannot port weights from {src}")
    return sd, hashes["sha256"], path


def ported_state_dict(spec, target: str, allow_download: bool = False):
    """(torchvision-layout numpy state, provenance hashes, source path) for weights=ported:<src>[:<w>].

    The converted state is cached in ``<weights dir>/ported/`` with a JSON sidecar (source
    backbone, source weights, source sha256, port version).
    """
    import json

    from .backbones import weights as W
    from .results import atomic_path, write_json

    src = spec.source_backbone
    if src not in PORTABLE:
        raise HarnessError(f"weights=ported:{src}: cannot port from {src}; sources: {', '.join(PORTABLE)}")
    if target not in PORTABLE[src]:
        raise HarnessError(f"weights=ported:{src} for backbone {target} is not supported; "
                           f"{src} weights port to {', '.join(PORTABLE[src])}")
    sd, src_sha, src_path = _load_source(spec, allow_download)
    cache_dir = W.OFFICIAL["tf2015"].directory() / "ported"
    tag = src_sha.replace(":", "_")[:24]
    npz = cache_dir / f"{src}_{tag}_v{PORT_VERSION}.npz"
    if not npz.exists():
        cache_dir.mkdir(parents=True, exist_ok=True)
        with atomic_path(npz, suffix=".npz") as tmp, open(tmp, "wb") as f:
            np.savez(f, **sd)
        write_json(npz.with_suffix(".json"), {"source_backbone": src, "source_weights": spec.source_spec,
                                              "source_sha256": src_sha, "source_path": str(src_path),
                                              "port_version": PORT_VERSION, "layout": "torchvision state dict"})
    else:
        with np.load(npz) as z:
            sd = {k: z[k] for k in z.files}
    meta = json.loads(npz.with_suffix(".json").read_text()) if npz.with_suffix(".json").exists() else {}
    hashes = {"sha256": f"ported:{src}:{src_sha}:v{PORT_VERSION}", "md5": None,
              "source_sha256": src_sha, "port_version": PORT_VERSION, "ported_cache": str(npz), **meta}
    return sd, hashes, src_path


# ------------------------------------------------------------------------------ Keras pooling compat
def keras_pool_compat(model, mode: str):
    """A Keras InceptionV3 whose in-block average pools follow another implementation.

    ``torchvision``: count padded zeros (count_include_pad=True); ``tf2015``: as Keras, but the
    last block's pool is a max pool (the 2015 graph's mixed_10).  The result is a fresh model with
    the same layer names and weight order (weights are loaded into it afterwards).
    """
    import keras

    if mode not in ("keras", "torchvision", "tf2015"):
        raise HarnessError(f"pool_compat must be keras, torchvision or tf2015, got {mode!r}")
    if mode == "keras":
        return model
    pools = sorted((lay for lay in model.layers if type(lay).__name__ == "AveragePooling2D"),
                   key=lambda lay: _suffix(lay.name))
    last = pools[-1].name

    class CountPadAvgPool(keras.layers.Layer):
        def call(self, x):
            x = keras.ops.pad(x, [[0, 0], [1, 1], [1, 1], [0, 0]])
            return keras.ops.average_pool(x, 3, 1, "valid")

    def clone(layer):
        if type(layer).__name__ != "AveragePooling2D":
            return layer.__class__.from_config(layer.get_config())
        if mode == "torchvision":
            return CountPadAvgPool(name=f"{layer.name}_count_pad", dtype=layer.dtype_policy)
        if layer.name == last:
            return keras.layers.MaxPooling2D((3, 3), strides=(1, 1), padding="same", name=f"{layer.name}_max",
                                             dtype=layer.dtype_policy)
        return layer

    return keras.models.clone_model(model, clone_function=clone)
