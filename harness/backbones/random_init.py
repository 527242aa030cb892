"""``weights=random:<seed>``: one canonical random Inception V3, the same in every framework.

Frameworks' own initialisers are no use here: torchvision's (truncated normal, std 0.1) with
eval-mode BatchNorm (mean 0, var 1) gives logits of order 1e7, so every softmax is one-hot.
Instead every conv is drawn He-normal (std sqrt(2 / fan_in), variance preserving through ReLU),
BatchNorm is near identity (gamma 1, beta 0, mean 0, var 1), and the classifier is drawn with
std ``FC_GAIN / sqrt(2048)`` plus a small bias, so class probabilities are neither flat nor
one-hot.  Weights are generated in numpy from :mod:`iv3_arch` in torchvision's naming and
layout; each backbone converts them (:mod:`harness.porting`), so ``random:<seed>`` is the same
network everywhere and any difference between backbones is the implementation's.
"""

from __future__ import annotations

import numpy as np

from .iv3_arch import POOL_FEATURES, all_convs

FC_GAIN = 8.0
RANDOM_INIT_VERSION = 1


def random_iv3_state(seed: int, num_outputs: int = 1000) -> dict:
    """torchvision-layout float32 numpy state dict (conv OIHW, fc (C x 2048))."""
    rng = np.random.default_rng([int(seed), RANDOM_INIT_VERSION])
    sd = {}
    for c in all_convs():
        kh, kw = c.k
        fan_in = c.cin * kh * kw
        sd[f"{c.torch}.conv.weight"] = (rng.standard_normal((c.cout, c.cin, kh, kw))
                                        * np.sqrt(2.0 / fan_in)).astype(np.float32)
        sd[f"{c.torch}.bn.weight"] = np.ones(c.cout, np.float32)
        sd[f"{c.torch}.bn.bias"] = np.zeros(c.cout, np.float32)
        sd[f"{c.torch}.bn.running_mean"] = np.zeros(c.cout, np.float32)
        sd[f"{c.torch}.bn.running_var"] = np.ones(c.cout, np.float32)
    # the classifier is drawn for 1008 outputs and cut, so 1000/1001/1008-class heads share rows
    fc = rng.standard_normal((1008, POOL_FEATURES)) * (FC_GAIN / np.sqrt(POOL_FEATURES))
    bias = rng.standard_normal(1008) * 0.5
    sd["fc.weight"] = fc[:num_outputs].astype(np.float32)
    sd["fc.bias"] = bias[:num_outputs].astype(np.float32)
    return sd
