"""Experiment ``adversarial``: FGSM drives the Inception Score towards its maximum (paper 4.2.2).

Paper: IS 986.10 from uniform noise and 900.15 from CIFAR-10 WGAN samples (maximum 1000),
with eps = 0.001 and 100 iterations.  Default: one image per class (the backbone's classes),
starting from uniform noise; the paper-scale setting is the same with ``attack.n_images=50000``.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from harness import attack, inputs, scores
from harness.config import as_bool
from harness.errors import ConfigError, ResourceUnavailable
from harness.plotting import integer_ticks, subplots
from harness.rows import provenance_columns
from harness.runner import Result

PAPER = {"noise": 986.10, "cifar10_wgan": 900.15}
CPU_SECONDS_PER_IMAGE_STEP = 0.3  # forward+backward at 299 on the 2-core machine (measured)


def compute(cfg) -> Result:
    a = cfg.attack
    got = inputs.load(cfg, nets=("backbone",), sources=("dataset",))
    net = got.net()
    n_images = int(a.n_images) if a.n_images else net.num_classes
    source = got.source()
    if getattr(source, "count", n_images) < n_images:  # generated start images: make enough
        source = inputs.load(
            cfg, nets=(), sources=("dataset",), source_overrides={"dataset": {"count": n_images}}
        ).source()
    source = source.first(n_images)
    r0, r1, shard = shard_rows(a.get("shard"), n_images, int(a.batch_size))
    if net.device == "cpu":
        est_min = (
            (r1 - r0)
            * (int(a.iterations) + 1)
            * CPU_SECONDS_PER_IMAGE_STEP
            * (net.input_size / 299) ** 2
            / 60
        )
        if est_min > float(a.max_cpu_minutes):
            raise ResourceUnavailable(
                f"adversarial: {n_images} images x {a.iterations} iterations at "
                f"{net.input_size}x{net.input_size} would take about {est_min:.0f} minutes on "
                f"this CPU (limit attack.max_cpu_minutes={a.max_cpu_minutes}); use device=cuda "
                "(1000 x 100 takes ~2.6 min on an H100), or fewer attack.n_images / "
                "attack.iterations, or a smaller backbone.input_size, or raise "
                "attack.max_cpu_minutes"
            )
    settings = attack.AttackSettings(
        eps=float(a.eps),
        eps_units=a.eps_units,
        iterations=int(a.iterations),
        n_splits=int(a.n_splits),
        batch_size=int(a.batch_size),
        attack_at=a.attack_at,
        precision=a.precision,
    )
    start = np.concatenate(list(source.batches_range(r0, r1, 256)))
    targets = attack.cycling_targets(n_images, net.num_classes)[r0:r1]  # the global cycle
    res = attack.run_attack(
        net,
        start,
        settings,
        targets=targets,
        progress=as_bool(cfg.progress, "progress"),
        row_offset=r0,
        n_total=n_images,
    )

    spec = scores.SplitSpec(min(settings.n_splits, n_images))
    prov = provenance_columns(net, source, spec, cfg.seed)
    prov.update(
        {
            "eps": settings.eps,
            "eps_units": settings.eps_units,
            "iterations": settings.iterations,
            "attack_at": settings.attack_at,
            "attack_precision": settings.precision,
            "targets": f"cycling i mod {net.num_classes}",
            "shard": shard or "none",
            "shard_rows": f"{r0}-{r1}",
        }
    )
    hist, final = build_tables(
        res.history, res.final, prov, settings, n_images, net.num_classes, res.seconds
    )
    return Result(
        {"table": final, "history": hist},
        net.random_weights,
        extra={
            "seconds": res.seconds,
            "final": res.final,
            "images_per_second_iteration": res.extra["images_per_second_iteration"],
            "shard": shard,
        },
        objects={
            "attack": res,
            "net_name": net.name,
            "class_names": net.class_names,
            "settings": settings,
            "grid_classes": int(a.grid_classes),
            "save_images": as_bool(a.save_images, "attack.save_images"),
            "shard": shard,
        },
    )


def shard_rows(shard, n: int, batch_size: int) -> tuple[int, int, str | None]:
    """``attack.shard=i/n`` -> (first row, end row, "i/n"): whole batches, so shards merge
    exactly; ``null`` -> all rows."""
    if shard in (None, "", "none"):
        return 0, n, None
    try:
        i, k = (int(v) for v in str(shard).split("/"))
    except ValueError:
        raise ConfigError(f"attack.shard={shard!r}: give i/n, e.g. attack.shard=0/4") from None
    if not (k >= 1 and 0 <= i < k):
        raise ConfigError(f"attack.shard={shard!r}: need 0 <= i < n")
    nb = -(-n // batch_size)
    if k > nb:
        raise ConfigError(
            f"attack.shard={shard!r}: {n} images make only {nb} batches of "
            f"{batch_size}; use at most {nb} shards or a smaller attack.batch_size"
        )
    b0, b1 = i * nb // k, (i + 1) * nb // k
    return b0 * batch_size, min(b1 * batch_size, n), f"{i}/{k}"


def build_tables(history, f, prov, settings, n_images, num_classes, seconds):
    """history and final-stage tables (one function for runs and merged shards)."""
    hist = pd.DataFrame(history)
    for k, v in prov.items():
        hist[k] = v
    rows = []
    for stage, d in (
        ("start (before the attack)", f["start"]),
        (
            f"after {settings.iterations} iterations, float, {settings.precision}",
            f["float_in_attack_precision"],
        ),
        (f"after {settings.iterations} iterations, float, exact fp32", f["float_exact_fp32"]),
        ("after, quantised to uint8 (what would be published)", f["quantized_uint8"]),
    ):
        rows.append(
            {
                "stage": stage,
                "is_mean": d["is_mean"],
                "is_std": d["is_std"],
                "is_1split": d["is_1split"],
                "sg_nats": d["sg_nats"],
                "mean_target_prob": d["mean_target_prob"],
            }
        )
    final = pd.DataFrame(rows)
    final["max_possible_is"] = f["max_possible_is"]
    # a split of m images can reach at most min(C, m): with 1000 images and 10 splits, 100
    final["max_possible_is_per_split"] = min(
        num_classes, n_images // max(1, min(settings.n_splits, n_images))
    )
    final["paper_is_from_noise"] = PAPER["noise"]
    final["seconds"] = seconds
    final["final_linf_pixels"] = hist["linf_pixels"].iloc[-1]
    final["final_linf_network"] = hist["linf_network"].iloc[-1]
    for k, v in prov.items():
        final[k] = v
    return hist, final


def present(result: Result, run) -> None:
    o = result.objects
    res, settings = o["attack"], o["settings"]
    n_classes = len(o["class_names"])
    shard = o["shard"]
    run.table(
        result.tables["history"],
        name="history",
        title="IS and attack statistics after every FGSM iteration",
        quiet=True,
    )
    notes = [
        "IS of the quantised images is recomputed through the backbone's normal path.",
        f"Paper: IS {PAPER['noise']} from uniform noise, {PAPER['cifar10_wgan']} from "
        "CIFAR-10 WGAN samples (max 1000).",
    ]
    if shard:
        notes.insert(
            0,
            f"SHARD {shard}: these numbers cover this shard's images only; "
            "+experiment=collect runs=[<the shards' dirs>] merges the shards into "
            "the unsharded result (exactly).",
        )
    run.table(
        result.table,
        name="table",
        title=f"Adversarial IS inflation ({o['net_name']}, {len(res.start_uint8)} images, "
        f"eps={settings.eps:g} {settings.eps_units}, {settings.iterations} iterations)",
        notes=notes,
        print_columns=["stage", "is_mean", "is_std", "is_1split", "sg_nats", "mean_target_prob"],
    )
    run.figure(curve_figure(result.tables["history"], n_classes), "attack_curve")
    run.figure(
        grid_figure(
            res.start_uint8, res.final_uint8, res.targets, o["class_names"], o["grid_classes"]
        ),
        "before_after",
    )
    from harness.results import atomic_path

    if o["save_images"]:
        with atomic_path(run.run_dir / "images.npz", suffix=".npz") as tmp, open(tmp, "wb") as fh:
            np.savez(
                fh, start_uint8=res.start_uint8, final_uint8=res.final_uint8, targets=res.targets
            )
        run.outputs["images"] = {"npz": str(run.run_dir / "images.npz")}
    if shard:  # what collect needs to merge the shards exactly
        e = res.extra
        meta = {
            "row_offset": e["row_offset"],
            "n_total": e["n_total"],
            "n_splits": e["n_splits"],
            "iterations": e["iterations"],
            "linf_bound_network": e["linf_bound_network"],
            "seconds": res.seconds,
        }
        with atomic_path(run.run_dir / SEGMENTS, suffix=".npz") as tmp, open(tmp, "wb") as fh:
            np.savez(
                fh,
                meta=np.array(json.dumps(meta)),
                class_names=np.array(o["class_names"]),
                start_uint8=res.start_uint8,
                final_uint8=res.final_uint8,
                targets=res.targets,
                **e["segments"],
            )
        run.outputs["segments"] = {"npz": str(run.run_dir / SEGMENTS)}


SEGMENTS = "attack_segments.npz"


def collect(table: pd.DataFrame, run_dirs=()) -> dict:
    """Shards of one attack (``attack.shard=i/n``) merged into the unsharded run's tables."""
    merged = merge_shards(run_dirs)
    if merged is None:
        return {}
    return {"attack_history": merged["history"], "attack_table": merged["table"]}


def merge_shards(run_dirs):
    parts = []
    for d in run_dirs:
        f = Path(d) / SEGMENTS
        if f.exists():
            with np.load(f) as z:
                parts.append({k: z[k] for k in z.files})
    if not parts:
        return None
    parts.sort(key=lambda z: json.loads(str(z["meta"]))["row_offset"])
    metas = [json.loads(str(z["meta"])) for z in parts]
    n_total = metas[0]["n_total"]
    end = 0
    for m, z in zip(metas, parts):
        if m["row_offset"] != end or m["n_total"] != n_total:
            raise ConfigError(
                f"collect: the attack shards do not tile 0..{n_total} (a shard "
                f"starts at row {m['row_offset']}, expected {end}); collect every "
                "shard of one attack, once"
            )
        end += len(z["targets"])
    if end != n_total:
        raise ConfigError(
            f"collect: the shards cover {end} of {n_total} images; a shard is missing"
        )
    keys = [
        k for k in parts[0] if "_" in k and k.split("_", 1)[0].startswith(("it", "exact", "quant"))
    ]
    seg = {k: np.concatenate([z[k] for z in parts]) for k in keys}
    n_splits = metas[0]["n_splits"]
    history = [
        {"iteration": it, **attack.summarize(seg, f"it{it}_", n_splits)}
        for it in range(metas[0]["iterations"] + 1)
    ]
    final = attack.final_from_segments(
        seg, history, n_splits, len(parts[0]["class_names"]), metas[0]["linf_bound_network"]
    )
    first = pd.read_csv(Path(run_dirs[0]) / "table.csv") if run_dirs else pd.DataFrame()
    prov = {c: first[c].iloc[0] for c in PROVENANCE_FROM_SHARD if c in first}
    prov.update(
        {"n_samples": n_total, "shard": f"merged {len(parts)} shards", "shard_rows": f"0-{n_total}"}
    )

    from types import SimpleNamespace

    settings = SimpleNamespace(  # the settings fields build_tables reads
        iterations=metas[0]["iterations"],
        n_splits=n_splits,
        precision=str(first.attack_precision.iloc[0]) if "attack_precision" in first else "",
    )
    hist, table = build_tables(
        history,
        final,
        prov,
        settings,
        n_total,
        len(parts[0]["class_names"]),
        sum(m["seconds"] for m in metas),
    )
    images = {
        k: np.concatenate([z[k] for z in parts]) for k in ("start_uint8", "final_uint8", "targets")
    }
    return {
        "history": hist,
        "table": table,
        "images": images,
        "class_names": list(parts[0]["class_names"]),
    }


PROVENANCE_FROM_SHARD = (
    "backbone",
    "weights",
    "weights_sha256",
    "framework_versions",
    "resize",
    "value_range",
    "classes",
    "num_classes",
    "bias",
    "device",
    "dtype",
    "input_size",
    "eps",
    "eps_units",
    "iterations",
    "attack_at",
    "attack_precision",
    "targets",
    "dataset",
    "n_splits",
    "seed",
)


def collect_figures(tables: dict) -> dict:
    if "attack_history" not in tables:
        return {}
    t = tables["attack_table"]
    return {"attack_curve": curve_figure(tables["attack_history"], int(t.max_possible_is.iloc[0]))}


def collect_arrays(run_dirs) -> dict:
    merged = merge_shards(run_dirs)
    return {} if merged is None else {"images": merged["images"]}


def headline(result: Result) -> str:
    t = result.table
    return (
        f"IS after attack (uint8): {t.is_mean.iloc[-1]:.2f} ({int(t.n_splits.iloc[-1])} "
        f"splits), {t.is_1split.iloc[-1]:.2f} (1 split)"
    )


def curve_figure(hist: pd.DataFrame, num_classes: int):
    fig, (ax, ax2) = subplots(1, 2, figsize=(11, 4))
    it = hist["iteration"]
    ax.plot(it, hist["is_mean"], label="IS, 10 splits (mean)")
    ax.plot(it, hist["is_1split"], label="IS, 1 split")
    ax.plot(it, np.exp(hist["sg_nats"]), ls=":", label="exp S(G)")
    ax.axhline(num_classes, color="k", ls="--", lw=1, label=f"maximum ({num_classes})")
    ax.set_yscale("log")
    ax.set_xlabel("FGSM iteration")
    integer_ticks(ax.xaxis)
    ax.set_ylabel("Inception Score")
    ax.legend(fontsize=8)
    ax2.plot(it, hist["mean_target_prob"], label="mean p(target | x)")
    ax2.plot(it, hist["target_hit_rate"], label="argmax = target")
    ax2.set_xlabel("FGSM iteration")
    integer_ticks(ax2.xaxis)
    ax2.set_ylabel("probability / rate")
    ax2.set_ylim(-0.02, 1.02)
    ax3 = ax2.twinx()
    ax3.plot(
        it, hist["linf_pixels"], color="gray", ls="--", label="L-inf perturbation (grey levels)"
    )
    ax3.set_ylabel("grey levels")
    h1, l1 = ax2.get_legend_handles_labels()
    h2, l2 = ax3.get_legend_handles_labels()
    ax2.legend(h1 + h2, l1 + l2, fontsize=8, loc="center right")
    fig.tight_layout()
    return fig


def grid_figure(start_uint8, final_uint8, targets, names, k: int):
    k = max(1, min(k, len(final_uint8)))
    fig, axes = subplots(2, k, figsize=(1.8 * k, 4), squeeze=False)
    start = _to_net_res(start_uint8[:k], final_uint8.shape[1:3])
    for j in range(k):
        axes[0, j].imshow(start[j])
        axes[1, j].imshow(final_uint8[j])
        axes[0, j].set_title("start", fontsize=7)
        axes[1, j].set_title(f"-> {names[targets[j]][:18]}", fontsize=7)
        for r in (0, 1):
            axes[r, j].axis("off")
    fig.tight_layout()
    return fig


def _to_net_res(x, hw):
    from harness import resize as rs

    if x.shape[1:3] == tuple(hw):
        return x
    return np.clip(rs.resize_numpy(x, tuple(hw), "tf1_bilinear"), 0, 255).astype(np.uint8)


def paper_figures(run_dir):
    t = pd.read_csv(f"{run_dir}/table.csv")
    figs = {
        "adversarial_curve": curve_figure(
            pd.read_csv(f"{run_dir}/history.csv"), int(t.max_possible_is.iloc[0])
        )
    }
    images = Path(run_dir) / "images.npz"
    if images.exists():  # the before/after grid (class names: ImageNet's when 1000/1008 classes)
        from harness import imagenet

        with np.load(images) as z:
            n_cls = int(t.max_possible_is.iloc[0])
            try:
                names = imagenet.class_names(imagenet.layout_of_outputs(n_cls))
            except Exception:  # not an ImageNet layout: indices
                names = [str(i) for i in range(n_cls)]
            figs["adversarial_before_after"] = grid_figure(
                z["start_uint8"], z["final_uint8"], z["targets"], names, 8
            )
    return figs


def paper_tables(run_dir) -> dict:
    """Section 4.2.2 beside the paper: IS after the attack (paper 986.10 from noise, 900.15 from
    CIFAR-10 WGAN samples, maximum 1000)."""
    t = pd.read_csv(f"{run_dir}/table.csv") if run_dir else pd.DataFrame()
    rows = [
        {"start": "uniform noise", "is_after_measured": None, "is_after_paper": PAPER["noise"]},
        {
            "start": "CIFAR-10 WGAN samples",
            "is_after_measured": None,
            "is_after_paper": PAPER["cifar10_wgan"],
        },
    ]
    if len(t):
        final = t[t.stage.str.startswith("after, quantised")]
        ds = str(t.dataset.iloc[0]) if "dataset" in t else ""
        row = 0 if ds == "noise" else 1
        rows[row]["is_after_measured"] = round(float(final.is_1split.iloc[0]), 2)
    return {"sec422_attack": pd.DataFrame(rows)}
