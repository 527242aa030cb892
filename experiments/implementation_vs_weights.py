"""Experiment ``implementation_vs_weights``: split IS differences between frameworks into causes.

The paper attributes the IS gap between frameworks to their weights; but the implementations
differ too (average-pool padding, the 2015 graph's max pool, its (x-128)/128 input, its 1008
outputs).  For one dataset this experiment computes, for every backbone b:

* ``own``: b with its own weights and native settings (the paper's comparison);
* ``implementation``: b's implementation running the *same* weights (those of
  ``same_weights_from``, ported), with common preprocessing: only the implementation differs;
* ``weights``: b's weights (ported) running in *one* reference implementation, with common
  preprocessing: only the weights differ;

and, for every pair (a, b), total = own[a] - own[b], implementation effect = implementation[a] -
implementation[b], weights effect = weights[a] - weights[b], remainder = total - both (native
preprocessing, class count, bias, interactions), all in % of own[b].  Separately, the
reference implementation with the reference weights under every resize method.

With ``weights=random:<s>``, backbone number i uses ``random:<s+i>`` as its own weights (so the
weights do differ), labelled as random everywhere.
"""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
from omegaconf import OmegaConf

from harness import config, inputs
from harness import resize as rs
from harness import settings as S
from harness.pipeline import outputs
from harness.plotting import dataset_labels, subplots, suptitle
from harness.rows import dataset_label, provenance_columns, score_row
from harness.runner import Result

SETTINGS = S.ExperimentSettings(
    "Beyond the paper: split IS gaps between frameworks into implementation, weights and "
    "preprocessing.",
    S.Schema(
        [
            S.NodeMap(
                "backbones",
                "backbone",
                {"torchvision": "torchvision", "keras": "keras", "tf2015": "tf2015"},
            ),
            S.Node("dataset", "dataset", "cifar10"),
            config.weights_override(
                "overrides every backbone's weights (random:<s>: see below; labelled)"
            ),
            S.Setting(
                "distinct_random_weights",
                S.Bool(),
                True,
                "with weights=random:<s>, backbone i gets random:<s+i>, so weights differ",
                applies=S.When(
                    "weights",
                    fn=lambda v: str(v.get("weights") or "").startswith("random:"),
                    text="weights=random:<seed>",
                ),
            ),
            S.Setting(
                "reference",
                S.Str(),
                "torchvision",
                "the one implementation all weights are run in (the weights effect)",
            ),
            S.Setting(
                "same_weights_from",
                S.Str(),
                "torchvision",
                "whose weights all implementations run (implementation effect)",
            ),
            S.Section(
                "common",
                S.Schema(
                    [
                        S.Setting(
                            "resize",
                            S.Choice(tuple(m for m in rs.METHODS if m != "torch_bilinear")),
                            "tf1_bilinear",
                            "the resize forced in the decomposition runs",
                        ),
                        S.Setting(
                            "classes",
                            S.Choice(("imagenet1000", "first1000", "last1000")),
                            "imagenet1000",
                            "the 1000 real classes everywhere (the 2015 graph has 1008 outputs)",
                        ),
                    ]
                ),
                "preprocessing forced in the decomposition runs",
            ),
        ],
        checks=[
            config.key_of("reference", "backbones"),
            config.key_of("same_weights_from", "backbones"),
        ],
    ),
    uses_splits=True,
)


def compute(cfg) -> Result:
    got = inputs.load_inputs(cfg, nets=("backbones",), sources=("dataset",))
    specs, own, src = got.specs, got.nets, got.source()
    dkey = dataset_label(src)  # the images loaded, in words (titles)
    ref, same = cfg.reference, cfg.same_weights_from
    common = OmegaConf.to_container(cfg.common, resolve=True)
    spec = config.split_spec(cfg)
    # every net is built before anything is computed, so a missing file stops everything first
    plan = _run_plan(specs, ref, same, common)
    nets = {
        key: own[key[1]] if key[0] == "own" else inputs.build_backbone(bspec, **over)
        for key, (bspec, over) in plan.items()
    }
    random_w = any(n.random_weights for n in nets.values())
    table = pd.DataFrame(
        [_run_row(cfg, kind, b, net, src, spec) for (kind, b), net in nets.items()]
    )
    get = {(r.run, r.backbone_or_resize): r.is_mean for r in table.itertuples()}
    pairs = pd.DataFrame([_pair_row(get, a, b) for a, b in itertools.combinations(specs, 2)])
    res = _resize_effect(table, get)
    for t in (pairs, res):
        t["dataset_fingerprint"] = src.fingerprint()
        t["dataset_label"] = dkey
        t["reference_implementation"] = ref
        t["same_weights_from"] = same
        t["n_splits"] = spec.n_splits
        t["common_preprocessing"] = ", ".join(f"{kk}={v}" for kk, v in common.items())
    return Result(
        {"table": table, "decomposition": pairs, "resize": res},
        random_w,
        objects={"dkey": dkey, "ref": ref},
    )


def _run_plan(specs: dict, ref: str, same: str, common: dict) -> dict:
    """Every run as ``(kind, backbone or resize) -> (backbone spec, build overrides)``: own,
    implementation (``same``'s weights) and weights (in ``ref``) per backbone, then ``ref`` under
    every compared resize."""
    plan = {}
    for b, bspec in specs.items():
        plan[("own", b)] = (bspec, {})
        same_w = (
            specs[same]["weights"]
            if b == same
            else f"ported:{specs[same]['name']}:{specs[same]['weights']}"
        )
        plan[("implementation", b)] = (bspec, {**common, "weights": same_w})
        own_w = specs[ref]["weights"] if b == ref else f"ported:{bspec['name']}:{bspec['weights']}"
        plan[("weights", b)] = (specs[ref], {**common, "weights": own_w, "bias": True})
    for label, over in rs.COMPARED.items():
        plan[("resize", label)] = (specs[ref], {**common, **over})
    return plan


def _run_row(cfg, kind: str, b: str, net, src, spec) -> dict:
    """One run's row: what ran, its IS and the provenance."""
    out = outputs(cfg, net, src, label=f"{kind} {b}")
    r = {
        "run": kind,
        "backbone_or_resize": b,
        "implementation": net.name,
        "weights_spec": net.provenance()["weights"],
    }
    r.update(score_row(out.probs, spec))
    r.update(provenance_columns(net, src, spec, cfg.seed))
    r["pool_compat"] = net.provenance().get("pool_compat", "native")
    return r


def _pair_row(get: dict, a: str, b: str) -> dict:
    """own[a] - own[b] split into implementation and weights effects and the remainder, in % of
    own[b]."""
    base = get[("own", b)]
    total = get[("own", a)] - base
    impl = get[("implementation", a)] - get[("implementation", b)]
    wts = get[("weights", a)] - get[("weights", b)]
    return {
        "pair": f"{a} vs {b}",
        "own_a": get[("own", a)],
        "own_b": base,
        "total_pct": 100 * total / base,
        "implementation_pct": 100 * impl / base,
        "weights_pct": 100 * wts / base,
        "remainder_pct": 100 * (total - impl - wts) / base,
    }


def _resize_effect(table: pd.DataFrame, get: dict) -> pd.DataFrame:
    """The resize runs: IS per method and its change against tf1_bilinear."""
    res = table[table.run == "resize"][["backbone_or_resize", "is_mean", "is_std"]].copy()
    res.columns = ["resize", "is_mean", "is_std"]
    res["diff_vs_tf1_bilinear_pct"] = 100 * (res.is_mean / get[("resize", "tf1_bilinear")] - 1)
    return res


def present(result: Result, run) -> None:
    o = result.objects
    run.table(
        result.table,
        title=f"IS under own / same weights / one implementation ({o['dkey']})",
        print_columns=[
            "run",
            "backbone_or_resize",
            "implementation",
            "weights_spec",
            "is_mean",
            "is_std",
        ],
    )
    run.table(
        result.tables["decomposition"],
        name="decomposition",
        title="Each pairwise IS difference split into implementation and weights effects "
        "(% of own[b])",
        notes=[
            "implementation: same (ported) weights in each implementation, common "
            "preprocessing; weights: each backbone's weights in the reference "
            "implementation; remainder: native preprocessing, class count, bias and "
            "interactions."
        ],
        print_columns=["pair", "total_pct", "implementation_pct", "weights_pct", "remainder_pct"],
    )
    run.table(
        result.tables["resize"],
        name="resize",
        title=f"Resize effect alone ({o['ref']} implementation, {o['ref']} weights)",
        print_columns=["resize", "is_mean", "diff_vs_tf1_bilinear_pct"],
    )
    run.figure(
        figure(result.tables["decomposition"], result.tables["resize"]), "implementation_vs_weights"
    )


def figure(pairs: pd.DataFrame, res: pd.DataFrame):
    fig, (ax, ax2) = subplots(1, 2, figsize=(11, 3.8), gridspec_kw={"width_ratios": [1.4, 1]})
    y = np.arange(len(pairs))
    left_pos = np.zeros(len(pairs))
    left_neg = np.zeros(len(pairs))
    for col, color in (
        ("implementation_pct", "tab:orange"),
        ("weights_pct", "tab:blue"),
        ("remainder_pct", "tab:gray"),
    ):
        v = pairs[col].to_numpy()
        start = np.where(v >= 0, left_pos, left_neg)
        ax.barh(y, v, left=start, color=color, label=col.replace("_pct", ""))
        left_pos += np.maximum(v, 0)
        left_neg += np.minimum(v, 0)
    ax.plot(pairs.total_pct, y, "kD", label="total (own weights, native settings)")
    ax.axvline(0, color="k", lw=0.8)
    ax.set_yticks(y, pairs.pair)
    ax.set_ylabel("backbone pair (a vs b)")
    ax.set_xlabel("IS difference, % of the second backbone")
    ax.legend(fontsize=7)
    ax2.bar(range(len(res)), res.diff_vs_tf1_bilinear_pct)
    ax2.set_xticks(
        range(len(res)),
        [r.replace("(align_corners=", "\n(ac=") for r in res.resize],
        fontsize=7,
        rotation=30,
        ha="right",
    )
    ax2.set_xlabel("resize method")
    ax2.set_ylabel("IS change vs tf1_bilinear, %")
    ref = (
        f" ({res.reference_implementation.iloc[0]} implementation and weights)"
        if "reference_implementation" in res and len(res)
        else ""
    )
    ax2.set_title(f"resize method alone{ref}", fontsize=9)
    images = ", ".join(dataset_labels(pairs))
    suptitle(
        fig,
        "IS differences split into implementation and weights effects"
        + (f" on {images}" if images else ""),
        fontsize=10,
    )
    fig.tight_layout()
    return fig


def paper_figures(run_dir):
    return {
        "implementation_vs_weights": figure(
            pd.read_csv(f"{run_dir}/decomposition.csv"), pd.read_csv(f"{run_dir}/resize.csv")
        )
    }
