"""``tf2015_torch``: the original 2015-12-05 Inception network, in PyTorch.

The weights of the original IS code's graph (``inception-2015-12-05.tgz`` or its
``classify_image_graph_def.pb``, read without TensorFlow by :mod:`harness.backbones.graphdef`)
run in torchvision's Inception V3 with the graph's own semantics: in-block average pools that
exclude padding, a max pool in the last block's pool branch (``mixed_10``), input (x - 128) / 128,
TF1 bilinear resize to 299 from the original resolution, 1008 outputs, logits without the
classifier bias.  This is the network torch-fidelity (``FeatureExtractorInceptionV3``), pytorch-fid
(``use_fid_inception=True``) and torchmetrics run; on identical inputs it matches the TF1 graph
(``tf2015``) to ~1.6e-6 relative (tests), so GPU users get the original network without
TensorFlow.  ``weights=file:`` also takes a ``.pth`` state dict in torch-fidelity's / pytorch-fid's
layout (e.g. ``weights-inception-2015-12-05-6726825d.pth``).
"""

from __future__ import annotations

import tarfile
from pathlib import Path

from . import weights as W
from .tf2015_graph import TF2015_ARTIFACT, TF2015_PUBLISHED, TF2015Graph
from .torchvision_iv3 import TorchvisionIV3, load_state_dict_file

#: the 2015 graph converted to PyTorch: pytorch-fid's release file (clean-fid downloads the same
#: URL) and torch-fidelity's carry the same published sha256 prefix in their names
PEER_2015_PUBLISHED = W.PublishedWeights(
    "pytorch-fid/torch-fidelity inception-2015-12-05-6726825d",
    "pt_inception-2015-12-05-6726825d.pth / weights-inception-2015-12-05-6726825d.pth",
    "https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/"
    "pt_inception-2015-12-05-6726825d.pth; https://github.com/toshas/torch-fidelity/releases/"
    "download/v0.2.0/weights-inception-2015-12-05-6726825d.pth",
    "sha256_prefix",
    "6726825d",
    "not published",
    note="the 2015 graph in PyTorch, in the layout weights=file: takes",
)


def _is_graph_file(path: Path) -> bool:
    return path.suffix in (".pb", ".tgz", ".gz") or (path.is_file() and tarfile.is_tarfile(path))


class TF2015Torch(TorchvisionIV3):
    name = "tf2015_torch"
    paper_label = "IV2 TF"
    weights_title = "Inception 2015-12-05 graph (PyTorch port)"
    class_layout = "tf2015_1008"
    raw_outputs = 1008
    default_bias = False
    default_norm = "centered_128"
    native_resize = ("tf1_bilinear", None)
    port_sources = ("torchvision", "keras", "tf2015")
    published = (TF2015_PUBLISHED, PEER_2015_PUBLISHED)
    ported_keeps_layout = False

    default_pool_compat = "tf2015"  # the graph's pools: padding excluded, max pool in mixed_10
    summary = (
        "The original 2015-12-05 Inception graph's weights in PyTorch (= torch-fidelity's "
        "network): no TensorFlow needed."
    )
    weights_doc = (
        "pretrained (inception-2015-12-05.tgz or its .pb, read without TensorFlow) | "
        "file:<.tgz/.pb/.pth> | random:<seed> | ported:<backbone>[:<weights>]"
    )
    download_doc = "fetch the tgz into $INCEPTION_NOTE_WEIGHTS when missing (needs network)"
    native_resize_doc = "from the original resolution, as the graph does"
    bias_doc = "null = no bias (the original code); true adds the classifier bias"
    classes_doc = "all (1008) | imagenet1000 (outputs 1..1000) | first1000 | last1000"
    norm_doc = "auto = (x - 128) / 128, as inside the graph"

    @classmethod
    def official_artifact(cls, **knobs):
        return TF2015_ARTIFACT

    @classmethod
    def read_state(cls, path) -> dict:
        path = Path(path)
        if _is_graph_file(path):
            return TF2015Graph.read_state(path)
        return TorchvisionIV3.read_state(path)

    def _state_from_file(self, path: Path, torch) -> dict:
        if _is_graph_file(Path(path)):
            return {k: torch.from_numpy(v) for k, v in TF2015Graph.read_state(path).items()}
        return load_state_dict_file(Path(path), torch)
