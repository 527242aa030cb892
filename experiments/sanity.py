"""Experiment ``sanity``: check a researcher's own samples before they publish an Inception Score.

    python -m harness +experiment=sanity dataset=folder dataset.root=/path/to/samples
    python -m harness +experiment=sanity dataset=arrays dataset.path=samples.npz \
        +dataset@reference=cifar10 strict=true

Runs nine checks (harness/sanity.py), writes ``report.md`` and ``report.json`` (one entry per
check), figures for the order, splits, backbone and resize checks, prints a summary and a
ready-to-paste reporting line (text and LaTeX).  ``strict=true`` exits with code 3 when any
check FAILs, so the command can guard a researcher's own CI.
"""

from __future__ import annotations

import dataclasses

import pandas as pd

from harness import config, inputs, results, sanity, scores
from harness import resize as rs
from harness.config import as_bool
from harness.errors import HarnessError
from harness.pipeline import outputs
from harness.plotting import integer_ticks, subplots
from harness.runner import Result
from harness.sweeps import split_sweep


class StrictFailure(HarnessError):
    """strict=true and at least one check failed (the report is written first)."""

    exit_code = 3


def compute(cfg) -> Result:
    got = inputs.load(cfg, nets=("backbone",), sources=("dataset", "reference"))
    net, src = got.net(), got.source()
    ref = got.sources.get("reference")
    spec = config.split_spec(cfg)
    got.require_splits(spec.n_splits, ("dataset",))
    seed = int(cfg.shuffle_seed)
    want_f = net.has_features
    out = outputs(cfg, net, src, features=want_f, label="checks 1-4, 7-9")
    prep = scores.prepare(out.probs)
    rk = scores.inception_score(prep, splits=spec)
    sg = scores.improved_score(prep)

    # pixels: a bounded sample of the images themselves
    m = min(int(cfg.pixel_sample), len(src))
    pix = next(src.batches_range(0, m, m)) if m else None
    checks = [
        sanity.check_sample_count(prep, spec, int(cfg.bias_resamples), seed),
        sanity.check_input_format(
            pix, f"{net.provenance()['resize']} to {net.input_size}x{net.input_size}"
        ),
        sanity.check_order(prep, spec, seed),
        sanity.check_splits(prep, spec),
    ]
    # 5: every other backbone whose weights are present
    others, missing = inputs.load_available(cfg, "other_backbones")
    spread = {net.name: rk.mean}
    for key, other in others.items():
        if other.cache_identity() != net.cache_identity():  # the chosen network is there already
            spread[key] = scores.inception_score(
                outputs(cfg, other, src, label=f"check 5: {key}").probs, splits=spec
            ).mean
    for key in missing:
        spread[key] = None
    checks.append(sanity.check_backbone_spread(spread, net.name, cfg.compare_backbone))
    # 6: resize methods on the chosen backbone (a method identical to another shares its logits)
    by_resize = {}
    for label, over in rs.COMPARED.items():
        variant = inputs.build_backbone(got.specs["backbone"], **{"align_corners": None, **over})
        by_resize[label] = scores.inception_score(
            outputs(cfg, variant, src, label=f"check 6: {label}").probs, splits=spec
        ).mean
    checks.append(sanity.check_preprocessing(by_resize, net.provenance()["resize"]))
    # 7: copies and duplicates (pool features)
    if want_f:
        ref_f = (
            outputs(cfg, net, ref, features=True, label="check 7: reference").pool
            if ref is not None
            else None
        )
        checks.append(sanity.check_memorization(out.pool, ref_f, float(cfg.dup_threshold)))
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
    checks.append(sanity.check_domain_fit(prep))
    checks.append(sanity.check_numerics(out.logits, prep))

    prov = net.provenance()
    line, latex = sanity.reporting_line(
        prov, rk.mean, rk.std, prep.n, spec.n_splits, spec.label(), spec.ddof, sg.nats
    )
    if net.random_weights:
        line = f"[{results.RANDOM_WEIGHTS_BANNER}] {line}"
        latex = f"% {results.RANDOM_WEIGHTS_BANNER}\n{latex}"
    report = {
        "report_version": sanity.REPORT_VERSION,
        "random_weights": net.random_weights,
        "reporting_line": line,
        "reporting_line_latex": latex,
        "summary": {
            "is_mean": rk.mean,
            "is_std": rk.std,
            "n_splits": spec.n_splits,
            "sg_nats": sg.nats,
            "sg_bits": sg.bits,
            "n_samples": prep.n,
            **spec.provenance(),
            "n_pass": sum(c.status == sanity.PASS for c in checks),
            "n_warn": sum(c.status == sanity.WARN for c in checks),
            "n_fail": sum(c.status == sanity.FAIL for c in checks),
        },
        "checks": [c.to_dict() for c in checks],
        "missing_backbones": missing,
        "backbone": prov,
        "samples": src.provenance(),
        "reference": ref.provenance() if ref is not None else None,
    }
    table = pd.DataFrame(
        [
            {
                "check": f"{c.id}. {c.name}",
                "status": c.status,
                "value": _short(c.value),
                "threshold": c.threshold,
            }
            for c in checks
        ]
    )
    sweep_ks = [k for k in (1, 2, 5, 10, 20, 50) if k <= prep.n]
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
    run.json(report, "report")
    run.text(render_markdown(report), "report.md", key="report_md")
    run.table(result.table, title="Sanity checks", print_columns=["check", "status", "value"])
    print(
        f"\nReporting line:\n  {report['reporting_line']}\n\nLaTeX:\n  "
        f"{report['reporting_line_latex']}\n"
    )
    run.figure(order_figure(report), "check3_order")
    run.figure(splits_figure(o["splits"]), "check4_splits")
    run.figure(bars_figure(o["spread"], "IS by backbone (check 5)"), "check5_backbones")
    run.figure(bars_figure(o["by_resize"], "IS by resize method (check 6)"), "check6_resize")
    if o["strict"] and report["summary"]["n_fail"]:
        failed = ", ".join(c.name for c in o["checks"] if c.status == sanity.FAIL)
        # raised after the run's files and provenance are written (see finish_strict)
        run.pending_error = StrictFailure(
            f"sanity: {report['summary']['n_fail']} check(s) FAILED ({failed}); "
            f"see {run.run_dir / 'report.md'}"
        )


def _short(v) -> str:
    if isinstance(v, dict):
        return ", ".join(f"{k}={results._fmt(x, 4)}" for k, x in list(v.items())[:4])
    return results._fmt(v, 5)


def render_markdown(report: dict) -> str:
    lines = ["# Inception Score sanity report", ""]
    if report["random_weights"]:
        lines += [f"**{results.RANDOM_WEIGHTS_BANNER}**", ""]
    s = report["summary"]
    lines += [
        f"{s['n_pass']} PASS, {s['n_warn']} WARN, {s['n_fail']} FAIL on {s['n_samples']:,} "
        "samples.",
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
            f"- measured: `{_short(c['value'])}`",
            f"- threshold: {c['threshold']}",
            f"- why it matters: {c['why']}",
            f"- how to fix: {c['fix']}",
        ]
        probs = c.get("details", {}).get("problems")
        if probs:
            lines += [f"- found: {p}" for p in probs]
        lines.append("")
    b = report["backbone"]
    lines += [
        "## Provenance",
        "",
        f"- backbone: {b['backbone']} ({b['weights']}, sha256 {b.get('weights_sha256')})",
        f"- resize: {b['resize']}, input {b['input_size']}, value range {b['value_range']}, "
        f"classes {b['classes']}",
        f"- samples: {report['samples']['dataset']}, fingerprint "
        f"{report['samples']['fingerprint']}",
        "",
    ]
    return "\n".join(lines)


def order_figure(report):
    d = report["checks"][2]["details"]
    fig, ax = subplots(figsize=(6, 3.2))
    ax.plot(d["split_scores_as_loaded"], "o-", label="as loaded")
    ax.plot(d["split_scores_shuffled"], "s-", label="shuffled")
    ax.set_xlabel("split")
    integer_ticks(ax.xaxis)
    ax.set_ylabel("IS of the split")
    ax.set_title("check 3: order", fontsize=9)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def splits_figure(t: pd.DataFrame):
    fig, ax = subplots(figsize=(6, 3.2))
    ax.errorbar(t.n_splits, t.is_mean, yerr=t.is_std, fmt="o-", capsize=3, label="classic IS")
    ax.axhline(t.exp_sg.iloc[0], color="tab:green", ls="--", label="exp S(G)")
    ax.set_xscale("log")
    ax.set_xlabel("number of splits")
    ax.set_ylabel("Inception Score")
    ax.set_title("check 4: splits", fontsize=9)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def bars_figure(vals: dict, title: str):
    items = [(k, v) for k, v in vals.items() if v is not None]
    fig, ax = subplots(figsize=(6, 3.2))
    ax.bar(range(len(items)), [v for _, v in items])
    ax.set_xticks(range(len(items)), [k for k, _ in items], rotation=25, ha="right", fontsize=7)
    ax.set_ylabel("IS")
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    return fig
