"""Experiment ``sanity``: check a researcher's own samples before they publish an Inception Score.

    python -m harness +experiment=sanity dataset=folder dataset.root=/path/to/samples
    python -m harness +experiment=sanity dataset=arrays dataset.path=samples.npz \
        +dataset@reference=cifar10 strict=true

Runs the checks of :data:`CHECKS` (harness/sanity.py), writes ``report.md`` and
``report.json`` (one entry per check), figures for the order, splits, backbone and resize
checks, prints a summary and a ready-to-paste reporting line (text and LaTeX).
``strict=true`` exits with code 3 when any check FAILs, so the command can guard a
researcher's own CI.  Every network pass the checks ask for is planned first and each
identical (images, network) pass runs once (:class:`PassPlan`, also with the logits cache off);
``passes`` in report.json, ``passes.csv`` and a section of report.md say what each pass buys,
how it was served (computed, logits cache, same as an earlier pass, skipped: network not
available) and how long it took.  Check 10 (FID/KID) needs a reference: ``reference=<dir>`` (or
``+dataset@reference=<dataset>``) or ``reference_stats=<file.npz>``; asked for by id without
one it is a one-line error, and in the full report it is listed "NOT RUN: no reference".

A features-only backbone (an encoder, ``head=features``) runs the checks that need no classes
(2 pixels, 7 copies, 10 FID/KID) and reports the others "not applicable: no classifier head"
(status ``N/A``, no network pass spent on them); the reporting line is then the FID line.  A
selection of class checks only is a one-line error before any pass.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import pandas as pd
from omegaconf import OmegaConf

from harness import config, inputs, protocols, results, rows, sanity, scores
from harness import feature_metrics as fm
from harness import resize as rs
from harness import settings as S
from harness.backbones import REGISTRY
from harness.config import as_bool
from harness.errors import ConfigError, HarnessError
from harness.pipeline import cache_from_config, outputs
from harness.plotting import integer_ticks, subplots
from harness.runner import Result
from harness.sweeps import split_sweep

#: every check of the report, by id (harness/sanity.py computes them); counts derive from it
CHECKS = {
    1: "sample_count",
    2: "input_format",
    3: "order",
    4: "splits",
    5: "backbone_spread",
    6: "preprocessing",
    7: "memorization_collapse",
    8: "domain_fit",
    9: "numerics",
    10: "fid_kid",
    11: "peer_conventions",
}
ALL_CHECKS = tuple(CHECKS)
ID_RANGE = f"{min(CHECKS)}-{max(CHECKS)}"
#: the checks that compare the samples with a reference (FID/KID)
REFERENCE_CHECKS = (10,)
#: how to give a reference, in every message that asks for one
REFERENCE_SYNTAX = (
    "+dataset@reference=folder reference.root=<dir> (or reference=<dir>), or "
    "reference_stats=<file.npz>"
)
#: status of a check that was not run because its input was not given
NOT_RUN = "NOT RUN"
NO_REFERENCE = "not run: no reference (give +dataset@reference=... or reference_stats=...)"


def _one_reference(values: dict, prefix: str) -> None:
    if values.get("reference_stats") is not None and values.get("reference") is not None:
        raise ConfigError(
            "give one reference for FID/KID: reference_stats=<stats.npz> or "
            "+dataset@reference=<dataset>, not both"
        )


def _reference_given(values: dict, prefix: str) -> None:
    """Asking for FID/KID (check 10) by id without a reference is an error before any pass (with
    all checks, check 10 is reported "not run: no reference" instead)."""
    asked = [c for c in values.get("checks") or () if c in REFERENCE_CHECKS]
    if asked and values.get("reference") is None and values.get("reference_stats") is None:
        raise ConfigError(
            f"checks={list(values['checks'])} asks for FID/KID (check {asked[0]}), which needs a "
            f"reference: add {REFERENCE_SYNTAX}"
        )


BACKBONES4 = {"tf2015": "tf2015", "torchvision": "torchvision", "keras": "keras", "tfhub": "tfhub"}

SETTINGS = S.ExperimentSettings(
    "Pre-publication sanity report on your own samples (dataset=folder|arrays|generator): "
    f"{len(CHECKS)} checks + a reporting line.",
    S.Schema(
        [
            S.Node("backbone", "backbone", "tf2015_torch"),
            S.Node("dataset", "dataset", "folder"),
            S.NodeMap("other_backbones", "backbone", BACKBONES4),
            config.weights_override(
                "overrides every backbone's weights (random:<seed> to try it out; labelled)"
            ),
            S.Setting(
                "checks",
                S.ListOf(S.Int(lo=min(CHECKS), hi=max(CHECKS)), unique=True),
                None,
                f"null = all ({ID_RANGE}); or a list, e.g. checks=[1,4,7]",
                nullable=True,
            ),
            S.Setting(
                "quick",
                S.Bool(),
                False,
                "true: only the chosen backbone's one pass (drops checks 5 and 6)",
            ),
            S.Setting(
                "strict", S.Bool(), False, "true: exit code 3 when any check FAILs (for your CI)"
            ),
            S.Node(
                "reference",
                "dataset",
                None,
                doc="optional reference set for FID/KID (check 10) and copies (check 7): "
                "reference=<dir> or +dataset@reference=<dataset>",
                nullable=True,
            ),
            S.Setting(
                "compare_backbone",
                S.Choice(tuple(REGISTRY)),
                "tf2015_torch",
                "the network comparison papers used: the original IS code's 2015 graph "
                "(tf2015 in TensorFlow)",
            ),
            S.Setting("shuffle_seed", S.Seed(), 0, "seed of the shuffled IS (check 3)"),
            S.Setting(
                "bias_resamples",
                S.Int(lo=1),
                5,
                "subsamples per size for the sample-count bias estimate",
            ),
            S.Setting(
                "pixel_sample",
                S.Int(lo=1),
                2000,
                "images whose pixels are inspected (check 2)",
            ),
            S.Setting(
                "reference_stats",
                S.Path(),
                None,
                "or a .npz with mu/sigma (TTUR / pytorch-fid / clean-fid layout) for FID "
                "(check 10)",
                nullable=True,
            ),
            S.Setting(
                "allow_mismatched_stats",
                S.Bool(),
                False,
                "true: use stats made with another backbone/resize (recorded)",
                applies=S.When("reference_stats", not_in=(None,), text="reference_stats is set"),
            ),
            config.kid_section(subset_size="auto", doc="KID against the reference set (check 10)"),
            config.extrapolation_section(),
            config.data_copying_section(),
            S.Setting(
                "dup_threshold",
                S.Float(lo=-1, hi=1),
                0.995,
                "cosine similarity of centred pool features counted as a copy",
            ),
        ],
        checks=[_one_reference, _reference_given],
    ),
    uses_splits=True,
)


class StrictFailure(HarnessError):
    """strict=true and at least one check failed (the report is written first)."""

    exit_code = 3


#: checks that need network passes beyond the chosen backbone's one pass over the samples
EXTRA_PASS_CHECKS = (5, 6)


#: how a pass was served, in the passes table
COMPUTED, FROM_CACHE, SKIPPED = "computed", "logits cache", "skipped"
#: an identical (network, images) pair requested earlier in the same report
SHARED = "same as pass {}"


def weights_short(net) -> str:
    """The weights in the passes table: published name or status, and a short sha256 (never a
    local path)."""
    prov = net.provenance()
    if prov.get("weights_kind") == "none":  # pixel space: no weights to name or hash
        return "no weights"
    what = net.weights_name or (
        prov["weights"] if net.weights_status == "random" else f"{net.weights_status} weights"
    )
    return f"{what}, sha256 {str(prov.get('weights_sha256') or 'unknown')[:12]}"


class PassPlan:
    """The network passes of one report: requested by the checks, then run.

    Requests with the key of the logits cache (the images' fingerprint and N, the network's
    cache identity: name, weights sha256, every knob that changes the logits, framework
    versions) are one pass, run once (with pool features when any of them wants them) and handed
    to each request, also with ``cache.enabled=false``; a network identical to an earlier one is
    not kept.  A pass's outputs are released once its requests have used them (``use`` keeps
    what a check needs).  :attr:`rows` is the report's passes table, one row per request.
    """

    def __init__(self, cfg):
        self.cfg = cfg
        self.cache = cache_from_config(cfg)
        self.groups: dict[str, dict] = {}  # key -> {"net", "src", "features", "uses"}
        self.requests: list[dict] = []  # the table's rows, in request order
        self.skipped: list[dict] = []

    def add(
        self,
        net,
        src,
        images: str,
        purpose: str,
        checks,
        features=False,
        use=None,
        resize: str | None = None,
        load_seconds: float | None = None,
    ) -> None:
        """Ask for ``net`` over ``src`` (``images``: "samples" or "reference") for ``purpose``
        (checks ``checks``); ``use(outputs)`` is called with the pass's outputs.  ``resize``:
        the method asked for when ``net`` was reused for it (same operation);
        ``load_seconds``: the time spent building ``net`` for this request (None: loaded with
        the run's inputs)."""
        key = self.cache.key(src, net)
        group = self.groups.get(key)
        if group is None:
            group = self.groups[key] = {
                "number": len(self.groups) + 1,
                "net": net,
                "src": src,
                "features": False,
                "uses": [],
                "label": purpose,
            }
        group["features"] |= bool(features)
        if use is not None:
            group["uses"].append(use)
        prov = net.provenance()
        self.requests.append(
            {
                "pass": group["number"],
                "network": net.name,
                "weights": weights_short(net),
                "resize": resize or prov["resize"],
                "input_size": prov["input_size"],
                "images": images,
                "n_images": len(src),
                "images_fingerprint": src.fingerprint()[:12],
                "features": bool(features),
                "purpose": purpose,
                "checks": sorted(checks),
                "how": None,
                "seconds": 0.0,
                "load_seconds": None if load_seconds is None else round(load_seconds, 3),
                "reason": None,
                "_key": key,
            }
        )

    def skip(self, name: str, purpose: str, checks, reason: str) -> None:
        """An optional network that is not available (its weights are missing): no pass."""
        self.skipped.append(
            {
                "pass": None,
                "network": name,
                "weights": None,
                "resize": None,
                "input_size": None,
                "images": "samples",
                "n_images": None,
                "images_fingerprint": None,
                "features": False,
                "purpose": purpose,
                "checks": sorted(checks),
                "how": SKIPPED,
                "seconds": 0.0,
                "load_seconds": None,
                "reason": " ".join(str(reason).split()),
            }
        )

    def run(self) -> list[dict]:
        """Run each unique pass once, in the order first asked for; return the table."""
        served = {}
        for key, g in self.groups.items():
            t0 = time.perf_counter()
            out = outputs(self.cfg, g["net"], g["src"], features=g["features"], label=g["label"])
            for use in g["uses"]:
                use(out)
            served[key] = (FROM_CACHE if out.from_cache else COMPUTED, time.perf_counter() - t0)
            g["net"] = g["src"] = out = None  # what the checks need, they keep
            g["uses"] = []
        rows, seen = [], set()
        for r in self.requests:
            key = r.pop("_key")
            how, seconds = served[key]
            if key in seen:
                how, seconds = SHARED.format(r["pass"]), 0.0
            seen.add(key)
            rows.append({**r, "how": how, "seconds": round(seconds, 3)})
        self.rows = rows + self.skipped
        return self.rows


def passes_summary(rows: list[dict]) -> dict:
    """Passes requested, run (computed or read from the logits cache), shared, skipped; seconds."""
    run = [r for r in rows if r["how"] in (COMPUTED, FROM_CACHE)]
    return {
        "requested": sum(r["how"] != SKIPPED for r in rows),
        "run": len(run),
        "computed": sum(r["how"] == COMPUTED for r in run),
        "from_cache": sum(r["how"] == FROM_CACHE for r in run),
        "shared": sum(r["how"].startswith("same as") for r in rows),
        "skipped": sum(r["how"] == SKIPPED for r in rows),
        "seconds": round(sum(r["seconds"] for r in run), 3),
        "load_seconds": round(sum(r["load_seconds"] or 0.0 for r in rows), 3),
    }


def _is_mean(o, spec) -> float:
    return scores.inception_score(o.probs, splits=spec).mean


def samples_purpose(head: bool, features: bool) -> str:
    what = []
    if head:
        what.append("the reported IS and S(G), class probabilities")
    if features:
        what.append("pool features")
    return "your samples under the chosen network: " + " and ".join(what)


#: checks that need class probabilities (IS, entropies, logits): not applicable to a
#: features-only backbone, which runs 2 (pixels), 7 (copies) and 10 (FID/KID)
CLASS_CHECKS = {i: CHECKS[i] for i in (1, 3, 4, 5, 6, 8, 9, 11)}
NOT_APPLICABLE = "N/A"
NO_HEAD = "no classifier head (features only)"


def not_applicable(check_id: int, net_name: str) -> sanity.Check:
    """A class check reported, not run, for a backbone without a classifier head."""
    return sanity.Check(
        check_id,
        CLASS_CHECKS[check_id],
        NOT_APPLICABLE,
        None,
        f"not applicable: {NO_HEAD}",
        f"this check needs class probabilities; backbone {net_name} gives features only",
        "run it with a classifier backbone (e.g. an Inception V3, or torch_model / keras_model "
        "with head=logits)",
    )


def not_run(check_id: int, reason: str, fix: str) -> sanity.Check:
    """A check reported, not run, because the run lacks its input (check 10 without a
    reference): it stays in the report, never vanishes."""
    return sanity.Check(
        check_id,
        CHECKS[check_id],
        NOT_RUN,
        reason,
        "not judged (not run)",
        "FID and KID compare the samples with a reference set; without one there is no number",
        fix,
    )


def features_line(prov: dict, n: int, fid_line: str | None) -> tuple[str, str]:
    """The reporting line of a features-only backbone: its FID/KID (no IS), network, N."""
    sha = str(prov.get("weights_sha256") or "unknown")
    sha_short = sha if sha.startswith(("random", "ported")) else sha[:12] + "…"
    what = fid_line or "no FID (no reference: +dataset@reference=... or reference_stats=...)"
    size = prov["input_size"]
    resize = (
        ("native size, no resize" if size is None else f"{size}x{size} input, no resize")
        if prov["resize"] == "none"
        else f"{sanity.resize_label(prov)} to {size}"
    )
    network = (
        f"{sanity.weights_label(prov)} features, sha256 {sha_short}"
        if prov.get("weights_kind") != "none"
        else f"{prov.get('backbone', 'pixel')} features, no weights"
    )
    text = (
        f"{what} ({network}; "
        f"{resize}; {n:,} samples) · "
        f"IS: not applicable ({NO_HEAD})"
    )
    latex = results.tex_escape(text.replace("…", "...").replace(" · ", "; "))
    warning = sanity.weights_warning(prov)
    if warning:
        text = f"{warning}: " + text
        latex = rf"\textbf{{{warning}:}} " + latex
    return text, latex


def selected_checks(cfg) -> list[int]:
    """``checks=[...]`` (ids 1-11), minus the extra-pass checks when ``quick=true``."""
    chosen = list(ALL_CHECKS) if cfg.get("checks") is None else [int(c) for c in cfg.checks]
    bad = [c for c in chosen if c not in ALL_CHECKS]
    if bad or not chosen:
        raise HarnessError(
            f"checks={list(chosen)}: choose ids from {ID_RANGE} (e.g. checks=[1,4,7])"
        )
    if as_bool(cfg.quick, "quick"):
        chosen = [c for c in chosen if c not in EXTRA_PASS_CHECKS]
    return sorted(set(chosen))


def check_one_reference(cfg) -> None:
    """``reference_stats=`` and a reference dataset both given: check 10 would use only one."""
    if cfg.get("reference_stats") and cfg.get("reference") is not None:
        raise ConfigError(
            f"reference_stats={cfg.reference_stats} and a reference dataset "
            "(+dataset@reference=...) are both given, and check 10 uses one reference: give one "
            "of reference_stats= or +dataset@reference=..."
        )


def compute(cfg) -> Result:
    want = selected_checks(cfg)
    fm.check_kid_matmul_dtype(cfg.kid.matmul_dtype)
    check_one_reference(cfg)
    got = inputs.load(cfg, nets=("backbone",), sources=("dataset", "reference"))
    net, src = got.net(), got.source()
    ref = got.sources.get("reference")
    head = net.has_logits
    run_ids = want if head else [c for c in want if c not in CLASS_CHECKS]
    if not run_ids:
        raise ConfigError(
            f"sanity: checks={want} all need class probabilities, but backbone {net.name} has "
            f"{NO_HEAD}; choose from checks 2, 7, 10 (FID/KID: +dataset@reference=... or "
            "reference_stats=...), or a classifier backbone"
        )
    stats_path = cfg.get("reference_stats")
    stats = stats_notes = None
    if 10 in want and net.has_features and stats_path:  # checked before any network pass
        stats, stats_notes = fm.load_stats(
            stats_path,
            expect=fm.stats_meta(net),
            allow_mismatched=as_bool(cfg.allow_mismatched_stats, "allow_mismatched_stats"),
        )
    spec = config.split_spec(cfg)
    got.require_splits(spec.n_splits, ("dataset",) if head else (), need_logits=False)
    seed = int(cfg.shuffle_seed)
    has_ref = ref is not None or stats is not None
    # pool features for checks 7 and 10, and for check 1's FID_inf when there is a reference
    want_f = net.has_features and (7 in want or 10 in want or (1 in want and has_ref))
    # every network pass is planned first, then each unique one runs once (PassPlan)
    plan, got_out, spread, by_resize, missing = PassPlan(cfg), {}, {}, {}, {}
    if head or want_f:  # an encoder's pass only for its features (checks 7, 10)
        uses = [c for c in run_ids if c in (1, 3, 4, 5, 8, 9, 11)] + [
            c for c in run_ids if want_f and (c == 7 or (c == 10 and has_ref))
        ]
        plan.add(
            net,
            src,
            "samples",
            samples_purpose(head, want_f),
            uses,
            features=want_f,
            use=lambda o: got_out.__setitem__("samples", o),
        )
    if 5 in run_ids:  # every other backbone whose weights are present; the others skipped
        built: dict = {}
        others, missing = inputs.load_available(cfg, "other_backbones", seconds=built)
        spread = {net.name: None}
        for key, other in others.items():
            if other.cache_identity() == net.cache_identity():  # the chosen one is there already
                plan.add(
                    other,
                    src,
                    "samples",
                    f"check 5: IS under {key} (the chosen network)",
                    (5,),
                    load_seconds=built.get(key),
                )
                continue
            # another network of the chosen one's name (other weights or knobs): its own bar
            bar = key if key != net.name else f"{key} (other_backbones.{key})"
            spread[bar] = None
            plan.add(
                other,
                src,
                "samples",
                f"check 5: IS under {bar}",
                (5,),
                use=lambda o, k=bar: spread.__setitem__(k, _is_mean(o, spec)),
                load_seconds=built.get(key),
            )
        for key, why in missing.items():
            bar = key if key != net.name else f"{key} (other_backbones.{key})"
            spread[bar] = None
            plan.skip(key, f"check 5: IS under {bar}", (5,), f"not available: {why}")
        del others
    if 6 in run_ids:  # resize methods on the chosen backbone (identical operations: one pass)
        by_resize = dict.fromkeys(rs.COMPARED)
        # one network per resize operation: the chosen one, then each other operation once
        variants = {rs.canonical(net.resize_method, net.align_corners): net}
        for label, over in rs.COMPARED.items():
            op = rs.canonical(over["resize"], over.get("align_corners"))
            t0, variant = time.perf_counter(), variants.get(op)
            if variant is None:
                variant = inputs.build_backbone(
                    got.specs["backbone"], **{"align_corners": None, **over}
                )
                variants[rs.canonical(variant.resize_method, variant.align_corners)] = variant
            plan.add(
                variant,
                src,
                "samples",
                f"check 6: IS with {label} resize",
                (6,),
                use=lambda o, k=label: by_resize.__setitem__(k, _is_mean(o, spec)),
                resize=rs.describe(over["resize"], over.get("align_corners")),
                load_seconds=time.perf_counter() - t0 if variant is not net else None,
            )
        del variants, variant
    if want_f and ref is not None:
        plan.add(
            net,
            ref,
            "reference",
            "reference pool features",
            [c for c in run_ids if c in (1, 7, 10)],
            features=True,
            use=lambda o: got_out.__setitem__("reference", o.pool),
        )
    passes = plan.run()
    out, ref_f = got_out.get("samples"), got_out.get("reference")
    prep = rk = sg = None
    if head:
        prep = scores.prepare(out.probs)
        rk = scores.inception_score(prep, splits=spec)
        sg = scores.improved_score(prep)
        if spread:
            spread[net.name] = rk.mean

    checks = [not_applicable(c, net.name) for c in want if c not in run_ids]
    want = run_ids
    if 1 in want:
        checks.append(
            sanity.check_sample_count(
                prep,
                spec,
                int(cfg.bias_resamples),
                seed,
                features=out.pool if want_f else None,
                reference=ref_f if ref_f is not None else stats,
                extrapolation=cfg.extrapolation,
            )
        )
    if 2 in want:  # pixels: a bounded sample of the images themselves
        m = min(int(cfg.pixel_sample), len(src))
        pix = next(src.batches_range(0, m, m))
        checks.append(
            sanity.check_input_format(
                pix, f"{net.provenance()['resize']} to {net.input_size}x{net.input_size}"
            )
        )
    if 3 in want:
        checks.append(sanity.check_order(prep, spec, seed))
    if 4 in want:
        checks.append(sanity.check_splits(prep, spec))
    if 5 in want:
        checks.append(sanity.check_backbone_spread(spread, net.name, cfg.compare_backbone))
    if 6 in want:
        checks.append(sanity.check_preprocessing(by_resize, net.provenance()["resize"]))
    if 7 in want:
        if want_f:
            checks.append(
                sanity.check_memorization(
                    out.pool,
                    ref_f,
                    float(cfg.dup_threshold),
                    random_weights=net.random_weights,
                    data_copying=cfg.data_copying,
                )
            )
        else:
            checks.append(
                sanity.Check(
                    7,
                    "memorization_collapse",
                    sanity.WARN,
                    None,
                    "needs pool features",
                    "IS cannot detect copies",
                    f"use a backbone with pool features ({net.name} has none)",
                )
            )
    fid_line = None
    if 10 in want and want_f and (ref is not None or stats is not None):
        if ref is not None:
            checks.append(
                sanity.check_feature_distance(
                    out.pool,
                    ref_f,
                    kid_cfg=OmegaConf.to_container(cfg.kid, resolve=True),
                    ref_label=rows.dataset_label(ref),  # "folder <name> (N images)"
                )
            )
        else:
            n_ref = f"{stats.n:,} images" if stats.n > 0 else "N unknown"
            checks.append(
                sanity.check_feature_distance(
                    out.pool,
                    ref_stats=stats,
                    stats_notes=stats_notes,
                    ref_label=f"statistics {Path(stats_path).name} ({n_ref})",  # no local path
                )
            )
        fid_line = sanity.fid_phrase(checks[-1])
    elif 10 in want and not want_f:
        checks.append(
            not_run(
                10,
                f"not run: backbone {net.name} gives no pool features",
                "use a backbone with pool features (e.g. an Inception V3) for FID/KID",
            )
        )
    elif 10 in want:
        checks.append(not_run(10, NO_REFERENCE, f"give a reference: {REFERENCE_SYNTAX}"))
    if 8 in want:
        checks.append(sanity.check_domain_fit(prep, random_weights=net.random_weights))
    if 9 in want:
        checks.append(sanity.check_numerics(out.logits, prep))
    if 11 in want:
        presets = {p: protocols.load(p) for p in protocols.names()}
        checks.append(sanity.check_peer_conventions(prep, presets, net.name))
    checks.sort(key=lambda c: c.id)

    prov = net.provenance()
    if head:
        line, latex = sanity.reporting_line(prov, rk, sg.nats)
        if fid_line:
            line = f"{line} · {fid_line}"
            latex = f"{latex}; {results.tex_escape(fid_line)}"
    else:
        line, latex = features_line(prov, len(src), fid_line)
    na = [c.id for c in checks if c.status == NOT_APPLICABLE]
    skipped = [c.id for c in checks if c.status == NOT_RUN]
    report = {
        "report_version": sanity.REPORT_VERSION,
        "random_weights": net.random_weights,
        "weights_status": net.weights_status,
        "reporting_line": line,
        "reporting_line_latex": latex,
        "summary": {
            "is_mean": rk.mean if head else None,
            "is_std": rk.std if head else None,
            # used: torch.chunk may make fewer than asked
            "n_splits": rk.n_splits if head else None,
            "n_splits_requested": spec.n_splits,
            "split_sizes": sorted(set(rk.split_sizes)) if head else None,
            "sg_nats": sg.nats if head else None,
            "sg_bits": sg.bits if head else None,
            "is_note": None if head else NO_HEAD,
            "n_samples": prep.n if head else len(src),
            **spec.provenance(),
            "checks_run": [c for c in want if c not in skipped],
            "checks_not_applicable": na,
            "checks_not_run": skipped,
            "quick": as_bool(cfg.quick, "quick"),
            "n_pass": sum(c.status == sanity.PASS for c in checks),
            "n_warn": sum(c.status == sanity.WARN for c in checks),
            "n_fail": sum(c.status == sanity.FAIL for c in checks),
            "n_not_applicable": len(na),
            "n_not_run": len(skipped),
        },
        "checks": [c.to_dict() for c in checks],
        # every network pass the checks asked for: what for, how it was served, seconds
        "passes": passes,
        "passes_summary": passes_summary(passes),
        "missing_backbones": missing,
        "backbone": prov,
        # the images in words, as tables and figure titles name them (rows.dataset_label)
        "samples": {**src.provenance(), "dataset_label": rows.dataset_label(src)},
        "reference": ref.provenance() if ref is not None else None,
    }
    table = pd.DataFrame(
        [
            {
                "check": f"{c.id}. {c.name}",
                "status": c.status,
                "value": sanity.format_value(c.name, c.value),
                "threshold": c.threshold,
            }
            for c in checks
        ]
    )
    splits_table = None
    if head:
        # the reported split count among them: the figure shows the number the report gives
        sweep_ks = sorted({k for k in (1, 2, 5, 10, 20, 50) if k <= prep.n} | {spec.n_splits})
        splits_table = split_sweep(prep, sweep_ks, dataclasses.replace(spec, ddof=0))
    return Result(
        {"table": table},
        net.random_weights,
        extra={"report": report},
        objects={
            "report": report,
            "spread": spread,
            "by_resize": by_resize,
            "splits": splits_table,
            "checks": checks,
            "strict": as_bool(cfg.strict, "strict"),
        },
    )


def present(result: Result, run) -> None:
    o = result.objects
    report = o["report"]
    figures = {}
    if o["spread"]:
        figures["check5_backbones"] = bars_figure(
            o["spread"],
            report["backbone"]["backbone"],
            "backbone",
            "check 5: IS by backbone",
            on=figure_inputs(report),
        )
    if o["by_resize"]:
        figures["check6_resize"] = bars_figure(
            o["by_resize"],
            _chosen_resize(report["backbone"]),
            "resize method",
            "check 6: IS by resize method",
            on=figure_inputs(report),
        )
    figures = {k: v for k, v in figures.items() if v is not None}
    report["figures"] = (
        sorted(figures)
        + (["check3_order"] if 3 in _ids(report) else [])
        + (["check4_splits"] if 4 in _ids(report) else [])
    )
    run.json(report, "report")
    run.text(render_markdown(report), "report.md", key="report_md")
    run.table(result.table, title="Sanity checks", print_columns=["check", "status", "value"])
    if report["passes"]:
        run.table(
            passes_table(report["passes"]),
            name="passes",
            title="Network passes: what each one buys, and how long it took",
            quiet=True,
        )
    print(
        f"\nReporting line:\n  {report['reporting_line']}\n\nLaTeX:\n  "
        f"{report['reporting_line_latex']}\n"
    )
    if report["passes"]:
        print(f"Network passes: {passes_summary_line(report['passes_summary'])}\n")
    if 3 in _ids(report):
        run.figure(order_figure(report), "check3_order")
    if 4 in _ids(report):
        run.figure(splits_figure(o["splits"], on=figure_inputs(report)), "check4_splits")
    for name, fig in figures.items():
        run.figure(fig, name)
    if o["strict"] and report["summary"]["n_fail"]:
        failed = ", ".join(c.name for c in o["checks"] if c.status == sanity.FAIL)
        # raised after the run's files and provenance are written (see finish_strict)
        run.pending_error = StrictFailure(
            f"sanity: {report['summary']['n_fail']} check(s) FAILED ({failed}); "
            f"see {run.run_dir / 'report.md'}"
        )


def headline(result: Result) -> str:
    """The number, and how many checks passed, warned and failed."""
    r = result.objects["report"]
    s = r["summary"]
    fid = next((c for c in r["checks"] if c["id"] == 10 and isinstance(c["value"], dict)), None)
    fid_txt = ""
    if fid is not None and fid["value"].get("fid") is not None:
        fid_txt = f", FID {fid['value']['fid']:.3g} vs reference"
    counts = f"{s.get('n_pass', 0)} PASS, {s.get('n_warn', 0)} WARN, {s.get('n_fail', 0)} FAIL"
    if s.get("n_not_run"):
        counts += f", {s['n_not_run']} NOT RUN (check {', '.join(map(str, s['checks_not_run']))})"
    if s.get("is_mean") is None:  # a features-only backbone: no IS
        return f"no IS{fid_txt or ', no FID'}; {counts}"
    return (
        f"IS {s['is_mean']:.4g} ± {s['is_std']:.2g} ({s['n_splits']} splits), S(G) "
        f"{s['sg_nats']:.3g} nats{fid_txt}; {counts}"
    )


def _ids(report) -> set:
    """The checks that ran (not those reported not applicable)."""
    return {c["id"] for c in report["checks"] if c["status"] not in (NOT_APPLICABLE, NOT_RUN)}


def _chosen_resize(prov: dict) -> str:
    key = rs.describe(prov["resize"], prov.get("align_corners"))
    return key if key in rs.COMPARED else rs.canonical(prov["resize"], prov.get("align_corners"))


def render_markdown(report: dict) -> str:
    lines = ["# Inception Score sanity report", ""]
    banner = results.weights_banner(report["random_weights"], report.get("weights_status"))
    if banner:
        lines += [f"**{banner}**", ""]
    s = report["summary"]
    lines += [
        f"{s['n_pass']} PASS, {s['n_warn']} WARN, {s['n_fail']} FAIL on {s['n_samples']:,} "
        f"samples (checks {', '.join(map(str, s['checks_run']))}"
        f"{'; quick: one network pass' if s['quick'] else ''})"
        + (
            f"; {s['n_not_applicable']} not applicable ({s['is_note']})"
            if s.get("n_not_applicable")
            else ""
        )
        + "".join(
            f"; check {c['id']} {c['value']}" for c in report["checks"] if c["status"] == NOT_RUN
        )
        + ".",
        "",
        "## Reporting line",
        "",
        f"> {report['reporting_line']}",
        "",
        "```latex",
        report["reporting_line_latex"],
        "```",
        "",
        "## Checks",
        "",
    ]
    for c in report["checks"]:
        lines += [
            f"### {c['id']}. {c['name']}: **{c['status']}**",
            "",
            f"- measured: {sanity.format_value(c['name'], c['value'])}",
            f"- threshold: {c['threshold']}",
            f"- why it matters: {c['why']}",
            f"- how to fix: {c['fix']}",
        ]
        details = dict(c.get("details") or {})
        for p in details.pop("problems", None) or []:
            lines.append(f"- found: {p}")
        if details:
            lines.append("- all values:")
            lines += [f"  - {k}: {sanity.format_value(k, v)}" for k, v in details.items()]
        if c["id"] == 5 and len([v for v in (c["value"] or {}).values() if v is not None]) < 3:
            lines.append("- (one backbone measured: no chart; the sentence above is the result)")
        lines.append("")
    lines += passes_markdown(report.get("passes") or [])
    b = report["backbone"]
    lines += [
        "## Provenance",
        "",
        f"- backbone: {b['backbone']} ({b['weights']}, sha256 {b.get('weights_sha256')})",
        f"- resize: {b['resize']}, input {b['input_size']}, value range {b['value_range']}, "
        f"classes {b.get('classes') or b.get('num_classes')}",
        f"- samples: {report['samples']['dataset']}, fingerprint "
        f"{report['samples']['fingerprint']}",
        f"- figures: {', '.join(report.get('figures', [])) or 'none'}",
        "",
    ]
    return "\n".join(lines)


def figure_inputs(report) -> str:
    """``<network> on <images>`` for a figure title: the chosen backbone and the samples as
    :func:`harness.rows.dataset_label` names them (never a config key)."""
    b, s = report.get("backbone") or {}, report.get("samples") or {}
    images = s.get("dataset_label")
    if not images and s.get("dataset"):
        images = f"{s['dataset']} ({int(s['n_samples']):,} images)"
    return " on ".join(p for p in (b.get("backbone"), images) if p)


def _title(what: str, on: str) -> str:
    return f"{what}\n{on}" if on else what


def passes_table(rows: list[dict]) -> pd.DataFrame:
    """The passes table as a DataFrame (``passes.csv``): checks as text."""
    return pd.DataFrame(
        [{**r, "checks": ", ".join(map(str, r["checks"]))} for r in rows],
        columns=list(rows[0]),
    )


def passes_summary_line(s: dict) -> str:
    """One sentence: how many passes were asked for, run, shared and skipped, and the time."""
    line = (
        f"{s['requested']} network passes requested, {s['run']} run "
        f"({s['computed']} computed, {s['from_cache']} read from the logits cache) in "
        f"{s['seconds']:.1f} s"
        + (
            f" (+ {s['load_seconds']:.1f} s building the comparison networks)"
            if s.get("load_seconds")
            else ""
        )
    )
    if s["shared"]:
        line += f"; {s['shared']} identical to an earlier pass (run once, shared)"
    if s["skipped"]:
        line += f"; {s['skipped']} skipped (network not available)"
    return line + "."


def passes_markdown(rows: list[dict]) -> list[str]:
    """report.md's section on the network passes (none: no section)."""
    if not rows:
        return []

    def cell(v) -> str:
        return str(v).replace("|", "\\|")

    lines = [
        "## Network passes: what each one buys, and how long it took",
        "",
        passes_summary_line(passes_summary(rows)),
        "",
        "| pass | network (weights; resize, input) | images | buys | checks | how | pass s | "
        "build s |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        if r["how"] == SKIPPED:
            net, images, how = r["network"], "—", f"skipped: {r['reason']}"
        else:
            net = f"{r['network']} ({r['weights']}; {r['resize']}, {r['input_size']})"
            images = f"{r['images']} ({r['n_images']:,}, {r['images_fingerprint']})"
            how = r["how"] + (" (+ pool features)" if r["features"] else "")
        lines.append(
            "| "
            + " | ".join(
                cell(v)
                for v in (
                    r["pass"] if r["pass"] is not None else "—",
                    net,
                    images,
                    r["purpose"],
                    ", ".join(map(str, r["checks"])) or "—",
                    how,
                    f"{r['seconds']:.2f}",
                    "—" if r.get("load_seconds") is None else f"{r['load_seconds']:.2f}",
                )
            )
            + " |"
        )
    return [*lines, ""]


def order_figure(report):
    d = next(c for c in report["checks"] if c.get("id") == 3)["details"]
    fig, ax = subplots(figsize=(6, 3.2))
    ax.plot(d["split_scores_as_loaded"], "o-", label="as loaded")
    ax.plot(d["split_scores_shuffled"], "s-", label="shuffled")
    ax.set_xlabel("split")
    integer_ticks(ax.xaxis)
    ax.set_ylabel("IS of the split")
    ax.set_title(_title("check 3: order", figure_inputs(report)), fontsize=9)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def splits_figure(t: pd.DataFrame, on: str = ""):
    fig, ax = subplots(figsize=(6, 3.2))
    ax.errorbar(t.n_splits, t.is_mean, yerr=t.is_std, fmt="o-", capsize=3, label="classic IS")
    ax.axhline(t.exp_sg.iloc[0], color="tab:green", ls="--", label="exp S(G)")
    ax.set_xscale("log")
    ax.set_xticks(list(t.n_splits), [str(k) for k in t.n_splits])
    ax.set_xlabel("number of splits")
    ax.set_ylabel("Inception Score")
    ax.set_title(_title("check 4: splits", on), fontsize=9)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def bars_figure(vals: dict, chosen: str, what: str, title: str, on: str = ""):
    """IS per option, the chosen one highlighted; the axis does not start at 0, so each bar is
    annotated with its value and the spread is in the title.  None with fewer than 2 values."""
    items = [(k, v) for k, v in vals.items() if v is not None]
    if len(items) < 2:
        return None
    fig, ax = subplots(figsize=(6.5, 3.4))
    ys = [v for _, v in items]
    colors = ["tab:orange" if k == chosen else "tab:blue" for k, _ in items]
    ax.bar(range(len(items)), ys, color=colors)
    lo, hi = min(ys), max(ys)
    pad = max((hi - lo) * 0.6, abs(hi) * 0.005, 1e-6)
    ax.set_ylim(lo - pad, hi + pad)
    for i, v in enumerate(ys):
        ax.annotate(
            f"{v:.4g}", (i, v), textcoords="offset points", xytext=(0, 3), ha="center", fontsize=7
        )
    ax.set_xticks(range(len(items)), [k for k, _ in items], rotation=25, ha="right", fontsize=7)
    ax.set_xlabel(f"{what} (orange: the one used for the reported number)")
    ax.set_ylabel("Inception Score (axis not from 0)")
    ax.set_title(_title(f"{title}: spread {100 * (hi / lo - 1):.2f}%", on), fontsize=9)
    fig.tight_layout()
    return fig
