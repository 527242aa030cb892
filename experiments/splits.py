"""Experiment ``splits``: number of splits and sample size (paper Table 2 and beyond).

Classic IS estimates each split's marginal p(y) from N/S samples, so it falls as S grows; the
improved score S(G) has no split parameter.  ``source=simulated`` uses class probabilities with
a known true mutual information (:mod:`harness.simulated`), so the bias is measured against truth;
``source=network`` uses the cached logits of any backbone x dataset.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import pandas as pd

from harness import config, inputs, metric_set, scores
from harness import settings as S
from harness.errors import ConfigError
from harness.pipeline import outputs
from harness.plotting import inputs_title, legend, subplots, suptitle
from harness.rows import dataset_label, provenance_columns
from harness.runner import Result
from harness.simulated import SimulatedProbs
from harness.sweeps import sample_size_sweep, split_sweep

SETTINGS = S.ExperimentSettings(
    "Number of splits and sample size (paper Table 2): classic IS falls with n_splits; S(G) has "
    "none.",
    S.Schema(
        [
            S.Node("backbone", "backbone", "torchvision"),
            S.Node("dataset", "dataset", "cifar10"),
            S.Setting(
                "source",
                S.Choice(("network", "simulated")),
                "network",
                "network: cached logits of backbone x dataset | simulated: known ground truth",
            ),
            config.weights_override(
                "overrides backbone.weights (e.g. random:0, labelled everywhere)"
            ),
            S.Section(
                "simulated",
                S.Schema(
                    [
                        S.Setting("num_classes", S.Int(lo=2), 1000, "classes of the simulation"),
                        S.Setting(
                            "beta_a",
                            S.Float(lo=0, lo_open=True),
                            2.0,
                            "confidence leak a ~ Beta(beta_a, beta_b)",
                        ),
                        S.Setting("beta_b", S.Float(lo=0, lo_open=True), 5.0, ""),
                        S.Setting("n", S.Int(lo=1), 50000, "simulated samples"),
                        S.Setting("seed", S.Seed(), 0, "seed of the simulation", yaml="${seed}"),
                    ]
                ),
                "used with source=simulated (harness/simulated.py)",
            ),
            S.Setting(
                "sample_sizes",
                S.ListOf(S.Int(lo=1), unique=True),
                [500, 1000, 2000, 5000, 10000, 20000, 50000],
                "IS and S(G) at each N (seeded subsets)",
            ),
            S.Setting(
                "resamples", S.Int(lo=1), 10, "seeded subsets per sample size (95% intervals)"
            ),
            config.extrapolation_section(),
        ]
    ),
    uses_splits=True,
    n_splits_default=[1, 2, 5, 10, 20, 50, 100, 200],
    n_splits_many=True,
    # source=simulated reads no images
    sources=lambda v: ("dataset",) if v.get("source") == "network" else (),
)

# paper Table 2 (IV3 Torch, 50,000 samples; CIFAR-10 train presumably) and Table 1's 10-split value
PAPER_TORCH_CIFAR = {1: 9.9147, 10: 9.737, 200: 9.0884}


class _Probs(NamedTuple):
    """The class probabilities the sweeps run on, and what describes them."""

    probs: np.ndarray
    prov: dict  # provenance columns of every table
    truth: dict | None  # the simulation's description (true IS), None for a network
    random_weights: bool
    label: str  # titles
    paper: dict  # the paper's IS per split count, when these are its inputs


def compute(cfg) -> Result:
    ks = config.split_counts(cfg.n_splits)
    spec = config.split_spec(cfg, n_splits=ks[0])
    if cfg.source == "simulated":
        got = _simulated_probs(cfg, spec)
    elif cfg.source == "network":
        got = _network_probs(cfg, spec)
    else:
        raise ConfigError(f"splits: source must be network or simulated, got {cfg.source!r}")
    prep = scores.prepare(got.probs)
    table = _splits_table(prep, ks, spec, got)
    sizes = _sizes_table(prep, cfg, spec, got)
    return Result(
        {
            "table": table,
            "sample_sizes": sizes,
            "extrapolation": extrapolation_table(prep, cfg.extrapolation, got.truth, got.prov),
        },
        got.random_weights,
        extra={"truth": got.truth},
        objects={"label": got.label, "n": prep.n},
    )


def _simulated_probs(cfg, spec) -> _Probs:
    """Probabilities of :class:`SimulatedProbs`, with their known truth."""
    sim = SimulatedProbs(
        int(cfg.simulated.num_classes),
        float(cfg.simulated.beta_a),
        float(cfg.simulated.beta_b),
        int(cfg.simulated.seed),
    )
    probs = sim.sample(int(cfg.simulated.n))
    truth = sim.describe()
    prov = {
        **{k: v for k, v in truth.items() if not k.startswith("true_")},
        "n_samples": len(probs),
        **spec.provenance(),
        "seed": cfg.seed,
        "dtype": "float64",
    }
    label = f"simulated probabilities ({sim.num_classes} classes)"
    return _Probs(probs, prov, truth, False, label, {})


def _network_probs(cfg, spec) -> _Probs:
    """The cached probabilities of the backbone on the dataset (the paper's values beside them
    when they are its inputs: IV3 Torch on 50,000 CIFAR-10 train images)."""
    got = inputs.load_inputs(cfg, nets=("backbone",), sources=("dataset",))
    net, src = got.net(), got.source()
    net.require_logits()  # before any pass (split counts are swept, checked per count)
    probs = outputs(cfg, net, src).probs
    prov = provenance_columns(net, src, spec, seed=cfg.seed)
    for key in ("n_splits", "n_splits_requested", "split_size"):  # per row in the sweep
        prov.pop(key, None)
    is_paper = (
        net.paper_column == "IV3 Torch"
        and src.paper_dataset() == "cifar10_train"
        and len(probs) == 50000
    )
    label = f"{net.name} on {dataset_label(src)}"
    return _Probs(
        probs, prov, None, net.random_weights, label, PAPER_TORCH_CIFAR if is_paper else {}
    )


def _splits_table(prep, ks: list, spec, got: _Probs) -> pd.DataFrame:
    """Classic IS and S(G) per split count, beside the paper's value and the truth when known."""
    table = split_sweep(prep, ks, spec)
    table["paper_value"] = [got.paper.get(k) for k in table.n_splits_requested]
    table["diff_to_paper_pct"] = [
        (v - p) / p * 100 if p else None for v, p in zip(table.is_mean, table.paper_value)
    ]
    if got.truth:
        true = got.truth["true_inception_score"]
        table["true_is"] = true
        table["bias_vs_true_pct"] = (table.is_mean / true - 1) * 100
        table["exp_sg_bias_vs_true_pct"] = (table.exp_sg / true - 1) * 100
    for k, v in got.prov.items():
        table[k] = v
    return table


def _sizes_table(prep, cfg, spec, got: _Probs) -> pd.DataFrame:
    """IS (10 splits) and S(G) at each sample size, over seeded resamples."""
    sizes = sample_size_sweep(
        prep, list(cfg.sample_sizes), int(cfg.resamples), 10, int(cfg.seed), splits=spec
    )
    if got.truth:
        sizes["true_is"] = got.truth["true_inception_score"]
    for k, v in got.prov.items():
        if k != "n_samples":
            sizes[k] = v
    return sizes


def extrapolation_table(prep, ex_cfg, truth, prov: dict) -> pd.DataFrame:
    """IS_inf (Chong & Forsyth 2020: one split per size, a line in 1/N) beside the one-split
    IS at N (= exp S(G)), and their errors against the truth when it is known."""
    row = {"n_samples": prep.n, **metric_set.is_inf_columns(prep.probs, ex_cfg)}
    row["is_1split_at_n"] = float(np.exp(scores.improved_score(prep).nats))
    if truth:
        true = truth["true_inception_score"]
        row["true_is"] = true
        row["is_inf_error"] = row["is_inf"] - true
        row["is_1split_at_n_error"] = row["is_1split_at_n"] - true
    row.update({f"extrapolation_{k}": v for k, v in ex_cfg.items()})
    row.update({k: v for k, v in prov.items() if k != "n_samples"})
    return pd.DataFrame([row])


def present(result: Result, run) -> None:
    table, sizes = result.tables["table"], result.tables["sample_sizes"]
    label, n = result.objects["label"], result.objects["n"]
    run.table(
        table,
        title=f"Classic IS against the number of splits, and S(G) ({label}, N={n:,})",
        notes=[
            "S(G) uses the marginal of all N samples and has no split parameter; "
            "exp(S(G)) equals IS with 1 split.",
            "Paper (IV3 Torch, CIFAR-10): 9.9147 at 1 split, 9.737 at 10 (Table 1), 9.0884 at 200.",
        ],
        print_columns=_columns_in(table, _TABLE_PRINTED),
    )
    run.table(
        sizes,
        name="sample_sizes",
        title=f"IS (10 splits) and S(G) against sample size ({label})",
        print_columns=_columns_in(sizes, _SIZES_PRINTED),
    )
    ext = result.tables["extrapolation"]
    run.table(
        ext,
        name="extrapolation",
        title=f"IS extrapolated to N = inf (IS_inf, Chong & Forsyth 2020) ({label})",
        notes=[
            "IS_inf: the one-split IS of 15 seeded subsets (N/10 .. N), a least-squares line in "
            "1/N, its intercept; is_inf_se: the intercept's OLS standard error (the line's "
            "precision, not the N-sample noise).",
            *metric_set.notes_of(ext),
        ],
        print_columns=_columns_in(ext, _EXTRAPOLATION_PRINTED),
    )
    run.figure(figure(table, sizes), "splits")


# the columns each table prints, where it has them
_TABLE_PRINTED = (
    "n_splits",
    "split_size",
    "is_mean",
    "is_std",
    "exp_sg",
    "true_is",
    "bias_vs_true_pct",
    "paper_value",
)
_SIZES_PRINTED = ("n_samples", "is_mean", "is_lo95", "is_hi95", "exp_sg_mean", "true_is")
_EXTRAPOLATION_PRINTED = (
    "n_samples",
    "is_inf",
    "is_inf_se",
    "is_inf_r2",
    "is_1split_at_n",
    "true_is",
    "is_inf_error",
    "is_1split_at_n_error",
)


def _columns_in(table: pd.DataFrame, columns: tuple[str, ...]) -> list[str]:
    """``columns`` that ``table`` has, in that order."""
    return [c for c in columns if c in table.columns]


def headline(result: Result) -> str:
    """IS at the fewest, 10 (the paper's count, when swept) and the most splits."""
    r = result.table.set_index("n_splits").is_mean
    r = r[~r.index.duplicated()]
    ks = list(dict.fromkeys([r.index[0], *([10] if 10 in r.index else []), r.index[-1]]))
    s = (
        "IS at "
        + " / ".join(f"{k}" for k in ks)
        + " splits: "
        + " / ".join(f"{r.loc[k]:.4f}" for k in ks)
    )
    t = result.table
    if "true_is" in t:
        s += f"; true IS {t.true_is.iloc[0]:.4f}; exp S(G) {t.exp_sg.iloc[0]:.4f}"
    return s


def is_simulated(table: pd.DataFrame) -> bool:
    """Whether a splits table comes from simulated probabilities (``source=simulated``)."""
    if "source" in table and (table["source"] == "simulated").any():
        return True
    return "true_is" in table  # tables written before the source column: only simulations


def figure_title(table: pd.DataFrame) -> str:
    """What the probabilities are: a simulation (said first) or a network on real images."""
    what = "Classic IS against the number of splits and the sample size, and S(G)"
    if not is_simulated(table):
        return inputs_title(table, what)
    parts = [
        f"{int(table[c].iloc[0]):,} {name}"
        for c, name in (("num_classes", "classes"), ("n_samples", "samples"))
        if c in table
    ]
    if "beta_a" in table and "beta_b" in table:
        parts.append(f"confidence ~ Beta({table.beta_a.iloc[0]:g}, {table.beta_b.iloc[0]:g})")
    return (
        f"SIMULATED PROBABILITIES, no network and no images ({', '.join(parts)}): "
        f"{what[0].lower()}{what[1:]} against the known true IS"
    )


def figure(table: pd.DataFrame, sizes: pd.DataFrame):
    fig, (ax, ax2) = subplots(1, 2, figsize=(11, 4.4))
    simulated = is_simulated(table)
    what = "simulated probabilities" if simulated else None
    ax.plot(table.n_splits, table.is_mean, "o-", label="classic IS (mean over splits)")
    ax.fill_between(
        table.n_splits, table.is_mean - table.is_std, table.is_mean + table.is_std, alpha=0.2
    )
    ax.axhline(table.exp_sg.iloc[0], color="tab:green", ls="--", label="exp S(G) (no splits)")
    if "true_is" in table:
        ax.axhline(table.true_is.iloc[0], color="k", ls=":", label="true IS = exp I(y;x)")
    if "paper_value" in table and table.paper_value.notna().any():
        m = table.paper_value.notna()
        ax.plot(table.n_splits[m], table.paper_value[m], "kx", ms=9, label="paper")
    ax.set_xscale("log")
    ax.set_xlabel("number of splits")
    ax.set_ylabel("Inception Score")
    legend(ax, fontsize=8, title=what, title_fontsize=8)
    ax.set_title(f"N = {int(table.n_samples.iloc[0]):,}", fontsize=10)
    if len(sizes):
        ax2.plot(sizes.n_samples, sizes.is_mean, "o-", label="classic IS, 10 splits")
        ax2.fill_between(sizes.n_samples, sizes.is_lo95, sizes.is_hi95, alpha=0.2)
        ax2.plot(sizes.n_samples, sizes.exp_sg_mean, "s-", label="exp S(G)")
        ax2.fill_between(sizes.n_samples, np.exp(sizes.sg_lo95), np.exp(sizes.sg_hi95), alpha=0.2)
        if "true_is" in sizes:
            ax2.axhline(sizes.true_is.iloc[0], color="k", ls=":", label="true IS")
        ax2.set_xscale("log")
        ax2.set_xlabel("number of samples N (95% interval over resamples)")
        ax2.set_ylabel("Inception Score")
        legend(ax2, fontsize=8, title=what, title_fontsize=8)
    suptitle(fig, figure_title(table), fontsize=10, color="crimson" if simulated else None)
    fig.tight_layout()
    return fig


def paper_figures(run_dir):
    t = pd.read_csv(f"{run_dir}/table.csv")
    name = "table2_splits_simulated" if "true_is" in t else "table2_splits"
    return {name: figure(t, pd.read_csv(f"{run_dir}/sample_sizes.csv"))}


def paper_tables(run_dir) -> dict:
    """Table 2 beside the paper: IS at 1, 10 and 200 splits (IV3 Torch, CIFAR-10, 50,000)."""
    t = pd.read_csv(f"{run_dir}/table.csv").set_index("n_splits") if run_dir else None
    rows = [
        {
            "n_splits": k,
            "is_measured": None
            if t is None or k not in t.index
            else round(float(t.loc[k, "is_mean"]), 4),
            "is_paper": v,
        }
        for k, v in PAPER_TORCH_CIFAR.items()
    ]
    return {"table2_is_vs_splits": pd.DataFrame(rows)}


SIMULATION_NOTE = (
    "SIMULATION with a known true IS, not the paper's Table 2. The real Table 2 (IV3 Torch, "
    "CIFAR-10 train, 50,000 samples) has IS 9.9147 at 1 split, 9.737 at 10 and 9.0884 at 200: "
    "the classic IS falls as more splits leave fewer samples per marginal estimate, which this "
    "simulation shows against its ground truth."
)


def paper_placeholders(runs, command: str) -> dict:
    """Offline: the newest simulated-splits run, labelled as a simulation beside what the real
    Table 2 would show."""
    sim = [d for d, rec in runs if (rec.get("config") or {}).get("source") == "simulated"]
    if not sim:
        return {}
    t = pd.read_csv(f"{sim[0]}/table.csv")
    fig = figure(t, pd.read_csv(f"{sim[0]}/sample_sizes.csv"))
    import textwrap

    fig.suptitle(
        "NOT THE PAPER'S TABLE 2\n" + textwrap.fill(figure_title(t), 130, break_on_hyphens=False),
        y=1.06,
        color="crimson",
        fontsize=10,
    )
    fig.text(0.01, -0.02, textwrap.fill(SIMULATION_NOTE, 150), fontsize=7, va="top")
    return {"table2_splits_simulated": fig}
