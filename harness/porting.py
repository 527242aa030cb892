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


# ------------------------------------------------------------------------------ ported:<src>
def ported_state_dict(spec, target: str, allow_download: bool = False):
    """(torchvision-layout state dict, hashes of the source, source path) for weights=ported:..."""
    raise HarnessError(
        f"weights=ported:{spec.source_backbone} for {target} is not available yet; "
        "use pretrained, file:<path> or random:<seed>")
