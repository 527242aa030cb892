"""Experiment ``adversarial``: FGSM drives the Inception Score towards its maximum (paper 4.2.2).

Paper: IS 986.10 from uniform noise and 900.15 from CIFAR-10 WGAN samples (maximum 1000),
with eps = 0.001 and 100 iterations.  Default: one image per class (the backbone's classes),
starting from uniform noise; the paper-scale setting is the same with ``attack.n_images=50000``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from harness import attack, inputs, scores
from harness.config import as_bool
from harness.errors import ResourceUnavailable
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
    if net.device == "cpu":
        est_min = (
            n_images
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
    start = source.read_all()
    res = attack.run_attack(net, start, settings, progress=as_bool(cfg.progress, "progress"))

    spec = scores.SplitSpec(min(settings.n_splits, len(start)))
    prov = provenance_columns(net, source, spec, cfg.seed)
    prov.update(
        {
            "eps": settings.eps,
            "eps_units": settings.eps_units,
            "iterations": settings.iterations,
            "attack_at": settings.attack_at,
            "attack_precision": settings.precision,
            "targets": f"cycling i mod {net.num_classes}",
        }
    )
    hist = pd.DataFrame(res.history)
    for k, v in prov.items():
        hist[k] = v
    f = res.final
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
        net.num_classes, len(start) // max(1, min(settings.n_splits, len(start)))
    )
    final["paper_is_from_noise"] = PAPER["noise"]
    final["seconds"] = res.seconds
    final["final_linf_pixels"] = hist["linf_pixels"].iloc[-1]
    final["final_linf_network"] = hist["linf_network"].iloc[-1]
    for k, v in prov.items():
        final[k] = v
    return Result(
        {"table": final, "history": hist},
        net.random_weights,
        extra={
            "seconds": res.seconds,
            "final": res.final,
            "images_per_second_iteration": res.extra["images_per_second_iteration"],
        },
        objects={
            "attack": res,
            "net": net,
            "settings": settings,
            "grid_classes": int(a.grid_classes),
            "save_images": as_bool(a.save_images, "attack.save_images"),
        },
    )


def present(result: Result, run) -> None:
    o = result.objects
    res, net, settings = o["attack"], o["net"], o["settings"]
    run.table(
        result.tables["history"],
        name="history",
        title="IS and attack statistics after every FGSM iteration",
        quiet=True,
    )
    run.table(
        result.table,
        name="table",
        title=f"Adversarial IS inflation ({net.name}, {len(res.start_uint8)} images, "
        f"eps={settings.eps:g} {settings.eps_units}, {settings.iterations} iterations)",
        notes=[
            "IS of the quantised images is recomputed through the backbone's normal path.",
            f"Paper: IS {PAPER['noise']} from uniform noise, {PAPER['cifar10_wgan']} from "
            "CIFAR-10 WGAN samples (max 1000).",
        ],
        print_columns=["stage", "is_mean", "is_std", "is_1split", "sg_nats", "mean_target_prob"],
    )
    run.figure(curve_figure(result.tables["history"], net.num_classes), "attack_curve")
    run.figure(grid_figure(res, net, o["grid_classes"]), "before_after")
    if o["save_images"]:
        from harness.results import atomic_path

        with atomic_path(run.run_dir / "images.npz", suffix=".npz") as tmp, open(tmp, "wb") as fh:
            np.savez(
                fh, start_uint8=res.start_uint8, final_uint8=res.final_uint8, targets=res.targets
            )
        run.outputs["images"] = {"npz": str(run.run_dir / "images.npz")}


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


def grid_figure(res, net, k: int):
    k = max(1, min(k, len(res.final_uint8)))
    names = net.class_names
    fig, axes = subplots(2, k, figsize=(1.8 * k, 4), squeeze=False)
    start = _to_net_res(res.start_uint8[:k], res.final_uint8.shape[1:3])
    for j in range(k):
        axes[0, j].imshow(start[j])
        axes[1, j].imshow(res.final_uint8[j])
        axes[0, j].set_title("start", fontsize=7)
        axes[1, j].set_title(f"-> {names[res.targets[j]][:18]}", fontsize=7)
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
    return {
        "adversarial_curve": curve_figure(
            pd.read_csv(f"{run_dir}/history.csv"), int(t.max_possible_is.iloc[0])
        )
    }
