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

import pandas as pd
from omegaconf import OmegaConf

from harness import backbones, data, results, sanity, scores
from harness.errors import HarnessError, MissingInputError
from harness.pipeline import outputs
from harness.rows import load_backbones
from harness.runner import Run
from harness.sweeps import split_sweep

RESIZES = {
    "tf1_bilinear": {"resize": "tf1_bilinear"},
    "torch_bilinear(align_corners=True)": {"resize": "torch_bilinear", "align_corners": True},
    "torch_bilinear(align_corners=False)": {"resize": "torch_bilinear", "align_corners": False},
    "antialias": {"resize": "antialias"},
    "pil_bicubic": {"resize": "pil_bicubic"},
}


class StrictFailure(HarnessError):
    """strict=true and at least one check failed (the report is written first)."""

    exit_code = 3


def _other_backbone(cfg, name: str):
    """Another backbone with its default config (and the run's weights override); None if missing."""
    from harness.experiment_registry import CONF_DIR

    d = OmegaConf.to_container(OmegaConf.load(CONF_DIR / "backbone" / f"{name}.yaml"), resolve=False)
    d = {k: v for k, v in d.items() if not (isinstance(v, str) and "${" in v)}
    d.update(OmegaConf.to_container(cfg.other_backbone_overrides.get(name, {}) or {}, resolve=True))
    if cfg.get("weights"):
        d["weights"] = cfg.weights
    try:
        return backbones.from_config(d)
    except MissingInputError:
        return None


def run(cfg, run_dir):
    spec = {**OmegaConf.to_container(cfg.backbone, resolve=True), **({"weights": cfg.weights} if cfg.get("weights") else {})}
    net = load_backbones({"backbone": spec}, device=cfg.device)["backbone"]
    src = data.from_config(OmegaConf.to_container(cfg.dataset, resolve=True))
    ref = data.from_config(OmegaConf.to_container(cfg.reference, resolve=True)) if cfg.get("reference") else None
    k, ddof, seed = int(cfg.n_splits), int(cfg.ddof), int(cfg.shuffle_seed)
    want_f = net.has_features
    out = outputs(cfg, net, src, features=want_f)
    prep = scores.prepare(out.probs)
    r10 = scores.inception_score(prep, min(k, prep.n), ddof=ddof)
    sg = scores.improved_score(prep)

    # pixels: a bounded sample of the images themselves
    m = min(int(cfg.pixel_sample), len(src))
    pix = next(src.batches_range(0, m, m)) if m else None
    checks = [
        sanity.check_sample_count(prep, min(k, prep.n), int(cfg.bias_resamples), seed),
        sanity.check_input_format(pix, f"{net.provenance()['resize']} to {net.input_size}x{net.input_size}"),
        sanity.check_order(prep, k, seed, ddof),
        sanity.check_splits(prep, k, ddof),
    ]
    # 5: every backbone with weights available
    spread = {net.name: r10.mean}
    for other in cfg.other_backbones:
        if other == net.name:
            continue
        ob = _other_backbone(cfg, other)
        spread[other] = None if ob is None else scores.inception_score(
            outputs(cfg, ob, src).probs, min(k, prep.n), ddof=ddof).mean
    checks.append(sanity.check_backbone_spread(spread, net.name, cfg.compare_backbone))
    # 6: resize methods on the chosen backbone
    by_resize = {}
    for label, over in RESIZES.items():
        d = {**spec, **over}
        d.pop("align_corners", None) if "align_corners" not in over else None
        by_resize[label] = scores.inception_score(outputs(cfg, backbones.from_config(d), src).probs,
                                                  min(k, prep.n), ddof=ddof).mean
    checks.append(sanity.check_preprocessing(by_resize, net.provenance()["resize"]))
    # 7: copies and duplicates (pool features)
    if want_f:
        ref_f = outputs(cfg, net, ref, features=True).pool if ref is not None else None
        checks.append(sanity.check_memorization(out.pool, ref_f, float(cfg.dup_threshold)))
    else:
        checks.append(sanity.Check(7, "memorization_collapse", sanity.WARN, None, "needs pool features",
                                   "IS cannot detect copies", f"use a backbone with pool features ({net.name} has none)"))
    checks.append(sanity.check_domain_fit(prep))
    checks.append(sanity.check_numerics(out.logits, prep))

    prov = net.provenance()
    split_label = "contiguous"
    line, latex = sanity.reporting_line(prov, r10.mean, r10.std, prep.n, min(k, prep.n), split_label, ddof, sg.nats)
    if net.random_weights:
        line = f"[{results.RANDOM_WEIGHTS_BANNER}] {line}"
        latex = f"% {results.RANDOM_WEIGHTS_BANNER}\n{latex}"
    report = {
        "report_version": sanity.REPORT_VERSION,
        "random_weights": net.random_weights,
        "reporting_line": line,
        "reporting_line_latex": latex,
        "summary": {"is_mean": r10.mean, "is_std": r10.std, "n_splits": min(k, prep.n), "std_ddof": ddof,
                    "split_assignment": split_label, "sg_nats": sg.nats, "sg_bits": sg.bits, "n_samples": prep.n,
                    "n_pass": sum(c.status == sanity.PASS for c in checks),
                    "n_warn": sum(c.status == sanity.WARN for c in checks),
                    "n_fail": sum(c.status == sanity.FAIL for c in checks)},
        "checks": [c.to_dict() for c in checks],
        "backbone": prov,
        "samples": src.provenance(),
        "reference": ref.provenance() if ref is not None else None,
    }
    run = Run("sanity", cfg, run_dir, random_weights=net.random_weights)
    run.json(report, "report")
    results.atomic_write_text(run.run_dir / "report.md", render_markdown(report))
    run.outputs["report_md"] = {"md": str(run.run_dir / "report.md")}
    table = pd.DataFrame([{"check": f"{c.id}. {c.name}", "status": c.status, "value": _short(c.value),
                           "threshold": c.threshold} for c in checks])
    run.table(table, title="Sanity checks", print_columns=["check", "status", "value"])
    print(f"\nReporting line:\n  {line}\n\nLaTeX:\n  {latex}\n")
    run.figure(order_figure(report), "check3_order")
    run.figure(splits_figure(split_sweep(prep, [1, 2, 5, 10, 20, 50], None, ddof)), "check4_splits")
    run.figure(bars_figure(spread, "IS by backbone (check 5)"), "check5_backbones")
    run.figure(bars_figure(by_resize, "IS by resize method (check 6)"), "check6_resize")
    res = run.finish(report=report)
    if cfg.strict and report["summary"]["n_fail"]:
        failed = ", ".join(c.name for c in checks if c.status == sanity.FAIL)
        raise StrictFailure(f"sanity: {report['summary']['n_fail']} check(s) FAILED ({failed}); "
                            f"see {run.run_dir / 'report.md'}")
    return res


def _short(v) -> str:
    if isinstance(v, dict):
        return ", ".join(f"{k}={results._fmt(x, 4)}" for k, x in list(v.items())[:4])
    return results._fmt(v, 5)


def render_markdown(report: dict) -> str:
    lines = ["# Inception Score sanity report", ""]
    if report["random_weights"]:
        lines += [f"**{results.RANDOM_WEIGHTS_BANNER}**", ""]
    s = report["summary"]
    lines += [f"{s['n_pass']} PASS, {s['n_warn']} WARN, {s['n_fail']} FAIL on {s['n_samples']:,} samples.", "",
              "## Reporting line", "", f"> {report['reporting_line']}", "", "```latex", report["reporting_line_latex"],
              "```", "", "## Checks", ""]
    for c in report["checks"]:
        lines += [f"### {c['id']}. {c['name']}: **{c['status']}**", "",
                  f"- measured: `{_short(c['value'])}`", f"- threshold: {c['threshold']}",
                  f"- why it matters: {c['why']}", f"- how to fix: {c['fix']}"]
        probs = c.get("details", {}).get("problems")
        if probs:
            lines += [f"- found: {p}" for p in probs]
        lines.append("")
    b = report["backbone"]
    lines += ["## Provenance", "", f"- backbone: {b['backbone']} ({b['weights']}, sha256 {b.get('weights_sha256')})",
              f"- resize: {b['resize']}, input {b['input_size']}, value range {b['value_range']}, classes {b['classes']}",
              f"- samples: {report['samples']['dataset']}, fingerprint {report['samples']['fingerprint']}", ""]
    return "\n".join(lines)


def order_figure(report):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    d = report["checks"][2]["details"]
    fig, ax = plt.subplots(figsize=(6, 3.2))
    ax.plot(d["split_scores_as_loaded"], "o-", label="as loaded")
    ax.plot(d["split_scores_shuffled"], "s-", label="shuffled")
    ax.set_xlabel("split")
    ax.set_ylabel("IS of the split")
    ax.set_title("check 3: order", fontsize=9)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def splits_figure(t: pd.DataFrame):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.2))
    ax.errorbar(t.n_splits, t.is_mean, yerr=t.is_std, fmt="o-", capsize=3, label="classic IS")
    ax.axhline(t.exp_sg.iloc[0], color="tab:green", ls="--", label="exp S(G)")
    ax.set_xscale("log")
    ax.set_xlabel("number of splits")
    ax.set_title("check 4: splits", fontsize=9)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def bars_figure(vals: dict, title: str):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    items = [(k, v) for k, v in vals.items() if v is not None]
    fig, ax = plt.subplots(figsize=(6, 3.2))
    ax.bar(range(len(items)), [v for _, v in items])
    ax.set_xticks(range(len(items)), [k for k, _ in items], rotation=25, ha="right", fontsize=7)
    ax.set_ylabel("IS")
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    return fig
