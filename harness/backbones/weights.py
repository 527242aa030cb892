"""Where weights come from: ``pretrained``, ``file:<path>``, ``random:<seed>``, ``ported:...``
(and ``none``: a backbone without weights, such as ``pixels``).

:func:`resolve` turns a weights spec into :class:`ResolvedWeights` once, for every backbone:

* ``pretrained``: the backbone's :class:`OfficialArtifact`, found in its ecosystem's own cache
  (``TORCH_HOME``, ``KERAS_HOME``, ``TFHUB_CACHE_DIR``; the 2015 graph in the harness's weights
  directory) and downloaded only with ``allow_download=true``; pinned by the hash its ecosystem
  publishes where one exists (torchvision: the sha256 prefix in the file name; Keras: the md5 in
  ``keras.applications``); elsewhere the sha256 is recorded and ``weights_sha256=<hex>`` pins it;
* ``file:<path>``: any file or directory in the backbone's own format, sha256 recorded;
* ``random:<seed>``: the canonical random state (:mod:`random_init`), cached under
  ``<cache.dir>/weights/random``; its ``weights_sha256`` is the sha256 of the arrays actually
  loaded, so a replaced cache file changes every cache key that depends on it;
* ``ported:<backbone>[:<weights>]``: another backbone's weights in canonical layout
  (:mod:`harness.backbones.porting`);
* ``none``: no weights at all, for a backbone that is a fixed function of the pixels
  (``pixels``: raw pixel space); only such a backbone takes it, and every other refuses it.
  Its provenance says so: ``weights_kind`` ``none``, ``weights_sha256`` the descriptor
  :data:`NO_WEIGHTS_SHA256` (``"none"``: no file or array to hash; never a hex digest),
  ``weights_status`` :data:`NO_WEIGHTS`.

``cache_dir`` (every function here that derives files): ``None`` is the default location
(``$INCEPTION_NOTE_CACHE``, else ``~/.cache/inception-note``), a path is that directory, and
:data:`NO_DISK_CACHE` (what ``cache.enabled=false`` passes) means no on-disk cache at all:
derived weights are built in memory (or in a :func:`scratch_cache` directory removed after use)
and nothing under any cache directory is read or written.

Missing files give one line naming the file, its hash, the directory searched and the fixes.

Verification: every weights file of an Inception backbone (``pretrained`` and ``file:``, and the
source file of ``ported:``) is compared with :func:`published_table`, the published files of all
Inception backbones (their :class:`OfficialArtifact` pins and the peers' files, each with hash,
size and origin).  :func:`verification` gives every network a ``weights_status``: ``random``,
``unverified`` (no published file has its hash; also the 2015 tgz and TF-Hub, whose hashes are
not published), ``verified`` (with ``weights_name``, the published file's name), ``trained here``
(``trained:``), ``user network`` (``torch_model``/``keras_model``: claims no published file) or
``no weights`` (``none``: a backbone without weights, e.g. ``pixels``).
Random and unverified weights put a banner on every output (:mod:`harness.results`).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import HarnessError, MissingInputError
from ..provenance import sha256_file, sha256_tree  # noqa: F401
from ..storage import (  # noqa: F401  (re-exported: W.cache_root and friends)
    CACHE_FIX,
    NO_DISK_CACHE,
    cache_root,
    disk_cache_off,
    file_hashes,
    harness_weights_dir,
    scratch_cache,
    sha256_of,
    state_sha256,
)


@dataclass(frozen=True)
class WeightsSpec:
    kind: str  # pretrained | file | random | ported | trained | none
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
        if s == "none":  # a backbone without weights (pixels)
            return cls("none")
        if s.startswith("file:") and len(s) > 5:
            return cls("file", path=s[5:])
        if s.startswith("random:"):
            try:
                return cls("random", seed=int(s[7:]))
            except ValueError:
                pass
        if s.startswith("ported:") and len(s) > 7:
            src, _, sub = s[7:].partition(":")
            return cls("ported", source_backbone=src, source_spec=sub or "pretrained")
        if s.startswith("trained:") and len(s) > 8:
            return cls("trained", path=s[8:])
        raise HarnessError(
            f"weights={spec!r} is not understood; use pretrained, file:<path>, random:<seed>, "
            "ported:<source_backbone>[:<source weights>], trained:<recipe>/<framework>/<seed> "
            "or none (a backbone without weights: pixels)"
        )

    @property
    def is_random(self) -> bool:
        return self.kind == "random" or (
            self.kind == "ported" and self.source_spec.startswith("random:")
        )

    def __str__(self) -> str:
        if self.kind == "file":
            return f"file:{self.path}"
        if self.kind == "random":
            return f"random:{self.seed}"
        if self.kind == "ported":
            return f"ported:{self.source_backbone}:{self.source_spec}"
        if self.kind == "trained":
            return f"trained:{self.path}"
        if self.kind == "none":
            return "none"
        return "pretrained"


@dataclass(frozen=True)
class OfficialArtifact:
    """What ``weights=pretrained`` means for one backbone, and where its ecosystem keeps it."""

    backbone: str
    filename: str
    url: str
    env_var: str
    default_dir: object  # str (``~``, $XDG_CACHE_HOME expanded) or a callable -> path,
    # used when env_var is unset
    subdir: str = ""  # appended to the env var's directory (torch: hub/checkpoints)
    pin_kind: str | None = None  # "sha256_prefix" | "md5" | "sha256" | None
    pin: str | None = None
    is_dir: bool = False
    alternatives: tuple = ()  # other file names accepted in the same directory

    def directory(self) -> Path:
        base = os.environ.get(self.env_var)
        if not base:
            default = self.default_dir() if callable(self.default_dir) else self.default_dir
            xdg = os.environ.get("XDG_CACHE_HOME") or "~/.cache"
            base = str(default).replace("$XDG_CACHE_HOME", xdg)
        return Path(base).expanduser() / self.subdir

    def describe_pin(self) -> str:
        if self.pin_kind == "sha256_prefix":
            return f"sha256 {self.pin}... (the published prefix)"
        if self.pin_kind == "md5":
            return f"md5 {self.pin} (the published hash)"
        if self.pin_kind == "sha256":
            return f"sha256 {self.pin}"
        return "no published hash (sha256 recorded on first use; pin it with weights_sha256=)"

    def missing_message(self, where: Path) -> str:
        if self.is_dir:
            return (
                f"backbone {self.backbone}: SavedModel for handle {self.url} not found as "
                f"{where / self.filename} (TF-Hub caches a handle in "
                "TFHUB_CACHE_DIR/<sha1 of the handle>); on a connected machine run "
                f'TFHUB_CACHE_DIR={where} python -c "import tensorflow_hub as h; '
                f"h.resolve('{self.url}')\" and copy {where / self.filename} here, or pass "
                "weights=file:<SavedModel directory> (no published hash: its sha256 is "
                "recorded; pin it with weights_sha256=)"
            )
        return (
            f"backbone {self.backbone}: pretrained weights {self.filename} "
            f"({self.describe_pin()}) not found in {where}; on a connected machine download "
            f"{self.url} into that directory (or set {self.env_var}), or pass "
            "weights=file:<path> to a copy"
        )

    def locate(self, allow_download: bool = False) -> Path:
        where = self.directory()
        for name in (self.filename, *self.alternatives):
            path = where / name
            if path.exists() and (not self.is_dir or (path / "saved_model.pb").exists()):
                return path
        if not allow_download:
            raise MissingInputError(self.missing_message(where))
        return self._download(where)

    def _download(self, where: Path) -> Path:
        where.mkdir(parents=True, exist_ok=True)
        try:
            if self.is_dir:
                import tensorflow_hub as hub

                return Path(hub.resolve(self.url))
            import urllib.request

            target = where / self.filename
            fd, tmp = tempfile.mkstemp(prefix=f".{self.filename}.", dir=where)
            os.close(fd)
            urllib.request.urlretrieve(self.url, tmp)  # noqa: S310 (the official URL)
            os.replace(tmp, target)
            return target
        except Exception as exc:
            raise MissingInputError(
                f"{self.missing_message(where)} (download failed: {type(exc).__name__}; is the "
                "machine offline?)"
            ) from None


def tfhub_artifact(handle: str) -> OfficialArtifact:
    """TF-Hub resolves a handle to ``$TFHUB_CACHE_DIR/<sha1 of the handle>``."""
    return OfficialArtifact(
        "tfhub",
        hashlib.sha1(handle.encode()).hexdigest(),
        handle,
        "TFHUB_CACHE_DIR",
        os.path.join(tempfile.gettempdir(), "tfhub_modules"),
        is_dir=True,
    )


def check_pin(path: Path, hashes: dict, art: OfficialArtifact | None, user_sha256) -> None:
    """Raise if the file does not carry the expected hash."""
    if user_sha256:
        if hashes["sha256"] != str(user_sha256).lower():
            raise HarnessError(
                f"weights file {path} has sha256 {hashes['sha256']}, but "
                f"weights_sha256={user_sha256} was required; the file is not the one you pinned"
            )
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
            f"{art.backbone}: {path} does not match the official {art.describe_pin()} (got "
            f"{got}); the file is truncated, corrupt or not the official one: delete it and "
            "re-download, or pass weights=file:<path> to use it knowingly"
        )


@dataclass
class ResolvedWeights:
    """A weights choice made concrete: a file in the backbone's format, or a canonical state.

    ``state`` (torchvision-layout numpy arrays) is set for ``random:`` and ``ported:``;
    ``path`` for ``pretrained`` and ``file:``.  ``record`` is the provenance.
    """

    spec: WeightsSpec
    path: Path | None = None
    state: dict | None = None
    record: dict = field(default_factory=dict)

    @property
    def sha256(self) -> str | None:
        return self.record.get("weights_sha256")


#: ``weights=trained:<recipe>/<framework>/<seed>``: networks this harness trains itself (on
#: data that ships with a package), recipe -> the module whose ``trained_checkpoints`` trains
#: or finds them in the cache
TRAINED_RECIPES = {"digits_cnn": "harness.digits_cnn"}


def parse_trained(spec: WeightsSpec) -> tuple[str, str, int]:
    """``trained:digits_cnn/torch/0`` -> ("digits_cnn", "torch", 0); one-line errors."""
    parts = str(spec.path).split("/")
    if len(parts) != 3 or parts[0] not in TRAINED_RECIPES or not parts[2].isdigit():
        raise HarnessError(
            f"weights=trained:{spec.path} is not understood; use trained:<recipe>/<framework>/"
            f"<seed> with a recipe of {', '.join(TRAINED_RECIPES)} (e.g. trained:digits_cnn/"
            "torch/0)"
        )
    return parts[0], parts[1], int(parts[2])


def trained_weights(spec: WeightsSpec, cache_dir, file_kind: str) -> ResolvedWeights:
    """The file of a network trained here (trained on first use, then reused from the cache;
    with the disk cache off, trained into a temporary directory removed at exit)."""
    import atexit
    import importlib

    recipe, framework, seed = parse_trained(spec)
    module = importlib.import_module(TRAINED_RECIPES[recipe])
    kw = {"seeds": (seed,), "frameworks": (framework,), "keras_seed": seed}
    out_dir = None
    if disk_cache_off(cache_dir):
        out_dir = tempfile.mkdtemp(prefix="inception-note-trained-")
        atexit.register(shutil.rmtree, out_dir, True)
    records = module.trained_checkpoints(cache_dir, out_dir=out_dir, **kw)
    (rec,) = records.values()
    path = Path(rec["paths"][file_kind])
    hashes = file_hashes(path)
    return ResolvedWeights(
        spec,
        path=path,
        record={
            "weights_file": str(path),
            "weights_sha256": hashes["sha256"],
            "trained_recipe": recipe,
            "trained_record": {
                k: v for k, v in rec.items() if k not in ("paths", "test_logits_path", "usage")
            },
        },
    )


def locate_file(
    backbone: str,
    spec: WeightsSpec,
    art: OfficialArtifact | None,
    allow_download: bool,
    user_sha256=None,
) -> ResolvedWeights:
    """``pretrained`` (via ``art``) or ``file:``: find the file, check its pin, record hashes."""
    if spec.kind not in ("pretrained", "file"):
        raise HarnessError(
            f"backbone {backbone}: weights={spec} names no weights file; use pretrained or "
            "file:<path> here"
        )
    if spec.kind == "pretrained":
        if art is None:
            raise HarnessError(
                f"backbone {backbone} has no official pretrained weights; "
                "pass weights=file:<path>, random:<seed> or ported:<backbone>"
            )
        path = art.locate(allow_download)
    else:
        path = Path(spec.path).expanduser()
        art = None
        if not path.exists():
            raise MissingInputError(
                f"backbone {backbone}: weights file {path} does not exist; fix weights=file:<path>"
            )
    hashes = file_hashes(path)
    check_pin(path, hashes, art, user_sha256)
    rec = {
        "weights": str(spec),
        "weights_kind": spec.kind,
        "weights_path": str(path),
        "weights_sha256": hashes["sha256"],
        "weights_md5": hashes.get("md5"),
    }
    if art is not None:
        rec["weights_official_pin"] = art.describe_pin()
    known = identify(hashes)  # compared with every published file (verification())
    rec["weights_published"] = known.name if known else None
    return ResolvedWeights(spec, path=path, record=rec)


def no_weights(spec: WeightsSpec, backbone: str) -> ResolvedWeights:
    """``none``: nothing to find or hash; the record says so (kind ``none``, the
    :data:`NO_WEIGHTS_SHA256` descriptor, a note naming the backbone)."""
    if spec.kind != "none":
        raise HarnessError(f"no_weights: weights={spec} is not none")
    return ResolvedWeights(
        spec,
        record={
            "weights": "none",
            "weights_kind": "none",
            "weights_path": None,
            "weights_sha256": NO_WEIGHTS_SHA256,
            "weights_md5": None,
            "weights_note": f"no weights: backbone {backbone} is a fixed function of the pixels",
        },
    )


def random_weights(spec: WeightsSpec, num_outputs: int, cache_dir=None) -> ResolvedWeights:
    """``random:<seed>`` as a canonical state; ``cache_dir``: see the module docstring (the
    arrays are the same with and without the on-disk cache)."""
    from .random_init import random_iv3_state

    sd = random_iv3_state(spec.seed, num_outputs, cache_dir)
    return ResolvedWeights(
        spec,
        state=sd,
        record={
            "weights": str(spec),
            "weights_kind": "random",
            "weights_path": None,
            "weights_sha256": state_sha256(sd),
            "weights_md5": None,
            "weights_note": "random weights",
        },
    )


# ------------------------------------------------------------------------------ verification
#: what a network's weights are, for every output (``weights_status`` in provenance and rows)
RANDOM = "random"  # random:<seed> (or ported from random weights): a smoke run
UNVERIFIED = "unverified"  # an Inception backbone's file that matches no published file
VERIFIED = "verified"  # a published file, identified by its published hash
TRAINED = "trained here"  # trained:<recipe>/...: a classifier this harness trains itself
USER = "user network"  # torch_model / keras_model file:: a user's own network, no claim made
NO_WEIGHTS = "no weights"  # weights=none: a backbone without weights (pixels), nothing to verify
#: ``weights_sha256`` of ``weights=none``: a descriptor, not a digest (there is nothing to hash)
NO_WEIGHTS_SHA256 = "none"
#: the statuses that put a banner on every output (:mod:`harness.results`)
FLAGGED = (RANDOM, UNVERIFIED)


@dataclass(frozen=True)
class PublishedWeights:
    """One published weights file: what a weights file is compared with.

    ``hash_kind`` is how its publisher pins it (``sha256_prefix``: torch hub's 8 hex digits in the
    file name; ``md5``: Keras' ``file_hash``; ``sha256``: a full hash) or None when no hash is
    published (such a file is never verified: it stays UNVERIFIED unless its hash is added here).
    """

    name: str  # what reporting lines call it
    filename: str
    origin: str  # who publishes it, and where
    hash_kind: str | None
    hash: str | None
    size: str  # as published, or "not published"
    backbones: tuple = ()  # the backbones that load it (filled by :func:`published_table`)
    note: str = ""

    @classmethod
    def from_artifact(cls, art: OfficialArtifact, name: str, size: str, note: str = ""):
        """The entry of a backbone's :class:`OfficialArtifact` (its pin is the published hash)."""
        return cls(name, art.filename, art.url, art.pin_kind, art.pin, size, (), note)

    def matches(self, hashes: dict) -> bool:
        if not self.hash_kind or not self.hash:
            return False
        if self.hash_kind == "sha256_prefix":
            return str(hashes.get("sha256") or "").startswith(self.hash)
        if self.hash_kind == "md5":
            return hashes.get("md5") == self.hash
        return hashes.get("sha256") == self.hash

    def describe_hash(self) -> str:
        if self.hash_kind == "sha256_prefix":
            return f"sha256 {self.hash}… (prefix in the file name)"
        if self.hash_kind == "md5":
            return f"md5 {self.hash}"
        if self.hash_kind == "sha256":
            return f"sha256 {self.hash}"
        return "none published: never verified"


def published_table() -> tuple[PublishedWeights, ...]:
    """Every published weights file of the registered Inception backbones, one entry per file.

    Built from each backbone class's :meth:`published_files` (its official artifact and the
    peers' files it loads with ``weights=file:``); a file two backbones load is one entry.
    """
    from . import REGISTRY, backbone_class  # the package that owns this module: no cycle

    merged: dict = {}
    for name in REGISTRY:
        try:
            cls = backbone_class(name)
        except Exception:  # a backbone registered at run time that does not import here
            continue
        for entry in getattr(cls, "published_files", tuple)():
            key = (entry.filename, entry.hash_kind, entry.hash)
            old = merged.get(key)
            backs = (*(old.backbones if old else ()), cls.name)
            merged[key] = PublishedWeights(**{**(old or entry).__dict__, "backbones": backs})
    return tuple(merged.values())


def identify(hashes: dict) -> PublishedWeights | None:
    """The published file with these hashes (None: no published file has them)."""
    return next((e for e in published_table() if e.matches(hashes)), None)


def published_filename(name: str) -> PublishedWeights | None:
    """The published file of this file name (None: no published file is called so)."""
    return next((e for e in published_table() if name in e.filename.split(" / ")), None)


def verification(spec: WeightsSpec, record: dict, claims_published: bool, backbone: str) -> dict:
    """``weights_status`` and ``weights_name`` of a resolved weights choice.

    ``claims_published``: the backbone runs a published network (the Inception backbones), so
    its files are compared with :func:`published_table`; a user's own network or one trained
    here claims no published file and keeps its own label.
    """
    if spec.is_random:
        return {"weights_status": RANDOM, "weights_name": None}
    if spec.kind == "none":
        return {"weights_status": NO_WEIGHTS, "weights_name": None}
    if spec.kind == "trained":
        return {"weights_status": TRAINED, "weights_name": None}
    if not claims_published:
        return {"weights_status": USER, "weights_name": None}
    if spec.kind == "ported":
        known = record.get("source_published")
        name = f"{known}, ported to {backbone}" if known else None
    else:
        name = record.get("weights_published")
    return {"weights_status": VERIFIED if name else UNVERIFIED, "weights_name": name}


def worst_status(statuses) -> str | None:
    """One status for several networks: the most alarming one (None: no network)."""
    order = (RANDOM, UNVERIFIED, USER, NO_WEIGHTS, TRAINED, VERIFIED)
    present = [s for s in statuses if s]
    if not present:
        return None
    return min(present, key=lambda s: order.index(s) if s in order else len(order))


def published_markdown() -> str:
    """The table of known published files, as the README shows it."""
    lines = [
        "| weights (as reporting lines name them) | file (origin) | published hash | size | "
        "backbones |",
        "|---|---|---|---|---|",
    ]
    for e in published_table():
        files = e.filename.split(" / ")
        urls = e.origin.split("; ")
        where = " or ".join(
            f"[`{f}`]({u})" if u.startswith("http") else f"`{f}`"
            for f, u in zip(files, urls if len(urls) == len(files) else [e.origin] * len(files))
        )
        lines.append(
            f"| {e.name} | {where} | {e.describe_hash()} | {e.size} | "
            f"{', '.join(f'`{b}`' for b in e.backbones)} |"
        )
    return "\n".join(lines)
