"""Reference statistics files (``mu``, ``sigma`` as ``.npz``, the layout of TTUR, pytorch-fid and
clean-fid) and their JSON sidecars: written with every knob that moves pool features, the
weights' sha256 and a hash of the arrays; read back checked against the run that uses them (a
mismatch is an error naming the knob, an unverifiable file is used and said ``UNVERIFIED``).
"""

from __future__ import annotations

import hashlib
import json
import warnings
from pathlib import Path

import numpy as np

from .errors import ConfigError, MissingInputError
from .feature_metrics import FeatureStats

#: sidecar keys compared with the run when the run does not say which (``compared_knobs``)
MATCH_KEYS = (
    "backbone",
    "weights_sha256",
    "resize",
    "input_size",
    "input_norm",
    "dtype",
    "feature_layer",
)
#: backbone knobs recorded in the sidecar but not compared, because they do not move pool
#: features: the weights' name (their sha256 is compared), the class selection and classifier
#: bias (logits only), and where or in what layout the same arithmetic runs (rounding only)
UNCOMPARED_KNOBS = ("weights", "classes", "num_classes", "bias", "device", "channels_last",
                    "compile", "fuse_bn")  # fmt: skip
#: a sidecar without these cannot vouch for its statistics: they are used, marked UNVERIFIED
REQUIRED_SIDECAR_KEYS = ("backbone", "weights_sha256", "stats_sha256")
#: prefix of the notes that make check 10 say its reference statistics are unverified
UNVERIFIED = "UNVERIFIED"
SIDECAR_VERSION = 2


def stats_meta(net, source=None) -> dict:
    """What a statistics file must share with the run that uses it (plus what describes it):
    every backbone knob (``compared_knobs`` lists those compared on use), the weights' sha256,
    the feature layer, and the image source when given."""
    from .resize import canonical

    p = net.provenance()
    knobs = dict(net.knobs()) if hasattr(net, "knobs") else {}
    meta = {
        **knobs,
        "backbone": p["backbone"],
        "weights": p["weights"],
        "weights_sha256": p.get("weights_sha256"),
        "resize": canonical(p["resize"], p.get("align_corners")),
        "input_size": p["input_size"],
        "input_norm": p.get("input_norm"),
        "classes": p.get("classes"),
        "dtype": p.get("dtype"),
        "feature_layer": net.feature_description(),
        "framework_versions": p.get("framework_versions"),
    }
    compared = [k for k in MATCH_KEYS if meta.get(k) is not None]
    compared += sorted(k for k in knobs if k not in UNCOMPARED_KNOBS and k not in compared)
    meta["compared_knobs"] = compared
    if source is not None:
        sp = source.provenance()
        meta.update({"dataset": sp["dataset"], "dataset_fingerprint": sp["fingerprint"]})
    return meta


def sidecar_path(path) -> Path:
    return Path(path).with_suffix(".json")


def stats_digest(mu, sigma) -> str:
    """sha256 of the statistics' content: the shapes, then ``mu`` and ``sigma`` as little-endian
    float64 bytes in C order (independent of how the .npz was zipped)."""
    mu, sigma = np.asarray(mu), np.asarray(sigma)
    h = hashlib.sha256(f"mu{mu.shape}sigma{sigma.shape}".encode())
    for a in (mu, sigma):
        h.update(np.ascontiguousarray(a, dtype="<f8").tobytes())
    return h.hexdigest()


def save_stats(path, stats: FeatureStats) -> Path:
    """``.npz`` with ``mu`` and ``sigma`` (the layout of TTUR, pytorch-fid and clean-fid files)
    plus a JSON sidecar (every backbone knob, weights sha256, N, the statistics' sha256, ...),
    both written atomically.
    """
    from .results import atomic_path, atomic_write_text

    path = Path(path)
    if path.suffix != ".npz":
        raise ConfigError(f"reference statistics are saved as .npz, got {path.name!r}")
    path.parent.mkdir(parents=True, exist_ok=True)
    mu, sigma = np.asarray(stats.mu, np.float64), np.asarray(stats.sigma, np.float64)
    with atomic_path(path, suffix=".npz") as tmp, open(tmp, "wb") as fh:
        np.savez(fh, mu=mu, sigma=sigma)
    side = {
        **stats.meta,
        "n_samples": stats.n,
        "dim": stats.dim,
        "covariance_ddof": 1,
        "stats_sha256": stats_digest(mu, sigma),
        "stats_sha256_of": "shapes, then mu and sigma as little-endian float64, C order",
        "sidecar_version": SIDECAR_VERSION,
    }
    atomic_write_text(sidecar_path(path), json.dumps(side, indent=2, sort_keys=True, default=str))
    return path


def _read_npz(path: Path):
    """``mu`` and ``sigma`` (float64) from a statistics file; anything else is one line."""
    fix = (
        "give the stats.npz written by `python -m harness +experiment=reference_stats` (or a "
        "TTUR / pytorch-fid / clean-fid .npz with mu and sigma)"
    )
    try:
        z = np.load(path, allow_pickle=False)
    except Exception as exc:  # text, a truncated zip, a pickle: numpy raises many types
        raise ConfigError(
            f"reference_stats={path} is not a readable .npz ({type(exc).__name__}: {exc}); {fix}"
        ) from exc
    if not isinstance(z, np.lib.npyio.NpzFile):
        raise ConfigError(
            f"reference_stats={path} holds one array of shape {getattr(z, 'shape', '?')} (a "
            f".npy), not an .npz with 'mu' and 'sigma'; {fix}"
        )
    with z:
        if "mu" not in z.files or "sigma" not in z.files:
            raise ConfigError(
                f"{path} has keys {z.files}; a statistics file needs 'mu' and 'sigma'"
            )
        try:
            mu_raw, sigma_raw = z["mu"], z["sigma"]
            stored = np.result_type(mu_raw, sigma_raw)
            mu, sigma = np.asarray(mu_raw, np.float64), np.asarray(sigma_raw, np.float64)
        except Exception as exc:  # a corrupt member, object arrays, strings
            raise ConfigError(
                f"{path}: mu/sigma cannot be read as numbers ({type(exc).__name__}: {exc}); {fix}"
            ) from exc
    return mu, sigma, stored


def check_covariance(sigma: np.ndarray, name: str, stored=np.float64) -> None:
    """``sigma`` must be a covariance: symmetric and positive semi-definite, each within the
    rounding of its stored dtype (eigenvalues >= -dim * eps * its largest diagonal entry, which
    bounds the rounding of every entry; tested by a Cholesky factorisation of ``sigma`` shifted
    by that much, the eigenvalues computed only for the error message)."""
    eps = np.finfo(stored).eps if np.issubdtype(stored, np.floating) else np.finfo(float).eps
    scale = float(np.abs(sigma).max(initial=0.0))
    asym = float(np.abs(sigma - sigma.T).max(initial=0.0))
    if asym > 1e3 * eps * scale:
        raise ConfigError(
            f"{name}: sigma is not symmetric (max |sigma - sigma^T| = {asym:.3g} at entries up "
            f"to {scale:.3g}); it is not a covariance: recompute the statistics"
        )
    dim = len(sigma)
    if dim == 0:
        return
    sym = (sigma + sigma.T) / 2
    shift = dim * eps * float(np.abs(np.diagonal(sym)).max())
    try:
        np.linalg.cholesky(sym + shift * np.eye(dim) if shift > 0 else sym)
        return
    except np.linalg.LinAlgError:
        if shift == 0 and not sym.any():
            return  # all zeros: the covariance of identical samples
    w = np.linalg.eigvalsh(sym)
    if w[0] >= -2 * shift:
        return  # the factorisation failed on rounding alone
    raise ConfigError(
        f"{name}: sigma is not positive semi-definite (eigenvalues from {w[0]:.6g} to "
        f"{w[-1]:.6g}); it is not a covariance (edited or corrupt?): recompute the statistics"
    )


def _read_sidecar(path: Path, side: Path):
    if not side.exists():
        return None
    try:
        meta = json.loads(side.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(
            f"{side} (the sidecar of {path.name}) is not valid JSON ({exc}); restore it, or "
            "recompute the statistics with `python -m harness +experiment=reference_stats`"
        ) from exc
    if not isinstance(meta, dict):
        raise ConfigError(
            f"{side} (the sidecar of {path.name}) holds a JSON {type(meta).__name__}, not an "
            "object; restore it, or recompute the statistics with +experiment=reference_stats"
        )
    return meta


def _knob_notes(path: Path, side: Path, meta: dict, expect, allow_mismatched: bool) -> list:
    """The run's knobs (``expect``) against the sidecar's: a difference is an error, or a note
    with ``allow_mismatched``; a knob the sidecar does not record is an UNVERIFIED note."""
    notes, unchecked = [], []
    keys = list((expect or {}).get("compared_knobs") or MATCH_KEYS)
    for key in keys if (expect and meta) else ():
        want, got = expect.get(key), meta.get(key)
        if want is None:
            continue
        if got is None:
            unchecked.append(key)
            continue
        if want == got:
            continue
        msg = f"{path.name} was made with {key}={got!r}, this run has {want!r}"
        if not allow_mismatched:
            raise ConfigError(
                msg + "; recompute the statistics with this run's settings or set "
                "allow_mismatched_stats=true"
            )
        notes.append(msg + " (allowed: allow_mismatched_stats=true)")
    if unchecked:
        notes.append(
            f"{UNVERIFIED}: sidecar {side.name} does not record {', '.join(unchecked)} "
            "(made by an older harness?): not checked against this run"
        )
    return notes


def load_stats(path, expect: dict | None = None, allow_mismatched: bool = False):
    """Statistics from ``path``, checked against their JSON sidecar and the run.

    ``expect``: the run's :func:`stats_meta`; its ``compared_knobs`` (else :data:`MATCH_KEYS`)
    must equal the sidecar's (a mismatch is an error naming the knob and both values, or a note
    with ``allow_mismatched``).  ``sigma`` must be a covariance, and ``mu``/``sigma`` must hash to
    the sidecar's ``stats_sha256`` (an edited file is an error).  A missing sidecar, or one
    without backbone / weights sha256 / stats sha256 (or a compared knob), is usable but noted
    as ``UNVERIFIED``.  Returns ``(stats, notes)``: the notes list what was not checked or was
    allowed to differ, for provenance.
    """
    path = Path(path)
    if not path.exists():
        raise MissingInputError(
            f"reference statistics file {path} does not exist; compute it "
            "with `python -m harness +experiment=reference_stats ...` or "
            "point reference_stats= at an existing .npz"
        )
    mu, sigma, stored = _read_npz(path)
    if mu.ndim != 1 or sigma.shape != (len(mu), len(mu)):
        raise ConfigError(f"{path}: mu {mu.shape} and sigma {sigma.shape} do not fit together")
    if not (np.isfinite(mu).all() and np.isfinite(sigma).all()):
        raise ConfigError(f"{path}: mu or sigma contains NaN or inf")
    check_covariance(sigma, str(path), stored)
    notes = []
    side = sidecar_path(path)
    meta = _read_sidecar(path, side)
    if meta is None:
        meta = {}
        notes.append(
            f"{UNVERIFIED}: {path.name} has no sidecar {side.name}: its backbone, weights, "
            "resize, preprocessing, content hash and N cannot be checked against this run"
        )
    else:
        lacking = [k for k in REQUIRED_SIDECAR_KEYS if meta.get(k) in (None, "")]
        if lacking:
            notes.append(
                f"{UNVERIFIED}: sidecar {side.name} has no {', '.join(lacking)}: "
                f"{path.name} cannot be tied to the network or content that made it"
            )
    digest = meta.get("stats_sha256")
    if digest and digest != stats_digest(mu, sigma):
        raise ConfigError(
            f"{path.name}: mu/sigma do not match the sha256 in {side.name} ({str(digest)[:12]}… "
            f"recorded, {stats_digest(mu, sigma)[:12]}… now): the statistics were edited or "
            "replaced; recompute them with `python -m harness +experiment=reference_stats`"
        )
    notes += _knob_notes(path, side, meta, expect, allow_mismatched)
    for note in notes:
        if note.startswith(UNVERIFIED):
            warnings.warn(note, stacklevel=2)
    try:
        n = int(meta.get("n_samples") or 0) or -1
    except (TypeError, ValueError):
        raise ConfigError(
            f"{side}: n_samples={meta.get('n_samples')!r} is not a sample count; restore the "
            "sidecar or recompute the statistics"
        ) from None
    return FeatureStats(mu, sigma, n, meta), notes


def stats_verified(notes) -> bool:
    """Whether :func:`load_stats` could tie the statistics to what made them."""
    return not any(str(n).startswith(UNVERIFIED) for n in notes)
