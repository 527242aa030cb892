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

from .. import attack
from .. import resize as rs
from .. import settings as S
from ..errors import HarnessError
from ..provenance import package_version
from . import weights as W
from .base import check_images, import_torch, import_torchvision
from .inception import InceptionBackbone

PRECISIONS = attack.PRECISIONS
COMPILE_MODES = ("none", "default", "reduce-overhead", "max-autotune")
POOL_COMPAT = ("torchvision", "keras", "tf2015")

_STAGES = (
    "Conv2d_1a_3x3",
    "Conv2d_2a_3x3",
    "Conv2d_2b_3x3",
    "maxpool1",
    "Conv2d_3b_1x1",
    "Conv2d_4a_3x3",
    "maxpool2",
    "Mixed_5b",
    "Mixed_5c",
    "Mixed_5d",
    "Mixed_6a",
    "Mixed_6b",
    "Mixed_6c",
    "Mixed_6d",
    "Mixed_6e",
    "Mixed_7a",
    "Mixed_7b",
    "Mixed_7c",
)


def load_state_dict_file(path: Path, torch) -> dict:
    """Read a .pth state dict (or a checkpoint holding one) with a one-line error."""
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise HarnessError(
            f"cannot read weights file {path} ({type(exc).__name__}): truncated, corrupt or not a "
            "PyTorch state dict; re-download it"
        ) from None
    if isinstance(obj, dict) and "state_dict" in obj and isinstance(obj["state_dict"], dict):
        obj = obj["state_dict"]
    if not isinstance(obj, dict):
        raise HarnessError(f"weights file {path} holds a {type(obj).__name__}, not a state dict")
    return obj


TORCHVISION_ARTIFACT = W.OfficialArtifact(
    "torchvision",
    "inception_v3_google-0cc3c7bd.pth",
    "https://download.pytorch.org/models/inception_v3_google-0cc3c7bd.pth",
    "TORCH_HOME",
    "$XDG_CACHE_HOME/torch",
    subdir="hub/checkpoints",
    pin_kind="sha256_prefix",
    pin="0cc3c7bd",
)
TORCHVISION_PUBLISHED = W.PublishedWeights.from_artifact(
    TORCHVISION_ARTIFACT,
    "torchvision inception_v3_google-0cc3c7bd",
    "103.9 MB (torchvision's _file_size)",
    "Inception_V3_Weights.IMAGENET1K_V1",
)


class TorchvisionIV3(InceptionBackbone):
    name = "torchvision"
    paper_label = "IV3 Torch"
    weights_title = "torchvision Inception V3 IMAGENET1K_V1"
    framework = "torch"
    class_layout = "imagenet1000"
    raw_outputs = 1000
    default_bias = True
    native_resize = ("torch_bilinear", True)
    supports_cuda = True
    has_gradients = True
    default_batch_size = 64
    port_sources = ("keras", "tf2015")
    published = (TORCHVISION_PUBLISHED,)

    summary = (
        'torchvision.models.inception_v3 (the paper\'s "IV3 Torch"): 1000 classes, fc bias on.'
    )
    weights_doc = "pretrained | file:<path.pth> | random:<seed> | ported:<backbone>[:<weights>]"
    download_doc = "fetch the official file into $TORCH_HOME when missing (needs network)"
    native_resize_doc = "2018 nn.Upsample"
    bias_doc = "null = include the fc bias (reference behaviour)"
    norm_doc = "auto = [-1, 1] (ImageNet mean/std when transform_input=true)"
    default_pool_compat = "torchvision"

    @classmethod
    def _settings(cls) -> S.Schema:
        on_cuda = S.When("device", is_in=("cuda",))
        return (
            super()
            ._settings()
            .extend(
                S.Setting(
                    "transform_input",
                    S.Bool(),
                    False,
                    "set explicitly, never torchvision's implicit default (the paper's code: "
                    "false)",
                ),
                S.Setting(
                    "channels_last",
                    S.AutoOrBool(),
                    "auto",
                    "auto = on for CPU, off for exact fp32 on CUDA (measured); moves logits "
                    "by float32 rounding only",
                ),
                S.Setting(
                    "pool_compat",
                    S.Choice(POOL_COMPAT),
                    cls.default_pool_compat,
                    "torchvision | keras | tf2015: whose pooling semantics to run",
                ),
                S.Setting(
                    "precision",
                    S.Choice(PRECISIONS),
                    "highest",
                    "CUDA: highest (exact fp32) | tf32 | bf16 (recorded in every row)",
                    applies=on_cuda,
                ),
                S.Setting(
                    "fuse_bn",
                    S.AutoOrBool(),
                    "auto",
                    "fold BatchNorm into the convs (auto: on for CUDA; moves logits ~3e-6)",
                ),
                S.Setting(
                    "compile",
                    S.Choice(COMPILE_MODES),
                    "none",
                    "none | default | reduce-overhead | max-autotune",
                ),
            )
        )

    def __init__(
        self, *, transform_input, channels_last, precision, fuse_bn, compile, pool_compat, **kw
    ):
        self.pool_compat = pool_compat
        self.transform_input = transform_input
        if channels_last == "auto":
            # measured (benchmarks/README.md): channels_last is ~2x faster on the CPU, but ~20%
            # slower for exact float32 on an H100, and faster again with TF32 / bf16
            on_gpu = kw["device"] == "cuda"
            channels_last = not on_gpu or precision != "highest"
        self.channels_last = bool(channels_last)
        self.precision = precision
        if fuse_bn == "auto":
            # folding BatchNorm into the convs is exact in real arithmetic and moves logits by
            # ~3e-6 relative (measured); it is worth ~1-3% on a GPU, so it is on there by default
            fuse_bn = kw["device"] == "cuda"
        self.fuse_bn = bool(fuse_bn)
        self.compile_mode = compile
        if kw["input_norm"] == "auto" and transform_input:
            kw["input_norm"] = "imagenet_mean_std"  # what transform_input=True expects
        super().__init__(**kw)

    # ------------------------------------------------------------------ loading
    @classmethod
    def official_artifact(cls, **knobs) -> W.OfficialArtifact:
        return TORCHVISION_ARTIFACT

    @classmethod
    def read_state(cls, path) -> dict:
        torch = import_torch()
        return {
            k: v.numpy()
            for k, v in load_state_dict_file(Path(path), torch).items()
            if not k.startswith("AuxLogits.") and not k.endswith("num_batches_tracked")
        }

    def _state_from_file(self, path: Path, torch) -> dict:
        """A weights file of this backbone's format as a torch state dict."""
        return load_state_dict_file(path, torch)

    def _load(self, weights) -> None:
        torch = import_torch()
        torchvision = import_torchvision()

        self.torch = torch
        if self.device == "cuda" and not torch.cuda.is_available():
            raise HarnessError("device=cuda requested but torch sees no CUDA GPU; use device=cpu")
        if weights.state is not None:
            sd = {k: torch.from_numpy(np.asarray(v)) for k, v in weights.state.items()}
            where = weights.spec
        else:
            sd, where = self._state_from_file(weights.path, torch), weights.path
        model = torchvision.models.inception_v3(
            weights=None,
            aux_logits=True,
            init_weights=False,
            transform_input=self.transform_input,
            num_classes=self.raw_outputs,
        )
        self._load_state(model, sd, where)
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
        if self.fuse_bn:
            fold_batchnorm(model, torch)
        self.model = model
        scale, offset = self.normalize_from_255()
        tdtype = torch.float64 if self.dtype == "float64" else torch.float32
        self._scale = torch.as_tensor(scale, dtype=tdtype, device=self.device).view(1, 3, 1, 1)
        self._offset = torch.as_tensor(offset, dtype=tdtype, device=self.device).view(1, 3, 1, 1)
        self._tdtype = tdtype
        self._net_fn = self.net
        if self.compile_mode != "none":
            mode = None if self.compile_mode == "default" else self.compile_mode
            self._net_fn = torch.compile(self.net, mode=mode, dynamic=False)

    def _load_state(self, model, sd: dict, path) -> None:
        own = model.state_dict()
        # BatchNorm's num_batches_tracked counters and the auxiliary head do not affect eval
        # logits; files saved from eval-only models lack them
        fill = {
            k: v
            for k, v in own.items()
            if (k.endswith("num_batches_tracked") or k.startswith("AuxLogits.")) and k not in sd
        }
        sd = {**fill, **sd}
        missing, unexpected = [], []
        try:
            res = model.load_state_dict(sd, strict=False)
            missing, unexpected = list(res.missing_keys), list(res.unexpected_keys)
        except RuntimeError as exc:  # shape mismatches
            raise HarnessError(
                f"weights {path} do not fit torchvision Inception V3 "
                f"({str(exc).splitlines()[1].strip() if len(str(exc).splitlines()) > 1 else exc})"
            ) from None
        if missing or unexpected:
            raise HarnessError(
                f"weights {path} are not a torchvision Inception V3 state dict: {len(missing)} "
                "missing "
                f"keys (e.g. {missing[:1]}), {len(unexpected)} unexpected (e.g. {unexpected[:1]})"
            )

    # ------------------------------------------------------------------ forward
    def preprocess(self, x_uint8: np.ndarray):
        """uint8 N x H x W x 3 -> network input tensor N x 3 x S x S on the device.

        Normalisation is applied before the resize (exact: every resize row sums to 1, so
        resize(a x + b) = a resize(x) + b) because the input is usually the smaller image, and
        the resize runs in N x H x W x C so its result is already channels_last.
        """
        return self.prepare_tensor(self.to_device(x_uint8))

    def to_device(self, x_uint8: np.ndarray):
        """uint8 batch to the device (PIL resize first, on the host, when asked for)."""
        torch = self.torch
        if self.resize_method == "pil_bicubic":
            x_uint8 = rs.pil_bicubic(x_uint8, (self.input_size, self.input_size))
        t = torch.from_numpy(np.ascontiguousarray(x_uint8))
        if self.device == "cuda":
            # pinned + non_blocking: the copy does not wait for the previous batch's kernels
            return t.pin_memory().to(self.device, non_blocking=True)
        return t

    def prepare_tensor(self, t_uint8):
        s = self.input_size
        # in place on a fresh copy: the same two roundings as `t * scale + offset`, without two
        # more full-size temporaries (at 1024 x 1024 px: 13 -> 8 ms per image on the CPU)
        t = t_uint8.to(self._tdtype, copy=True)
        t.mul_(self._scale.view(1, 1, 1, 3)).add_(self._offset.view(1, 1, 1, 3))
        if self.channels_last:
            if self.resize_method != "pil_bicubic":
                t = rs.resize_torch_nhwc(t, (s, s), self.resize_method, bool(self.align_corners))
            return t.permute(0, 3, 1, 2)  # a channels_last view, no copy
        # NCHW: the W pass is one large GEMM and the H pass a batched one (no tiny GEMMs)
        t = t.permute(0, 3, 1, 2).contiguous()
        if self.resize_method != "pil_bicubic":
            t = rs.resize_torch(t, (s, s), self.resize_method, bool(self.align_corners))
        return t

    def net(self, x, want_features: bool = False):
        """Network forward on a normalized input tensor: (logits incl./excl. bias, pool)."""
        m = self.model
        if self.channels_last:
            x = x.contiguous(memory_format=self.torch.channels_last)
        x = m._transform_input(x)
        for stage in _STAGES:
            if self.pool_compat != "torchvision" and stage in _POOL_BLOCKS:
                x = _POOL_BLOCKS[stage](getattr(m, stage), x, self._pool_fn(stage))
            else:
                x = getattr(m, stage)(x)
        pool = self.torch.flatten(m.avgpool(x), 1)
        logits = self.torch.nn.functional.linear(
            pool, m.fc.weight, m.fc.bias if self.bias else None
        )
        return logits, pool

    def precision_context(self):
        """Matmul/conv precision for this backbone's CUDA work (exact float32 unless asked)."""
        return precision_context(self.torch, self.precision if self.device == "cuda" else "highest")

    def forward(self, images, features: bool = False):
        """On CUDA all batches are queued before one copy back to the host (no per-batch sync)."""
        if self.device != "cuda":
            return super().forward(images, features)
        torch = self.torch
        x = check_images(images)
        cols = torch.as_tensor(self._columns, device=self.device)
        outs, feats = [], []
        with torch.inference_mode(), self.precision_context():
            for s in range(0, x.shape[0], self.batch_size):
                if self.compile_mode == "reduce-overhead":
                    torch.compiler.cudagraph_mark_step_begin()
                lg, pool = self._net_fn(self.preprocess(x[s : s + self.batch_size]), features)
                outs.append(
                    lg.index_select(1, cols).to(torch.float32)
                )  # a copy: safe under CUDA graphs
                if features:
                    feats.append(pool.to(torch.float32, copy=True))
            logits = torch.cat(outs).cpu().numpy()
            pool = torch.cat(feats).cpu().numpy() if features else None
        self._check_outputs(logits, pool)
        return logits, pool

    def _forward(self, images, want_features):
        with self.torch.inference_mode(), self.precision_context():
            logits, pool = self._net_fn(self.preprocess(images), want_features)
            logits = logits.float().cpu().numpy()
            return logits, (pool.float().cpu().numpy() if want_features else None)

    def _pool_fn(self, stage: str):
        """The 3x3 stride-1 pool of an Inception block under the chosen pooling semantics."""
        F = self.torch.nn.functional
        if self.pool_compat == "tf2015" and stage == "Mixed_7c":
            return lambda x: F.max_pool2d(x, 3, 1, 1)  # the 2015 graph's mixed_10 quirk
        return lambda x: F.avg_pool2d(x, 3, 1, 1, count_include_pad=False)  # TF/Keras 'SAME'

    def attack_target(self, settings):
        return TorchAttackTarget(self, settings)

    # ------------------------------------------------------------------ provenance
    def extra_knobs(self) -> dict:
        # fuse_bn / compile / precision / the memory layout change float rounding (precision: by
        # up to ~1e-2 for bf16; channels_last: ~5e-5 relative, measured), so they are part of the
        # key; the batch size is not
        return {
            "transform_input": self.transform_input,
            "channels_last": self.channels_last,
            "precision": self.precision,
            "fuse_bn": self.fuse_bn,
            "compile": self.compile_mode,
            "pool_compat": self.pool_compat,
        }

    def extra_provenance(self) -> dict:
        return {}

    def framework_versions(self) -> dict:
        return {"torch": package_version("torch"), "torchvision": package_version("torchvision")}


def _block_a(b, x, pool):
    cat = __import__("torch").cat
    return cat(
        [
            b.branch1x1(x),
            b.branch5x5_2(b.branch5x5_1(x)),
            b.branch3x3dbl_3(b.branch3x3dbl_2(b.branch3x3dbl_1(x))),
            b.branch_pool(pool(x)),
        ],
        1,
    )


def _block_c(b, x, pool):
    cat = __import__("torch").cat
    b7 = b.branch7x7_3(b.branch7x7_2(b.branch7x7_1(x)))
    bd = b.branch7x7dbl_5(b.branch7x7dbl_4(b.branch7x7dbl_3(b.branch7x7dbl_2(b.branch7x7dbl_1(x)))))
    return cat([b.branch1x1(x), b7, bd, b.branch_pool(pool(x))], 1)


def _block_e(b, x, pool):
    cat = __import__("torch").cat
    b3 = b.branch3x3_1(x)
    b3 = cat([b.branch3x3_2a(b3), b.branch3x3_2b(b3)], 1)
    bd = b.branch3x3dbl_2(b.branch3x3dbl_1(x))
    bd = cat([b.branch3x3dbl_3a(bd), b.branch3x3dbl_3b(bd)], 1)
    return cat([b.branch1x1(x), b3, bd, b.branch_pool(pool(x))], 1)


# the blocks with a 3x3 stride-1 pool branch (their forward is re-written for pool_compat)
_POOL_BLOCKS = {
    "Mixed_5b": _block_a,
    "Mixed_5c": _block_a,
    "Mixed_5d": _block_a,
    "Mixed_6b": _block_c,
    "Mixed_6c": _block_c,
    "Mixed_6d": _block_c,
    "Mixed_6e": _block_c,
    "Mixed_7b": _block_e,
    "Mixed_7c": _block_e,
}


class precision_context:
    """Set cuDNN/cuBLAS float32 precision for a block and restore it afterwards.

    ``highest``: TF32 off for convolutions and matmuls (PyTorch enables it for cuDNN
    convolutions by default!); ``tf32``: TF32 on for both; ``bf16``: autocast to bfloat16.
    """

    def __init__(self, torch, precision: str):
        self.torch, self.precision = torch, precision
        self._autocast = None

    def __enter__(self):
        b = self.torch.backends
        self._saved = (b.cuda.matmul.allow_tf32, b.cudnn.allow_tf32)
        tf32 = self.precision == "tf32"
        b.cuda.matmul.allow_tf32 = tf32
        b.cudnn.allow_tf32 = tf32
        if self.precision == "bf16":
            self._autocast = self.torch.autocast("cuda", dtype=self.torch.bfloat16)
            self._autocast.__enter__()
        return self

    def __exit__(self, *exc):
        if self._autocast is not None:
            self._autocast.__exit__(*exc)
        b = self.torch.backends
        b.cuda.matmul.allow_tf32, b.cudnn.allow_tf32 = self._saved
        return False


def fold_batchnorm(model, torch) -> None:
    """Fold every eval-mode BatchNorm into the preceding conv (conv gets a bias; bn -> Identity).

    w' = w * gamma / sqrt(var + eps); b' = beta - mean * gamma / sqrt(var + eps).  Exact in real
    arithmetic; in float32 it moves logits by ~1e-6 relative.  Computed in float64.
    """
    for mod in model.modules():
        if hasattr(mod, "conv") and hasattr(mod, "bn") and isinstance(mod.bn, torch.nn.BatchNorm2d):
            conv, bn = mod.conv, mod.bn
            inv = bn.weight.double() / torch.sqrt(bn.running_var.double() + bn.eps)
            w = (conv.weight.double() * inv.view(-1, 1, 1, 1)).to(conv.weight.dtype)
            b = (bn.bias.double() - bn.running_mean.double() * inv).to(conv.weight.dtype)
            conv.weight.data.copy_(w)
            conv.bias = torch.nn.Parameter(b, requires_grad=False)
            mod.bn = torch.nn.Identity()


class TorchAttackTarget:
    """torchvision: attack in the network input (or the source image through the resize)."""

    def __init__(self, net, settings: attack.AttackSettings):
        self.net, self.s, self.torch = net, settings, net.torch
        torch = self.torch
        scale, offset = net.normalize_from_255()
        dt = net._tdtype
        self.scale = torch.as_tensor(scale, dtype=dt, device=net.device).view(1, 3, 1, 1)
        self.offset = torch.as_tensor(offset, dtype=dt, device=net.device).view(1, 3, 1, 1)
        self.lo, self.hi = self.offset, 255 * self.scale + self.offset
        self.eps = torch.as_tensor(settings.eps_network(scale), dtype=dt, device=net.device).view(
            1, 3, 1, 1
        )
        self.cols = torch.as_tensor(net._columns, device=net.device)

    def start(self, x_uint8: np.ndarray):
        net = self.net
        if self.s.attack_at == "network_input":
            with self.torch.no_grad():
                parts = [
                    net.preprocess(x_uint8[i : i + 256]).contiguous()
                    for i in range(0, len(x_uint8), 256)
                ]
            return self.torch.cat(parts)
        if net.resize_method == "pil_bicubic":
            raise HarnessError("attack_at=source needs a differentiable resize (not pil_bicubic)")
        t = self.torch.from_numpy(np.ascontiguousarray(x_uint8)).to(net.device).permute(0, 3, 1, 2)
        return (t.to(net._tdtype) * self.scale + self.offset).contiguous()

    def logit_fn(self, x):
        net = self.net
        if self.s.attack_at == "source":
            s = net.input_size
            x = rs.resize_torch_nhwc(
                x.permute(0, 2, 3, 1), (s, s), net.resize_method, bool(net.align_corners)
            ).permute(0, 3, 1, 2)
        logits, _ = net.net(x)
        return logits.index_select(1, self.cols)

    def step(self, x, t, do_step: bool):
        torch = self.torch
        tt = torch.as_tensor(t, device=self.net.device)
        with precision_context(torch, self.s.precision if self.net.device == "cuda" else "highest"):
            if not do_step:
                with torch.no_grad():
                    return self.logit_fn(x).float().cpu().numpy(), x
            logits, x2 = attack.fgsm_step_torch(self.logit_fn, x, tt, self.eps, self.lo, self.hi)
        return logits.float().cpu().numpy(), x2

    def slice(self, x, a, b):
        return x[a:b]

    def assign(self, x, a, b, v):
        x[a:b] = v

    def distances(self, x, x0):
        d = (x - x0) / self.scale  # in grey levels
        n = d.shape[0]
        dn = (x - x0).reshape(n, -1)
        dp = d.reshape(n, -1)
        return {
            "linf_network": dn.abs().amax(1).double().cpu().numpy(),
            "l2_network": dn.double().norm(dim=1).cpu().numpy(),
            "linf_pixels": dp.abs().amax(1).double().cpu().numpy(),
        }

    def to_uint8(self, x) -> np.ndarray:
        pix = (x - self.offset) / self.scale
        return pix.round().clamp(0, 255).to(self.torch.uint8).permute(0, 2, 3, 1).cpu().numpy()

    def clone(self, x):
        return x.clone()

    def concat_logits_exact(self, x) -> np.ndarray:
        """Logits of x in exact float32 (to report what TF32 / bf16 did to the IS)."""
        torch = self.torch
        out = []
        with torch.no_grad(), precision_context(torch, "highest"):
            for a in range(0, x.shape[0], self.s.batch_size):
                out.append(self.logit_fn(x[a : a + self.s.batch_size]).float().cpu().numpy())
        return np.concatenate(out)
