"""Where weights come from: ``pretrained``, ``file:<path>``, ``random:<seed>``, ``ported:...``.

Official artefacts are found through each ecosystem's own cache (``TORCH_HOME``,
``KERAS_HOME``, ``TFHUB_CACHE_DIR``; the 2015 graph in the harness's weights directory) and
downloaded only with ``allow_download=true``.  Each is pinned by the hash its ecosystem
publishes (torchvision: the sha256 prefix in the file name; Keras: the md5 in
``keras.applications``); where no hash is published (TF-Hub, the 2015 tgz) the file's sha256 is
recorded and ``weights_sha256=<hex>`` enforces one.  Missing files give one line naming the
file, its hash, the directory searched and the two ways to fix it.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from ..errors import HarnessError, MissingInputError
from ..provenance import sha256_file, sha256_tree


@dataclass(frozen=True)
class WeightsSpec:
    kind: str  # pretrained | file | random | ported
    path: str | None = None
    seed: int | None = None
    source_backbone: str | None = None
    source_spec: str | None = None

    @classmethod
    def parse(cls, spec) -> WeightsSpec:
        if isinstance(spec, WeightsSpec):
            return spec
        s = str(spec).strip()
        if s == "pretrained":
            return cls("pretrained")
        if s.startswith("file:") and len(s) > 5:
            return cls("file", path=s[5:])
        if s.startswith("random:"):
            try:
                return cls("random", seed=int(s[7:]))
            except ValueError:
                pass
        if s.startswith("ported:") and len(s) > 7:
            rest = s[7:]
            src, _, sub = rest.partition(":")
            return cls("ported", source_backbone=src, source_spec=sub or "pretrained")
        raise HarnessError(
            f"weights={spec!r} is not understood; use pretrained, file:<path>, random:<seed> "
            "or ported:<source_backbone>[:<source weights>]"
        )

    @property
    def is_random(self) -> bool:
        return self.kind == "random" or (self.kind == "ported" and self.source_spec.startswith("random:"))

    def __str__(self) -> str:
        if self.kind == "file":
            return f"file:{self.path}"
        if self.kind == "random":
            return f"random:{self.seed}"
        if self.kind == "ported":
            return f"ported:{self.source_backbone}:{self.source_spec}"
        return "pretrained"


@dataclass(frozen=True)
class OfficialArtifact:
    backbone: str
    filename: str
    url: str
    env_var: str
    pin_kind: str | None  # "sha256_prefix" | "md5" | "sha256" | None
    pin: str | None
    is_dir: bool = False

    def directory(self) -> Path:
        if self.backbone == "torchvision":
            home = os.environ.get("TORCH_HOME") or os.path.join(
                os.environ.get("XDG_CACHE_HOME", "~/.cache"), "torch")
            return Path(home).expanduser() / "hub" / "checkpoints"
        if self.backbone == "keras":
            return Path(os.environ.get("KERAS_HOME", "~/.keras")).expanduser() / "models"
        if self.backbone == "tfhub":
            base = os.environ.get("TFHUB_CACHE_DIR") or os.path.join(tempfile.gettempdir(), "tfhub_modules")
            return Path(base).expanduser()
        base = os.environ.get("INCEPTION_NOTE_WEIGHTS") or os.path.join(
            os.environ.get("INCEPTION_NOTE_CACHE", "~/.cache/inception-note"), "weights")
        return Path(base).expanduser()

    def describe_pin(self) -> str:
        if self.pin_kind == "sha256_prefix":
            return f"sha256 {self.pin}... (torchvision's published prefix)"
        if self.pin_kind == "md5":
            return f"md5 {self.pin} (keras.applications' published hash)"
        if self.pin_kind == "sha256":
            return f"sha256 {self.pin}"
        return "no published hash (sha256 recorded on first use; pin it with weights_sha256=)"


TFHUB_DEFAULT_HANDLE = "https://tfhub.dev/google/imagenet/inception_v3/classification/5"

OFFICIAL = {
    "torchvision": OfficialArtifact(
        "torchvision", "inception_v3_google-0cc3c7bd.pth",
        "https://download.pytorch.org/models/inception_v3_google-0cc3c7bd.pth",
        "TORCH_HOME", "sha256_prefix", "0cc3c7bd"),
    "keras": OfficialArtifact(
        "keras", "inception_v3_weights_tf_dim_ordering_tf_kernels.h5",
        "https://storage.googleapis.com/tensorflow/keras-applications/inception_v3/"
        "inception_v3_weights_tf_dim_ordering_tf_kernels.h5",
        "KERAS_HOME", "md5", "9a0d58056eeedaa3f26cb7ebd46da564"),
    "tfhub": OfficialArtifact(
        "tfhub", hashlib.sha1(TFHUB_DEFAULT_HANDLE.encode()).hexdigest(), TFHUB_DEFAULT_HANDLE,
        "TFHUB_CACHE_DIR", None, None, is_dir=True),
    "tf2015": OfficialArtifact(
        "tf2015", "inception-2015-12-05.tgz",
        "http://download.tensorflow.org/models/image/imagenet/inception-2015-12-05.tgz",
        "INCEPTION_NOTE_WEIGHTS", None, None),
}


def file_hashes(path: Path) -> dict:
    """sha256 (and md5 for files) of a weights file or directory."""
    if path.is_dir():
        return {"sha256": sha256_tree(path), "md5": None}
    md5, sha = hashlib.md5(), hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            md5.update(block)
            sha.update(block)
    return {"sha256": sha.hexdigest(), "md5": md5.hexdigest()}


def check_pin(path: Path, hashes: dict, art: OfficialArtifact | None, user_sha256: str | None) -> None:
    """Raise if the file does not carry the expected hash."""
    if user_sha256:
        if hashes["sha256"] != str(user_sha256).lower():
            raise HarnessError(
                f"weights file {path} has sha256 {hashes['sha256']}, but weights_sha256={user_sha256} "
                "was required; the file is not the one you pinned")
        return
    if art is None or art.pin_kind is None:
        return
    ok = {
        "sha256_prefix": hashes["sha256"].startswith(art.pin),
        "md5": hashes["md5"] == art.pin,
        "sha256": hashes["sha256"] == art.pin,
    }[art.pin_kind]
    if not ok:
        got = hashes["md5"] if art.pin_kind == "md5" else hashes["sha256"]
        raise HarnessError(
            f"{art.backbone}: {path} does not match the official {art.describe_pin()} (got {got}); "
            "the file is truncated, corrupt or not the official one: delete it and re-download, "
            "or pass weights=file:<path> to use it knowingly")


def missing_message(art: OfficialArtifact, where: Path) -> str:
    if art.backbone == "tfhub":
        return (
            f"backbone tfhub: SavedModel for handle {art.url} not found as {where / art.filename} "
            f"(TF-Hub caches a handle in TFHUB_CACHE_DIR/<sha1 of the handle>); on a connected machine run "
            f"TFHUB_CACHE_DIR={where} python -c \"import tensorflow_hub as h; h.resolve('{art.url}')\" and copy "
            f"{where / art.filename} here, or pass weights=file:<SavedModel directory> (no published hash: "
            "its sha256 is recorded; pin it with weights_sha256=)"
        )
    return (
        f"backbone {art.backbone}: pretrained weights {art.filename} ({art.describe_pin()}) not found "
        f"in {where}; on a connected machine download {art.url} into that directory "
        f"(or set {art.env_var}), or pass weights=file:<path> to a copy"
    )


def resolve_pretrained(backbone: str, allow_download: bool = False, handle: str | None = None) -> Path:
    """Path of the official artefact in its ecosystem's cache, downloading only if allowed."""
    art = OFFICIAL[backbone]
    if backbone == "tfhub" and handle and handle != art.url:
        if Path(handle).expanduser().is_dir():
            return Path(handle).expanduser()
        art = OfficialArtifact("tfhub", hashlib.sha1(handle.encode()).hexdigest(), handle,
                               "TFHUB_CACHE_DIR", None, None, is_dir=True)
    where = art.directory()
    path = where / art.filename
    if backbone == "tf2015" and not path.exists() and (where / "classify_image_graph_def.pb").exists():
        path = where / "classify_image_graph_def.pb"
    if path.exists() and (not art.is_dir or (path / "saved_model.pb").exists()):
        return path
    if not allow_download:
        raise MissingInputError(missing_message(art, where))
    return _download(art, where)


def _download(art: OfficialArtifact, where: Path) -> Path:
    where.mkdir(parents=True, exist_ok=True)
    try:
        if art.backbone == "tfhub":
            import tensorflow_hub as hub

            return Path(hub.resolve(art.url))
        import urllib.request

        target = where / art.filename
        tmp = target.with_suffix(target.suffix + ".part")
        urllib.request.urlretrieve(art.url, tmp)  # noqa: S310 (official https/http URL)
        os.replace(tmp, target)
        return target
    except Exception as exc:
        raise MissingInputError(
            f"{missing_message(art, where)} (download failed: {type(exc).__name__}; is the machine offline?)"
        ) from None


def weights_record(spec: WeightsSpec, path: Path | None, hashes: dict | None,
                   art: OfficialArtifact | None = None) -> dict:
    """The provenance of a weights choice."""
    rec = {"weights": str(spec), "weights_kind": spec.kind, "weights_path": str(path) if path else None,
           "weights_sha256": hashes["sha256"] if hashes else None,
           "weights_md5": hashes.get("md5") if hashes else None}
    if spec.kind == "random":
        rec["weights_sha256"] = f"random:{spec.seed}"
        rec["weights_note"] = "random weights"
    if art is not None and spec.kind == "pretrained":
        rec["weights_official_pin"] = art.describe_pin()
    return rec


def locate(backbone: str, spec: WeightsSpec, allow_download: bool = False, handle: str | None = None,
           user_sha256: str | None = None) -> tuple[Path | None, dict | None]:
    """Find and verify the weights file for ``pretrained``/``file:`` specs."""
    if spec.kind == "pretrained":
        path = resolve_pretrained(backbone, allow_download, handle)
        art = OFFICIAL[backbone] if not (backbone == "tfhub" and handle and handle != OFFICIAL["tfhub"].url) else None
    elif spec.kind == "file":
        path = Path(spec.path).expanduser()
        art = None
        if not path.exists():
            raise MissingInputError(f"backbone {backbone}: weights file {path} does not exist; fix weights=file:<path>")
    else:
        return None, None
    hashes = file_hashes(path)
    check_pin(path, hashes, art, user_sha256)
    return path, hashes


def sha256_of(path) -> str:
    p = Path(path)
    return sha256_tree(p) if p.is_dir() else sha256_file(p)
