"""Experiment ``score``: the everyday job in one line, your images' IS and, against a reference,
FID, KID and precision/recall/density/coverage.

    python -m harness +experiment=score a=samples/
    python -m harness +experiment=score a=samples/ b=reference/      # or b=ref_stats.npz
    inception-note score a=samples.npz b=reference/ protocol=torch_fidelity

``a``: your images, a folder (recursive; PNG/JPEG/WebP/BMP) or a ``.npz``/``.npy`` of uint8
N x H x W x 3.  ``b`` (optional): the reference, a folder or ``.npz``/``.npy`` of images, or a
statistics ``.npz`` with ``mu``/``sigma`` (``+experiment=reference_stats`` writes one with its
provenance sidecar; FID only: KID and PRDC need the reference's features).  One network pass per
image set (logits and pool features together, through the logits cache: a second run, or the same
images in another experiment, costs no pass).

Prints every number with full precision, the weights status and the ready-to-paste reporting line
(the sanity report's, :func:`harness.sanity.reporting_line`), then the whole result as one line of
JSON (the line that starts with ``{``: ``| grep '^{'``); writes ``score.json`` (the same object)
and ``table.csv`` into the run dir.  Every run-wide key works (``backbone=``, ``weights=``,
``protocol=``, ``n_splits=``, ``device=`` ...).
"""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
from omegaconf import OmegaConf

from harness import config, inputs, results, sanity, scores, stats_files
from harness import feature_metrics as fm
from harness import settings as S
from harness.config import as_bool
from harness.errors import ConfigError, HarnessError
from harness.pipeline import outputs
from harness.rows import provenance_columns
from harness.runner import Result

IMAGE_FILES = (".npz", ".npy")
WHAT = {
    "a": "a folder of images or a .npz/.npy of uint8 N x H x W x 3 images",
    "b": "a folder of images, a .npz/.npy of images, or reference statistics .npz (mu, sigma)",
}


def _is_stats(path: Path) -> bool:
    """A ``.npz`` with ``mu`` and ``sigma`` (TTUR / pytorch-fid / clean-fid / reference_stats)."""
    if path.suffix != ".npz":
        return False
    try:
        with np.load(path) as z:
            return {"mu", "sigma"} <= set(z.files)
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot read {path} as .npz ({exc}); give {WHAT['b']}") from None


def input_kind(value, key: str) -> str:
    """``folder``, ``arrays`` or ``stats`` (b only) for ``a=``/``b=``; a one-line error for a
    path that does not exist or is none of them (checked before any run dir is made)."""
    p = Path(str(value)).expanduser()
    if p.is_dir():
        return "folder"
    if not p.exists():
        raise ConfigError(f"{key}={value}: no such folder or file; give {WHAT[key]}")
    if p.suffix.lower() not in IMAGE_FILES:
        raise ConfigError(f"{key}={value}: not a folder, .npz or .npy; give {WHAT[key]}")
    if _is_stats(p):
        if key == "a":
            raise ConfigError(
                f"a={value} holds reference statistics (mu, sigma), not images to score: give "
                "your images as a= and the statistics as b="
            )
        return "stats"
    return "arrays"


def _check_inputs(values: dict, prefix: str) -> None:
    for key in ("a", "b"):
        v = values.get(key)
        if v is not None and v != "???":
            input_kind(v, key)


def _b_is_stats(values: dict) -> bool:
    b = values.get("b")
    return b is not None and Path(str(b)).suffix == ".npz" and _is_stats(Path(str(b)))


SETTINGS = S.ExperimentSettings(
    "Score your images in one line: IS, and with b= FID, KID, PRDC (full precision, JSON, "
    "reporting line).",
    S.Schema(
        [
            S.Node("backbone", "backbone", "tf2015_torch"),
            config.weights_override(
                "overrides backbone.weights (random:<seed> to try it out; labelled)"
            ),
            S.Setting("a", S.Path(), None, f"your images: {WHAT['a']}", required=True),
            S.Setting(
                "b",
                S.Path(),
                None,
                f"optional reference for FID/KID/PRDC: {WHAT['b']}",
                nullable=True,
            ),
            S.Setting(
                "allow_mismatched_stats",
                S.Bool(),
                False,
                "true: use reference statistics made with another backbone/resize (recorded)",
                applies=S.When("b", fn=_b_is_stats, text="b= is a statistics .npz"),
            ),
            S.Setting(
                "strict",
                S.Bool(),
                False,
                "true: exit code 3 when the weights match no published file (UNVERIFIED WEIGHTS)",
            ),
            config.kid_section(subset_size="auto", doc="KID against b (images, not statistics)"),
            config.prdc_section(),
        ],
        checks=[_check_inputs],
    ),
    uses_splits=True,
)


def source_spec(value, kind: str) -> dict:
    p = str(Path(str(value)).expanduser())
    return {"name": "folder", "root": p} if kind == "folder" else {"name": "arrays", "path": p}


def _inputs_cfg(cfg, specs: dict):
    """The run's config with ``dataset`` (a) and ``reference`` (b) nodes for
    :func:`inputs.load_inputs`."""
    plain = config.resolved(cfg)
    plain.update(specs)
    return OmegaConf.create(plain)


class _Key:
    """Name ``a=``/``b=`` in an image source's errors (they speak of ``dataset.*`` keys, which
    this experiment does not have)."""

    def __init__(self, key: str, value):
        self.key, self.value = key, value

    def __enter__(self):
        return self

    def __exit__(self, typ, exc, tb):
        if exc is None or not isinstance(exc, HarnessError) or str(exc).startswith(f"{self.key}="):
            return False
        msg = f"{self.key}={self.value}: {exc}"
        if "dataset." in msg:
            msg += (
                " (score has no dataset.* options: run +experiment=sanity dataset=folder "
                "dataset.root=... with that option)"
            )
        err = type(exc).__new__(type(exc))
        err.__dict__.update(exc.__dict__)
        err.args = (msg,)
        raise err from None


def _f(v):
    """A float for JSON (None for NaN/absent)."""
    if v is None:
        return None
    v = float(v)
    return None if math.isnan(v) else v


def _finite(v):
    """NaN/inf as null, recursively (score.json and the JSON line are strict JSON)."""
    if isinstance(v, dict):
        return {k: _finite(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_finite(x) for x in v]
    if isinstance(v, (float, np.floating)):
        return float(v) if math.isfinite(v) else None
    if isinstance(v, np.integer):
        return int(v)
    return v


def weights_status(prov: dict) -> dict:
    """What the numbers were computed with: every ``weights*`` field of the backbone's
    provenance (kind, sha256, and where the backbone records it ``weights_status``: random |
    unverified | verified | trained here | user network, and the published file's name), plus
    ``status``, one line saying it."""
    out = {k: v for k, v in prov.items() if str(k).startswith("weights")}
    word = prov.get("weights_status")
    sha = str(prov.get("weights_sha256") or "unknown")
    if prov.get("weights_kind") == "random" or word == "random":
        status = f"RANDOM WEIGHTS ({prov.get('weights')}): not a real score"
    elif word == "unverified":
        status = (
            f"UNVERIFIED WEIGHTS: sha256 {sha[:12]} matches no published file of "
            f"{prov.get('backbone')}: not a citable score"
        )
    else:
        name = prov.get("weights_name") or sanity.weights_label(prov)
        status = f"{word + ': ' if word else ''}{name}, sha256 {sha[:12]}"
    out["status"] = status
    return out


#: what is computed against b (null without b, or where b's kind does not allow it)
B_KEYS = (
    "fid",
    "fid_method",
    "kid_mean",
    "kid_std",
    "kid_subsets",
    "kid_subset_size",
    "kid_seed",
    "reference_stats",
    "precision",
    "recall",
    "density",
    "coverage",
)


@dataclasses.dataclass
class _Scoring:
    """One score run's inputs, all checked before any network pass: the loaded sources and
    network, the kinds of ``a``/``b``, the split spec, the reference statistics (``b`` a stats
    .npz) and the KID settings."""

    cfg: object
    got: object
    kinds: dict
    net: object
    src: object
    ref: object  # b's images (None without b or for statistics)
    head: bool  # the backbone has a classifier head: IS
    has_b: bool
    spec: object
    stats: object = None
    stats_notes: object = None
    kid_cfg: dict | None = None


def compute(cfg) -> Result:
    fm.check_kid_matmul_dtype(cfg.kid.matmul_dtype)
    fm.check_prdc_ball(cfg.prdc.ball)
    sc = _prepare(cfg)
    with _Key("a", cfg.a):  # one pass over a: logits and (with b) pool features together
        out = outputs(cfg, sc.net, sc.src, features=sc.has_b, label="a")
    ref_f = None
    if sc.ref is not None:
        with _Key("b", cfg.b):
            ref_f = outputs(cfg, sc.net, sc.ref, features=True, label="b").pool

    prov = sc.net.provenance()
    res: dict = {
        "a": {"path": str(cfg.a), "kind": sc.kinds["a"], "n": len(sc.src)},
        "b": None,
        "backbone": prov["backbone"],
        "protocol": (cfg.get("protocol") or {}).get("name"),
        "random_weights": bool(sc.net.random_weights),
        "weights": weights_status(prov),
    }
    # the same keys with or without b (null where not computed)
    res.update(dict.fromkeys(B_KEYS))
    notes = []
    rk, sg = _add_inception_score(res, sc, out)
    fid_line = _add_b_scores(res, notes, sc, out.pool, ref_f) if sc.has_b else None
    line, latex = _reporting_line(sc, prov, rk, sg, fid_line)
    res.update({"reporting_line": line, "reporting_line_latex": latex, "notes": notes})
    res = _finite(res)
    return Result(
        {"table": pd.DataFrame([_table_row(sc, res)])},
        sc.got.random_weights,
        extra={"score": {k: v for k, v in res.items() if k != "reporting_line_latex"}},
        objects={"score": res},
    )


def _prepare(cfg) -> _Scoring:
    """Load ``a`` (and ``b``'s images) and the backbone; refuse, before any network pass, what
    cannot be scored (no head and no b, no features for FID, too few images for the splits,
    statistics of another backbone, a KID subset larger than a set)."""
    kinds = {"a": input_kind(cfg.a, "a")}
    if cfg.get("b") is not None:
        kinds["b"] = input_kind(cfg.b, "b")
    specs = {"dataset": source_spec(cfg.a, kinds["a"])}
    if kinds.get("b") in ("folder", "arrays"):
        specs["reference"] = source_spec(cfg.b, kinds["b"])
    got = inputs.load_inputs(_inputs_cfg(cfg, specs), nets=("backbone",), sources=tuple(specs))
    net, src = got.net(), got.source()
    ref = got.sources.get("reference")
    head, has_b = net.has_logits, "b" in kinds
    if not head and not has_b:
        raise ConfigError(
            f"backbone {net.name} has no classifier head (features only): IS needs one; give a "
            "reference b=<folder or stats.npz> for FID/KID/PRDC, or a classifier backbone"
        )
    if has_b and not net.has_features:
        raise ConfigError(f"backbone {net.name} exposes no pool features: FID needs them")
    spec = config.split_spec(cfg)
    if head and len(src) < spec.n_splits:
        raise ConfigError(
            f"n_splits={spec.n_splits} is more than the N={len(src)} images of a={cfg.a}; use "
            f"n_splits<={len(src)} (or more images)"
        )
    sc = _Scoring(cfg, got, kinds, net, src, ref, head, has_b, spec)
    if kinds.get("b") == "stats":  # checked before any network pass
        sc.stats, sc.stats_notes = stats_files.load_stats(
            cfg.b,
            expect=stats_files.stats_meta(net),
            allow_mismatched=as_bool(cfg.allow_mismatched_stats, "allow_mismatched_stats"),
        )
    sc.kid_cfg = OmegaConf.to_container(cfg.kid, resolve=True)
    if ref is not None and sc.kid_cfg["subset_size"] != "auto":
        fm.check_kid_subset(int(sc.kid_cfg["subset_size"]), min(len(src), len(ref)))
    return sc


def _add_inception_score(res: dict, sc: _Scoring, out):
    """IS (over the splits) and S(G) of a's probabilities (``out``: a's outputs) into ``res``;
    the (IS, S(G)) results, or (None, None) with a note for a backbone without a classifier
    head (its probabilities are never computed)."""
    if not sc.head:
        res.update({"is_mean": None, "is_std": None, "is_note": "no classifier head"})
        return None, None
    spec = sc.spec
    prep = scores.prepare(out.probs)
    rk = scores.inception_score(prep, splits=spec)
    sg = scores.improved_score(prep)
    res.update(
        {
            "is_mean": rk.mean,
            "is_std": rk.std,
            "is_std_ddof": rk.ddof,
            "n_splits": rk.n_splits,
            "split_sizes": sorted({int(s) for s in rk.split_sizes}),
            **{k: v for k, v in spec.provenance().items() if k not in ("n_splits",)},
            "sg_nats": sg.nats,
            "sg_bits": sg.bits,
            "sg_sem_nats": sg.sem,
        }
    )
    return rk, sg


def _add_b_scores(res: dict, notes: list, sc: _Scoring, pool, ref_f) -> str:
    """FID and KID (and with b's images PRDC) of a's pool features against b into ``res``, what
    was not computed into ``notes``; the FID phrase of the reporting line."""
    cfg, src, stats = sc.cfg, sc.src, sc.stats
    b_n = len(sc.ref) if sc.ref is not None else (stats.n if stats.n > 0 else None)
    res["b"] = {"path": str(cfg.b), "kind": sc.kinds["b"], "n": b_n}
    name = Path(str(cfg.b)).name or str(cfg.b)
    n_txt = f"{b_n:,} images" if b_n else "N unknown"
    label = f"{'statistics' if stats is not None else sc.kinds['b']} {name} ({n_txt})"
    check = sanity.check_feature_distance(
        pool,
        ref_f,
        ref_stats=stats,
        stats_notes=sc.stats_notes or (),
        kid_cfg=sc.kid_cfg if ref_f is not None else None,
        ref_label=label,
    )
    d = check.details
    fid_line = sanity.fid_phrase(check)
    res.update(
        {
            "fid": _f(d["fid"]),
            "fid_method": d.get("fid_method"),
            "kid_mean": _f(d.get("kid_mean")),
            "kid_std": _f(d.get("kid_std")),
            "kid_subsets": d.get("kid_subsets"),
            "kid_subset_size": d.get("kid_subset_size"),
            "kid_seed": d.get("kid_seed"),
            "reference_stats": None if stats is None else check.value.get("reference_stats"),
        }
    )
    if stats is not None:
        notes.append("KID and PRDC need the reference's images (b= a folder or .npz)")
    if len(src) < sanity.FID_MIN_SAMPLES:
        notes.append(
            f"N = {len(src):,} < {sanity.FID_MIN_SAMPLES:,}: FID is biased upwards and not "
            "comparable across N (exact here: no approximate matrix square root)"
        )
    if ref_f is not None:
        _add_prdc(res, notes, cfg.prdc, pool, ref_f)
    return fid_line


def _add_prdc(res: dict, notes: list, prdc_cfg, pool, ref_f) -> None:
    """Precision, recall, density and coverage of a against b's images into ``res`` (a note
    when a set has too few images for the neighbourhoods)."""
    k_pr, k_dc = int(prdc_cfg.k_precision_recall), int(prdc_cfg.k_density_coverage)
    if min(len(ref_f), len(pool)) > max(k_pr, k_dc):
        p = fm.prdc(ref_f, pool, k_pr, k_dc, ball=str(prdc_cfg.ball))
        res.update(
            {
                "precision": p.precision,
                "recall": p.recall,
                "density": p.density,
                "coverage": p.coverage,
                **p.provenance(),
            }
        )
    else:
        notes.append(f"PRDC needs more than {max(k_pr, k_dc)} images in a and in b")


def _reporting_line(sc: _Scoring, prov: dict, rk, sg, fid_line) -> tuple[str, str]:
    """The ready-to-paste reporting line and its LaTeX form (the sanity report's)."""
    if sc.head:
        line, latex = sanity.reporting_line(prov, rk, sg.nats)
        if fid_line:
            line, latex = f"{line} · {fid_line}", f"{latex}; {results.tex_escape(fid_line)}"
        return line, latex
    return sanity.features_line(prov, len(sc.src), fid_line)


def _table_row(sc: _Scoring, res: dict) -> dict:
    """``table.csv``'s one row: a, b, every scalar of the result, the weights status and the
    provenance columns."""
    cfg = sc.cfg
    return {
        "a": str(cfg.a),
        "b": None if not sc.has_b else str(cfg.b),
        **{
            k: v
            for k, v in res.items()
            if not isinstance(v, (dict, list)) and k not in ("reporting_line_latex",)
        },
        "weights_status": res["weights"]["status"],
        **provenance_columns(sc.net, sc.src, sc.spec if sc.head else None, cfg.seed),
    }


def _pm(mean, std) -> str:
    return f"{mean!r} ± {std!r}"


def render(res: dict) -> str:
    """The human-readable block: every number in full precision (Python's shortest repr)."""
    lines = []
    if res["random_weights"]:
        lines.append(f"*** {results.RANDOM_WEIGHTS_BANNER} ***")
    elif res["weights"].get("weights_status") == "unverified":
        banner = getattr(results, "UNVERIFIED_WEIGHTS_BANNER", "UNVERIFIED WEIGHTS")
        lines.append(f"*** {banner} ***")
    a = res["a"]
    lines.append(f"a: {a['path']} ({a['n']:,} images)")
    if res["b"]:
        b = res["b"]
        n = f"{b['n']:,} images" if b["n"] else "N unknown"
        lines.append(f"b: {b['path']} ({b['kind']}, {n})")
    if res.get("is_mean") is not None:
        ddof = "std" if res["is_std_ddof"] == 0 else f"std ddof {res['is_std_ddof']}"
        lines.append(
            f"IS        = {_pm(res['is_mean'], res['is_std'])}  (mean ± {ddof} over "
            f"{res['n_splits']} splits)"
        )
        lines.append(f"S(G)      = {res['sg_nats']!r} nats")
    else:
        lines.append(f"IS        : not applicable ({res.get('is_note')})")
    if res["b"]:
        lines.append(f"FID       = {res['fid']!r}")
        if res.get("kid_mean") is not None:
            lines.append(
                f"KID       = {_pm(res['kid_mean'], res['kid_std'])}  (mean ± std over "
                f"{res['kid_subsets']} subsets of {res['kid_subset_size']})"
            )
        if res.get("precision") is not None:
            lines.append(
                f"precision = {res['precision']!r}, recall = {res['recall']!r}, density = "
                f"{res['density']!r}, coverage = {res['coverage']!r}"
            )
    lines.append(f"weights   : {res['weights']['status']}")
    lines += [f"note      : {n}" for n in res["notes"]]
    lines += ["", "Reporting line:", f"  {res['reporting_line']}"]
    return "\n".join(lines)


def present(result: Result, run) -> None:
    res = result.objects["score"]
    run.json(res, "score")
    run.table(result.table, title="score", quiet=True)
    print(render(res))
    print(json.dumps(res, ensure_ascii=False, allow_nan=False, default=str))


def headline(result: Result) -> str:
    r = result.objects["score"]
    parts = []
    if r.get("is_mean") is not None:
        parts.append(f"IS {r['is_mean']:.4g} ± {r['is_std']:.2g}")
    if r.get("fid") is not None:
        parts.append(f"FID {r['fid']:.4g}")
    if r.get("kid_mean") is not None:
        parts.append(f"KID {r['kid_mean']:.3g}")
    return ", ".join(parts) or "no score"
