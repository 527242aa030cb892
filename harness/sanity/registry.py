"""The sanity report's checks as data: each entry of :data:`REGISTRY` declares its id, title,
what it needs (class probabilities, pool features, a reference, extra network passes) and a
function from a :class:`Context` to a :class:`~.checks.Check`.

A report is a loop over the entries (:func:`prepare`, :func:`plan_passes`, :func:`run_checks`):
the network passes are planned from the declared needs (identical passes run once,
:class:`~.passes.PassPlan`), then each selected check runs on the context.  A check that needs
class probabilities is reported N/A on a features-only backbone; ``quick=true`` drops the checks
that plan passes of their own.  Adding a check is one function and one entry.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from omegaconf import OmegaConf

from .. import config, inputs, protocols, rows, scores, stats_files
from .. import feature_metrics as fm
from .. import resize as rs
from ..config import as_bool
from ..errors import ConfigError, HarnessError
from . import checks as C
from .passes import PassPlan, weights_short

#: what a check's ``reference`` may be: none, optional, images or statistics (asked for by id
#: without one: an error), or images only (statistics hold no images to pass through a network)
REFERENCE_KINDS = ("no", "optional", "required", "images")
#: how to give a reference, in every message that asks for one
REFERENCE_SYNTAX = (
    "+dataset@reference=folder reference.root=<dir> (or reference=<dir>), or "
    "reference_stats=<file.npz>"
)
NO_REFERENCE = "not run: no reference (give +dataset@reference=... or reference_stats=...)"


@dataclass
class Context:
    """What the checks of one report read: the inputs, the chosen network's outputs, the scores
    computed once from them, and what each check's own passes handed back (``values``, by id)."""

    cfg: Any
    net: Any
    src: Any
    ref: Any  # reference images (a source), or None
    stats: Any  # reference statistics (reference_stats=), or None
    stats_notes: tuple
    stats_path: str | None
    spec: scores.SplitSpec
    seed: int
    selected: list[int]  # the checks asked for
    run_ids: list[int]  # those that run (class checks dropped on a features-only backbone)
    got: Any = None  # the loaded inputs (specs to build variants of the chosen network)
    features: bool = False  # the samples' pool features are computed
    out: Any = None  # the chosen network's outputs over the samples
    ref_f: Any = None  # its pool features of the reference images
    prep: Any = None
    rk: Any = None  # the reported IS
    sg: Any = None  # S(G)
    values: dict = field(default_factory=dict)
    missing: dict = field(default_factory=dict)  # optional networks not available: why

    @property
    def head(self) -> bool:
        return bool(self.net.has_logits)

    def has_reference(self, kind: str) -> bool:
        """A reference of ``kind`` is given (``images``: reference images; else either)."""
        if kind == "images":
            return self.ref is not None
        return self.ref is not None or self.stats is not None

    def given(self, d: CheckDef) -> bool:
        """``d``'s own inputs are given (no ``inputs`` declared: always)."""
        return d.inputs is None or bool(d.inputs(self.cfg))

    def wants_features(self, d: CheckDef) -> bool:
        return self.given(d) and (
            d.features == "yes"
            or (d.features == "with_reference" and self.has_reference(d.reference))
        )

    def uses_features(self, d: CheckDef) -> bool:
        """``d`` reads the pool features of the passes that compute them."""
        return self.given(d) and d.features != "no"

    def uses_samples_pass(self, d: CheckDef) -> bool:
        """``d``'s verdict uses the chosen network's pass over the samples."""
        by_features = (
            self.features
            and self.uses_features(d)
            and (d.reference in ("no", "optional") or self.has_reference(d.reference))
        )
        return (d.samples_pass and (self.head or not d.classes)) or by_features


@dataclass(frozen=True)
class CheckDef:
    """One check of the report and what it needs.

    ``classes``: needs class probabilities (N/A on a features-only backbone).  ``features``:
    the samples' pool features under the chosen network, ``"no"``, ``"yes"`` or
    ``"with_reference"`` (only when its reference is given; then the reference's too).
    ``reference``: one of :data:`REFERENCE_KINDS`.  ``samples_pass``: its verdict reads the
    chosen network's class probabilities over the samples.  ``plan``: the network passes it asks
    for beyond that one (``quick=true`` drops the check).  ``inputs``: config -> whether its own
    inputs are given (check 12: ``encoders``); without them it asks for no features.
    """

    id: int
    name: str
    title: str
    run: Callable[[Context], C.Check]
    classes: bool = True
    features: str = "no"
    reference: str = "no"
    samples_pass: bool = True
    plan: Callable[[Context, PassPlan], None] | None = None
    inputs: Callable[[Any], bool] | None = None


# ------------------------------------------------------------------------------ the checks
def _sample_count(ctx: Context) -> C.Check:
    return C.check_sample_count(
        ctx.prep,
        ctx.spec,
        int(ctx.cfg.bias_resamples),
        ctx.seed,
        features=ctx.out.pool if ctx.features else None,
        reference=ctx.ref_f if ctx.ref_f is not None else ctx.stats,
        extrapolation=ctx.cfg.extrapolation,
    )


def _input_format(ctx: Context) -> C.Check:
    """Pixels: a bounded sample of the images themselves."""
    m = min(int(ctx.cfg.pixel_sample), len(ctx.src))
    pix = next(ctx.src.batches_range(0, m, m))
    size = ctx.net.input_size
    return C.check_input_format(pix, f"{ctx.net.provenance()['resize']} to {size}x{size}")


def _is_mean(o, spec) -> float:
    return scores.inception_score(o.probs, splits=spec).mean


def _bar(key: str, chosen: str) -> str:
    return key if key != chosen else f"{key} (other_backbones.{key})"


def _plan_spread(ctx: Context, plan: PassPlan) -> None:
    """Check 5: IS under every other backbone whose weights are present; the others skipped."""
    built: dict = {}
    others, ctx.missing = inputs.load_available(ctx.cfg, "other_backbones", seconds=built)
    spread = ctx.values[5] = {ctx.net.name: None}
    for key, other in others.items():
        if other.cache_identity() == ctx.net.cache_identity():  # the chosen one: already there
            plan.add(
                other,
                ctx.src,
                "samples",
                f"check 5: IS under {key} (the chosen network)",
                (5,),
                load_seconds=built.get(key),
            )
            continue
        # another network of the chosen one's name (other weights or knobs): its own bar
        bar = _bar(key, ctx.net.name)
        spread[bar] = None
        plan.add(
            other,
            ctx.src,
            "samples",
            f"check 5: IS under {bar}",
            (5,),
            use=lambda o, k=bar: spread.__setitem__(k, _is_mean(o, ctx.spec)),
            load_seconds=built.get(key),
        )
    for key, why in ctx.missing.items():
        bar = _bar(key, ctx.net.name)
        spread[bar] = None
        plan.skip(key, f"check 5: IS under {bar}", (5,), f"not available: {why}")


def _backbone_spread(ctx: Context) -> C.Check:
    spread = ctx.values[5]
    spread[ctx.net.name] = ctx.rk.mean
    return C.check_backbone_spread(spread, ctx.net.name, ctx.cfg.compare_backbone)


def _plan_resize(ctx: Context, plan: PassPlan) -> None:
    """Check 6: the chosen backbone under each compared resize (identical operations: one
    pass)."""
    net, by_resize = ctx.net, ctx.values.setdefault(6, dict.fromkeys(rs.COMPARED))
    variants = {rs.canonical(net.resize_method, net.align_corners): net}
    for label, over in rs.COMPARED.items():
        op = rs.canonical(over["resize"], over.get("align_corners"))
        t0, variant = time.perf_counter(), variants.get(op)
        if variant is None:
            variant = inputs.build_backbone(
                ctx.got.specs["backbone"], **{"align_corners": None, **over}
            )
            variants[rs.canonical(variant.resize_method, variant.align_corners)] = variant
        plan.add(
            variant,
            ctx.src,
            "samples",
            f"check 6: IS with {label} resize",
            (6,),
            use=lambda o, k=label: by_resize.__setitem__(k, _is_mean(o, ctx.spec)),
            resize=rs.describe(over["resize"], over.get("align_corners")),
            load_seconds=time.perf_counter() - t0 if variant is not net else None,
        )


def _preprocessing(ctx: Context) -> C.Check:
    return C.check_preprocessing(ctx.values[6], ctx.net.provenance()["resize"])


def _memorization(ctx: Context) -> C.Check:
    if not ctx.features:
        return C.Check(
            7,
            "memorization_collapse",
            C.WARN,
            None,
            "needs pool features",
            "IS cannot detect copies",
            f"use a backbone with pool features ({ctx.net.name} has none)",
        )
    return C.check_memorization(
        ctx.out.pool,
        ctx.ref_f,
        float(ctx.cfg.dup_threshold),
        random_weights=ctx.net.random_weights,
        data_copying=ctx.cfg.data_copying,
    )


def _fid_kid(ctx: Context) -> C.Check:
    if not ctx.features:
        return not_run(
            10,
            f"not run: backbone {ctx.net.name} gives no pool features",
            "use a backbone with pool features (e.g. an Inception V3) for FID/KID",
        )
    if ctx.ref is not None:
        return C.check_feature_distance(
            ctx.out.pool,
            ctx.ref_f,
            kid_cfg=OmegaConf.to_container(ctx.cfg.kid, resolve=True),
            ref_label=rows.dataset_label(ctx.ref),  # "folder <name> (N images)"
        )
    if ctx.stats is not None:
        n_ref = f"{ctx.stats.n:,} images" if ctx.stats.n > 0 else "N unknown"
        return C.check_feature_distance(
            ctx.out.pool,
            ref_stats=ctx.stats,
            stats_notes=ctx.stats_notes,
            ref_label=f"statistics {Path(ctx.stats_path).name} ({n_ref})",  # no local path
        )
    return not_run(10, NO_REFERENCE, f"give a reference: {REFERENCE_SYNTAX}")


#: how to ask for check 12's networks, in its messages
ENCODERS_SYNTAX = "+backbone@encoders.dinov2=dinov2 +backbone@encoders.clip=clip"
ENCODERS_WHY = (
    "check 12 asks whether other networks' features (FD_DINOv2, CMMD) tell your samples from "
    "the reference as the chosen network's do"
)


def _plan_encoders(ctx: Context, plan: PassPlan) -> None:
    """Check 12: each network of ``encoders`` whose weights are present (one identical to the
    chosen network is not measured twice), over the samples and the reference images; the
    others skipped, with why."""
    store = ctx.values[12] = {"features": {}, "metrics": {}, "random": [], "networks": {}}
    store["notes"], store["missing"] = [], {}
    if ctx.ref is None or min(len(ctx.src), len(ctx.ref)) < 2:
        return
    # the rows the test uses (at most max_images of each), drawn before any pass: the encoders
    # pass over those rows only (the chosen network's pass, over all, serves other checks)
    draws = store["draws"] = C.permutation_draws(len(ctx.src), len(ctx.ref), ctx.cfg.encoder_spread)
    sources = {"samples": _rows_of(ctx.src, draws[0]), "reference": _rows_of(ctx.ref, draws[1])}
    built: dict = {}
    nets, missing = inputs.load_available(ctx.cfg, "encoders", seconds=built)
    for key, enc in nets.items():
        if not enc.has_features:
            missing[key] = f"backbone {enc.name} gives no pool features"
            continue
        if enc.cache_identity() == ctx.net.cache_identity():
            store["notes"].append(f"encoders.{key} is the chosen network: measured once")
            continue
        name = key if key != ctx.net.name else f"{key} (encoders.{key})"
        store["metrics"][name] = enc.distance_metrics
        store["networks"][name] = f"{enc.name} ({weights_short(enc)})"
        if enc.random_weights:
            store["random"].append(name)
        for images, source in sources.items():
            plan.add(
                enc,
                source,
                images,
                f"check 12: {name} features of the {images}",
                (12,),
                features=True,
                use=lambda o, k=name, i=images: (
                    store["features"].setdefault(k, {}).update({i: o.pool})
                ),
                load_seconds=built.get(key) if images == "samples" else None,
            )
    for key, why in missing.items():
        reason = f"not available: {why}"
        plan.skip(key, f"check 12: {key} features", (12,), reason, "samples and reference")
    store["missing"] = missing
    ctx.missing.update({f"encoders.{k}": why for k, why in missing.items()})


def _rows_of(src, rows):
    """``src`` at ``rows`` (all of it when they are all; a sequential source: all of it)."""
    if len(rows) == len(src) or not src.random_access:
        return src
    return src.subset(rows)


def _encoder_not_run(ctx: Context, store: dict) -> C.Check | None:
    """Check 12 NOT RUN: no reference images, no encoders, none available, too few images."""
    if ctx.ref is None:
        return not_run(
            12,
            "not run: needs reference images (a statistics file holds no images to pass through "
            "other networks)",
            f"give reference images: {REFERENCE_SYNTAX.split(', or')[0]}",
            ENCODERS_WHY,
        )
    if min(len(ctx.src), len(ctx.ref)) < 2:
        return not_run(
            12,
            "not run: a permutation test needs at least 2 samples and 2 reference images",
            "give more images",
            ENCODERS_WHY,
        )
    if not store["features"]:
        missing = store["missing"]
        if missing:
            why = "; ".join(f"{k}: {v}" for k, v in missing.items())
            return not_run(
                12,
                f"not run: no network of encoders= is available ({why})",
                "put their weights where the README's encoders section says",
                ENCODERS_WHY,
            )
        return not_run(12, "not run: no encoders chosen", f"add {ENCODERS_SYNTAX}", ENCODERS_WHY)
    return None


def _encoder_spread(ctx: Context) -> C.Check:
    store, cfg = ctx.values[12], ctx.cfg.encoder_spread
    skipped = _encoder_not_run(ctx, store)
    if skipped is not None:
        return skipped
    nets, networks, notes = {}, {}, list(store["notes"])
    if ctx.features:  # the chosen network first: the one FID is computed in
        networks[ctx.net.name] = f"{ctx.net.name} ({weights_short(ctx.net)}), the chosen network"
        nets[ctx.net.name] = {m: (ctx.out.pool, ctx.ref_f) for m in ctx.net.distance_metrics}
    else:
        notes.append(f"the chosen network ({ctx.net.name}) gives no pool features: no FID here")
    for name, f in store["features"].items():
        networks[name] = store["networks"][name]
        nets[name] = {m: (f["samples"], f["reference"]) for m in store["metrics"][name]}
    draws = store["draws"]
    tests, primary = {}, {}
    for name, by_metric in nets.items():
        for m, (s, r) in by_metric.items():
            # an encoder's features are of the drawn rows already, in the drawn order
            rows_s = draws[0] if len(s) == len(ctx.src) else np.arange(len(s))
            rows_r = draws[1] if len(r) == len(ctx.ref) else np.arange(len(r))
            tests[f"{m}_{name}"] = C.encoder_test(s, r, m, (rows_s, rows_r, draws[2]), cfg)
        primary[name] = f"{next(iter(by_metric))}_{name}"
    setup = {
        "n_samples": len(draws[0]),
        "n_reference": len(draws[1]),
        "permutations": int(cfg.permutations),
        "alpha": float(cfg.alpha),
        "seed": int(cfg.seed),
        "cmmd_estimator": str(cfg.cmmd_estimator),
        "networks_measured": networks,
    }
    random = ctx.net.random_weights or bool(store["random"])
    return C.check_encoder_spread(tests, primary, random, setup, notes)


def _peer_conventions(ctx: Context) -> C.Check:
    presets = {p: protocols.load_protocol(p) for p in protocols.names()}
    return C.check_peer_conventions(ctx.prep, presets, ctx.net.name)


REGISTRY: dict[int, CheckDef] = {
    d.id: d
    for d in (
        CheckDef(1, "sample_count", "sample count, IS∞ and FID∞", _sample_count,
                 features="with_reference", reference="optional"),
        CheckDef(2, "input_format", "pixel range and format", _input_format,
                 classes=False, samples_pass=False),
        CheckDef(3, "order", "sample order",
                 lambda ctx: C.check_order(ctx.prep, ctx.spec, ctx.seed)),
        CheckDef(4, "splits", "split count vs S(G)",
                 lambda ctx: C.check_splits(ctx.prep, ctx.spec)),
        CheckDef(5, "backbone_spread", "IS across backbones", _backbone_spread,
                 plan=_plan_spread),
        CheckDef(6, "preprocessing", "IS across resize methods", _preprocessing,
                 samples_pass=False, plan=_plan_resize),
        CheckDef(7, "memorization_collapse", "copies and duplicates", _memorization,
                 classes=False, features="yes", reference="optional", samples_pass=False),
        CheckDef(8, "domain_fit", "domain fit, H(y|x)",
                 lambda ctx: C.check_domain_fit(ctx.prep, random_weights=ctx.net.random_weights)),
        CheckDef(9, "numerics", "numerics",
                 lambda ctx: C.check_numerics(ctx.out.logits, ctx.prep)),
        CheckDef(10, "fid_kid", "FID/KID against the reference", _fid_kid,
                 classes=False, features="yes", reference="required", samples_pass=False),
        CheckDef(11, "peer_conventions", "the tools' split conventions", _peer_conventions),
        CheckDef(12, "encoder_spread", "FID vs FD_DINOv2 vs CMMD", _encoder_spread,
                 classes=False, features="with_reference", reference="images",
                 samples_pass=False, plan=_plan_encoders,
                 inputs=lambda cfg: bool(cfg.get("encoders"))),
    )
}  # fmt: skip

#: every check of the report, by id; counts and the settings' ranges derive from it
CHECKS = {i: d.name for i, d in REGISTRY.items()}
ALL_CHECKS = tuple(CHECKS)
ID_RANGE = f"{min(CHECKS)}-{max(CHECKS)}"
#: the checks that need class probabilities: N/A on a features-only backbone
CLASS_CHECKS = {i: d.name for i, d in REGISTRY.items() if d.classes}
#: the checks that need a reference (asked for by id without one: an error)
REFERENCE_CHECKS = tuple(i for i, d in REGISTRY.items() if d.reference in ("required", "images"))
#: the checks with network passes of their own (``quick=true`` drops them)
EXTRA_PASS_CHECKS = tuple(i for i, d in REGISTRY.items() if d.plan is not None)


# ------------------------------------------------------------------------------ results not run
def not_applicable(check_id: int, net_name: str) -> C.Check:
    """A class check reported, not run, for a backbone without a classifier head."""
    return C.Check(
        check_id,
        CLASS_CHECKS[check_id],
        C.NOT_APPLICABLE,
        None,
        f"not applicable: {C.NO_HEAD}",
        f"this check needs class probabilities; backbone {net_name} gives features only",
        "run it with a classifier backbone (e.g. an Inception V3, or torch_model / keras_model "
        "with head=logits)",
    )


def not_run(check_id: int, reason: str, fix: str, why: str = "") -> C.Check:
    """A check reported, not run, because the run lacks its input (check 10 without a
    reference): it stays in the report, never vanishes."""
    return C.Check(
        check_id,
        CHECKS[check_id],
        C.NOT_RUN,
        reason,
        "not judged (not run)",
        why
        or "FID and KID compare the samples with a reference set; without one there is no number",
        fix,
    )


# ------------------------------------------------------------------------------ the settings
def one_reference(values: dict, prefix: str) -> None:
    """Schema check: one reference for FID/KID."""
    if values.get("reference_stats") is not None and values.get("reference") is not None:
        raise ConfigError(
            "give one reference for FID/KID: reference_stats=<stats.npz> or "
            "+dataset@reference=<dataset>, not both"
        )


def reference_given(values: dict, prefix: str) -> None:
    """Schema check: asking for FID/KID (check 10) by id without a reference is an error before
    any pass (with all checks, check 10 is reported "not run: no reference" instead)."""
    images, stats = values.get("reference") is not None, values.get("reference_stats") is not None
    for c in values.get("checks") or ():
        d = REGISTRY.get(c)
        if d is None or d.reference not in ("required", "images") or images:
            continue
        if d.reference == "required" and not stats:
            raise ConfigError(
                f"checks={list(values['checks'])} asks for {d.title} (check {c}), which needs a "
                f"reference: add {REFERENCE_SYNTAX}"
            )
        if d.reference == "images":
            raise ConfigError(
                f"checks={list(values['checks'])} asks for {d.title} (check {c}), which needs "
                f"reference images: add {REFERENCE_SYNTAX.split(', or')[0]}"
            )


def encoders_given(values: dict, prefix: str) -> None:
    """Schema check: check 12 asked for by id needs encoders (with all checks it is listed NOT
    RUN instead), and its alpha must be reachable with its permutations (p >= 1/(K + 1))."""
    asked = 12 in (values.get("checks") or ())
    if asked and not values.get("encoders"):
        raise ConfigError(
            f"checks={list(values['checks'])} asks for check 12 (encoder spread), which needs "
            f"encoders: add {ENCODERS_SYNTAX}"
        )
    spread = values.get("encoder_spread") or {}
    k, alpha = spread.get("permutations"), spread.get("alpha")
    if k is not None and alpha is not None and alpha < 1 / (k + 1):
        raise ConfigError(
            f"encoder_spread.alpha={alpha} is below the smallest p {k} permutations can give "
            f"(1/{k + 1}): no network could ever tell your samples apart; set "
            f"encoder_spread.permutations >= {math.ceil(1 / alpha) - 1} or a larger alpha"
        )


def selected_checks(cfg) -> list[int]:
    """``checks=[...]``, minus the checks with passes of their own when ``quick=true``."""
    chosen = list(ALL_CHECKS) if cfg.get("checks") is None else [int(c) for c in cfg.checks]
    bad = [c for c in chosen if c not in ALL_CHECKS]
    if bad or not chosen:
        raise HarnessError(
            f"checks={list(chosen)}: choose ids from {ID_RANGE} (e.g. checks=[1,4,7])"
        )
    if as_bool(cfg.quick, "quick"):
        kept = [c for c in chosen if c not in EXTRA_PASS_CHECKS]
        if not kept:
            raise ConfigError(
                f"checks={sorted(set(chosen))} with quick=true: quick drops checks "
                f"{', '.join(map(str, EXTRA_PASS_CHECKS))} (their own network passes), so "
                "nothing is left; drop quick=true or choose other checks"
            )
        chosen = kept
    return sorted(set(chosen))


def check_one_reference(cfg) -> None:
    """``reference_stats=`` and a reference dataset both given: check 10 would use only one."""
    if cfg.get("reference_stats") and cfg.get("reference") is not None:
        raise ConfigError(
            f"reference_stats={cfg.reference_stats} and a reference dataset "
            "(+dataset@reference=...) are both given, and check 10 uses one reference: give one "
            "of reference_stats= or +dataset@reference=..."
        )


# ------------------------------------------------------------------------------ the loop
def prepare(cfg) -> Context:
    """The inputs, the reference (images or statistics, checked before any network pass), the
    split convention and the checks that run."""
    selected = selected_checks(cfg)
    fm.check_kid_matmul_dtype(cfg.kid.matmul_dtype)
    check_one_reference(cfg)
    got = inputs.load_inputs(cfg, nets=("backbone",), sources=("dataset", "reference"))
    net, src = got.net(), got.source()
    run_ids = [c for c in selected if net.has_logits or not REGISTRY[c].classes]
    if not run_ids:
        raise ConfigError(
            f"sanity: checks={selected} all need class probabilities, but backbone {net.name} "
            f"has {C.NO_HEAD}; choose from checks "
            f"{', '.join(str(c) for c in ALL_CHECKS if c not in CLASS_CHECKS)} (FID/KID: "
            "+dataset@reference=... or reference_stats=...), or a classifier backbone"
        )
    stats_path, stats, stats_notes = cfg.get("reference_stats"), None, ()
    wants_stats = any(REGISTRY[c].reference == "required" for c in selected)
    if wants_stats and net.has_features and stats_path:
        stats, stats_notes = stats_files.load_stats(
            stats_path,
            expect=stats_files.stats_meta(net),
            allow_mismatched=as_bool(cfg.allow_mismatched_stats, "allow_mismatched_stats"),
        )
    spec = config.split_spec(cfg)
    got.require_splits(spec.n_splits, ("dataset",) if net.has_logits else (), need_logits=False)
    ctx = Context(
        cfg, net, src, got.sources.get("reference"), stats, stats_notes, stats_path, spec,
        int(cfg.shuffle_seed), selected, run_ids, got=got,
    )  # fmt: skip
    ctx.features = net.has_features and any(ctx.wants_features(REGISTRY[c]) for c in selected)
    return ctx


def samples_purpose(head: bool, features: bool) -> str:
    what = []
    if head:
        what.append("the reported IS and S(G), class probabilities")
    if features:
        what.append("pool features")
    return "your samples under the chosen network: " + " and ".join(what)


def plan_passes(ctx: Context, plan: PassPlan) -> PassPlan:
    """The chosen network over the samples (class probabilities and, when a check wants them,
    pool features), each check's own passes, and the reference's pool features."""
    defs = [REGISTRY[c] for c in ctx.run_ids]
    if ctx.head or ctx.features:  # an encoder's pass only for its features
        plan.add(
            ctx.net,
            ctx.src,
            "samples",
            samples_purpose(ctx.head, ctx.features),
            [d.id for d in defs if ctx.uses_samples_pass(d)],
            features=ctx.features,
            use=lambda o: setattr(ctx, "out", o),
        )
    for d in defs:
        if d.plan is not None:
            d.plan(ctx, plan)
    if ctx.features and ctx.ref is not None:
        plan.add(
            ctx.net,
            ctx.ref,
            "reference",
            "reference pool features",
            [d.id for d in defs if ctx.uses_features(d)],
            features=True,
            use=lambda o: setattr(ctx, "ref_f", o.pool),
        )
    return plan


def run_checks(ctx: Context) -> list[C.Check]:
    """The scores every class check reads (computed once), then each check, in id order."""
    if ctx.head:
        ctx.prep = scores.prepare(ctx.out.probs)
        ctx.rk = scores.inception_score(ctx.prep, splits=ctx.spec)
        ctx.sg = scores.improved_score(ctx.prep)
    done = [not_applicable(c, ctx.net.name) for c in ctx.selected if c not in ctx.run_ids]
    done += [REGISTRY[c].run(ctx) for c in ctx.run_ids]
    return sorted(done, key=lambda c: c.id)
