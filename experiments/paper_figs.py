"""Experiment ``paper_figs``: every table and figure of Barratt & Sharma beside the paper's
values, from real runs only, reproducibly.

For each item (:data:`ITEMS`) the newest finished run of its experiment under ``output_root``
that *qualifies* is used: real (not random) weights and the paper's datasets and sizes
(:func:`qualifies`).  Without one, the item is drawn as a placeholder naming the command that
makes it; ``allow_smoke=true`` uses the newest smoke run instead, watermarked.  No logits are
recomputed: figures come from each experiment's ``paper_figures(run_dir)`` and tables from its
``paper_tables(run_dir)`` (measured values beside the paper's).  Outputs carry no timestamps, so
regenerating from the same runs leaves the bytes unchanged.  ``paper_figs/README.md`` gives, per
item, the exact command line of its source run (from provenance), the weights sha256 and the
run dir.

An item of the paper and of the harness's additions is drawn only from runs of ImageNet
Inception networks: every network of the run in ImageNet's label space (:func:`label_spaces`:
the ``label_space`` a backbone node declares, else its class's; never its name), so the digits
runs of ``+experiment=paper`` never stand in for them.  Those fill their own section,
"Reproduced on a trained digits classifier" (:data:`DIGITS_ITEMS`): the paper's experiments on
the digits CNN trained here, from real runs only (a placeholder naming the command where none
exists; never watermarked smoke runs), with the paper's values beside them for orientation only.
"""

from __future__ import annotations

import json
import math
import shlex
import textwrap
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from harness import results
from harness import settings as S
from harness.config import as_bool
from harness.experiment_registry import experiment
from harness.runner import Result, read_marker

SETTINGS = S.ExperimentSettings(
    "Every table and figure of the paper beside the paper's values, from real runs only (no "
    "logits recomputed).",
    S.Schema(
        [
            S.Section(
                "paper_figs",
                S.Schema(
                    [
                        S.Setting(
                            "out_dir",
                            S.Path(),
                            None,
                            "null: the checkout's paper_figs/ when run from the checkout with "
                            "allow_smoke=false, else this run's dir (printed)",
                            nullable=True,
                        ),
                        S.Setting(
                            "allow_smoke",
                            S.Bool(),
                            False,
                            "true: draw items from random-weight/small runs (watermarked) "
                            "instead of placeholders",
                        ),
                    ]
                ),
            )
        ]
    ),
)

PAPER_N = 50_000
#: an item of the paper or of the additions: ImageNet Inception networks only (qualifies())
_INCEPTION = {"imagenet": True}


@dataclass(frozen=True)
class Item:
    experiment: str
    paper: str  # what it is in the paper
    command: str  # the run that qualifies
    needs: dict  # requirements checked by qualifies(): imagenet, weights, datasets, n, source
    section: str = "paper"  # paper | additions

    @property
    def figures(self) -> tuple:
        return FIGURE_NAMES[self.experiment]


ITEMS = [
    Item(
        "weights_sensitivity",
        "Table 1: IS per network, CIFAR-10 train and ImageNet val",
        "python -m harness +experiment=weights_sensitivity",
        {
            **_INCEPTION,
            "real_weights": True,
            "datasets": ["cifar10_train", "imagenet_val"],
            "n": PAPER_N,
        },
    ),
    Item(
        "splits",
        "Table 2: IS against the number of splits",
        "python -m harness +experiment=splits source=network",
        {
            **_INCEPTION,
            "real_weights": True,
            "datasets": ["cifar10_train"],
            "n": PAPER_N,
            "source": "network",
        },
    ),
    Item(
        "beyond_imagenet",
        "Table 3 and Section 4.2.1: top classes on CIFAR-10, H(y|x)",
        "python -m harness +experiment=beyond_imagenet",
        {
            **_INCEPTION,
            "real_weights": True,
            "datasets": ["cifar10_train", "imagenet_val"],
            "n": PAPER_N,
        },
    ),
    Item(
        "toy_gaussian",
        "Section 4.1.1: the 1-D two-Gaussian example",
        "python -m harness +experiment=toy_gaussian",
        {},
    ),
    Item(
        "adversarial",
        "Section 4.2.2: FGSM drives IS towards its maximum",
        "python -m harness +experiment=adversarial attack.n_images=50000 device=cuda",
        {**_INCEPTION, "real_weights": True, "n_images": PAPER_N},
    ),
    Item(
        "memorization",
        "Section 4.2.3: IS rewards memorization",
        "python -m harness +experiment=memorization",
        {**_INCEPTION, "real_weights": True, "datasets": ["cifar10_train"]},
    ),
    Item(
        "implementation_vs_weights",
        "implementation vs weights vs resize",
        "python -m harness +experiment=implementation_vs_weights",
        {**_INCEPTION, "real_weights": True},
        "additions",
    ),
    Item(
        "fid_sensitivity",
        "FID/KID/PRDC across the frameworks' Inception V3",
        "python -m harness +experiment=fid_sensitivity",
        {**_INCEPTION, "real_weights": True},
        "additions",
    ),
    Item(
        "metric_properties",
        "which generator failure each metric detects",
        "python -m harness +experiment=metric_properties",
        {**_INCEPTION, "real_weights": True},
        "additions",
    ),
]
FIGURES = {i.experiment: (i.paper, i.command) for i in ITEMS}  # (kept for callers)
#: each item's figure files (its experiment's ``paper_figures`` keys): the same names whether a
#: figure is drawn from a real run, from a smoke run (watermarked) or is a placeholder, so
#: ``allow_smoke=true`` never changes which files exist
FIGURE_NAMES = {
    "weights_sensitivity": ("table1_weights_sensitivity",),
    "splits": ("table2_splits",),
    "beyond_imagenet": ("table3_conditional_entropy",),
    "toy_gaussian": ("toy_gaussian",),
    "adversarial": ("adversarial_curve", "adversarial_before_after"),
    "memorization": ("memorization",),
    "implementation_vs_weights": ("implementation_vs_weights",),
    "fid_sensitivity": ("fid_sensitivity",),
    "metric_properties": (
        "metric_properties_intra_class_collapse",
        "metric_properties_memorization",
    ),
}
#: what a smoke run's measured cells say (tables) beside the caption's watermark
SMOKE = "SMOKE RUN (random weights or small data): not a result"


# ------------------------------------------------------------------ the digits replication
DIGITS_HEADING = "Reproduced on a trained digits classifier"
#: what every table of the digits section says under its title
DIGITS_NOTE = (
    "The digits CNN trained here (harness/digits_cnn.py) on scikit-learn's 8x8 digits, not "
    "Inception V3: not the paper's numbers. The paper's values (ImageNet Inception V3 on "
    "CIFAR-10 / ImageNet) stand beside them for orientation only, not as a comparison of like "
    "with like."
)
#: the run that makes every digits item (a few CPU minutes, offline)
DIGITS_COMMAND = "python -m harness +experiment=paper"
MEASURED = "measured: digits CNN trained here"
PAPER_ROW = "paper (ImageNet Inception V3), for orientation only"
PAPER_DATASETS = {"cifar10_train": "CIFAR-10 train", "imagenet_val": "ImageNet val"}


@dataclass(frozen=True)
class DigitsItem:
    label: str  # its label in +experiment=paper (experiments/paper.py, DIGITS_ITEMS)
    experiment: str
    paper: str  # what of the paper it reproduces
    needs: dict  # checked by digits_qualifies(): dataset (name), arrangement, source
    figures: tuple = ()  # (key of its paper_figures, file name); the first: the placeholder
    section: str = "digits"

    @property
    def command(self) -> str:
        return digits_command(self.label)


def digits_command(label: str) -> str:
    """The item's own command line: its experiment with the overrides ``+experiment=paper`` gives
    it (experiments/paper.py), quoted for a POSIX shell."""
    from experiments.paper import DIGITS_ITEMS as RUNS

    run = next(r for r in RUNS if r["label"] == label)
    words = ["python -m harness", f"+experiment={run['name']}"]
    return " ".join(words + [shlex.quote(o) for o in run["overrides"]])


DIGITS_ITEMS = [
    DigitsItem(
        "digits_weights_sensitivity",
        "weights_sensitivity",
        "Table 1 analogue: PyTorch- vs Keras-trained vs a second seed on the same test digits",
        {"dataset": "digits"},
        (("table1_weights_sensitivity", "digits_table1_weights_sensitivity"),),
    ),
    DigitsItem(
        "digits_splits",
        "splits",
        "Table 2 analogue: IS against the number of splits and against N",
        {"dataset": "digits", "source": "network"},
        (("table2_splits", "digits_table2_splits"),),
    ),
    DigitsItem(
        "digits_ordering",
        "ordering",
        "order: class-sorted test digits in contiguous splits vs shuffled",
        {"dataset": "digits", "arrangement": "class_sorted"},
        (("ordering", "digits_ordering"),),
    ),
    DigitsItem(
        "digits_memorization",
        "memorization",
        "Section 4.2.3 analogue: a generator replaying training digits",
        {"dataset": "digits"},
        (("memorization", "digits_memorization"),),
    ),
    DigitsItem(
        "digits_beyond_imagenet",
        "beyond_imagenet",
        "Section 4.2.1 analogue: H(y|x) of test digits, 8x8 noise and photo tiles",
        {"dataset": "digits"},
        (("table3_conditional_entropy", "digits_sec421_conditional_entropy"),),
    ),
    DigitsItem(
        "digits_adversarial",
        "adversarial",
        "Section 4.2.2 analogue: FGSM from test digits (the paper: from WGAN samples)",
        {"dataset": "digits"},
        (
            ("adversarial_curve", "digits_adversarial_curve"),
            ("adversarial_before_after", "digits_adversarial_before_after"),
        ),
    ),
    DigitsItem(
        "digits_adversarial_noise",
        "adversarial",
        "Section 4.2.2 analogue: FGSM from 8x8 uniform noise",
        {"dataset": "noise"},
        (
            ("adversarial_curve", "digits_adversarial_noise_curve"),
            ("adversarial_before_after", "digits_adversarial_noise_before_after"),
        ),
    ),
    DigitsItem(
        "digits_fid_sensitivity",
        "fid_sensitivity",
        "FID/KID/PRDC and IS on the three digits networks' features (the harness's addition)",
        {"dataset": "digits"},
        (("fid_sensitivity", "digits_fid_sensitivity"),),
    ),
    DigitsItem(
        "digits_metric_properties",
        "metric_properties",
        "which corruption each metric detects, on the digits classifier (the harness's addition)",
        {"dataset": "digits"},
        (
            (
                "metric_properties_intra_class_collapse",
                "digits_metric_properties_intra_class_collapse",
            ),
            ("metric_properties_memorization", "digits_metric_properties_memorization"),
        ),
    ),
    DigitsItem(
        "digits_sanity",
        "sanity",
        "sanity report on the test digits: the reporting line and every check",
        {"dataset": "digits"},
    ),
]


def finished_runs(root: Path) -> dict:
    """experiment -> [(run dir, provenance)] of finished runs, newest first."""
    wanted = {i.experiment for i in ITEMS} | {i.experiment for i in DIGITS_ITEMS}
    runs: dict = {}
    for prov in root.rglob("provenance.json"):
        if read_marker(prov.parent) is not None:
            continue
        try:
            rec = json.loads(prov.read_text())
        except (OSError, json.JSONDecodeError):
            continue
        if rec.get("experiment") in wanted:
            key = (rec.get("finished") or "", str(prov.parent))
            runs.setdefault(rec["experiment"], []).append((key, prov.parent, rec))
    return {
        e: [(d, r) for _, d, r in sorted(v, key=lambda t: t[0], reverse=True)]
        for e, v in runs.items()
    }


def _table(run_dir: Path) -> pd.DataFrame:
    p = Path(run_dir) / "table.csv"
    return pd.read_csv(p) if p.exists() else pd.DataFrame()


def is_smoke(rec: dict, table: pd.DataFrame) -> bool:
    if rec.get("weights_note"):
        return True
    w = table.get("weights")
    return w is not None and w.astype(str).str.startswith("random").any()


# ---------------------------------------------------------------- which networks a run used
def _backbone_nodes(cfg) -> list:
    """The backbone nodes of a run's config: ``backbone`` and the nodes of every mapping of them
    (``backbones``, ``other_backbones``, ...): mappings with a ``name`` and ``weights``."""

    def node(v) -> bool:
        return isinstance(v, dict) and "name" in v and "weights" in v

    out = []
    for v in (cfg or {}).values():
        if node(v):
            out.append(v)
        elif isinstance(v, dict):
            out += [n for n in v.values() if node(n)]
    return out


def _class_label_space(name) -> str | None:
    """The label space a backbone class declares (ImageNet's for every Inception network; None
    for a network that declares its own in its settings, or a name not registered here)."""
    from harness import backbones

    try:
        return backbones.backbone_class(str(name)).label_space
    except Exception:
        return None


def label_spaces(run_dir: Path, rec: dict) -> list:
    """The label space of each network of a run, from what the run recorded: a ``label_space``
    column of its table; else its config's backbone nodes (the ``label_space`` a node declares,
    as torch_model / keras_model do, else its backbone class's); else the backbones its table
    names.  None where unknown."""
    t = _table(run_dir)
    if "label_space" in t:
        return [None if pd.isna(v) else str(v) for v in t.label_space]
    nodes = _backbone_nodes(rec.get("config"))
    if nodes:
        return [n.get("label_space") or _class_label_space(n["name"]) for n in nodes]
    if "backbone" in t:
        return [_class_label_space(b) for b in dict.fromkeys(t.backbone.dropna())]
    return []


def _spaces_reason(spaces: list, want: str, what: str) -> str | None:
    if not spaces:
        return f"no label space recorded for its networks ({what} needed)"
    other = sorted({"undeclared" if s is None else str(s) for s in spaces if s != want})
    return f"networks in label space {', '.join(other)}, not {what}" if other else None


def imagenet_reason(run_dir: Path, rec: dict) -> str | None:
    """None if every network of the run is an ImageNet Inception network (label space); else
    why not."""
    from harness.backbones.inception import InceptionBackbone

    return _spaces_reason(
        label_spaces(run_dir, rec), InceptionBackbone.label_space, "ImageNet Inception networks"
    )


def qualifies(item: Item, run_dir: Path, rec: dict) -> str | None:
    """None if the run is a real, paper-sized run of ``item`` on ImageNet Inception networks;
    else why not (one phrase)."""
    t = _table(run_dir)
    needs = item.needs
    if needs.get("imagenet"):
        why = imagenet_reason(run_dir, rec)
        if why:
            return why
    if needs.get("real_weights") and is_smoke(rec, t):
        return "random weights (a smoke run)"
    cfg = rec.get("config") or {}
    if "source" in needs and cfg.get("source") != needs["source"]:
        return f"source={cfg.get('source')} (the paper's item needs source={needs['source']})"
    for ds in needs.get("datasets", []):
        col = "paper_dataset" if "paper_dataset" in t else None
        if col is None or ds not in set(t[col].dropna().astype(str)):
            return f"no rows on the paper's {ds}"
        if "n" in needs and "n_samples" in t:
            n = t[t[col] == ds].n_samples.max()
            if n < needs["n"]:
                return f"{ds} with {int(n):,} samples (the paper used {needs['n']:,})"
    if "n_images" in needs and "n_samples" in t and t.n_samples.max() < needs["n_images"]:
        return f"{int(t.n_samples.max()):,} images (the paper used {needs['n_images']:,})"
    return None


def _same_source(item: Item, rec: dict) -> bool:
    """A run of the item's own kind of source (a simulated splits run is no smoke run of the
    paper's Table 2: it is drawn beside it as the simulation it is)."""
    want = item.needs.get("source")
    return want is None or (rec.get("config") or {}).get("source") == want


def choose(item: Item, runs: list, allow_smoke: bool):
    """(run dir, provenance, kind, why) with kind real | smoke | none.  A smoke run stands in,
    and the reason shown is taken from, runs of the item's kind of network first."""
    reasons = []
    for d, rec in runs:
        why = qualifies(item, d, rec)
        if why is None:
            return d, rec, "real", ""
        reasons.append(why)
    # runs of the item's own kind of network (a digits run never stands in for Inception)
    own = [
        (d, rec, why)
        for (d, rec), why in zip(runs, reasons)
        if not (item.needs.get("imagenet") and imagenet_reason(d, rec)) and _same_source(item, rec)
    ]
    if allow_smoke and own:
        return own[0][0], own[0][1], "smoke", own[0][2]
    why = own[0][2] if own else reasons[0] if reasons else "no finished run"
    return None, None, "none", why


def _dataset_nodes(cfg) -> list:
    """The image sets a run scored: its ``dataset`` node and the nodes of ``datasets``."""
    cfg = cfg or {}
    nodes = [cfg["dataset"]] if isinstance(cfg.get("dataset"), dict) else []
    many = cfg.get("datasets")
    if isinstance(many, dict):
        nodes += [v for v in many.values() if isinstance(v, dict)]
    return nodes


def digits_qualifies(item: DigitsItem, run_dir: Path, rec: dict) -> str | None:
    """None if the run is a real run of ``item`` on the digits classifiers (every network in the
    digits label space, real weights, the item's images); else why not (one phrase)."""
    from harness.data.digits import DigitsSource

    if is_smoke(rec, _table(run_dir)):
        return "random weights (a smoke run)"
    why = _spaces_reason(
        label_spaces(run_dir, rec), DigitsSource.label_space, "the digits classifiers"
    )
    if why:
        return why
    cfg = rec.get("config") or {}
    nodes = _dataset_nodes(cfg)
    want = item.needs.get("dataset")
    if want and not any(n.get("name") == want for n in nodes):
        names = ", ".join(str(n.get("name")) for n in nodes) or "none recorded"
        return f"images {names} (this item needs {want})"
    arrangement = item.needs.get("arrangement")
    if arrangement and not any(
        n.get("arrangement") == arrangement for n in nodes if n.get("name") == want
    ):
        return f"{want} not {arrangement} (this item needs arrangement={arrangement})"
    if "source" in item.needs and cfg.get("source") != item.needs["source"]:
        return f"source={cfg.get('source')} (this item needs source={item.needs['source']})"
    return None


def digits_choose(item: DigitsItem, runs: list):
    """(run dir, provenance, kind, why) with kind real | none: real runs only, never smoke."""
    reasons = []
    for d, rec in runs:
        why = digits_qualifies(item, d, rec)
        if why is None:
            return d, rec, "real", ""
        reasons.append(why)
    return None, None, "none", reasons[0] if reasons else "no finished run"


def placeholder_figure(item: Item, why: str):
    from harness.plotting import subplots

    fig, ax = subplots(figsize=(7, 2.6))
    ax.axis("off")
    ax.text(0.02, 0.85, item.paper, fontsize=10, weight="bold", va="top")
    ax.text(0.02, 0.6, f"No qualifying run ({why}).", fontsize=9, va="top")
    ax.text(0.02, 0.4, "Make it with:", fontsize=9, va="top")
    ax.text(0.02, 0.25, item.command, fontsize=9, family="monospace", va="top")
    return fig


def digits_placeholder_figure(item: DigitsItem, why: str):
    from harness.plotting import subplots

    fig, ax = subplots(figsize=(9, 3.4))
    ax.axis("off")
    ax.text(0.01, 0.97, item.paper, fontsize=10, weight="bold", va="top")
    ax.text(
        0.01,
        0.85,
        textwrap.fill(f"Digits CNN trained here, not Inception V3: no run yet ({why}).", 110),
        fontsize=9,
        va="top",
    )
    ax.text(0.01, 0.68, "Make it, with every digits item (a few CPU minutes):", fontsize=9)
    ax.text(0.03, 0.58, DIGITS_COMMAND, fontsize=8, family="monospace")
    ax.text(0.01, 0.47, "or this item alone:", fontsize=9)
    # wrapped as a shell would take it: each line but the last ends in a backslash
    cmd = " \\\n    ".join(
        textwrap.wrap(item.command, 100, break_long_words=False, break_on_hyphens=False)
    )
    ax.text(0.03, 0.42, cmd, fontsize=7, family="monospace", va="top")
    return fig


def watermark(fig, text: str) -> None:
    fig.text(
        0.5,
        0.5,
        text,
        ha="center",
        va="center",
        fontsize=22,
        color="crimson",
        alpha=0.25,
        rotation=20,
        weight="bold",
    )


def _argv(rec: dict, item) -> str:
    """The source run's command line from provenance; for runs made inside another command
    (``paper``) or through the Python API, the item's command and where it ran."""
    argv = ((rec.get("host") or {}).get("argv")) or []
    if not argv or not any(k in str(argv[0]) for k in ("harness", "inception-note")):
        return f"{item.command} (run through the Python API; overrides in provenance.json)"
    words = [a for a in argv[1:] if not a.startswith(("hydra.run.dir=", "hydra.sweep.dir="))]
    cli = "python -m harness " + " ".join(words)
    if f"experiment={item.experiment}" in words or f"+experiment={item.experiment}" in words:
        return cli
    return f"{item.command} (run inside {cli})"


def _shown(p) -> str:
    """A run dir as the README shows it: relative to the working directory when inside it."""
    if p is None:
        return ""
    p = Path(p).resolve()
    try:
        return str(p.relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(p)


def _cell(text: str) -> str:
    """Text for a cell of a Markdown table (a "|" would end the cell)."""
    return str(text).replace("|", "\\|")


def _sha(run_dir: Path) -> str:
    t = _table(run_dir)
    vals: set = set()
    if "weights_sha256" in t:
        vals = {str(v) for v in t.weights_sha256.dropna()}
    else:  # sanity: the backbone's provenance in its report
        try:
            rep = json.loads((Path(run_dir) / "report.json").read_text())
            sha = (rep.get("backbone") or {}).get("weights_sha256")
            vals = {str(sha)} if sha else set()
        except (OSError, json.JSONDecodeError, AttributeError):
            pass
    return ", ".join(v[:16] for v in sorted(vals)) or "-"


# ------------------------------------------------------------------ the digits tables
def _csv(run_dir, name: str) -> pd.DataFrame:
    p = Path(run_dir) / name if run_dir else None
    return pd.read_csv(p) if p is not None and p.exists() else pd.DataFrame()


def _pm(mean, std, digits: int = 3) -> str:
    return f"{float(mean):.{digits}f} ± {float(std):.{digits}f}"


def _num(v, digits: int = 3) -> str | None:
    if v is None or (isinstance(v, float) and math.isnan(v)) or pd.isna(v):
        return None
    return f"{float(v):.{digits}f}"


def _frame(rows: list, columns: list) -> pd.DataFrame:
    """Rows as a table; a cell a row does not fill is empty (not "nan")."""
    df = pd.DataFrame(rows, columns=columns).astype(object)
    return df.where(df.notna(), None)


def _table1_networks(ws, measured: str = MEASURED, paper_row: str = PAPER_ROW) -> pd.DataFrame:
    """IS ± split std and top-1 per network and image set; the paper's Table 1 below."""
    from experiments.weights_sensitivity import PAPER_IS, PAPER_TOP1

    cols = ["source", "network", "weights", "images", "is_mean_std", "top1"]
    t = _csv(ws, "table.csv")
    rows = [
        {
            "source": measured,
            "network": r.backbone_key,
            "weights": r.weights,
            "images": f"{r.dataset_key} ({int(r.n_samples):,})",
            "is_mean_std": _pm(r.is_mean, r.is_std),
            "top1": _num(getattr(r, "top1", None)),
        }
        for r in t.itertuples(index=False)
    ] or [{"source": measured, "network": "(no run)"}]
    for (label, pkey), (mean, std) in PAPER_IS.items():
        rows.append(
            {
                "source": paper_row,
                "network": label,
                "weights": "the framework's ImageNet weights",
                "images": f"{PAPER_DATASETS[pkey]} (50,000)",
                "is_mean_std": _pm(mean, std),
                "top1": _num(PAPER_TOP1.get(label)) if pkey == "imagenet_val" else None,
            }
        )
    return _frame(rows, cols)


def _table1_differences(ws, measured: str = MEASURED, paper_row: str = PAPER_ROW) -> pd.DataFrame:
    """Pairwise % IS differences per image set, and the difference in units of the split std;
    the paper's Keras vs Torch below."""
    from experiments.weights_sensitivity import PAPER_IS, PAPER_PAIR_PCT

    cols = ["source", "pair", "images", "is_a_is_b", "diff_pct", "diff_in_split_stds_of_b"]
    t, pw = _csv(ws, "table.csv"), _csv(ws, "pairwise.csv")
    std = {(r.backbone_key, r.dataset_key): r.is_std for r in t.itertuples(index=False)}
    rows = []
    for r in pw.itertuples(index=False):
        sd = std.get((r.backbone_b, r.dataset_key))
        rows.append(
            {
                "source": measured,
                "pair": f"{r.backbone_a} vs {r.backbone_b}",
                "images": r.dataset_key,
                "is_a_is_b": f"{r.is_a:.3f} / {r.is_b:.3f}",
                "diff_pct": f"{r.diff_pct:+.2f}%",
                "diff_in_split_stds_of_b": f"{(r.is_a - r.is_b) / sd:+.3f}" if sd else None,
            }
        )
    rows = rows or [{"source": measured, "pair": "(no run)"}]
    for (a, b, pkey), pct in PAPER_PAIR_PCT.items():
        (ma, _), (mb, sb) = PAPER_IS[(a, pkey)], PAPER_IS[(b, pkey)]
        rows.append(
            {
                "source": paper_row,
                "pair": f"{a} vs {b}",
                "images": PAPER_DATASETS[pkey],
                "is_a_is_b": f"{ma:.3f} / {mb:.3f}",
                "diff_pct": f"{pct:+.2f}%",
                "diff_in_split_stds_of_b": f"{(ma - mb) / sb:+.3f}",
            }
        )
    return _frame(rows, cols)


def _table2_splits(sp) -> pd.DataFrame:
    """IS per number of splits at fixed N (the test digits) beside the paper's Table 2 (IV3
    Torch, 50,000 CIFAR-10 images); each relative to its own 1-split IS."""
    from experiments.splits import PAPER_TORCH_CIFAR as PAPER

    t = _csv(sp, "table.csv")
    got = {int(r.n_splits): r for r in t.drop_duplicates("n_splits").itertuples(index=False)}
    one = got.get(1)
    rows = []
    for k in sorted(set(got) | set(PAPER)):
        r = got.get(k)
        rows.append(
            {
                "n_splits": k,
                "split_size": None if r is None else str(r.split_size),
                "is_mean_std": None if r is None else _pm(r.is_mean, r.is_std, 4),
                "of_1_split": None
                if r is None or one is None
                else f"{r.is_mean / one.is_mean:.3f}",
                "paper_is": f"{PAPER[k]:.4f}" if k in PAPER else None,
                "paper_split_size": f"{PAPER_N // k:,}" if k in PAPER else None,
                "paper_of_1_split": f"{PAPER[k] / PAPER[1]:.3f}" if k in PAPER else None,
            }
        )
    return _frame(
        rows,
        [
            "n_splits",
            "split_size",
            "is_mean_std",
            "of_1_split",
            "paper_is",
            "paper_split_size",
            "paper_of_1_split",
        ],
    )


def _table2_n(sp) -> pd.DataFrame:
    """IS (10 splits) and exp S(G) per N (seeded subsets, 95% interval), then all test digits;
    the paper's N below."""
    from experiments.splits import PAPER_TORCH_CIFAR as PAPER

    cols = ["source", "n_samples", "is_10_splits", "is_95pct_interval", "exp_sg"]
    sizes, t = _csv(sp, "sample_sizes.csv"), _csv(sp, "table.csv")
    rows = [
        {
            "source": f"{MEASURED} (subsets)",
            "n_samples": f"{int(r.n_samples):,}",
            "is_10_splits": f"{r.is_mean:.4f}",
            "is_95pct_interval": f"{r.is_lo95:.4f} to {r.is_hi95:.4f}",
            "exp_sg": f"{r.exp_sg_mean:.4f}",
        }
        for r in sizes.itertuples(index=False)
    ]
    ten = t[t.n_splits == 10] if "n_splits" in t else t
    if len(ten):
        r = ten.iloc[0]
        rows.append(
            {
                "source": f"{MEASURED} (all test digits)",
                "n_samples": f"{int(r.n_samples):,}",
                "is_10_splits": f"{r.is_mean:.4f}",
                "exp_sg": f"{r.exp_sg:.4f}",
            }
        )
    rows = rows or [{"source": MEASURED, "n_samples": "(no run)"}]
    rows.append(
        {
            "source": PAPER_ROW,
            "n_samples": f"{PAPER_N:,}",
            "is_10_splits": f"{PAPER[10]:.4f}",
            "exp_sg": f"{PAPER[1]:.4f} (its IS at 1 split)",
        }
    )
    return _frame(rows, cols)


def _ordering(od) -> pd.DataFrame:
    """IS of the class-sorted test digits in contiguous splits vs shuffled first."""
    from experiments.weights_sensitivity import PAPER_IS

    cols = ["source", "order", "is_mean_std", "predicted_classes_per_split", "shuffled_vs_loaded"]
    t, s = _csv(od, "table.csv"), _csv(od, "summary.csv")
    rows = []
    if len(t) and len(s):
        loaded = t[t.split_order == "as_loaded"].iloc[0]
        shuf = t[t.split_order != "as_loaded"]
        s0 = s.iloc[0]
        rows += [
            {
                "source": MEASURED,
                "order": "as loaded: class-sorted, contiguous splits",
                "is_mean_std": _pm(loaded.is_mean, loaded.is_std),
                "predicted_classes_per_split": _num(
                    loaded.mean_distinct_predicted_classes_per_split, 1
                ),
            },
            {
                "source": MEASURED,
                "order": f"shuffled first ({len(shuf)} seeds), contiguous splits",
                "is_mean_std": f"{s0.shuffled_is_mean_over_seeds:.3f} (sd "
                f"{s0.shuffled_is_sd_over_seeds:.3f} over seeds; {shuf.is_mean.min():.3f} to "
                f"{shuf.is_mean.max():.3f})",
                "predicted_classes_per_split": _num(
                    shuf.mean_distinct_predicted_classes_per_split.mean(), 1
                ),
                "shuffled_vs_loaded": f"{s0.order_effect_pct:+.1f}%",
            },
        ]
    rows = rows or [{"source": MEASURED, "order": "(no run)"}]
    mean, std = PAPER_IS[("IV3 Torch", "imagenet_val")]
    rows.append(
        {
            "source": PAPER_ROW,
            "order": "ImageNet val as the paper loaded it (order not stated), IV3 Torch, 10 splits",
            "is_mean_std": _pm(mean, std),
        }
    )
    return _frame(rows, cols)


def _memorization(mm) -> pd.DataFrame:
    """IS, copy rate and FID vs train of each generator; the paper's claim below."""
    cols = ["source", "generator", "is_mean_std", "copies_of_training_images", "fid_vs_train"]
    t = _csv(mm, "table.csv")
    rows = [
        {
            "source": MEASURED,
            "generator": r.generator,
            "is_mean_std": _pm(r.is_mean, r.is_std),
            "copies_of_training_images": f"{r.nn_dup_rate_vs_train:.1%}",
            "fid_vs_train": _num(getattr(r, "fid_vs_train", None)),
        }
        for r in t.itertuples(index=False)
    ] or [{"source": MEASURED, "generator": "(no run)"}]
    rows.append(
        {
            "source": PAPER_ROW,
            "generator": "replays CIFAR-10 training images (Section 4.2.3)",
            "is_mean_std": "that of the real data: IS cannot detect it (no values given)",
        }
    )
    return _frame(rows, cols)


#: the paper's image set each digits image set stands in for (by the run's dataset name)
_PAPER_COUNTERPART = {
    "digits": ("imagenet_val", "ImageNet val (in domain)"),
    "noise": ("noise", "uniform noise"),
    "photo_tiles": ("cifar10_train", "CIFAR-10 train (out of domain)"),
}


def _conditional_entropy(bi) -> pd.DataFrame:
    """H(y|x) per image set and network, as a share of the maximum log2(classes), and the top
    class of p(y); the paper's 4.2.1 (1000 classes) beside each set's counterpart."""
    from experiments.beyond_imagenet import PAPER_H_BITS

    cols = [
        "images",
        "h_y_given_x_bits",
        "of_maximum",
        "top_class_of_p_y",
        "paper_images",
        "paper_bits",
        "paper_of_maximum",
    ]
    paper_max = math.log2(1000)
    t, top = _csv(bi, "table.csv"), _csv(bi, "top_classes.csv")
    key = "backbone_key" if "backbone_key" in t else "backbone"
    rows = []
    kinds = {}
    for dkey in dict.fromkeys(t.get("dataset_key", [])):
        sub = t[t.dataset_key == dkey]
        kinds[dkey] = str(sub.dataset.iloc[0]) if "dataset" in sub else str(dkey)
    if not kinds:
        kinds = {k: k for k in _PAPER_COUNTERPART}
    for dkey, kind in kinds.items():
        row = {"images": str(dkey)}
        if len(t):
            sub = t[t.dataset_key == dkey]
            mx = float(sub.max_bits.max())
            first = top[(top.dataset_key == dkey) & (top["rank"] == 1)] if len(top) else top
            row.update(
                {
                    "images": f"{dkey} ({int(sub.n_samples.iloc[0]):,})",
                    "h_y_given_x_bits": "; ".join(
                        f"{b} {v:.3f}" for b, v in zip(sub[key], sub.h_y_given_x_bits)
                    ),
                    "of_maximum": f"{sub.h_y_given_x_bits.mean() / mx:.1%} of {mx:.2f} bits",
                    "top_class_of_p_y": "; ".join(
                        f"{b} {c}" for b, c in zip(first.backbone, first.class_name)
                    )
                    or None,
                }
            )
        pkey, pname = _PAPER_COUNTERPART.get(kind, (None, None))
        if pkey:
            bits = PAPER_H_BITS[pkey]
            row.update(
                {
                    "paper_images": pname,
                    "paper_bits": f"{bits:.3f}",
                    "paper_of_maximum": f"{bits / paper_max:.1%} of {paper_max:.2f} bits",
                }
            )
        rows.append(row)
    return _frame(rows, cols)


def _attack(from_digits, from_noise) -> pd.DataFrame:
    """FGSM from both starts: IS before -> after (uint8), 1 and 10 splits, as a share of the
    maximum; the paper's 4.2.2 beside its counterpart start."""
    from experiments.adversarial import PAPER

    cols = [
        "start",
        "n_images",
        "step",
        "is_1_split",
        "is_10_splits",
        "after_of_maximum",
        "target_probability",
        "paper_start",
        "paper_is_after",
        "paper_of_maximum",
    ]
    starts = [
        (from_digits, "test digits", "CIFAR-10 WGAN samples", PAPER["cifar10_wgan"]),
        (from_noise, "8x8 uniform noise", "uniform noise", PAPER["noise"]),
    ]
    rows = []
    for run_dir, start, paper_start, paper_after in starts:
        row = {"start": start}
        t = _csv(run_dir, "table.csv")
        if len(t):
            first = t[t.stage.str.startswith("start")].iloc[0]
            final = t[t.stage.str.startswith("after, quantised")].iloc[0]
            mx = float(final.max_possible_is)
            attack = ((_provenance(run_dir).get("config") or {}).get("attack")) or {}
            eps = final.get("eps", attack.get("eps"))
            units = final.get("eps_units", attack.get("eps_units"))
            its = final.get("iterations", attack.get("iterations"))
            row.update(
                {
                    "n_images": f"{int(final.n_samples):,}",
                    "step": f"eps {float(eps):g} ({units}) x {int(its)}",
                    "is_1_split": f"{first.is_1split:.2f} -> {final.is_1split:.2f}",
                    "is_10_splits": f"{first.is_mean:.2f} -> {final.is_mean:.2f}",
                    "after_of_maximum": f"{final.is_1split / mx:.1%} of {mx:g}",
                    "target_probability": f"{first.mean_target_prob:.2f} -> "
                    f"{final.mean_target_prob:.2f}",
                }
            )
        row.update(
            {
                "paper_start": paper_start,
                "paper_is_after": f"{paper_after:.2f}",
                "paper_of_maximum": f"{paper_after / 1000:.1%} of 1000",
            }
        )
        rows.append(row)
    return _frame(rows, cols)


def _fid_sensitivity(fs) -> pd.DataFrame:
    """FID, KID, PRDC and IS of the test digits against the training digits per network (native
    resize), their spread across networks; the paper's IS difference below (it has no FID)."""
    cols = [
        "source",
        "network",
        "fid",
        "kid",
        "precision",
        "recall",
        "density",
        "coverage",
        "is_mean",
    ]
    t = _csv(fs, "table.csv")
    nat = t[t.resize_variant == "native"] if "resize_variant" in t else t
    rows = [
        {
            "source": MEASURED,
            "network": r.backbone_key,
            "fid": _num(r.fid),
            "kid": None if pd.isna(r.kid_mean) else _pm(r.kid_mean, r.kid_std),
            **{m: _num(getattr(r, m)) for m in ("precision", "recall", "density", "coverage")},
            "is_mean": _num(r.is_mean),
        }
        for r in nat.itertuples(index=False)
    ]
    if len(nat) > 1:

        def spread(col):
            v = nat[col].dropna()
            return f"{(v.max() / v.min() - 1) * 100:.1f}%" if len(v) > 1 and v.min() > 0 else None

        rows.append(
            {
                "source": MEASURED,
                "network": "spread: max / min - 1",
                "fid": spread("fid"),
                "is_mean": spread("is_mean"),
            }
        )
    rows = rows or [{"source": MEASURED, "network": "(no run)"}]
    from experiments.weights_sensitivity import PAPER_PAIR_PCT

    pct = PAPER_PAIR_PCT[("IV3 Keras", "IV3 Torch", "cifar10_train")]
    rows.append(
        {
            "source": PAPER_ROW,
            "network": "IV3 Keras vs IV3 Torch, CIFAR-10 train",
            "fid": "(no FID in the paper)",
            "is_mean": f"{pct:.2f}%",
        }
    )
    return _frame(rows, cols)


#: the paper's word on what IS detects, for orientation (it gives no values)
_PAPER_DETECTS = {
    ("is_mean", "memorization"): "no: Section 4.2.3, IS rewards memorization (no values)",
}


def _metric_grid(mp) -> pd.DataFrame:
    """Which corruption each metric detects (yes/no), as the run's ``detects`` table."""
    t = _csv(mp, "detects.csv")
    if not len(t):
        return _frame([{"metric": "(no run)"}], ["metric", "intra_class_collapse", "memorization"])
    return _frame(t.to_dict("records"), list(t.columns))


def _metric_detail(mp) -> pd.DataFrame:
    """IS and FID on intra-class collapse, memorization and mode dropping: the change at the
    strongest corruption in units of the metric's own noise."""
    cols = [
        "corruption",
        "metric",
        "change_at_strongest",
        "noise_std",
        "change_in_noise_units",
        "detects",
        "paper",
    ]
    t = _csv(mp, "detects_detail.csv")
    pick = [
        (c, m)
        for c in ("intra_class_collapse", "memorization", "mode_dropping")
        for m in ("is_mean", "fid")
    ]
    rows = []
    for c, m in pick:
        row = {"corruption": c, "metric": m, "paper": _PAPER_DETECTS.get((m, c))}
        sub = t[(t.corruption == c) & (t.metric == m)] if len(t) else t
        if len(sub):
            r = sub.iloc[0]
            ratio = r.change_at_strongest / r.noise_std if r.noise_std else float("nan")
            row.update(
                {
                    "change_at_strongest": f"{r.change_at_strongest:+.3f}",
                    "noise_std": f"{r.noise_std:.3f}",
                    "change_in_noise_units": f"{ratio:+.1f}",
                    "detects": "yes" if str(r.detects).lower() in ("true", "yes") else "no",
                }
            )
        if len(sub) or not len(t):
            rows.append(row)
    return _frame(rows, cols)


def _metric_properties(mp) -> pd.DataFrame:
    """The run's metric x property table beside Xu et al.'s conclusions, as written."""
    t = _csv(mp, "properties.csv")
    if not len(t):
        return _frame([{"metric": "(no run)"}], ["metric", "mode_collapse", "xu_et_al"])
    return _frame(t.to_dict("records"), list(t.columns))


def _provenance(run_dir) -> dict:
    try:
        return json.loads((Path(run_dir) / "provenance.json").read_text())
    except (OSError, json.JSONDecodeError, TypeError):
        return {}


def _sanity(sn) -> pd.DataFrame:
    """The reporting line, the verdict counts and every check's status and value."""
    cols = ["what", "status", "value"]
    try:
        rep = json.loads((Path(sn) / "report.json").read_text()) if sn else {}
    except (OSError, json.JSONDecodeError):
        rep = {}
    if not rep:
        return _frame([{"what": "reporting line"}], cols)
    s = rep.get("summary") or {}
    counts = f"{s.get('n_pass', 0)} PASS, {s.get('n_warn', 0)} WARN, {s.get('n_fail', 0)} FAIL"
    rows = [
        {"what": "reporting line", "value": rep.get("reporting_line")},
        {"what": "checks", "value": f"{counts} on {s.get('n_samples', '?')} samples"},
    ]
    t = _csv(sn, "table.csv")
    rows += [
        {"what": r.check, "status": r.status, "value": r.value} for r in t.itertuples(index=False)
    ]
    return _frame(rows, cols)


@dataclass(frozen=True)
class DigitsTable:
    name: str
    title: str
    labels: tuple  # the digits items whose runs it reads, in the builder's argument order
    build: object  # (run dir or None, ...) -> DataFrame


DIGITS_TABLES = [
    DigitsTable(
        "digits_table1_is_per_network",
        "Table 1 analogue: IS (mean ± split std) and top-1 of each digits network",
        ("digits_weights_sensitivity",),
        _table1_networks,
    ),
    DigitsTable(
        "digits_table1_differences",
        "Table 1 analogue: pairwise IS differences, in % and in split stds",
        ("digits_weights_sensitivity",),
        _table1_differences,
    ),
    DigitsTable(
        "digits_table2_is_vs_splits",
        "Table 2 analogue: IS against the number of splits at fixed N",
        ("digits_splits",),
        _table2_splits,
    ),
    DigitsTable(
        "digits_table2_is_vs_n",
        "Table 2 analogue: IS (10 splits) and exp S(G) against N",
        ("digits_splits",),
        _table2_n,
    ),
    DigitsTable(
        "digits_ordering",
        "Order: class-sorted vs shuffled test digits, contiguous splits",
        ("digits_ordering",),
        _ordering,
    ),
    DigitsTable(
        "digits_sec423_memorization",
        "Section 4.2.3 analogue: IS rewards memorization",
        ("digits_memorization",),
        _memorization,
    ),
    DigitsTable(
        "digits_sec421_conditional_entropy",
        "Section 4.2.1 analogue: H(y|x) in domain, on noise and out of domain",
        ("digits_beyond_imagenet",),
        _conditional_entropy,
    ),
    DigitsTable(
        "digits_sec422_attack",
        "Section 4.2.2 analogue: FGSM towards the maximum IS, from both starts",
        ("digits_adversarial", "digits_adversarial_noise"),
        _attack,
    ),
    DigitsTable(
        "digits_fid_sensitivity",
        "FID/KID/PRDC and IS of the test digits against the training digits per network",
        ("digits_fid_sensitivity",),
        _fid_sensitivity,
    ),
    DigitsTable(
        "digits_metric_properties",
        "Which corruption each metric detects (|effect| beyond 3x its set-to-set noise)",
        ("digits_metric_properties",),
        _metric_grid,
    ),
    DigitsTable(
        "digits_metric_properties_detail",
        "IS and FID under intra-class collapse, memorization and mode dropping",
        ("digits_metric_properties",),
        _metric_detail,
    ),
    DigitsTable(
        "digits_metric_properties_properties",
        "Metric x property on the digits classifier's features, beside Xu et al. 2018",
        ("digits_metric_properties",),
        _metric_properties,
    ),
    DigitsTable(
        "digits_sanity",
        "Sanity report on the test digits (reference: the training digits)",
        ("digits_sanity",),
        _sanity,
    ),
]


# ------------------------------------------------------------------ smoke runs' tables
#: the paper's rows beside a smoke run's values
PAPER_ROW_INCEPTION = "paper (Barratt & Sharma 2018)"


def _sec421_smoke(bi) -> pd.DataFrame:
    """H(y|x) of every image set of a smoke run per network, the paper's three values below
    (a smoke run's images are rarely the paper's, so nothing is matched by name)."""
    from experiments.beyond_imagenet import PAPER_H_BITS

    names = {**PAPER_DATASETS, "noise": "uniform noise"}
    cols = ["source", "images", "h_y_given_x_bits", "of_maximum"]
    t = _csv(bi, "table.csv")
    key = "backbone_key" if "backbone_key" in t else "backbone"
    rows = []
    for dkey in dict.fromkeys(t.get("dataset_key", [])):
        sub = t[t.dataset_key == dkey]
        mx = float(sub.max_bits.max())
        rows.append(
            {
                "source": SMOKE,
                "images": f"{dkey} ({int(sub.n_samples.iloc[0]):,})",
                "h_y_given_x_bits": "; ".join(
                    f"{b} {v:.3f}" for b, v in zip(sub[key], sub.h_y_given_x_bits)
                ),
                "of_maximum": f"{sub.h_y_given_x_bits.mean() / mx:.1%} of {mx:.2f} bits",
            }
        )
    rows = rows or [{"source": SMOKE, "images": "(no rows)"}]
    paper_max = math.log2(1000)
    rows += [
        {
            "source": PAPER_ROW_INCEPTION,
            "images": names.get(pkey, pkey),
            "h_y_given_x_bits": f"{bits:.3f}",
            "of_maximum": f"{bits / paper_max:.1%} of {paper_max:.2f} bits",
        }
        for pkey, bits in PAPER_H_BITS.items()
    ]
    return _frame(rows, cols)


#: tables whose paper layout matches measured rows to the paper's images and networks by name,
#: which a smoke run (random weights, small or other images) never has: for smoke runs they are
#: drawn as the run's own rows (labelled SMOKE) above the paper's
SMOKE_TABLES = {
    "table1_is_per_network": lambda d: _table1_networks(d, SMOKE, PAPER_ROW_INCEPTION),
    "table1_differences": lambda d: _table1_differences(d, SMOKE, PAPER_ROW_INCEPTION),
    "sec421_conditional_entropy": _sec421_smoke,
}


def smoke_tables(mod, run_dir) -> dict:
    """A smoke run's tables under the real tables' names: its own values, labelled SMOKE (rows
    by source, or ``*_measured`` columns renamed ``*_SMOKE_RUN``)."""
    tables = mod.paper_tables(run_dir) if mod.paper_tables else {}
    out = {}
    for name, df in tables.items():
        if name in SMOKE_TABLES:
            out[name] = SMOKE_TABLES[name](run_dir)
        else:
            out[name] = df.rename(columns=lambda c: str(c).replace("measured", "SMOKE_RUN"))
    return out


# ------------------------------------------------------------------ where the files go
def checkout_root() -> Path | None:
    """The source checkout this module runs from (a git work tree with pyproject.toml), or None
    for an installed copy."""
    root = Path(__file__).resolve().parent.parent
    if (root / "pyproject.toml").is_file() and (root / ".git").exists():
        return root
    return None


def output_dir(cfg, allow_smoke: bool) -> tuple[Path | None, str]:
    """(where the figures go, why): ``paper_figs.out_dir`` when given; the checkout's committed
    ``paper_figs/`` only when run from the checkout (its root or a folder inside it) and without
    smoke runs; otherwise None: this run's own dir (``<output_root>/paper_figs/<timestamp>/``,
    beside its table and provenance; nothing outside it is rewritten)."""
    given = cfg.paper_figs.get("out_dir")
    if given:
        return Path(str(given)).expanduser(), "paper_figs.out_dir"
    root, cwd = checkout_root(), Path.cwd().resolve()
    in_checkout = root is not None and (cwd == root or root in cwd.parents)
    if in_checkout and not allow_smoke:
        return root / "paper_figs", "the checkout's paper_figs/: run from the checkout"
    if in_checkout:
        return None, "allow_smoke=true never rewrites the checkout's paper_figs/"
    return None, "not run from the inception-note checkout"


# ------------------------------------------------------------------ the experiment
def compute(cfg) -> Result:
    root = Path(cfg.output_root)
    runs = finished_runs(root) if root.exists() else {}
    allow = as_bool(cfg.paper_figs.allow_smoke, "paper_figs.allow_smoke")
    chosen = {i.experiment: choose(i, runs.get(i.experiment, []), allow) for i in ITEMS}
    digits = {i.label: digits_choose(i, runs.get(i.experiment, [])) for i in DIGITS_ITEMS}
    rows = [
        {
            "experiment": key,
            "section": i.section,
            "paper": i.paper,
            "source": got[2],
            "why_not_real": got[3],
            "source_run": str(got[0] or ""),
        }
        for i, key, got in [
            *((i, i.experiment, chosen[i.experiment]) for i in ITEMS),
            *((i, i.label, digits[i.label]) for i in DIGITS_ITEMS),
        ]
    ]
    out_dir, why = output_dir(cfg, allow)
    return Result(
        {"table": pd.DataFrame(rows)},
        objects={
            "chosen": chosen,
            "digits": digits,
            "runs": runs,
            "out_dir": out_dir,
            "out_why": why,
            "root": root,
        },
    )


def _write_table(out_dir: Path, name: str, df: pd.DataFrame, caption: str) -> None:
    results.atomic_write_text(
        out_dir / f"{name}.md", f"{caption}\n\n" + results.to_markdown(df) + "\n"
    )
    results.atomic_write_text(out_dir / f"{name}.tex", results.to_latex(df, caption=caption) + "\n")


def _present_digits(digits: dict, out_dir: Path) -> list[str]:
    """Write the digits section's tables and figures; its README rows."""
    import matplotlib.pyplot as plt

    from harness.plotting import paper_style

    real = {label: (got[0] if got[2] == "real" else None) for label, got in digits.items()}
    tables_of: dict = {}
    for spec in DIGITS_TABLES:
        dirs = [real[label] for label in spec.labels]
        missing = [label for label, d in zip(spec.labels, dirs) if d is None]
        note = f" (no digits run of {', '.join(missing)}: {DIGITS_COMMAND})" if missing else ""
        _write_table(out_dir, spec.name, spec.build(*dirs), f"{spec.title}{note}. {DIGITS_NOTE}")
        for label in spec.labels:
            tables_of.setdefault(label, []).append(spec.name)
    lines = []
    for item in DIGITS_ITEMS:
        rdir, rec, kind, why = digits[item.label]
        figs = {}
        if kind == "real" and item.figures:
            names = dict(item.figures)
            with paper_style():
                got = experiment(item.experiment).paper_figures(rdir)
            for key, fig in got.items():
                if key not in names:
                    plt.close(fig)
                    continue
                fig.suptitle(
                    f"{item.paper}\nDigits CNN trained here, not Inception V3 ({item.label})",
                    y=1.0,
                    va="bottom",
                    fontsize=9,
                )
                figs[names[key]] = fig
        elif item.figures:
            figs = {item.figures[0][1]: digits_placeholder_figure(item, why)}
        for name, fig in figs.items():
            results.save_figure(fig, out_dir, name)
        files = ", ".join(f"`{n}`" for n in dict.fromkeys([*figs, *tables_of.get(item.label, [])]))
        if kind == "real":
            src, cmd, sha = f"`{rdir}`", f"`{_argv(rec, item)}`", _sha(rdir)
        else:
            src = f"none: {why}"
            cmd = f"`{DIGITS_COMMAND}` (every digits item), or alone: `{item.command}`"
            sha = "-"
        lines.append(f"| {_cell(item.paper)} | {files} | {cmd} | {sha} | {src} |")
    return lines


def _item_figures(item: Item, mod, rdir, kind: str, why: str) -> dict:
    """The item's figures under its fixed names (:data:`FIGURE_NAMES`): drawn from the run
    (watermarked when a smoke run), a placeholder where there is no run or the run made none."""
    import matplotlib.pyplot as plt

    from harness.plotting import paper_style

    got = {}
    if kind != "none":
        with paper_style():
            got = mod.paper_figures(rdir)
    figs = {}
    for name in item.figures:
        fig = got.pop(name, None)
        if fig is None:
            reason = why if kind == "none" else f"its {kind} run {_shown(rdir)} made no {name}"
            fig = placeholder_figure(item, reason)
        if kind == "smoke":
            watermark(fig, "SMOKE RUN - not a result")
        figs[name] = fig
    for fig in got.values():  # not one of the item's figures (e.g. a simulation's)
        plt.close(fig)
    return figs


def _out_dir(result: Result, run) -> Path:
    """Where the files go (this run's dir unless compute chose one), recorded, printed and
    made."""
    out_dir, why = result.objects["out_dir"], result.objects["out_why"]
    if out_dir is None:
        out_dir, why = run.run_dir, f"this run's dir: {why}"
    result.extra.update({"paper_figs_dir": str(out_dir.resolve()), "paper_figs_dir_reason": why})
    print(
        f"paper_figs: writing into {out_dir.resolve()} ({why}; paper_figs.out_dir=<dir> "
        "chooses another)"
    )
    out_dir.mkdir(parents=True, exist_ok=True)
    return out_dir


def _item_tables(mod, rdir, kind: str) -> dict:
    """The item's tables: from its run (a smoke run's labelled SMOKE), or the paper's numbers
    with measured left empty where there is no run."""
    if kind == "none":  # the paper's numbers, measured left empty
        return mod.paper_tables(None) if mod.paper_tables else {}
    if kind == "smoke":
        return smoke_tables(mod, rdir)
    return mod.paper_tables(rdir) if mod.paper_tables else {}


def _present_item(item: Item, chosen, runs: list, out_dir: Path) -> str:
    """Write the item's figures and tables; its README row."""
    rdir, rec, kind, why = chosen
    mod = experiment(item.experiment)
    figs = _item_figures(item, mod, rdir, kind, why)
    tables = _item_tables(mod, rdir, kind)
    extra = mod.paper_placeholders
    if kind != "real" and extra is not None:  # e.g. the simulated splits beside Table 2
        figs.update(extra(runs, item.command))
    for name, fig in figs.items():
        results.save_figure(fig, out_dir, name)
    note = {"real": "", "smoke": f" ({SMOKE})", "none": f" (no qualifying run: {item.command})"}
    for name, df in tables.items():
        _write_table(out_dir, name, df, f"{item.paper}{note[kind]}")
    files = ", ".join(f"`{n}`" for n in [*figs, *tables])
    src = {
        "real": f"`{rdir}`",
        "smoke": f"`{rdir}` (smoke run: {why})",
        "none": f"none: {why}",
    }[kind]
    cmd = f"`{_argv(rec, item)}`" if rec else f"`{item.command}` (to make it)"
    sha = _sha(rdir) if rdir else "-"
    return f"| {_cell(item.paper)} | {files} | {cmd} | {sha} | {src} |"


def _readme(lines: dict, digits_lines: list[str]) -> str:
    """``README.md``: per section, each item's files and where they come from."""
    head = [
        "| item | files (.png/.pdf, .md/.tex) | command of the source run | weights sha256 "
        "| source run |",
        "|---|---|---|---|---|",
    ]
    readme = [
        "# paper_figs/",
        "",
        "Every table and figure of Barratt & Sharma (2018) beside the paper's values, from real",
        "runs only: `python -m harness +experiment=paper_figs`. An item without a qualifying",
        "run (real weights, the paper's datasets and sizes) is a placeholder naming its command;",
        "`paper_figs.allow_smoke=true` draws smoke runs instead, watermarked. Regenerating from",
        "the same runs leaves these files byte-identical.",
        "",
        "## The paper",
        "",
        *head,
        *lines["paper"],
        "",
        "## The harness's additions",
        "",
        *head,
        *lines["additions"],
        "",
        f"## {DIGITS_HEADING}",
        "",
        "The paper's experiments on the digits CNN trained here (PyTorch seeds 0 and 1, Keras",
        "seed 0; scikit-learn's bundled 8x8 digits), from the real digits runs that",
        f"`{DIGITS_COMMAND}` makes offline (never smoke runs, never watermarked). A digits",
        "classifier, not Inception V3: not the paper's numbers. The paper's values (ImageNet",
        "Inception V3 on CIFAR-10 / ImageNet) stand beside them for orientation only, not as a",
        "comparison of like with like. An item without a run is a placeholder naming its command.",
        "",
        *head,
        *digits_lines,
        "",
    ]
    return "\n".join(readme)


def present(result: Result, run) -> None:
    chosen, runs = result.objects["chosen"], result.objects["runs"]
    out_dir = _out_dir(result, run)
    lines = {"paper": [], "additions": []}
    for item in ITEMS:
        row = _present_item(item, chosen[item.experiment], runs.get(item.experiment, []), out_dir)
        lines[item.section].append(row)
    digits_lines = _present_digits(result.objects["digits"], out_dir)
    results.atomic_write_text(out_dir / "README.md", _readme(lines, digits_lines))
    run.table(
        result.table,
        title=f"paper_figs regenerated into {out_dir}",
        print_columns=["experiment", "source", "why_not_real"],
    )
