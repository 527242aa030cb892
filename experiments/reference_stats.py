"""Experiment ``reference_stats``: FID reference statistics of an image source.

Writes ``stats.npz`` (``mu``, ``sigma``: the layout of TTUR, pytorch-fid and clean-fid files) and
``stats.json`` into the run dir, and to ``out=<path>.npz`` when given.  The sidecar binds the file
to what made it: every backbone knob (backbone, weights sha256, resize, input size, input_norm,
classes, dtype, ...; ``compared_knobs`` lists those that move pool features), the sha256 of
``mu``/``sigma`` (``stats_sha256``), N and the dataset fingerprint.  The pool features come from
the logits cache, so statistics of a set already scored cost no network pass.
``sanity reference_stats=<file>`` checks the hash and each compared knob against its own run
before using the file (:func:`harness.stats_files.load_stats`).
"""

from __future__ import annotations

import pandas as pd

from harness import config, inputs, stats_files
from harness import feature_metrics as fm
from harness import settings as S
from harness.errors import ConfigError
from harness.pipeline import outputs
from harness.rows import provenance_columns
from harness.runner import Result

SETTINGS = S.ExperimentSettings(
    "FID reference statistics (mu, sigma of pool features) of any image source, as .npz + a "
    "JSON sidecar.",
    S.Schema(
        [
            S.Node("backbone", "backbone", "tf2015_torch"),
            S.Node("dataset", "dataset", "cifar10"),
            config.weights_override(
                "overrides backbone.weights (random:<seed>: labelled in the sidecar)"
            ),
            S.Setting(
                "out",
                S.Path(),
                None,
                "also write the statistics here (a .npz path; its .json sidecar beside it)",
                nullable=True,
            ),
        ]
    ),
)


def compute(cfg) -> Result:
    if cfg.out is not None and not str(cfg.out).endswith(".npz"):
        raise ConfigError(f"out={cfg.out!r}: statistics are written as .npz; give a .npz path")
    got = inputs.load_inputs(cfg, nets=("backbone",), sources=("dataset",))
    net, src = got.net(), got.source()
    if not net.has_features:
        raise ConfigError(f"backbone {net.name} exposes no pool features; choose another backbone")
    pool = outputs(cfg, net, src, features=True, label="reference features").pool
    stats = fm.feature_stats(
        pool, {**stats_files.stats_meta(net, src), "random_weights": bool(net.random_weights)}
    )
    row = {
        "n_samples": stats.n,
        "dim": stats.dim,
        "trace_sigma": float(stats.sigma.trace()),
        "mean_norm": float((stats.mu @ stats.mu) ** 0.5),
        "stats_sha256": stats_files.stats_digest(stats.mu, stats.sigma),
        **provenance_columns(net, src, None, cfg.seed),
    }
    return Result({"table": pd.DataFrame([row])}, got.random_weights, objects={"stats": stats})


def present(result: Result, run) -> None:
    stats = result.objects["stats"]
    paths = [stats_files.save_stats(run.run_dir / "stats.npz", stats)]
    if run.cfg.get("out"):
        paths.append(stats_files.save_stats(run.cfg["out"], stats))
    run.outputs["stats"] = {
        "npz": [str(p) for p in paths],
        "json": [str(stats_files.sidecar_path(p)) for p in paths],
    }
    run.table(
        result.table,
        title="Reference statistics (pool features)",
        notes=[f"written: {', '.join(str(p) for p in paths)} (+ .json sidecars)"],
        print_columns=["backbone", "dataset", "n_samples", "dim", "trace_sigma"],
    )


def headline(result: Result) -> str:
    r = result.table.iloc[0]
    return f"mu/sigma of {r.n_samples:,} samples ({r.backbone}, {r.dim}-d)"
