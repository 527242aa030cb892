"""The 2015 network's weights in the layout of the peer libraries' PyTorch ports.

torch-fidelity's ``FeatureExtractorInceptionV3`` and pytorch-fid's ``InceptionV3``
(``use_fid_inception=True``) both hold the 2015-12-05 graph in torchvision's module names with
1008 classes (``fc``: 1008 x 2048 with bias) and affine BatchNorm (eps 1e-3); torchmetrics runs
torch-fidelity's.  :func:`peer_state_dict` turns the harness's canonical state (read from the
graph, :mod:`harness.backbones.graphdef`, with the graph's ``scale_after_normalization``
honoured) into that layout, and :func:`export_2015_weights` writes it as a ``.pth``:

>>> from harness.export import export_2015_weights                    # doctest: +SKIP
>>> export_2015_weights("weights-inception-2015-12-05.pth")          # doctest: +SKIP

Load it with ``FeatureExtractorInceptionV3(..., feature_extractor_weights_path=<file>)`` or
``torch_fidelity.calculate_metrics(..., feature_extractor_weights_path=<file>)``.

An exported file is not a published file: loaded back here (``weights=file:<path>``) it is
UNVERIFIED WEIGHTS (its sha256 matches no published file, so exported random weights keep a
banner on every output), and random weights are never written under a published file's name
(``pt_inception-2015-12-05-6726825d.pth`` ...), where the peers' caches would load them as the
real network without checking a hash.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .backbones import backbone_class, porting
from .backbones import weights as W
from .errors import HarnessError


def peer_state_dict(state: dict) -> dict:
    """Canonical state (1000 or 1008 classes) -> torch tensors in the peers' layout (1008)."""
    import torch

    sd = porting.to_1008_layout(state)
    out = {
        k: torch.from_numpy(np.ascontiguousarray(np.asarray(v, dtype=np.float32)))
        for k, v in sd.items()
    }
    for k in list(out):
        if k.endswith(".bn.running_var"):
            out[k.replace("running_var", "num_batches_tracked")] = torch.tensor(0)
    return out


def export_2015_weights(path, weights: str = "pretrained", cache_dir=None) -> Path:
    """Write the 2015 graph's weights (``weights`` as for ``tf2015_torch``) as a peer ``.pth``."""
    import torch

    from .results import atomic_path

    cls = backbone_class("tf2015_torch")
    spec = W.WeightsSpec.parse(weights)
    path = Path(path)
    known = W.published_filename(path.name)
    if spec.is_random and known is not None:
        raise HarnessError(
            f"export_2015_weights: {path.name} is the name of the published file "
            f"'{known.name}', and weights={weights} are random: a peer's cache would load them "
            "as the real network; choose another file name (e.g. tf2015_random0.pth)"
        )
    if spec.kind == "random":
        state = W.random_weights(spec, cls.raw_outputs, cache_dir).state
    else:
        res = W.locate_file(
            cls.name, spec, cls.official_artifact() if spec.kind == "pretrained" else None, False
        )
        state = cls.read_state(res.path)
    with atomic_path(path, suffix=".pth") as tmp:
        torch.save(peer_state_dict(state), tmp)
    return path
