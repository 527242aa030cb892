"""``clip``: a CLIP image encoder (via ``open_clip``) as a features-only backbone, as CMMD uses it.

Jayasumana et al. (CVPR 2024, "Rethinking FID: Towards a Better Evaluation Metric for Image
Generation") replace Inception features by CLIP embeddings (CMMD).  Their reference code,
google-research ``cmmd`` (``embedding.py``, ``io_util.py``), is what this backbone reproduces:

* **network**: scenic's ``vit_l14_336px``, i.e. OpenAI's CLIP ViT-L/14 at 336 x 336 pixels.  In
  open_clip that is ``ViT-L-14-336-quickgelu`` with the ``openai`` weights (the default here:
  OpenAI's networks use QuickGELU; open_clip's plain ``ViT-L-14-336`` config uses nn.GELU and
  would silently compute something else with these weights, so that pairing is refused).  The
  PyTorch port sayakpaul/cmmd-pytorch uses the same network
  (``openai/clip-vit-large-patch14-336``);
* **preprocessing**: ``io_util`` crops the central square and resizes it with PIL's BICUBIC to
  the model's 336 pixels while reading the uint8 image (``crop=center``, native resize
  ``pil_bicubic``), divides by 255 (``input_norm=zero_one``: ``embed()`` takes [0, 1] images),
  and ``embed()`` then resizes with ``jax.image.resize(..., 'bicubic')`` to 336 (an identity on
  the already-336 images, so not repeated here) and applies CLIP's normalisation
  ``(x - mean) / std`` with OpenAI's mean (0.48145466, 0.4578275, 0.40821073) and std
  (0.26862954, 0.26130258, 0.27577711) (open_clip's values for the tag, recorded);
* **feature**: the image embedding (after the visual projection, 768-d for ViT-L/14),
  L2-normalised: scenic's CLIP returns normalised embeddings and cmmd-pytorch divides by the
  norm; here ``F.normalize(model.visual(x))``, what open_clip's ``encode_image(normalize=True)``
  computes.  Every feature vector has unit norm.

No classifier head (``has_logits`` is False): the feature-space metrics run on it (CMMD's MMD
among them), the Inception Score and everything else that needs class probabilities refuse it in
one line.

Knobs (each recorded and part of the cache key): ``model`` (a built-in open_clip config, e.g.
``ViT-B-32`` for cheaper runs), ``tag`` (which open_clip pretrained weights ``weights=pretrained``
means), ``crop`` (center | none), ``input_size`` (null = the model's own size, 336 for the
default; other sizes resample the positional embedding with open_clip's ``resize_pos_embed``,
bicubic with antialias, as open_clip does when it loads a checkpoint into another size), and
``resize``, ``dtype``, ``device`` as every backbone.

Weights (offline: nothing is ever downloaded):

* ``pretrained``: ``open_clip.create_model(model, pretrained=tag)`` looks in the Hugging Face hub
  cache first (the tag's ``hf_hub`` repository, for ``openai`` ``timm/vit_large_patch14_clip_336
  .openai``: ``open_clip_model.safetensors`` or ``open_clip_pytorch_model.bin``), and for tags
  with a URL in ``~/.cache/clip`` (OpenAI's ``ViT-L-14-336px.pt``, a TorchScript archive).  Both
  places are searched, in that order; a missing file is one line naming them and how to fill
  them.  **Pins**: OpenAI publishes the full sha256 of each file in its URL
  (``.../clip/models/<sha256>/ViT-L-14-336px.pt``; for ViT-L-14-336px.pt it is
  ``3035c92b350959924f9f00213499208652fc7ea050643e8b385c2dac08641f02``), checked on every load
  (a match is ``verified``, also for ``file:`` of that file).  No hash of the Hugging Face
  copies is pinned in this code (none could be read offline): such a file is checked against
  the hub's own sha256 of it (the name of the blob its snapshot links to; a mismatch is an
  error) and stays ``unverified`` (banner), as does any other file;
  ``weights_sha256=<hex>`` pins any file;
* ``file:<path>``: an open_clip checkpoint (a state dict, ``.safetensors``/``.bin``/``.pt``, also
  under ``state_dict``) or OpenAI's TorchScript archive; loaded strictly; sha256 recorded;
* ``random:<seed>``: open_clip's initialisation of the whole CLIP model under
  ``torch.manual_seed(seed)`` at the model's own size (then resized like pretrained weights): a
  labelled smoke run; ``weights_sha256`` is the sha256 of those arrays.

``open_clip`` (and ``huggingface_hub``, ``safetensors``) are imported only when the backbone is
loaded; a missing one is one line: ``pip install -e '.[encoders]'``.
"""

from __future__ import annotations

import contextlib
import difflib
import logging
import os

import numpy as np

from .. import settings as S
from ..errors import ConfigError, HarnessError, MissingInputError
from ..provenance import package_version
from . import weights as W
from .dinov2 import (
    HubEncoder,
    hf_artifact,
    hf_cached_file,
    hf_repo_dir,
    import_optional,
    load_strict,
    read_state_dict,
    resolve_found,
    torch_state_sha256,
)

DEFAULT_MODEL = "ViT-L-14-336-quickgelu"
DEFAULT_TAG = "openai"
#: where open_clip's download_pretrained_from_url keeps files (its default cache_dir)
URL_CACHE = "~/.cache/clip"
HF_WEIGHTS = ("open_clip_model.safetensors", "open_clip_pytorch_model.bin")


@contextlib.contextmanager
def quiet_logging():
    """open_clip logs a warning for every model it builds without weights: not for users here."""
    previous = logging.root.manager.disable
    logging.disable(logging.WARNING)
    try:
        yield
    finally:
        logging.disable(previous)


def url_artifact(url: str) -> W.OfficialArtifact:
    """A tag's URL file where open_clip keeps it, pinned as open_clip checks it: OpenAI's full
    sha256 is the URL's last folder; mlfoundations' file names end in a sha256 prefix."""
    filename = os.path.basename(url)
    kind = pin = None
    if "openaipublic" in url:
        kind, pin = "sha256", url.split("/")[-2].lower()
    elif "mlfoundations" in url:
        kind, pin = "sha256_prefix", os.path.splitext(filename)[0].split("-")[-1].lower()
    return W.OfficialArtifact("clip", filename, url, "", URL_CACHE, pin_kind=kind, pin=pin)


def hf_files(hf_hub: str) -> tuple[str, tuple]:
    """open_clip's ``hf_hub`` entry -> (repository, the file names it tries, in its order)."""
    repo, filename = os.path.split(hf_hub)  # open_clip's own split: "org/name/" -> no file
    if not filename:
        return repo, HF_WEIGHTS
    if filename.endswith((".bin", ".pth")):
        return repo, (filename[:-4] + ".safetensors", filename)
    return repo, (filename,)


class CLIP(HubEncoder):
    name = "clip"
    summary = (
        "CLIP image encoder (open_clip), features only: the L2-normalised image embedding as "
        "CMMD uses it (OpenAI ViT-L/14 at 336 px); no classes, so FID/KID/PRDC/MMD only."
    )
    default_norm = "zero_one"
    norm_doc = (
        "auto = zero_one ([0, 1], what CMMD's embed() takes); CLIP's (x - mean) / std follows "
        "inside the network"
    )
    native_resize = ("pil_bicubic", None)
    native_resize_doc = "CMMD's reader: PIL BICUBIC to the model's size"
    distance_metrics = ("cmmd", "fd")  # CMMD (its paper's metric), and FD_CLIP as dgm-eval
    min_input_size = 1
    default_input_size = None
    feature_doc = "L2-normalised CLIP image embedding (after the visual projection)"
    random_doc = "open_clip's initialisation under torch.manual_seed(seed) at the model's own size"

    @classmethod
    def _settings(cls) -> S.Schema:
        return (
            super()
            ._settings()
            .with_changes("input_norm", kind=S.Choice(("auto", "zero_one")))
            .with_changes(
                "input_size",
                kind=S.Int(lo=1),
                default=None,
                nullable=True,
                doc="null = the model's own image size (ViT-L-14-336: 336, CMMD's) | N",
            )
            .insert_after(
                "weights_sha256",
                S.Setting(
                    "model",
                    S.Str(what="an open_clip model config name"),
                    DEFAULT_MODEL,
                    "open_clip config (CMMD: OpenAI ViT-L/14 at 336 px = "
                    f"{DEFAULT_MODEL}; e.g. ViT-B-32 for cheaper runs)",
                ),
                S.Setting(
                    "tag",
                    S.Str(what="an open_clip pretrained tag"),
                    DEFAULT_TAG,
                    "the open_clip pretrained tag weights=pretrained loads (CMMD: openai)",
                    applies=S.When(
                        "weights",
                        fn=lambda v: W.WeightsSpec.parse(v["weights"]).kind == "pretrained",
                        text="weights=pretrained",
                    ),
                ),
                S.Setting(
                    "crop",
                    S.Choice(("center", "none")),
                    "center",
                    "center: the central square first, as CMMD's reader (no-op on square images) "
                    "| none",
                ),
            )
        )

    def __init__(self, *, model, tag, crop, input_size, **kw):
        if ":" in model:
            raise ConfigError(
                f"backbone clip: model={model}: give a built-in open_clip config name (e.g. "
                f"{DEFAULT_MODEL} or ViT-B-32); hub and local-dir schemas would download or "
                "read configs outside the harness's weights lookup"
            )
        self.oc = import_optional("open_clip", "backbone clip")
        self.model_name = model
        self.tag = tag
        self.crop = crop
        self._model_cfg = self.oc.get_model_config(model)
        if self._model_cfg is None:
            close = difflib.get_close_matches(model, self.oc.list_models(), n=3)
            raise ConfigError(
                f"backbone clip: open_clip has no model config {model!r}"
                + (f"; did you mean {', '.join(close)}?" if close else "")
                + f" (e.g. {DEFAULT_MODEL}, ViT-B-32)"
            )
        vision = self._model_cfg.get("vision_cfg", {})
        native = vision.get("image_size", 224)
        self.native_size = int(native if isinstance(native, int) else native[0])
        self.patch_size = vision.get("patch_size")
        self._custom_tower = "timm_model_name" in vision or self.patch_size is None
        size = self.native_size if input_size is None else int(input_size)
        self._input_size_requested = input_size
        if size != self.native_size and self._custom_tower:
            raise ConfigError(
                f"backbone clip: input_size={size}: model {model} takes "
                f"{self.native_size} only here (set input_size=null)"
            )
        if self.patch_size and size % int(self.patch_size):
            raise ConfigError(
                f"backbone clip: input_size={size} is not a multiple of {model}'s patch size "
                f"{self.patch_size} (e.g. {max(1, size // self.patch_size) * self.patch_size} or "
                f"null = {self.native_size})"
            )
        self._pretrained_cfg = {}
        self.mean = self.std = None
        self._n_features = None
        self.pos_embed_note = None
        super().__init__(input_size=size, **kw)

    @property
    def weights_title(self) -> str:  # type: ignore[override]
        what = f"CLIP {self.model_name} (open_clip)"
        return f"{what}, {self.tag} weights" if self.weights_spec.kind == "pretrained" else what

    # ------------------------------------------------------------------ weights
    def _resolve_pretrained(self) -> W.ResolvedWeights:
        oc = self.oc
        cfg = oc.get_pretrained_cfg(self.model_name, self.tag)
        if not cfg:
            tags = oc.list_pretrained_tags_by_model(self.model_name)
            raise ConfigError(
                f"backbone clip: open_clip has no pretrained tag {self.tag!r} for model "
                f"{self.model_name}; its tags: {', '.join(tags) or 'none (use file:<path>)'}"
            )
        if bool(cfg.get("quick_gelu")) != bool(self._model_cfg.get("quick_gelu")):
            other = (
                f"{self.model_name}-quickgelu"
                if cfg.get("quick_gelu")
                else self.model_name.removesuffix("-quickgelu")
            )
            act = {True: "QuickGELU", False: "nn.GELU"}
            raise ConfigError(
                f"backbone clip: tag {self.tag} was trained with "
                f"{act[bool(cfg.get('quick_gelu'))]} but model {self.model_name} uses "
                f"{act[bool(self._model_cfg.get('quick_gelu'))]}: use model={other}"
            )
        self._pretrained_cfg = cfg
        places = []
        if cfg.get("hf_hub"):
            repo, names = hf_files(cfg["hf_hub"])
            found = hf_cached_file(repo, names)
            if found is not None:
                return resolve_found(
                    self.name,
                    hf_artifact(self.name, repo, found),
                    self.weights_sha256,
                    f"Hugging Face hub cache ({repo})",
                )
            places.append(
                f"{' or '.join(names)} of {repo} in the Hugging Face hub cache "
                f'{hf_repo_dir(repo)} (on a connected machine: python -c "import open_clip; '
                f"open_clip.create_model('{self.model_name}', pretrained='{self.tag}')\", then "
                "copy that folder here, or set HF_HUB_CACHE)"
            )
        if cfg.get("url"):
            art = url_artifact(cfg["url"])
            if (art.directory() / art.filename).is_file():
                return resolve_found(
                    self.name,
                    art,
                    self.weights_sha256,
                    f"open_clip URL cache ({URL_CACHE})",
                    f"{art.filename} ({art.describe_pin()}, published in its URL)"
                    if art.pin_kind
                    else None,
                )
            places.append(f"{art.filename} ({cfg['url']}) in {art.directory()}")
        raise MissingInputError(
            f"backbone clip: pretrained weights of {self.model_name} tag {self.tag} not found "
            f"offline (nothing is downloaded): put {'; or '.join(places) or 'a checkpoint'}; or "
            "pass weights=file:<path> to such a file"
        )

    def _published_by_hash(self, sha256: str) -> str | None:
        url = (self.oc.get_pretrained_cfg(self.model_name, self.tag) or {}).get("url", "")
        art = url_artifact(url) if url else None
        if art is not None and art.pin_kind == "sha256" and sha256 == art.pin:
            return f"{art.filename} ({art.describe_pin()}, published in its URL)"
        return None

    # ------------------------------------------------------------------ loading
    def _create(self, size: int):
        with quiet_logging():
            return self.oc.create_model(
                self.model_name,
                pretrained=None,
                device="cpu",
                force_image_size=None if size == self.native_size else size,
            )

    def _load_state(self, model, sd: dict, where) -> None:
        """open_clip's ``load_checkpoint`` steps on a state dict already read (so that OpenAI's
        TorchScript archives load too): third-party conversions, old text layout, scalar shapes,
        then ``resize_pos_embed`` to the model's grid, and a strict load."""
        from open_clip.convert import convert_state_dict
        from open_clip.model import (
            convert_to_custom_text_state_dict,
            resize_pos_embed,
            resize_text_pos_embed,
        )

        for key in ("input_resolution", "context_length", "vocab_size"):  # TorchScript extras
            sd.pop(key, None)
        # a TorchScript archive also lists the buffers a state dict leaves out (attn_mask)
        for key in {n for n, _ in model.named_buffers()} - set(model.state_dict()):
            sd.pop(key, None)
        try:
            sd = convert_state_dict(model, sd)
            if "positional_embedding" in sd and not hasattr(model, "positional_embedding"):
                sd = convert_to_custom_text_state_dict(sd)
            for key in ("logit_scale", "logit_bias"):
                own = getattr(model, key, None)
                if key in sd and own is not None and own.ndim != sd[key].ndim:
                    sd[key] = sd[key].reshape(own.shape)
            if "logit_bias" not in sd and getattr(model, "logit_bias", None) is not None:
                sd["logit_bias"] = self.torch.zeros_like(sd["logit_scale"])
            sd.pop("text.transformer.embeddings.position_ids", None)
            old = sd.get("visual.positional_embedding")
            resize_pos_embed(sd, model)
            resize_text_pos_embed(sd, model)
            new = sd.get("visual.positional_embedding")
            if old is not None and new is not None and old.shape != new.shape:
                g0, g1 = (
                    int(round((old.shape[0] - 1) ** 0.5)),
                    int(round((new.shape[0] - 1) ** 0.5)),
                )
                self.pos_embed_note = (
                    f"{g0}x{g0} -> {g1}x{g1} by open_clip's resize_pos_embed (bicubic, antialias)"
                )
        except Exception as exc:  # open_clip asserts on widths that differ
            first = " ".join(str(exc).split())[:200] or type(exc).__name__
            raise HarnessError(
                f"backbone clip: {where} does not fit open_clip {self.model_name} ({first})"
            ) from None
        load_strict(model, sd, "backbone clip", f"open_clip {self.model_name}", where)

    def _build(self, weights: W.ResolvedWeights):
        s = self.input_size
        if weights.spec.kind == "random":
            with self._seeded(weights.spec.seed):
                model = self._create(self.native_size)
            self.weights_info["weights_sha256"] = torch_state_sha256(model.state_dict())
            if s != self.native_size:
                sd = model.state_dict()
                model = self._create(s)
                self._load_state(model, dict(sd), f"random:{weights.spec.seed}")
        else:
            sd = read_state_dict(weights.path, f"backbone clip ({self.model_name})")
            model = self._create(s)
            self._load_state(model, sd, weights.path)
        pre = dict(self.oc.get_model_preprocess_cfg(model))
        for key in ("mean", "std"):  # the tag's values, as open_clip merges them for it
            if self._pretrained_cfg.get(key) is not None:
                pre[key] = self._pretrained_cfg[key]
        self.mean = tuple(float(v) for v in pre.get("mean", self.oc.OPENAI_DATASET_MEAN))
        self.std = tuple(float(v) for v in pre.get("std", self.oc.OPENAI_DATASET_STD))
        visual = model.visual
        self._n_features = int(getattr(visual, "output_dim", 0) or model.text_projection.shape[1])
        del model  # the text tower is not needed
        torch = self.torch
        self._clip_mean = torch.tensor(self.mean).view(1, 3, 1, 1)
        self._clip_std = torch.tensor(self.std).view(1, 3, 1, 1)
        return visual

    def _load(self, weights: W.ResolvedWeights) -> None:
        super()._load(weights)
        kw = {"dtype": self._tdtype, "device": self.device}
        self._clip_mean, self._clip_std = self._clip_mean.to(**kw), self._clip_std.to(**kw)

    # ------------------------------------------------------------------ forward
    def _square(self, x: np.ndarray) -> np.ndarray:
        if self.crop != "center":
            return x
        h, w = x.shape[1:3]
        side = min(h, w)
        top, left = (h - side) // 2, (w - side) // 2
        return x[:, top : top + side, left : left + side]

    def _embed(self, x):
        import torch.nn.functional as F

        return F.normalize(self.model((x - self._clip_mean) / self._clip_std), dim=-1)

    # ------------------------------------------------------------------ provenance
    def _square_doc(self) -> str:
        return "central square (PIL box as CMMD's reader), " if self.crop == "center" else ""

    def _norm_extra_doc(self) -> str:
        return f", then CLIP's (x - mean) / std with mean {self.mean} and std {self.std}"

    def extra_knobs(self) -> dict:
        return {"model": self.model_name, "tag": self.tag_used, "crop": self.crop}

    @property
    def tag_used(self) -> str | None:
        """The pretrained tag, where the weights are the tag's (not for file: or random:)."""
        return self.tag if self.weights_spec.kind == "pretrained" else None

    def extra_provenance(self) -> dict:
        return {
            "features": self.feature_description(),
            "feature_dim": self._n_features,
            "feature_norm": "L2-normalised (unit norm)",
            "preprocessing": self.preprocessing(),
            "clip_mean": list(self.mean),
            "clip_std": list(self.std),
            "quick_gelu": bool(self._model_cfg.get("quick_gelu")),
            "native_input_size": self.native_size,
            "pos_embed_interpolation": self.pos_embed_note,
            "reference": "google-research cmmd (Jayasumana et al. CVPR 2024) embedding.py, "
            "io_util.py",
        }

    def framework_versions(self) -> dict:
        return {
            "torch": package_version("torch"),
            "open_clip_torch": package_version("open_clip_torch"),
            "timm": package_version("timm"),
        }
