"""How a sanity report reads: the reporting line (text and LaTeX), measured values with their
units, report.md, the passes table and the figures.  The checks (:mod:`.checks`) compute; this
module words and draws what they found."""

from __future__ import annotations

import dataclasses
import math
import re

import numpy as np
import pandas as pd

from .. import resize as rs
from .. import results, scores
from ..plotting import integer_ticks, subplots
from ..rows import dataset_label
from ..sweeps import split_sweep
from .checks import FAIL, NO_HEAD, NOT_APPLICABLE, NOT_RUN, PASS, REPORT_VERSION, WARN, Check
from .passes import SKIPPED, passes_summary

# ------------------------------------------------------------------------------ reporting line
RESIZE_NAMES = {
    "tf1_bilinear": "TF1 bilinear",
    "tf2_bilinear": "TF2 bilinear (half-pixel)",
    "antialias": "antialiased bilinear",
    "pil_bicubic": "PIL bicubic",
    "bilinear_half_pixel": "bilinear (half-pixel)",
}


def weights_status(prov: dict) -> str:
    """random | unverified | verified | trained here | user network, from a backbone's
    provenance (records made before statuses existed: from ``weights_kind``)."""
    if prov.get("weights_status"):
        return prov["weights_status"]
    kind = prov.get("weights_kind")
    return {"random": "random", "trained": "trained here", "pretrained": "pretrained"}.get(
        kind, "unverified"
    )


def weights_warning(prov: dict) -> str | None:
    """RANDOM WEIGHTS / UNVERIFIED WEIGHTS (the reporting line's prefix), or None."""
    return {"random": "RANDOM WEIGHTS", "unverified": "UNVERIFIED WEIGHTS"}.get(
        weights_status(prov)
    )


def weights_label(prov: dict) -> str:
    """The network in the reporting line: a published file by its known name, a network of
    one's own or trained here by its title, anything else by its backbone and status (never a
    local path: the sha256 that follows identifies the file)."""
    status, b = weights_status(prov), prov.get("backbone")
    if status == "random":
        return f"{b} with RANDOM WEIGHTS ({prov['weights']})"
    if status == "unverified":
        what = (
            "the official file name, but no published hash to check it against"
            if prov.get("weights_kind") == "pretrained"
            else "no published file has this hash"
        )
        return f"{b} with UNVERIFIED WEIGHTS ({what})"
    if status == "verified":
        return prov.get("weights_name") or prov.get("weights_title") or b
    return prov.get("weights_title") or b  # trained here / a user's network: its own title


def resize_label(prov: dict) -> str:
    r = prov["resize"]
    if r.startswith("torch_bilinear"):
        ac = prov.get("align_corners") if "(" not in r else "True" in r
        return f"torch bilinear (align_corners={'True' if ac else 'False'})"
    return RESIZE_NAMES.get(r, r.replace("_", " "))


def _n(v: int) -> str:
    return f"{int(v):,}"


def split_phrase(r: scores.ISResult) -> str:
    """ "10 splits of 5,000" (or "of 4,999-5,000"), the shuffle said in words."""
    sizes = sorted(set(r.split_sizes))
    size = _n(sizes[0]) if len(sizes) == 1 else f"{_n(sizes[0])}-{_n(sizes[-1])}"
    spec = r.spec
    words = f"{r.n_splits} split{'s' if r.n_splits != 1 else ''} of {size}"
    if spec is not None and spec.shuffle != "none":
        words += f" after a seeded shuffle ({spec.shuffle}, seed {spec.seed})"
    if spec is not None and spec.assign == "drop_remainder" and sum(r.split_sizes) < r.n:
        words += f", {_n(r.n - sum(r.split_sizes))} samples unused"
    return words


def reporting_line(prov: dict, r: scores.ISResult, sg_nats: float) -> tuple[str, str]:
    """The line a reviewer reads: value, what the ± is, network and hash, resize, N, S(G)."""
    sha = str(prov.get("weights_sha256") or "unknown")
    sha_short = sha if sha.startswith(("random", "ported")) else sha[:12] + "…"
    std_word = "std" if (r.spec is None or r.spec.ddof == 0) else "sample std (n-1)"
    inner = (
        f"mean ± {std_word} over {split_phrase(r)}; {weights_label(prov)}, sha256 {sha_short}; "
        f"{resize_label(prov)} to {prov['input_size']}; {_n(r.n)} samples"
    )
    text = f"IS = {r.mean:.2f} ± {r.std:.2f} ({inner}) · S(G) = {sg_nats:.2f} nats"
    warning = weights_warning(prov)
    why = {
        "RANDOM WEIGHTS": "not a real Inception Score",
        "UNVERIFIED WEIGHTS": "not a citable Inception Score",
    }.get(warning)
    if warning:
        text = f"{warning}, {why}: " + text

    inner_tex = re.sub(r"(\d),(\d{3})", r"\1{,}\2", results.tex_escape(inner.replace("…", "...")))
    latex = (
        rf"$\mathrm{{IS}} = {r.mean:.2f} \pm {r.std:.2f}$ "
        f"({inner_tex}) "
        rf"$\cdot$ $S(G) = {sg_nats:.2f}$ nats"
    )
    if warning:
        latex = rf"\textbf{{{warning}, {why}:}} " + latex
    return text, latex


# ------------------------------------------------------------------------------ report values
UNITS = (("_pct", "%"), ("_bits", "bits"), ("_nats", "nats"))


def format_value(key: str, v) -> str:
    """One measured value with its unit and meaningful digits (every element of a list)."""
    if isinstance(v, dict):
        return "; ".join(f"{k} = {format_value(k, x)}" for k, x in v.items())
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(format_value(key, x) for x in v) + "]"
    if v is None:
        return "n/a"
    if isinstance(v, (bool, np.bool_)):
        return "yes" if v else "no"
    if isinstance(v, (int, np.integer)):
        return f"{int(v):,}"
    if isinstance(v, (float, np.floating)):
        v = float(v)
        if not math.isfinite(v):
            return str(v)
        unit = next((u for suffix, u in UNITS if str(key).endswith(suffix)), "")
        if unit == "%":
            txt = f"{v:.2f}"
        elif v != 0 and (abs(v) >= 1e5 or abs(v) < 1e-3):
            txt = f"{v:.3e}"
        else:
            txt = f"{v:.4g}" if abs(v) < 1e4 else f"{v:,.0f}"
        return f"{txt} {unit}".rstrip() if unit != "%" else f"{txt}%"
    return str(v)


def fid_phrase(check: Check) -> str:
    """The FID/KID part of the reporting line from check 10: never a negative FID (rounding of
    an exact 0 is shown as 0.00); unverified or mismatched reference statistics said in words."""
    d = check.details
    kid_txt = (
        f", KID = {d['kid_mean']:.4g} ± {d['kid_std']:.2g}" if d.get("kid_mean") is not None else ""
    )
    text = f"FID = {max(float(d['fid']), 0.0):.2f}{kid_txt} vs {d['reference']}"
    if d.get("stats_verified") is False:
        text += " (reference statistics UNVERIFIED: no or incomplete provenance sidecar)"
    if d.get("stats_mismatch_allowed"):
        text += " (reference statistics made with other settings: allow_mismatched_stats=true)"
    return text


def features_line(prov: dict, n: int, fid_line: str | None) -> tuple[str, str]:
    """The reporting line of a features-only backbone: its FID/KID (no IS), network, N."""
    sha = str(prov.get("weights_sha256") or "unknown")
    sha_short = sha if sha.startswith(("random", "ported")) else sha[:12] + "…"
    what = fid_line or "no FID (no reference: +dataset@reference=... or reference_stats=...)"
    size = prov["input_size"]
    resize = (
        ("native size, no resize" if size is None else f"{size}x{size} input, no resize")
        if prov["resize"] == "none"
        else f"{resize_label(prov)} to {size}"
    )
    network = (
        f"{weights_label(prov)} features, sha256 {sha_short}"
        if prov.get("weights_kind") != "none"
        else f"{prov.get('backbone', 'pixel')} features, no weights"
    )
    text = f"{what} ({network}; {resize}; {n:,} samples) · IS: not applicable ({NO_HEAD})"
    latex = results.tex_escape(text.replace("…", "...").replace(" · ", "; "))
    warning = weights_warning(prov)
    if warning:
        text = f"{warning}: " + text
        latex = rf"\textbf{{{warning}:}} " + latex
    return text, latex


def ran_ids(report) -> set:
    """The checks that ran (not those reported not applicable)."""
    return {c["id"] for c in report["checks"] if c["status"] not in (NOT_APPLICABLE, NOT_RUN)}


def chosen_resize(prov: dict) -> str:
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
            f"- measured: {format_value(c['name'], c['value'])}",
            f"- threshold: {c['threshold']}",
            f"- why it matters: {c['why']}",
            f"- how to fix: {c['fix']}",
        ]
        details = dict(c.get("details") or {})
        for p in details.pop("problems", None) or []:
            lines.append(f"- found: {p}")
        if details:
            lines.append("- all values:")
            lines += [f"  - {k}: {format_value(k, v)}" for k, v in details.items()]
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


# ------------------------------------------------------------------------------ report.json
def fid_line_of(checks: list[Check]) -> str | None:
    """The FID/KID phrase of the reporting line, when check 10 computed a number."""
    c = next((c for c in checks if c.id == 10), None)
    return fid_phrase(c) if c is not None and c.status not in (NOT_RUN, NOT_APPLICABLE) else None


def lines_of(ctx, checks: list[Check]) -> tuple[str, str]:
    """The reporting line (text, LaTeX): IS with S(G), or an encoder's FID line; FID appended."""
    prov, fid_line = ctx.net.provenance(), fid_line_of(checks)
    if not ctx.head:
        return features_line(prov, len(ctx.src), fid_line)
    line, latex = reporting_line(prov, ctx.rk, ctx.sg.nats)
    if fid_line:
        line = f"{line} · {fid_line}"
        latex = f"{latex}; {results.tex_escape(fid_line)}"
    return line, latex


def summary(ctx, checks: list[Check], quick: bool) -> dict:
    head, rk, spec = ctx.head, ctx.rk, ctx.spec
    na = [c.id for c in checks if c.status == NOT_APPLICABLE]
    skipped = [c.id for c in checks if c.status == NOT_RUN]
    return {
        "is_mean": rk.mean if head else None,
        "is_std": rk.std if head else None,
        # used: torch.chunk may make fewer than asked
        "n_splits": rk.n_splits if head else None,
        "n_splits_requested": spec.n_splits,
        "split_sizes": sorted(set(rk.split_sizes)) if head else None,
        "sg_nats": ctx.sg.nats if head else None,
        "sg_bits": ctx.sg.bits if head else None,
        "is_note": None if head else NO_HEAD,
        "n_samples": ctx.prep.n if head else len(ctx.src),
        **spec.provenance(),
        "checks_run": [c for c in ctx.run_ids if c not in skipped],
        "checks_not_applicable": na,
        "checks_not_run": skipped,
        "quick": quick,
        "n_pass": sum(c.status == PASS for c in checks),
        "n_warn": sum(c.status == WARN for c in checks),
        "n_fail": sum(c.status == FAIL for c in checks),
        "n_not_applicable": len(na),
        "n_not_run": len(skipped),
    }


def build(ctx, checks: list[Check], passes: list[dict], quick: bool) -> dict:
    """report.json: the reporting line, the summary, every check, every pass, the provenance."""
    line, latex = lines_of(ctx, checks)
    net, src, ref = ctx.net, ctx.src, ctx.ref
    return {
        "report_version": REPORT_VERSION,
        "random_weights": net.random_weights,
        "weights_status": net.weights_status,
        "reporting_line": line,
        "reporting_line_latex": latex,
        "summary": summary(ctx, checks, quick),
        "checks": [c.to_dict() for c in checks],
        # every network pass the checks asked for: what for, how it was served, seconds
        "passes": passes,
        "passes_summary": passes_summary(passes),
        "missing_backbones": ctx.missing,
        "backbone": net.provenance(),
        # the images in words, as tables and figure titles name them (rows.dataset_label)
        "samples": {**src.provenance(), "dataset_label": dataset_label(src)},
        "reference": ref.provenance() if ref is not None else None,
    }


def checks_table(checks: list[Check]) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {
                "check": f"{c.id}. {c.name}",
                "status": c.status,
                "value": format_value(c.name, c.value),
                "threshold": c.threshold,
            }
            for c in checks
        ]
    )


def splits_table(ctx) -> pd.DataFrame | None:
    """IS over split counts for check 4's figure (the reported count among them)."""
    if not ctx.head:
        return None
    ks = sorted({k for k in (1, 2, 5, 10, 20, 50) if k <= ctx.prep.n} | {ctx.spec.n_splits})
    return split_sweep(ctx.prep, ks, dataclasses.replace(ctx.spec, ddof=0))


def figures(report: dict, spread: dict, by_resize: dict, splits: pd.DataFrame | None) -> dict:
    """The report's figures by name (order, splits, then the bar charts that have at least two
    bars); their names go into ``report["figures"]``."""
    on, ran = figure_inputs(report), ran_ids(report)
    bars = {}
    if spread:
        bars["check5_backbones"] = bars_figure(
            spread, report["backbone"]["backbone"], "backbone", "check 5: IS by backbone", on=on
        )
    if by_resize:
        bars["check6_resize"] = bars_figure(
            by_resize,
            chosen_resize(report["backbone"]),
            "resize method",
            "check 6: IS by resize method",
            on=on,
        )
    bars = {k: v for k, v in bars.items() if v is not None}
    out = {}
    if 3 in ran:
        out["check3_order"] = order_figure(report)
    if 4 in ran:
        out["check4_splits"] = splits_figure(splits, on=on)
    report["figures"] = sorted(bars) + list(out)
    return {**out, **bars}


def headline(r: dict) -> str:
    """The number, and how many checks passed, warned and failed."""
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
