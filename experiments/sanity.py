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

from harness import config
from harness import settings as S
from harness.backbones import REGISTRY
from harness.errors import HarnessError
from harness.runner import Result
from harness.sanity import checks as C
from harness.sanity import registry as R
from harness.sanity import report as report_text
from harness.sanity.passes import PassPlan

#: every check of the report, by id (harness/sanity/registry.py)
CHECKS = R.CHECKS

BACKBONES4 = {"tf2015": "tf2015", "torchvision": "torchvision", "keras": "keras", "tfhub": "tfhub"}

SETTINGS = S.ExperimentSettings(
    "Pre-publication sanity report on your own samples (dataset=folder|arrays|generator): "
    f"{len(R.CHECKS)} checks + a reporting line.",
    S.Schema(
        [
            S.Node("backbone", "backbone", "tf2015_torch"),
            S.Node("dataset", "dataset", "folder"),
            S.NodeMap("other_backbones", "backbone", BACKBONES4),
            S.NodeMap(
                "encoders",
                "backbone",
                {},
                "check 12's networks, each used when its weights are present: "
                f"{R.ENCODERS_SYNTAX} (FD_DINOv2, CMMD)",
            ),
            config.weights_override(
                "overrides every backbone's weights (random:<seed> to try it out; labelled)"
            ),
            S.Setting(
                "checks",
                S.ListOf(S.Int(lo=min(R.CHECKS), hi=max(R.CHECKS)), unique=True),
                None,
                f"null = all ({R.ID_RANGE}); or a list, e.g. checks=[1,4,7]",
                nullable=True,
            ),
            S.Setting(
                "quick",
                S.Bool(),
                False,
                "true: only the chosen backbone's one pass (drops checks "
                f"{', '.join(map(str, R.EXTRA_PASS_CHECKS[:-1]))} and {R.EXTRA_PASS_CHECKS[-1]})",
            ),
            S.Setting(
                "strict", S.Bool(), False, "true: exit code 3 when any check FAILs (for your CI)"
            ),
            S.Node(
                "reference",
                "dataset",
                None,
                doc="optional reference set for FID/KID (check 10), copies (check 7) and the "
                "encoder spread (check 12): "
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
            S.Section(
                "encoder_spread",
                S.Schema(
                    [
                        S.Setting(
                            "permutations",
                            S.Int(lo=1),
                            39,
                            "relabellings of the pooled images per network (39: the smallest p "
                            "is 1/40 = 0.025)",
                        ),
                        S.Setting(
                            "alpha",
                            S.Float(lo=0, hi=1),
                            0.05,
                            "a network tells the samples apart when its p <= alpha",
                        ),
                        S.Setting(
                            "max_images",
                            S.Int(lo=2),
                            1000,
                            "at most this many samples and reference images, seeded (each "
                            "permutation computes the distance again)",
                        ),
                        S.Setting(
                            "seed", S.Seed(), 0, "seed of the draws (the same for every network)"
                        ),
                        config.cmmd_estimator_setting(),
                    ]
                ),
                "check 12: can FID's network, DINOv2 and CLIP each tell your samples from the "
                "reference (a permutation test per network), and do they agree?",
            ),
            S.Setting(
                "dup_threshold",
                S.Float(lo=-1, hi=1),
                0.995,
                "cosine similarity of centred pool features counted as a copy",
            ),
        ],
        checks=[R.one_reference, R.reference_given, R.encoders_given],
    ),
    uses_splits=True,
)


class StrictFailure(HarnessError):
    """strict=true and at least one check failed (the report is written first)."""

    exit_code = 3


def compute(cfg) -> Result:
    """Plan the passes the selected checks declare, run each unique one once, run the checks."""
    ctx = R.prepare(cfg)
    passes = R.plan_passes(ctx, PassPlan(cfg)).run()
    checks = R.run_checks(ctx)
    quick = config.as_bool(cfg.quick, "quick")
    report = report_text.build(ctx, checks, passes, quick)
    return Result(
        {"table": report_text.checks_table(checks)},
        ctx.net.random_weights,
        extra={"report": report},
        objects={
            "report": report,
            "spread": ctx.values.get(5, {}),
            "by_resize": ctx.values.get(6, {}),
            "splits": report_text.splits_table(ctx),
            "checks": checks,
            "strict": config.as_bool(cfg.strict, "strict"),
        },
    )


def present(result: Result, run) -> None:
    o = result.objects
    report = o["report"]
    figures = report_text.figures(report, o["spread"], o["by_resize"], o["splits"])
    run.json(report, "report")
    run.text(report_text.render_markdown(report), "report.md", key="report_md")
    run.table(result.table, title="Sanity checks", print_columns=["check", "status", "value"])
    if report["passes"]:
        run.table(
            report_text.passes_table(report["passes"]),
            name="passes",
            title="Network passes: what each one buys, and how long it took",
            quiet=True,
        )
    print(
        f"\nReporting line:\n  {report['reporting_line']}\n\nLaTeX:\n  "
        f"{report['reporting_line_latex']}\n"
    )
    if report["passes"]:
        print(f"Network passes: {report_text.passes_summary_line(report['passes_summary'])}\n")
    for name, fig in figures.items():
        run.figure(fig, name)
    if o["strict"] and report["summary"]["n_fail"]:
        failed = ", ".join(c.name for c in o["checks"] if c.status == C.FAIL)
        # raised after the run's files and provenance are written (see finish_strict)
        run.pending_error = StrictFailure(
            f"sanity: {report['summary']['n_fail']} check(s) FAILED ({failed}); "
            f"see {run.run_dir / 'report.md'}"
        )


def headline(result: Result) -> str:
    """The number, and how many checks passed, warned and failed."""
    return report_text.headline(result.objects["report"])
