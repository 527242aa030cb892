"""Experiment ``adversarial``: FGSM drives the Inception Score towards its maximum (paper 4.2.2).

Paper: IS 986.10 from uniform noise and 900.15 from CIFAR-10 WGAN samples (maximum 1000),
with eps = 0.001 and 100 iterations.  Default: one image per class (the backbone's classes),
starting from uniform noise; the paper-scale setting is the same with ``attack.n_images=50000``.
"""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pandas as pd

from harness import attack, config, inputs, scores
from harness import settings as S
from harness.attack import EPS_UNITS, PRECISIONS
from harness.config import as_bool
from harness.errors import ConfigError, ResourceUnavailable
from harness.plotting import inputs_title, integer_ticks, subplots, suptitle
from harness.rows import provenance_columns
from harness.runner import Result


def _check_shard(value: str, path: str) -> None:
    try:
        i, k = (int(v) for v in str(value).split("/"))
    except ValueError:
        raise ConfigError(f"{path}={value!r}: give i/n, e.g. {path}=0/4") from None
    if not (k >= 1 and 0 <= i < k):
        raise ConfigError(f"{path}={value!r}: need 0 <= i < n (e.g. 0/4 .. 3/4)")


def _attack_precision_on_cuda(values: dict, prefix: str) -> None:
    p = (values.get("attack") or {}).get("precision")
    if p not in (None, "highest") and values.get("device") != "cuda":
        raise ConfigError(
            f"attack.precision={p} has no effect unless device=cuda (on the CPU the attack runs "
            "in exact float32); remove it"
        )


SETTINGS = S.ExperimentSettings(
    "Adversarial IS inflation (paper 4.2.2): FGSM pushes each image to a cycling target class; "
    "IS -> max.",
    S.Schema(
        [
            S.Node("backbone", "backbone", "torchvision"),
            S.Node(
                "dataset",
                "dataset",
                "noise",
                overrides={"count": 1000},
                doc="start images (count raised to attack.n_images if smaller)",
            ),
            config.weights_override(
                "overrides backbone.weights, e.g. weights=random:0 (labelled everywhere)"
            ),
            S.Section(
                "attack",
                S.Schema(
                    [
                        S.Setting("eps", S.Float(lo=0, lo_open=True), 0.001, "the paper's step"),
                        S.Setting(
                            "eps_units",
                            S.Choice(EPS_UNITS),
                            "minus_one_one",
                            "minus_one_one: on a [-1, 1] pixel scale (paper) | pixel: grey "
                            "levels | network: raw input units",
                        ),
                        S.Setting("iterations", S.Int(lo=0), 100, "the paper's count"),
                        S.Setting("n_splits", S.Int(lo=1), 10, "splits of the IS after the attack"),
                        S.Setting(
                            "batch_size", S.Int(lo=1), 100, "images per forward/backward pass"
                        ),
                        S.Setting(
                            "attack_at",
                            S.Choice(("network_input", "source")),
                            "network_input",
                            "network_input (after resize) | source (torch only, through the "
                            "resize)",
                        ),
                        S.Setting(
                            "precision",
                            S.Choice(PRECISIONS),
                            "highest",
                            "CUDA only: highest (exact fp32) | tf32 | bf16 (IS effect reported)",
                        ),
                        S.Setting(
                            "n_images",
                            S.Int(lo=1),
                            None,
                            "null = one per class of the backbone (1000); paper scale: 50000",
                            nullable=True,
                        ),
                        S.Setting(
                            "grid_classes", S.Int(lo=1), 8, "images in the before/after grid"
                        ),
                        S.Setting(
                            "save_images",
                            S.Bool(),
                            True,
                            "images.npz: start_uint8, final_uint8, targets",
                        ),
                        S.Setting(
                            "max_cpu_minutes",
                            S.Float(lo=0, lo_open=True),
                            30,
                            "refuse (with an estimate) CPU runs expected to take longer",
                        ),
                        S.Setting(
                            "shard",
                            S.Str(what="i/n", form=_check_shard),
                            None,
                            "i/n: attack the i-th of n slices (whole batches; targets stay the "
                            "global cycle); +experiment=collect merges them",
                            nullable=True,
                        ),
                    ]
                ),
            ),
        ],
        checks=[_attack_precision_on_cuda],
    ),
)

PAPER = {"noise": 986.10, "cifar10_wgan": 900.15}
CPU_SECONDS_PER_IMAGE_STEP = 0.3  # forward+backward at 299 on the 2-core machine (measured)


def compute(cfg) -> Result:
    a = cfg.attack
    got = inputs.load_inputs(cfg, nets=("backbone",), sources=("dataset",))
    net = got.net()
    n_images = int(a.n_images) if a.n_images else net.num_classes
    source = _start_source(cfg, got.source(), n_images)
    r0, r1, shard = shard_rows(a.get("shard"), n_images, int(a.batch_size))
    if net.device == "cpu":
        _check_cpu_minutes(a, net, n_images, r1 - r0)
    settings = _attack_settings(a)
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
    conf = attack_config(net, source, settings, n_images, cfg.seed)
    conf_sha = config_sha256(conf)
    prov.update(_attack_provenance(settings, net.num_classes, conf_sha, shard, r0, r1))
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
            "attack_config": conf,
            "attack_config_sha256": conf_sha,
        },
        objects={
            "attack": res,
            "net_name": net.name,
            "class_names": net.class_names,
            "settings": settings,
            "grid_classes": int(a.grid_classes),
            "save_images": as_bool(a.save_images, "attack.save_images"),
            "shard": shard,
            "attack_config": conf,
        },
    )


def _start_source(cfg, source, n_images: int):
    """The first ``n_images`` start images (a generated source reloaded with ``count`` raised to
    ``n_images`` where it has fewer)."""
    if getattr(source, "count", n_images) < n_images:  # generated start images: make enough
        source = inputs.load_inputs(
            cfg, nets=(), sources=("dataset",), source_overrides={"dataset": {"count": n_images}}
        ).source()
    return source.first(n_images)


def _check_cpu_minutes(a, net, n_images: int, n_rows: int) -> None:
    """Refuse (with an estimate) a CPU attack on ``n_rows`` images expected to take longer than
    ``attack.max_cpu_minutes``."""
    est_min = (
        n_rows
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


def _attack_settings(a) -> attack.AttackSettings:
    """The ``attack`` section as :class:`harness.attack.AttackSettings`."""
    return attack.AttackSettings(
        eps=float(a.eps),
        eps_units=a.eps_units,
        iterations=int(a.iterations),
        n_splits=int(a.n_splits),
        batch_size=int(a.batch_size),
        attack_at=a.attack_at,
        precision=a.precision,
    )


def _attack_provenance(settings, num_classes: int, conf_sha: str, shard, r0: int, r1: int) -> dict:
    """The attack's provenance columns (beside the backbone's and the source's)."""
    return {
        "attack_config_sha256": conf_sha,
        "eps": settings.eps,
        "eps_units": settings.eps_units,
        "iterations": settings.iterations,
        "attack_at": settings.attack_at,
        "attack_precision": settings.precision,
        "targets": f"cycling i mod {num_classes}",
        "shard": shard or "none",
        "shard_rows": f"{r0}-{r1}",
    }


def attack_config(net, source, settings, n_images: int, seed) -> dict:
    """Everything that defines an attack and its inputs except the shard: the attack settings,
    the targets, the backbone's identity (knobs, weights sha256, framework versions: what its
    logits depend on) and the start images (the source's fingerprint).  The shards of one attack
    share it; :func:`config_sha256` of it binds them (``merge_shards`` refuses a mix)."""
    sp = source.provenance()
    conf = {
        "n_images": int(n_images),
        "eps": float(settings.eps),
        "eps_units": str(settings.eps_units),
        "iterations": int(settings.iterations),
        "n_splits": int(settings.n_splits),
        "batch_size": int(settings.batch_size),
        "attack_at": str(settings.attack_at),
        "precision": str(settings.precision),
        "targets": f"cycling i mod {net.num_classes}",
        "backbone": net.cache_identity(),
        "dataset": {k: sp.get(k) for k in ("dataset", "fingerprint", "n_samples", "order")},
        "seed": seed,
    }
    return json.loads(json.dumps(conf, default=str))  # plain JSON: the same after a round trip


def config_sha256(conf: dict) -> str:
    text = json.dumps(conf, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


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
    run.figure(
        curve_figure(result.tables["history"], n_classes, _curve_title(result.table)),
        "attack_curve",
    )
    run.figure(
        grid_figure(
            res.start_uint8, res.final_uint8, res.targets, o["class_names"], o["grid_classes"]
        ),
        "before_after",
    )
    if o["save_images"]:
        _save_images(run, res)
    if shard:  # what collect needs to merge the shards exactly
        _save_segments(run, res, o)


def _save_images(run, res) -> None:
    """``images.npz``: the start and final images (uint8) and the targets."""
    from harness.results import atomic_path

    with atomic_path(run.run_dir / "images.npz", suffix=".npz") as tmp, open(tmp, "wb") as fh:
        np.savez(fh, start_uint8=res.start_uint8, final_uint8=res.final_uint8, targets=res.targets)
    run.outputs["images"] = {"npz": str(run.run_dir / "images.npz")}


def _save_segments(run, res, o: dict) -> None:
    """A shard's ``attack_segments.npz`` (what collect merges) and its sha256 in the outputs."""
    from harness.results import atomic_path

    shard = o["shard"]
    e = res.extra
    meta = {
        "shard": shard,
        "attack_config": o["attack_config"],
        "attack_config_sha256": config_sha256(o["attack_config"]),
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
        fh.close()
        digest = hashlib.sha256(tmp.read_bytes()).hexdigest()
    # collect checks the file against this (a damaged or swapped shard is refused)
    run.outputs["segments"] = {"npz": str(run.run_dir / SEGMENTS), "sha256": digest}


# --------------------------------------------- attack shards: merged by +experiment=collect
SEGMENTS = "attack_segments.npz"
META_KEYS = ("n_splits", "iterations", "linf_bound_network", "seconds")


def collect(table: pd.DataFrame, run_dirs=()) -> dict:
    """Shards of one attack (``attack.shard=i/n``) merged into the unsharded run's tables."""
    merged = merge_shards(run_dirs)
    if merged is None:
        return {}
    return {"attack_history": merged["history"], "attack_table": merged["table"]}


def load_shard(d) -> dict | None:
    """The segments a shard wrote (``attack_segments.npz``: arrays, ``_meta`` and ``_dir``), or
    None for a run dir without them; refused (one line) when the file is not the one its run
    wrote (sha256 in ``provenance.json``), unreadable, or bound to no attack config."""
    d = Path(d)
    f = d / SEGMENTS
    if not f.exists():
        return None
    fix = f"rerun that shard (hydra.run.dir={d} overwrite=true) and collect again"
    try:
        data = f.read_bytes()
    except OSError as exc:
        raise ConfigError(f"collect: {f} cannot be read ({exc.strerror}); {fix}") from None
    recorded = _recorded_sha256(d)
    if recorded is not None and hashlib.sha256(data).hexdigest() != recorded:
        raise ConfigError(
            f"collect: {f} is not the file its shard wrote (its sha256 differs from the one in "
            f"{d / 'provenance.json'}); {fix}"
        )
    try:
        with np.load(io.BytesIO(data)) as z:
            part = {k: z[k] for k in z.files}
        meta = json.loads(str(part["meta"]))
        need = ("targets", "class_names", "start_uint8", "final_uint8", "row_offset", "n_total")
        lacking = [k for k in need + META_KEYS if k not in {**part, **meta}]
        if lacking:
            raise KeyError(lacking[0])
    except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile, zlib.error) as exc:
        raise ConfigError(f"collect: {f} is damaged ({type(exc).__name__}); {fix}") from None
    if not isinstance(meta.get("attack_config"), dict) or not meta.get("attack_config_sha256"):
        raise ConfigError(
            f"collect: the shard in {d} records no attack config (it was made before shards "
            f"were bound to their settings), so nothing shows it belongs with the others; {fix}"
        )
    if config_sha256(meta["attack_config"]) != meta["attack_config_sha256"]:
        raise ConfigError(f"collect: {f} is damaged (its attack config hash is wrong); {fix}")
    part["_meta"], part["_dir"] = meta, d
    return part


def _recorded_sha256(d: Path) -> str | None:
    try:
        rec = json.loads((d / "provenance.json").read_text())["outputs"]["segments"]
        return str(rec["sha256"])
    except (OSError, ValueError, KeyError, TypeError):  # no record of it: nothing to check
        return None


def _flat(conf: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in conf.items():
        if isinstance(v, dict):
            out.update(_flat(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = json.dumps(v, sort_keys=True, default=str)
    return out


def check_same_attack(parts: list) -> str:
    """The attack config sha256 all shards share; refuse (naming the settings that differ and
    where) shards of different attacks."""
    shas = {z["_meta"]["attack_config_sha256"] for z in parts}
    if len(shas) == 1:
        return shas.pop()
    flat = [_flat(z["_meta"]["attack_config"]) for z in parts]
    diffs = []
    for key in sorted(set().union(*flat)):
        where: dict = {}
        for f, z in zip(flat, parts):
            where.setdefault(f.get(key, "(absent)"), []).append(str(z["_dir"]))
        if len(where) > 1:
            diffs.append(
                f"{key} " + " vs ".join(f"{v} in {', '.join(ds)}" for v, ds in where.items())
            )
    more = f"; ... and {len(diffs) - 4} more" if len(diffs) > 4 else ""
    raise ConfigError(
        f"collect: the attack shards were made with different settings ({'; '.join(diffs[:4])}"
        f"{more}); merge only the shards of one attack (the same settings, attack.shard=0/n "
        "... n-1/n)"
    )


def _shard_label(z) -> str:
    return f"shard {z['_meta'].get('shard')} ({z['_dir']})"


def _missing(metas: list, a: int, b: int, n_total: int) -> str:
    """rows a..b are in no shard: which shard that is, when all shards are i/k for one k."""
    ks = {str(m.get("shard", "")).partition("/")[2] for m in metas}
    name = ""
    if len(ks) == 1 and ks != {""}:
        k = int(ks.pop())
        have = {int(str(m["shard"]).partition("/")[0]) for m in metas}
        gone = [f"{i}/{k}" for i in range(k) if i not in have]
        name = f" (shard {', '.join(gone)} is missing)" if gone else ""
    return (
        f"collect: rows {a}-{b} of the attack's {n_total} images are in no shard{name}; "
        "collect every shard of the attack"
    )


def check_rows_covered(parts: list, n_total: int) -> None:
    """Refuse (one line) shards (sorted by row) that are there twice, overlap, or leave rows of
    the attack's ``n_total`` images out."""
    metas = [z["_meta"] for z in parts]
    end, prev = 0, None
    for m, z in zip(metas, parts):
        start = m["row_offset"]
        if prev is not None and start == prev["_meta"]["row_offset"]:
            raise ConfigError(
                f"collect: {_shard_label(z)} is there twice (also {prev['_dir']}); collect each "
                "shard of one attack once"
            )
        if start < end:
            raise ConfigError(
                f"collect: {_shard_label(prev)} and {_shard_label(z)} overlap (rows {start}-"
                f"{end}); collect the shards of one split attack.shard=0/n ... n-1/n"
            )
        if start > end:
            raise ConfigError(_missing(metas, end, start, n_total))
        end, prev = start + len(z["targets"]), z
    if end != n_total:
        raise ConfigError(_missing(metas, end, n_total, n_total))


def merge_shards(run_dirs):
    parts = [z for z in (load_shard(d) for d in run_dirs) if z is not None]
    if not parts:
        return None
    conf_sha = check_same_attack(parts)
    parts.sort(key=lambda z: z["_meta"]["row_offset"])
    metas = [z["_meta"] for z in parts]
    n_total = metas[0]["n_total"]
    check_rows_covered(parts, n_total)
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
    first = pd.read_csv(parts[0]["_dir"] / "table.csv")
    prov = {c: first[c].iloc[0] for c in PROVENANCE_FROM_SHARD if c in first}
    prov.update(
        {
            "n_samples": n_total,
            "shard": f"merged {len(parts)} shards",
            "shard_rows": f"0-{n_total}",
            "attack_config_sha256": conf_sha,
        }
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
    "dataset_label",
    "n_splits",
    "seed",
)


def collect_figures(tables: dict) -> dict:
    if "attack_history" not in tables:
        return {}
    t = tables["attack_table"]
    return {
        "attack_curve": curve_figure(
            tables["attack_history"], int(t.max_possible_is.iloc[0]), _curve_title(t)
        )
    }


def collect_arrays(run_dirs) -> dict:
    merged = merge_shards(run_dirs)
    return {} if merged is None else {"images": merged["images"]}


def headline(result: Result) -> str:
    t = result.table
    return (
        f"IS before -> after attack (uint8): {t.is_mean.iloc[0]:.2f} -> {t.is_mean.iloc[-1]:.2f} "
        f"({int(t.n_splits.iloc[-1])} splits), {t.is_1split.iloc[0]:.2f} -> "
        f"{t.is_1split.iloc[-1]:.2f} (1 split; max {t.max_possible_is.iloc[-1]:.4g}); target "
        f"probability {t.mean_target_prob.iloc[0]:.2f} -> {t.mean_target_prob.iloc[-1]:.2f}"
    )


def _curve_title(table: pd.DataFrame) -> str:
    """The attack, the network and the images it started from (from the table's own rows)."""
    what = "Targeted FGSM"
    if "eps" in table and len(table):
        units = f" {table.eps_units.iloc[0]}" if "eps_units" in table else ""
        what += f" (eps={float(table.eps.iloc[0]):g}{units})"
    return inputs_title(table, what)


def curve_figure(hist: pd.DataFrame, num_classes: int, title: str | None = None):
    fig, (ax, ax2) = subplots(1, 2, figsize=(11, 4.4))
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
    if title:
        suptitle(fig, title, fontsize=10)
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
            pd.read_csv(f"{run_dir}/history.csv"), int(t.max_possible_is.iloc[0]), _curve_title(t)
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
