"""``torchvision``: ``torchvision.models.inception_v3`` (the paper's "IV3 Torch" column).

Reference behaviour reproduced by default (sbarratt/inception-score-pytorch, the paper's code):
``transform_input=False`` set explicitly, input in [-1, 1], bilinear upsampling to 299 that in
early-2018 PyTorch behaved like ``align_corners=True``, softmax over the 1000 logits with the fc
bias.  ``transform_input=True`` with ImageNet mean/std input is the modern torchvision
convention; ``transform_input=True`` with [-1, 1] input is the double-normalisation mistake
(CIFAR-10 IS ~6.2) and can be reproduced on purpose with ``input_norm=minus_one_one``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .. import resize as rs
from ..errors import HarnessError
from ..provenance import package_version
from . import weights as W
from .base import Backbone, import_torch, import_torchvision

_STAGES = ("Conv2d_1a_3x3", "Conv2d_2a_3x3", "Conv2d_2b_3x3", "maxpool1", "Conv2d_3b_1x1",
           "Conv2d_4a_3x3", "maxpool2", "Mixed_5b", "Mixed_5c", "Mixed_5d", "Mixed_6a", "Mixed_6b",
           "Mixed_6c", "Mixed_6d", "Mixed_6e", "Mixed_7a", "Mixed_7b", "Mixed_7c")


def load_state_dict_file(path: Path, torch) -> dict:
    """Read a .pth state dict (or a checkpoint holding one) with a one-line error."""
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise HarnessError(
            f"cannot read weights file {path} ({type(exc).__name__}): truncated, corrupt or not a "
            "PyTorch state dict; re-download it") from None
    if isinstance(obj, dict) and "state_dict" in obj and isinstance(obj["state_dict"], dict):
        obj = obj["state_dict"]
    if not isinstance(obj, dict):
        raise HarnessError(f"weights file {path} holds a {type(obj).__name__}, not a state dict")
    return obj


class TorchvisionIV3(Backbone):
    name = "torchvision"
    framework = "torch"
    class_layout = "imagenet1000"
    raw_outputs = 1000
    default_bias = True
    native_resize = ("torch_bilinear", True)
    supports_cuda = True
    has_gradients = True

    def __init__(self, transform_input: bool = False, channels_last: bool = True, **kw):
        if not isinstance(transform_input, bool):
            raise HarnessError("torchvision backbone: transform_input must be true or false (never implicit)")
        self.transform_input = transform_input
        self.channels_last = bool(channels_last)
        if kw.get("input_norm", "auto") == "auto":
            kw["input_norm"] = "imagenet_mean_std" if transform_input else "minus_one_one"
        super().__init__(**kw)

    # ------------------------------------------------------------------ loading
    def _load(self) -> None:
        torch = import_torch()
        torchvision = import_torchvision()

        self.torch = torch
        if self.device == "cuda" and not torch.cuda.is_available():
            raise HarnessError("device=cuda requested but torch sees no CUDA GPU; use device=cpu")
        spec = self.weights_spec
        path = hashes = None
        if spec.kind == "random":
            from .random_init import random_iv3_state

            model = torchvision.models.inception_v3(
                weights=None, aux_logits=True, init_weights=False, transform_input=self.transform_input)
            sd = {k: torch.from_numpy(v) for k, v in random_iv3_state(spec.seed, 1000).items()}
            self._load_state(model, sd, f"random:{spec.seed}")
        elif spec.kind in ("pretrained", "file"):
            path, hashes = W.locate("torchvision", spec, self.allow_download, user_sha256=self.weights_sha256)
            model = torchvision.models.inception_v3(
                weights=None, aux_logits=True, init_weights=False, transform_input=self.transform_input)
            self._load_state(model, load_state_dict_file(path, torch), path)
        elif spec.kind == "ported":
            from ..porting import ported_state_dict

            sd, hashes, path = ported_state_dict(spec, target="torchvision", allow_download=self.allow_download)
            model = torchvision.models.inception_v3(
                weights=None, aux_logits=True, init_weights=False, transform_input=self.transform_input)
            self._load_state(model, sd, path)
        else:
            raise HarnessError(f"torchvision backbone: unsupported weights {spec}")
        model.AuxLogits = None  # eval never uses it; the official file carries its weights
        model.aux_logits = False
        model.eval()
        if self.dtype == "float64":
            model = model.double()
        model = model.to(self.device)
        if self.channels_last:
            model = model.to(memory_format=torch.channels_last)
        for p in model.parameters():
            p.requires_grad_(False)
        self.model = model
        self.weights_info = W.weights_record(spec, path, hashes, W.OFFICIAL["torchvision"])
        scale, offset = self.normalize_from_255()
        tdtype = torch.float64 if self.dtype == "float64" else torch.float32
        self._scale = torch.as_tensor(scale, dtype=tdtype, device=self.device).view(1, 3, 1, 1)
        self._offset = torch.as_tensor(offset, dtype=tdtype, device=self.device).view(1, 3, 1, 1)
        self._tdtype = tdtype

    def _load_state(self, model, sd: dict, path) -> None:
        own = model.state_dict()
        # BatchNorm's num_batches_tracked counters and the auxiliary head do not affect eval
        # logits; files saved from eval-only models lack them
        fill = {k: v for k, v in own.items()
                if (k.endswith("num_batches_tracked") or k.startswith("AuxLogits.")) and k not in sd}
        sd = {**fill, **sd}
        missing, unexpected = [], []
        try:
            res = model.load_state_dict(sd, strict=False)
            missing, unexpected = list(res.missing_keys), list(res.unexpected_keys)
        except RuntimeError as exc:  # shape mismatches
            raise HarnessError(
                f"weights {path} do not fit torchvision Inception V3 ({str(exc).splitlines()[1].strip() if len(str(exc).splitlines()) > 1 else exc})"
            ) from None
        if missing or unexpected:
            raise HarnessError(
                f"weights {path} are not a torchvision Inception V3 state dict: {len(missing)} missing "
                f"keys (e.g. {missing[:1]}), {len(unexpected)} unexpected (e.g. {unexpected[:1]})")

    # ------------------------------------------------------------------ forward
    def preprocess(self, x_uint8: np.ndarray):
        """uint8 N x H x W x 3 -> network input tensor N x 3 x S x S on the device."""
        torch = self.torch
        s = self.input_size
        if self.resize_method == "pil_bicubic":
            x_uint8 = rs.pil_bicubic(x_uint8, (s, s))
        t = torch.from_numpy(np.ascontiguousarray(x_uint8)).to(self.device, non_blocking=True)
        t = t.permute(0, 3, 1, 2).to(self._tdtype)
        if self.resize_method != "pil_bicubic":
            t = rs.resize_torch(t, (s, s), self.resize_method, bool(self.align_corners))
        return self.normalize_tensor(t)

    def normalize_tensor(self, t_0_255):
        """Map a float tensor in the 0..255 scale to the network input range (differentiable)."""
        return t_0_255 * self._scale + self._offset

    def net(self, x, want_features: bool = False):
        """Network forward on a normalized input tensor: (logits incl./excl. bias, pool)."""
        m = self.model
        if self.channels_last:
            x = x.contiguous(memory_format=self.torch.channels_last)
        x = m._transform_input(x)
        for stage in _STAGES:
            x = getattr(m, stage)(x)
        pool = self.torch.flatten(m.avgpool(x), 1)
        logits = self.torch.nn.functional.linear(pool, m.fc.weight, m.fc.bias if self.bias else None)
        return logits, pool

    def _forward(self, images, want_features):
        with self.torch.inference_mode():
            logits, pool = self.net(self.preprocess(images), want_features)
            return logits.cpu().numpy(), (pool.cpu().numpy() if want_features else None)

    # ------------------------------------------------------------------ provenance
    def extra_knobs(self) -> dict:
        return {"transform_input": self.transform_input}

    def extra_provenance(self) -> dict:
        return {"channels_last": self.channels_last}

    def framework_versions(self) -> dict:
        return {"torch": package_version("torch"), "torchvision": package_version("torchvision")}
