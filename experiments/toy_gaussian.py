"""Experiment ``toy_gaussian``: the paper's 1-D two-Gaussian example (section 4.1.1).

Scores four generators under the exact Bayes classifier of the mixture
1/2 N(-1, s) + 1/2 N(1, s): exactly (quadrature) and by Monte Carlo through harness.scores.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from harness import scores, toy
from harness import settings as S
from harness.errors import ConfigError, HarnessError
from harness.plotting import subplots
from harness.runner import Result


def _uniform_range(values: dict, prefix: str) -> None:
    if values["uniform_high"] <= values["uniform_low"]:
        raise ConfigError(
            f"{prefix}uniform_high={values['uniform_high']} must be above "
            f"{prefix}uniform_low={values['uniform_low']}"
        )


SETTINGS = S.ExperimentSettings(
    "The paper's 1-D two-Gaussian toy example: pathological generators beat the true data (no "
    "network needed).",
    S.Schema(
        [
            S.Section(
                "toy",
                S.Schema(
                    [
                        S.Setting(
                            "scale", S.Float(lo=0, lo_open=True), 2.0, 'the paper\'s "N(+-1, 2)"'
                        ),
                        S.Setting(
                            "scale_is",
                            S.Choice(("variance", "std")),
                            "variance",
                            "variance | std: how `scale` and the wide generator's 20 are read",
                        ),
                        S.Setting(
                            "wide_scale",
                            S.Float(lo=0, lo_open=True),
                            20.0,
                            'the generator "N(0, 20)"',
                        ),
                        S.Setting("uniform_low", S.Float(), -100.0, "the uniform generator's low"),
                        S.Setting("uniform_high", S.Float(), 100.0, "the uniform generator's high"),
                        S.Setting(
                            "mc_samples",
                            S.Int(lo=10),
                            1_000_000,
                            "Monte Carlo sample size per generator (>= 10: 10 splits are scored)",
                        ),
                        S.Setting("mc_seed", S.Seed(), 0, "Monte Carlo seed", yaml="${seed}"),
                    ],
                    checks=[_uniform_range],
                ),
            )
        ]
    ),
)

LN2 = math.log(2.0)


def _setup(tcfg, scale_is=None) -> toy.ToySetup:
    return toy.ToySetup(
        scale=float(tcfg.scale),
        scale_is=str(scale_is or tcfg.scale_is),
        wide_scale=float(tcfg.wide_scale),
        uniform_low=float(tcfg.uniform_low),
        uniform_high=float(tcfg.uniform_high),
    )


def compute_table(tcfg) -> pd.DataFrame:
    setup = _setup(tcfg)
    other = "std" if setup.scale_is == "variance" else "variance"
    other_setup = _setup(tcfg, other)
    n = int(tcfg.mc_samples)
    if n < 2:
        raise HarnessError(f"toy.mc_samples must be at least 2, got {n}")
    rng = np.random.default_rng(int(tcfg.mc_seed))
    rows = []
    for gen in toy.GENERATORS:
        ex = toy.exact(gen, setup)
        probs = toy.class_probs(toy.sample(gen, n, setup, rng), setup)
        sg = scores.improved_score(probs)
        is_mc = math.exp(sg.nats)
        rows.append(
            {
                "generator": gen,
                "is_exact": ex.inception_score,
                "is_monte_carlo": is_mc,
                # delta method: sd(exp(S)) ~ exp(S) * sem(S)
                "is_mc_std": is_mc * sg.sem,
                "is_mc_10_splits": scores.inception_score(probs, n_splits=10).mean,
                "mutual_information_bits": ex.mutual_information_nats / LN2,
                "conditional_entropy_bits": ex.conditional_entropy_nats / LN2,
                "marginal_entropy_bits": ex.marginal_entropy_nats / LN2,
                "mc_conditional_entropy_bits": scores.conditional_entropy(probs, base=2),
                f"is_exact_if_scale_is_{other}": toy.exact(gen, other_setup).inception_score,
                "beats_true_mixture": None,
                "paper_claim": toy.PAPER_CLAIMS[gen],
                "scale": setup.scale,
                "scale_is": setup.scale_is,
                "class_sigma": setup.class_sigma,
                "mc_samples": n,
                "mc_seed": int(tcfg.mc_seed),
                "classifier": f"Bayes posterior sigmoid({setup.slope:g} x)",
                "dtype": "float64",
            }
        )
    df = pd.DataFrame(rows)
    base = df.loc[df.generator == "true_mixture", "is_exact"].iloc[0]
    df["beats_true_mixture"] = df["is_exact"] > base
    df.loc[df.generator == "true_mixture", "beats_true_mixture"] = False
    return df


def make_figure(tcfg, df: pd.DataFrame):
    setup = _setup(tcfg)
    dens = toy.densities(setup)
    x = np.linspace(-15, 15, 3001)
    fig, (ax, axb) = subplots(1, 2, figsize=(11, 4), gridspec_kw={"width_ratios": [1.6, 1]})
    s = setup.class_sigma
    ax.plot(
        x, toy._normal_pdf(x, -1, s), color="tab:blue", lw=2, label=f"class 0: N(-1, sd {s:.3g})"
    )
    ax.plot(
        x, toy._normal_pdf(x, 1, s), color="tab:orange", lw=2, label=f"class 1: N(+1, sd {s:.3g})"
    )
    ax.plot(
        x,
        dens["normal_0_20"](x),
        color="tab:green",
        ls="--",
        label=f"generator N(0, sd {setup.sigma(setup.wide_scale):.3g})",
    )
    ax.plot(
        x, dens["uniform_-100_100"](x), color="tab:purple", ls=":", label="generator U(-100, 100)"
    )
    ax.annotate(
        "", xy=(-15, 0.12), xytext=(-12, 0.12), arrowprops=dict(arrowstyle="->", color="tab:red")
    )
    ax.annotate(
        "", xy=(15, 0.12), xytext=(12, 0.12), arrowprops=dict(arrowstyle="->", color="tab:red")
    )
    ax.text(-11.5, 0.13, "generator -inf\n(mass 1/2)", color="tab:red", ha="center", fontsize=8)
    ax.text(11.5, 0.13, "generator +inf\n(mass 1/2)", color="tab:red", ha="center", fontsize=8)
    ax.set_xlabel("x")
    ax.set_ylabel("density")
    ax2 = ax.twinx()
    ax2.plot(x, toy.posterior(x, setup), color="black", lw=1, label="p(y=1|x)")
    ax2.set_ylabel("Bayes posterior p(y=1|x)")
    ax2.set_ylim(-0.02, 1.02)
    h1, l1 = ax.get_legend_handles_labels()
    h2, l2 = ax2.get_legend_handles_labels()
    ax.legend(h1 + h2, l1 + l2, fontsize=7, loc="upper left")
    ax.set_title(f"Two-Gaussian toy (scale {setup.scale:g} read as {setup.scale_is})", fontsize=10)

    pos = np.arange(len(df))
    axb.bar(pos - 0.2, df.is_exact, width=0.4, label="exact (quadrature)")
    axb.bar(
        pos + 0.2,
        df.is_monte_carlo,
        width=0.4,
        yerr=1.96 * df.is_mc_std,
        label=f"Monte Carlo (N={int(df.mc_samples.iloc[0]):,})",
    )
    axb.axhline(2.0, color="k", ls="--", lw=1, label="maximum IS = 2")
    axb.set_xticks(pos, [g.replace("_", " ") for g in df.generator], rotation=20, fontsize=8)
    axb.set_ylim(1.0, 2.1)
    axb.set_ylabel("Inception Score")
    axb.legend(fontsize=7, loc="lower right")
    axb.set_title("IS of each generator", fontsize=10)
    fig.tight_layout()
    return fig


def compute(cfg) -> Result:
    return Result({"table": compute_table(cfg.toy)}, objects={"toy": cfg.toy})


def present(result: Result, run) -> None:
    df = result.table
    run.table(
        df,
        title="1-D two-Gaussian toy: Inception Score of four generators under the Bayes classifier",
        notes=[
            "is_exact: adaptive quadrature; is_monte_carlo: exp(S(G)) on mc_samples draws; "
            "is_mc_std: its standard error by the delta method; is_mc_10_splits: classic 10-split "
            "IS.",
            "The paper does not say whether its 2 (and 20) is a variance or a std: "
            "the other reading is in the is_exact_if_scale_is_* column.",
        ],
        print_columns=[
            "generator",
            "is_exact",
            "is_monte_carlo",
            "is_mc_std",
            "mutual_information_bits",
            "beats_true_mixture",
        ],
    )
    run.figure(make_figure(result.objects["toy"], df), "toy_gaussian")


def headline(result: Result) -> str:
    t = result.table
    return "IS exact: " + ", ".join(f"{g} {v:.4f}" for g, v in zip(t.generator, t.is_exact))


def paper_figures(run_dir):
    import json
    from pathlib import Path

    from omegaconf import OmegaConf

    run_dir = Path(run_dir)
    cfg = OmegaConf.create(json.loads((run_dir / "provenance.json").read_text())["config"])
    return {"toy_gaussian": make_figure(cfg.toy, pd.read_csv(run_dir / "table.csv"))}


def paper_tables(run_dir) -> dict:
    """Section 4.1.1 beside the paper: the paper gives no values, only that +-inf reaches the
    maximum IS of 2 and that the pathological generators beat the true mixture."""
    paper = {
        "true_mixture": "(the data)",
        "plus_minus_infinity": "2 (the maximum)",
        "uniform_-100_100": "higher than the data",
        "normal_0_20": "higher than the data",
    }
    t = pd.read_csv(f"{run_dir}/table.csv").set_index("generator") if run_dir else None
    rows = [
        {
            "generator": g,
            "is_exact_measured": None if t is None else round(float(t.loc[g, "is_exact"]), 4),
            "beats_true_mixture_measured": None
            if t is None
            else bool(t.loc[g, "beats_true_mixture"]),
            "paper": claim,
        }
        for g, claim in paper.items()
    ]
    return {"sec411_toy": pd.DataFrame(rows)}
