"""``dinov2``: DINOv2 ViT-S/B/L/G-14 (via ``timm``) as a features-only backbone.

Stein et al. (2023, "Exposing flaws of generative model evaluation metrics and their unfair
treatment of diffusion models") score generative models in DINOv2 ViT-L/14's feature space; their
code, dgm-eval (``dgm_eval/models/dinov2.py``), is what this backbone reproduces:

* **preprocessing**: ``torchvision.transforms.Resize((224, 224), BICUBIC)`` on the PIL image (PIL's
  own bicubic resize of the uint8 image: the harness's ``pil_bicubic``, the native resize here),
  ``ToTensor`` (x / 255) and ImageNet mean/std (``input_norm=imagenet_mean_std``, the default);
  dgm-eval's ``--clean_resize`` is off by default and not reproduced;
* **network**: ``torch.hub.load('facebookresearch/dinov2', 'dinov2_<variant>')``, pretrained at
  518 x 518 (a 37 x 37 patch grid).  At 224 x 224 the hub model interpolates its positional
  embedding on every forward pass (``interpolate_pos_encoding``: bicubic, ``scale_factor`` =
  (16 + 0.1) / 37, no antialias: ``interpolate_offset=0.1``, ``interpolate_antialias=False``).
  Here timm's ``vit_<size>_patch14_dinov2`` (the same layers) is built at the checkpoint's size,
  its positional embedding is interpolated once with that same formula, and the network is set
  to the input size;
* **feature**: the model's output, the CLS token after the final LayerNorm
  (``x_norm_clstoken``; 384 / 768 / 1024 / 1536-d), not normalised (dgm-eval calls
  ``get_representations(..., normalized=False)``).

There is no classifier head (``has_logits`` is False): FID, KID, precision/recall, density/
coverage and the other feature-space metrics run on it; the Inception Score and everything else
that needs class probabilities refuse it in one line, as for a user's encoder.

Knobs (each recorded and part of the cache key): ``variant`` vits14 | vitb14 | vitl14 (default:
dgm-eval's and Stein et al.'s ViT-L/14) | vitg14; ``input_size`` (default 224, dgm-eval's; a
multiple of 14: smaller sizes make cheap smoke runs); ``resize``, ``input_norm``, ``dtype``,
``device`` as every backbone.

Weights (offline: nothing is ever downloaded):

* ``pretrained``: found where the libraries keep them.  First the Hugging Face hub cache
  (``$HF_HUB_CACHE``, else ``$HF_HOME/hub``, else ``~/.cache/huggingface/hub``): timm's copy
  ``timm/vit_<size>_patch14_dinov2.lvd142m`` (``model.safetensors`` or ``pytorch_model.bin``),
  what ``timm.create_model(..., pretrained=True)`` fetches; then the torch hub cache
  (``$TORCH_HOME/hub/checkpoints``, else ``~/.cache/torch/hub/checkpoints``): Meta's original
  ``dinov2_<variant>_pretrain.pth``, the file dgm-eval's ``torch.hub.load`` fetches (timm's
  checkpoint filter converts its keys).  A missing file is one line naming both places and how
  to fill them.  **Pins**: Meta publishes no hash of its files, and no hash of timm's copies is
  pinned in this code (none could be read offline when it was written), so pretrained DINOv2
  weights are ``unverified`` (a banner on every output) unless a hash is added here.  A file
  that comes from the Hugging Face cache is checked against the hub's own sha256 of it (an LFS
  file is stored under ``blobs/<its sha256>``, the hash the hub gave when it was downloaded): a
  mismatch (a truncated or replaced file) is an error, a match is recorded.
  ``weights_sha256=<hex>`` pins any file;
* ``file:<path>``: a timm state dict (``.safetensors``, ``.pth``/``.bin``) or Meta's original
  checkpoint, loaded strictly into the variant's network; sha256 recorded (``unverified``);
* ``random:<seed>``: the architecture with timm's own initialisation under
  ``torch.manual_seed(seed)``, built at the pretrained 518 x 518 size and with DINOv2's layer
  scale 1.0 (its hub constructor's ``init_values``; timm's 1e-5 would make every block nearly the
  identity and every image's feature nearly the same), then resized like pretrained weights.  A
  labelled smoke run; ``weights_sha256`` is the sha256 of those arrays.

``timm`` (and ``huggingface_hub``, ``safetensors``) are imported only when the backbone is
loaded; a missing one is one line: ``pip install -e '.[encoders]'``.

This module also holds :class:`HubEncoder`, the part the ``clip`` backbone shares (features-only
forward, preprocessing, offline weights lookup in the libraries' caches).
"""

from __future__ import annotations

import contextlib
import math
import os
import re
import warnings
from pathlib import Path

import numpy as np

from .. import resize as rs
from .. import settings as S
from ..errors import ConfigError, HarnessError, MissingInputError, ResourceUnavailable
from ..provenance import package_version
from . import weights as W
from .base import NORM_LABELS, Backbone, import_torch

ENCODERS_EXTRA = "pip install -e '.[encoders]'"

# ------------------------------------------------------------------------------ shared helpers


def import_optional(module: str, what: str):
    """Import ``module`` (timm, open_clip, ...) or raise a one-line ResourceUnavailable."""
    import importlib

    import_torch()
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise ResourceUnavailable(
            f"{what} needs {module} ({type(exc).__name__}: {exc}): {ENCODERS_EXTRA}"
        ) from None


def hf_hub_cache() -> Path:
    """The Hugging Face hub cache, read from the environment now (huggingface_hub's rule)."""
    explicit = os.environ.get("HF_HUB_CACHE") or os.environ.get("HUGGINGFACE_HUB_CACHE")
    if explicit:
        return Path(os.path.expandvars(explicit)).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    home = os.environ.get("HF_HOME") or os.path.join(xdg, "huggingface")
    return Path(os.path.expandvars(home)).expanduser() / "hub"


def hf_repo_dir(repo_id: str) -> Path:
    return hf_hub_cache() / ("models--" + repo_id.replace("/", "--"))


def hf_cached_file(repo_id: str, filenames) -> Path | None:
    """The first of ``filenames`` in the hub cache's snapshot of ``repo_id`` (no network)."""
    hub = import_optional("huggingface_hub", "looking up pretrained weights")
    for fn in filenames:
        got = hub.try_to_load_from_cache(repo_id, fn, cache_dir=str(hf_hub_cache()))
        if isinstance(got, str) and Path(got).is_file():
            return Path(got)
    return None


_SHA256 = re.compile(r"^[0-9a-f]{64}$")


def hf_artifact(backbone: str, repo_id: str, path: Path) -> W.OfficialArtifact:
    """The artifact of a file found in the hub cache.  Its pin, when the snapshot links to a blob
    named by a sha256, is that name: the sha256 the hub gave for the file when it was downloaded
    (an integrity check, not a hash pinned in this code)."""
    blob = Path(os.path.realpath(path)).name
    pinned = path.is_symlink() and bool(_SHA256.match(blob))
    return W.OfficialArtifact(
        backbone,
        path.name,
        f"https://huggingface.co/{repo_id}/resolve/main/{path.name}",
        "",
        str(path.parent),
        pin_kind="sha256" if pinned else None,
        pin=blob if pinned else None,
    )


def resolve_found(
    backbone: str,
    art: W.OfficialArtifact,
    user_sha256,
    source: str,
    published: str | None = None,
) -> W.ResolvedWeights:
    """``weights=pretrained`` resolved to a file ``art`` found offline: hashes, pin, record.

    ``published``: what reporting lines call the file when ``art``'s pin is its publisher's
    hash and the file matches it (``verified``).  Without it, ``art``'s pin is the Hugging Face
    hub's hash of the file (:func:`hf_artifact`): a mismatch is an error all the same, a match
    is recorded, and the weights stay ``unverified`` (no hash of them is pinned in this code).
    """
    rw = W.locate_file(backbone, W.WeightsSpec("pretrained"), art, False, user_sha256)
    sha = rw.record["weights_sha256"]
    ok = bool(art.pin_kind) and (
        sha == art.pin if art.pin_kind == "sha256" else sha.startswith(str(art.pin))
    )
    rw.record["weights_published"] = published if ok and published else None
    rw.record["weights_source"] = source
    if art.pin_kind and not published:
        got = "matches" if ok else "not checked (weights_sha256 given)"
        rw.record["weights_official_pin"] = (
            "none pinned in this code; checked against the Hugging Face hub's sha256 of the file "
            f"(its blob name in the cache): {got}"
        )
    elif not art.pin_kind:
        rw.record["weights_official_pin"] = "no published hash (pin it with weights_sha256=)"
    return rw


def read_state_dict(path, who: str) -> dict:
    """A state dict from ``.safetensors``, a ``torch.save`` file (``weights_only``) or a
    TorchScript archive (OpenAI's CLIP files); ``state_dict``/``model`` wrappers and
    ``module.`` prefixes removed.  One-line errors."""
    torch = import_torch()
    p = str(path)
    try:
        with warnings.catch_warnings():  # torch.load names TorchScript archives; jit is deprecated
            warnings.simplefilter("ignore", UserWarning)
            warnings.simplefilter("ignore", FutureWarning)
            if p.endswith(".safetensors"):
                st = import_optional("safetensors.torch", f"reading {p}")
                obj = st.load_file(p, device="cpu")
            else:
                try:
                    obj = torch.load(p, map_location="cpu", weights_only=True)
                except Exception:
                    # a TorchScript archive (OpenAI's CLIP files): torch.load refuses it
                    obj = torch.jit.load(p, map_location="cpu")
            if isinstance(obj, torch.jit.ScriptModule):
                obj = obj.state_dict()
    except ResourceUnavailable:
        raise
    except Exception as exc:
        raise HarnessError(
            f"{who}: cannot read weights file {p} ({type(exc).__name__}): truncated, corrupt "
            "or not a state dict (.safetensors, torch.save of a state dict, or TorchScript)"
        ) from None
    for key in ("state_dict", "model"):
        if isinstance(obj, dict) and isinstance(obj.get(key), dict):
            obj = obj[key]
    if not isinstance(obj, dict) or not obj:
        raise HarnessError(f"{who}: {p} holds a {type(obj).__name__}, not a state dict")
    obj = dict(obj)
    if all(str(k).startswith("module.") for k in obj):
        obj = {k[7:]: v for k, v in obj.items()}
    return obj


def torch_state_sha256(sd: dict) -> str:
    """:func:`weights.state_sha256` of a torch state dict (the arrays a network computes with)."""
    import torch

    def arr(v):
        v = v.detach().cpu()
        return (v.float() if v.dtype == torch.bfloat16 else v).numpy()

    return W.state_sha256({k: arr(v) for k, v in sd.items()})


def load_strict(model, sd: dict, who: str, what: str, where) -> None:
    try:
        model.load_state_dict(sd, strict=True)
    except RuntimeError as exc:
        first = " ".join(str(exc).split())[:300]
        raise HarnessError(f"{who}: {where} does not fit {what} ({first})") from None


class HubEncoder(Backbone):
    """A pretrained image encoder from a model library: features only, ``pretrained`` found in
    the library's own caches (never downloaded), ``file:`` in its checkpoint format,
    ``random:<seed>`` its own seeded initialisation.  Subclasses build the network
    (:meth:`_build`) and embed a normalised N x 3 x S x S batch (:meth:`_embed`)."""

    framework = "torch"
    has_logits = False
    has_features = True
    has_gradients = False
    supports_cuda = True
    supports_float64 = True
    claims_published_weights = True
    min_image_side = 1
    default_batch_size = 32
    default_weights = "pretrained"
    weights_doc = "pretrained (found offline in the library's cache) | file:<path> | random:<seed>"
    #: what the features are (feature_description and provenance)
    feature_doc = "features"

    @classmethod
    def _check_weights_kind(cls, spec: W.WeightsSpec, value, path: str) -> None:
        if spec.kind not in ("pretrained", "file", "random"):
            raise ConfigError(
                f"{path}={value}: backbone {cls.name} takes pretrained, file:<path> or "
                "random:<seed>"
            )

    # ------------------------------------------------------------------ weights
    def resolve_weights(self, spec: W.WeightsSpec) -> W.ResolvedWeights:
        if spec.kind == "file":
            rw = W.locate_file(self.name, spec, None, False, self.weights_sha256)
            rw.record["weights_published"] = self._published_by_hash(rw.record["weights_sha256"])
            return rw
        if spec.kind == "pretrained":
            return self._resolve_pretrained()
        return W.ResolvedWeights(
            spec,
            record={
                "weights": str(spec),
                "weights_kind": "random",
                "weights_path": None,
                "weights_sha256": None,  # the arrays' hash, set when they are built
                "weights_md5": None,
                "weights_note": f"random weights: {self.random_doc}",
            },
        )

    #: how ``random:<seed>`` initialises (provenance)
    random_doc = "the library's initialisation under torch.manual_seed(seed)"

    def _resolve_pretrained(self) -> W.ResolvedWeights:
        raise NotImplementedError

    def _published_by_hash(self, sha256: str) -> str | None:
        """A ``file:`` that is a published file this backbone knows the full hash of."""
        return None

    # ------------------------------------------------------------------ loading
    def _load(self, weights: W.ResolvedWeights) -> None:
        torch = self.torch = import_torch()
        self._tdtype = torch.float64 if self.dtype == "float64" else torch.float32
        if self.device == "cuda" and not torch.cuda.is_available():
            raise HarnessError("device=cuda requested but torch sees no CUDA GPU; use device=cpu")
        model = self._build(weights)
        model = model.to(device=self.device, dtype=self._tdtype).eval()
        for p in model.parameters():
            p.requires_grad_(False)
        self.model = model
        scale, offset = self.normalize_from_255()
        self._scale = torch.as_tensor(scale, dtype=self._tdtype, device=self.device)
        self._offset = torch.as_tensor(offset, dtype=self._tdtype, device=self.device)

    def _build(self, weights: W.ResolvedWeights):
        """The network (float32, CPU), its weights loaded; sets ``self._n_features``."""
        raise NotImplementedError

    @contextlib.contextmanager
    def _seeded(self, seed: int):
        """torch's global generator seeded with ``seed`` inside the block, and the caller's
        random state restored after it."""
        torch = self.torch
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(int(seed))
            yield

    # ------------------------------------------------------------------ forward
    def _square(self, x: np.ndarray) -> np.ndarray:
        """Before resizing (``clip``: the central square, as CMMD's reader); default: as is."""
        return x

    def prepare_tensor(self, x_uint8: np.ndarray):
        """uint8 N x H x W x 3 -> normalised RGB N x 3 x S x S (float, on the device)."""
        torch = self.torch
        s = self.input_size
        x = self._square(x_uint8)
        if self.resize_method == "none" and x.shape[1:3] != (s, s):
            raise HarnessError(
                f"{self.name}: images are {x.shape[1]}x{x.shape[2]} but the network takes "
                f"{s}x{s} and resize=none; set backbone.resize=native or backbone.input_size"
            )
        if self.resize_method == "pil_bicubic":
            x = rs.pil_bicubic(np.ascontiguousarray(x), (s, s))
        t = torch.from_numpy(np.ascontiguousarray(x)).to(self.device).to(self._tdtype)
        t = t * self._scale.view(1, 1, 1, 3) + self._offset.view(1, 1, 1, 3)
        if self.resize_method not in ("none", "pil_bicubic"):
            t = rs.resize_torch_nhwc(t, (s, s), self.resize_method, bool(self.align_corners))
        return t.permute(0, 3, 1, 2).contiguous()

    def _embed(self, x):
        raise NotImplementedError

    def _forward(self, images: np.ndarray, want_features: bool):
        if not want_features:  # no classifier head: nothing to compute
            return None, None
        with self.torch.no_grad():
            feats = self._embed(self.prepare_tensor(images))
        return None, feats.double().cpu().numpy()

    # ------------------------------------------------------------------ classes
    @property
    def class_names(self) -> list[str]:
        return []

    # ------------------------------------------------------------------ provenance
    def preprocessing(self) -> str:
        """The preprocessing actually applied, in words (provenance)."""
        s = self.input_size
        return (
            f"{self._square_doc()}resize to {s}x{s} with "
            f"{rs.describe(self.resize_method, self.align_corners)}, then "
            f"{NORM_LABELS.get(self.input_norm, self.input_norm)}{self._norm_extra_doc()}"
        )

    def _square_doc(self) -> str:
        return ""

    def _norm_extra_doc(self) -> str:
        return ""

    def feature_description(self) -> str:
        return f"{self.feature_doc} ({self._n_features}-d)"

    def framework_versions(self) -> dict:
        return {"torch": package_version("torch")}


# ------------------------------------------------------------------------------ DINOv2
#: variant -> (timm architecture, features, what reporting lines call it)
VARIANTS = {
    "vits14": ("vit_small_patch14_dinov2", 384, "ViT-S/14"),
    "vitb14": ("vit_base_patch14_dinov2", 768, "ViT-B/14"),
    "vitl14": ("vit_large_patch14_dinov2", 1024, "ViT-L/14"),
    "vitg14": ("vit_giant_patch14_dinov2", 1536, "ViT-g/14"),
}
PATCH = 14
#: the size DINOv2 was trained at (its positional embedding is a 37 x 37 grid)
PRETRAINED_SIZE = 518
#: DINOv2's hub constructor: interpolate_offset, interpolate_antialias, init_values
INTERPOLATE_OFFSET = 0.1
LAYER_SCALE_INIT = 1.0
META_URL = "https://dl.fbaipublicfiles.com/dinov2/dinov2_{v}/dinov2_{v}_pretrain.pth"
HF_FILES = ("model.safetensors", "pytorch_model.bin")


def hf_repo(variant: str) -> str:
    return f"timm/{VARIANTS[variant][0]}.lvd142m"


def meta_artifact(variant: str) -> W.OfficialArtifact:
    """Meta's original checkpoint where ``torch.hub.load`` (dgm-eval) keeps it; no published
    hash."""
    return W.OfficialArtifact(
        "dinov2",
        f"dinov2_{variant}_pretrain.pth",
        META_URL.format(v=variant),
        "TORCH_HOME",
        "$XDG_CACHE_HOME/torch",
        subdir="hub/checkpoints",
    )


def interpolate_pos_encoding(pos_embed, grid: int):
    """DINOv2's ``interpolate_pos_encoding`` (hub models: offset 0.1, no antialias) for a
    ``grid`` x ``grid`` patch input: 1 x (1 + M*M) x D -> 1 x (1 + grid*grid) x D, in float32."""
    import torch
    import torch.nn.functional as F

    n = pos_embed.shape[1] - 1
    m = int(math.sqrt(n))
    if m * m != n:
        raise HarnessError(f"dinov2: positional embedding of {n} patches is not a square grid")
    if grid == m:
        return pos_embed
    dtype = pos_embed.dtype
    pe = pos_embed.float()
    dim = pe.shape[-1]
    scale = float(grid + INTERPOLATE_OFFSET) / m
    patch = F.interpolate(
        pe[:, 1:].reshape(1, m, m, dim).permute(0, 3, 1, 2),
        scale_factor=(scale, scale),
        mode="bicubic",
        antialias=False,
    )
    if tuple(patch.shape[-2:]) != (grid, grid):
        raise HarnessError(f"dinov2: positional embedding interpolated to {patch.shape[-2:]}")
    patch = patch.permute(0, 2, 3, 1).reshape(1, grid * grid, dim)
    return torch.cat((pe[:, :1], patch), dim=1).to(dtype)


def _check_input_size(values: dict, prefix: str) -> None:
    s = values.get("input_size")
    if isinstance(s, int) and not isinstance(s, bool) and s % PATCH:
        raise ConfigError(
            f"{prefix}input_size={s}: DINOv2's patches are {PATCH} pixels, so the input size must "
            f"be a multiple of {PATCH} (e.g. {max(PATCH, s // PATCH * PATCH)} or 224)"
        )


class DINOv2(HubEncoder):
    name = "dinov2"
    summary = (
        "DINOv2 ViT-S/B/L/G-14 (timm), features only: the CLS token as dgm-eval takes it "
        "(Stein et al. 2023); no classes, so FID/KID/PRDC only."
    )
    default_norm = "imagenet_mean_std"
    norm_doc = "auto = imagenet_mean_std (dgm-eval: ToTensor, Normalize(ImageNet mean, std))"
    native_resize = ("pil_bicubic", None)
    native_resize_doc = "dgm-eval: torchvision Resize((224, 224), BICUBIC) on the PIL image"
    min_input_size = PATCH
    default_input_size = 224
    feature_doc = "CLS token after the final LayerNorm (x_norm_clstoken)"
    random_doc = (
        "timm's initialisation under torch.manual_seed(seed) at 518x518, layer scale 1.0 "
        "(DINOv2's hub constructor)"
    )

    @classmethod
    def _settings(cls) -> S.Schema:
        return (
            super()
            ._settings()
            .with_changes(
                "input_size",
                doc=f"network input, a multiple of {PATCH} (dgm-eval: 224; pretrained at 518)",
            )
            .insert_after(
                "weights_sha256",
                S.Setting(
                    "variant",
                    S.Choice(tuple(VARIANTS)),
                    "vitl14",
                    "vits14 | vitb14 | vitl14 (dgm-eval's default, Stein et al.'s choice) | vitg14",
                ),
            )
            .extend(checks=[_check_input_size])
        )

    def __init__(self, *, variant, **kw):
        self.variant = variant
        self.timm_name, self._n_features, self._title = VARIANTS[variant]
        self.pos_embed_note = None
        super().__init__(**kw)

    @property
    def weights_title(self) -> str:  # type: ignore[override]
        return f"DINOv2 {self._title} (timm {self.timm_name})"

    # ------------------------------------------------------------------ weights
    def _resolve_pretrained(self) -> W.ResolvedWeights:
        repo = hf_repo(self.variant)
        found = hf_cached_file(repo, HF_FILES)
        if found is not None:
            return resolve_found(
                self.name,
                hf_artifact(self.name, repo, found),
                self.weights_sha256,
                f"Hugging Face hub cache ({repo}, timm's copy)",
            )
        meta = meta_artifact(self.variant)
        if (meta.directory() / meta.filename).is_file():
            return resolve_found(
                self.name,
                meta,
                self.weights_sha256,
                "torch hub cache (Meta's original checkpoint, what dgm-eval loads)",
            )
        raise MissingInputError(
            f"backbone dinov2: pretrained weights of variant {self.variant} not found offline "
            f"(nothing is downloaded): put timm's {HF_FILES[0]} of {repo} in the Hugging Face "
            f'hub cache {hf_repo_dir(repo)} (on a connected machine: python -c "import timm; '
            f"timm.create_model('{self.timm_name}.lvd142m', pretrained=True)\", then copy that "
            f"folder here, or set HF_HUB_CACHE), or Meta's {meta.filename} ({meta.url}) in "
            f"{meta.directory()} (or set TORCH_HOME), or pass weights=file:<path> to either file"
        )

    # ------------------------------------------------------------------ loading
    def _build(self, weights: W.ResolvedWeights):
        timm = import_optional("timm", "backbone dinov2")
        torch = self.torch

        def create(img_size: int):
            return timm.create_model(
                self.timm_name,
                pretrained=False,
                num_classes=0,
                img_size=img_size,
                init_values=LAYER_SCALE_INIT,
            )

        if weights.spec.kind == "random":
            with self._seeded(weights.spec.seed):
                model = create(PRETRAINED_SIZE)
            self.weights_info["weights_sha256"] = torch_state_sha256(model.state_dict())
        else:
            from timm.models.vision_transformer import checkpoint_filter_fn

            sd = read_state_dict(weights.path, f"backbone dinov2 ({self.variant})")
            size = PRETRAINED_SIZE
            pe = sd.get("pos_embed")
            if pe is not None and pe.ndim == 3:  # the grid the checkpoint was made for
                size = PATCH * int(math.sqrt(pe.shape[1] - 1))
            model = create(size)
            try:
                sd = checkpoint_filter_fn(sd, model)
            except Exception as exc:
                raise HarnessError(
                    f"backbone dinov2: {weights.path} is not a DINOv2 checkpoint timm can read "
                    f"({type(exc).__name__}: {' '.join(str(exc).split())[:200]})"
                ) from None
            load_strict(
                model,
                sd,
                "backbone dinov2",
                f"DINOv2 {self._title} ({self.timm_name}; variant={self.variant})",
                weights.path,
            )
        grid_from = int(math.sqrt(model.pos_embed.shape[1] - 1))
        grid = self.input_size // PATCH
        if grid != grid_from:
            native = model.pos_embed.detach().clone()
            model.set_input_size(img_size=(self.input_size, self.input_size))
            with torch.no_grad():
                model.pos_embed.copy_(interpolate_pos_encoding(native, grid))
            self.pos_embed_note = (
                f"{grid_from}x{grid_from} -> {grid}x{grid} by DINOv2's interpolate_pos_encoding "
                f"(bicubic, scale factor ({grid} + {INTERPOLATE_OFFSET}) / {grid_from}, no "
                "antialias)"
            )
        self._n_features = int(model.num_features)
        return model

    def _embed(self, x):
        return self.model(x)

    # ------------------------------------------------------------------ provenance
    def extra_knobs(self) -> dict:
        return {"variant": self.variant, "timm_model": self.timm_name}

    def extra_provenance(self) -> dict:
        return {
            "features": self.feature_description(),
            "feature_dim": self._n_features,
            "preprocessing": self.preprocessing(),
            "pos_embed_interpolation": self.pos_embed_note,
            "reference": "dgm-eval (Stein et al. 2023) dgm_eval/models/dinov2.py",
        }

    def framework_versions(self) -> dict:
        return {"torch": package_version("torch"), "timm": package_version("timm")}
