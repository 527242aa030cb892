"""Running one backbone's weights in another backbone's implementation (``weights=ported:``).

The canonical layout is torchvision's state dict (conv OIHW, BatchNorm weight/bias/running
stats, ``fc.weight`` C x 2048).  Each backbone converts its own format to and from it (its
``read_state`` classmethod and its loader of canonical states: Keras folds gamma into the
kernels, the 2015 graph's BatchNorm uses gamma only with ``scale_after_normalization``); this
module only knows the backbone API:

* :func:`ported_state`: the source backbone's weights (a file in its format, or
  ``random:<seed>``) as a canonical state, cached under ``<cache.dir>/weights/ported/`` with a
  JSON sidecar (source, source sha256, sha256 of the converted arrays, port version); with
  ``cache_dir=NO_DISK_CACHE`` (``cache.enabled=false``) converted in memory, nothing cached;
* :func:`to_1008_layout` / :func:`to_1000_layout`: classifier rows between the sorted-wnid
  1000-class layout and the 2015 graph's 1008 outputs (devkit ids).
"""

from __future__ import annotations

import json

import numpy as np

from .. import imagenet
from ..atomic_io import atomic_path, ensure_dir, write_json
from ..errors import HarnessError
from . import backbone_class
from . import weights as W

PORT_VERSION = 1


def to_1008_layout(sd: dict) -> dict:
    """A 1000-class (sorted-wnid) classifier placed at the 2015 graph's indices (devkit ids);
    the 8 unused outputs get zero weights and zero bias."""
    if sd["fc.weight"].shape[0] == 1008:
        return sd
    if sd["fc.weight"].shape[0] != 1000:
        raise HarnessError(
            f"cannot map a {sd['fc.weight'].shape[0]}-class classifier to the 2015 graph's 1008"
        )
    pos = {w: i for i, w in enumerate(imagenet.sorted_wnids())}
    w = np.zeros((1008, sd["fc.weight"].shape[1]), np.float32)
    b = np.zeros(1008, np.float32)
    for dev_id, wnid, _ in imagenet.devkit_table():
        w[dev_id] = sd["fc.weight"][pos[wnid]]
        b[dev_id] = sd["fc.bias"][pos[wnid]]
    return {**sd, "fc.weight": w, "fc.bias": b}


def to_1000_layout(sd: dict) -> dict:
    """The 2015 graph's 1008 outputs reduced to the 1000 ImageNet classes in sorted-wnid order."""
    if sd["fc.weight"].shape[0] == 1000:
        return sd
    pos = {w: i for i, w in enumerate(imagenet.sorted_wnids())}
    w = np.zeros((1000, sd["fc.weight"].shape[1]), np.float32)
    b = np.zeros(1000, np.float32)
    for dev_id, wnid, _ in imagenet.devkit_table():
        w[pos[wnid]] = sd["fc.weight"][dev_id]
        b[pos[wnid]] = sd["fc.bias"][dev_id]
    return {**sd, "fc.weight": w, "fc.bias": b}


def to_layout(sd: dict, layout: str) -> dict:
    """``sd``'s classifier rows mapped to ``layout`` (imagenet1000 or tf2015_1008)."""
    if layout == "tf2015_1008":
        return to_1008_layout(sd)
    if layout == "imagenet1000":
        return to_1000_layout(sd)
    raise HarnessError(f"ported weights cannot be mapped to the {layout} classifier layout")


def _load_cached(npz, sidecar) -> dict | None:
    if not (npz.exists() and sidecar.exists()):
        return None
    try:
        meta = json.loads(sidecar.read_text())
        with np.load(npz) as z:
            sd = {k: z[k] for k in z.files}
    except Exception:  # unreadable: converted again
        return None
    return sd if W.state_sha256(sd) == meta.get("state_sha256") else None


def _cached_port(src: str, src_cls, spec, src_sha: str, src_path, cache_dir):
    """(canonical state, npz path) of a source weights file, converted once and cached."""
    cache = W.cache_root(cache_dir) / "weights" / "ported"
    npz = cache / f"{src}_{src_sha[:24]}_v{PORT_VERSION}.npz"
    sidecar = npz.with_suffix(".json")
    sd = _load_cached(npz, sidecar)
    if sd is not None:
        return sd, npz
    ensure_dir(cache, W.CACHE_FIX)
    sd = src_cls.read_state(src_path)
    with atomic_path(npz, suffix=".npz", fix=W.CACHE_FIX) as tmp, open(tmp, "wb") as f:
        np.savez(f, **sd)
    write_json(
        sidecar,
        {
            "source_backbone": src,
            "source_weights": spec.source_spec,
            "source_sha256": src_sha,
            "source_path": str(src_path),
            "state_sha256": W.state_sha256(sd),
            "port_version": PORT_VERSION,
            "layout": "torchvision state dict",
        },
        fix=W.CACHE_FIX,
    )
    return sd, npz


def ported_state(spec: W.WeightsSpec, target, allow_download: bool = False, cache_dir=None):
    """(canonical state, provenance) for ``target`` running ``weights=ported:<src>[:<w>]``."""
    src = spec.source_backbone
    if src not in target.port_sources:
        sources = ", ".join(target.port_sources) or "none"
        raise HarnessError(
            f"weights=ported:{src} for backbone {target.name} is not supported; "
            f"{target.name} runs ported weights from: {sources}"
        )
    src_cls = backbone_class(src)
    sub = W.WeightsSpec.parse(spec.source_spec)
    if sub.kind == "ported":
        raise HarnessError("weights=ported:... cannot itself take ported source weights")
    if sub.kind == "random":
        res = W.random_weights(sub, src_cls.raw_outputs, cache_dir)
        sd, src_sha, src_path = res.state, res.sha256, None
        record_extra = {}
    else:
        res = W.locate_file(
            src,
            sub,
            src_cls.official_artifact() if sub.kind == "pretrained" else None,
            allow_download,
        )
        src_sha, src_path = res.sha256, res.path
        if W.disk_cache_off(cache_dir):
            sd = src_cls.read_state(src_path)
            record_extra = {"ported_cache": None}
        else:
            sd, npz = _cached_port(src, src_cls, spec, src_sha, src_path, cache_dir)
            record_extra = {"ported_cache": str(npz)}
    n_out = int(np.asarray(sd["fc.weight"]).shape[0])
    if target.ported_keeps_layout:
        if n_out != target.raw_outputs:
            target.adopt_layout(n_out)
    else:
        sd = to_layout(sd, target.class_layout)
    record = {
        "weights": str(spec),
        "weights_kind": "ported",
        "weights_path": str(src_path) if src_path else None,
        "weights_sha256": f"ported:{src}:{src_sha}:v{PORT_VERSION}",
        "weights_md5": None,
        "source_backbone": src,
        "source_weights": spec.source_spec,
        "source_sha256": src_sha,
        "source_published": res.record.get("weights_published"),  # the source's verification
        "port_version": PORT_VERSION,
        **record_extra,
    }
    if sub.kind == "random":
        record["weights_note"] = "random weights (ported)"
    return sd, record
