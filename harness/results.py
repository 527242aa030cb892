"""Writing run outputs: tables (CSV, Markdown, LaTeX), figures (PNG, PDF), provenance JSON.

Every file is written atomically (temporary file in the same directory, then ``os.replace``),
so an interrupted run never leaves a half-written table behind, and a failed write leaves no
temporary file.  A directory that cannot be written (disk full, quota, permissions, read-only
file system, a path under a regular file) is one :class:`~harness.errors.HarnessError` line
naming the path and the fix (:func:`write_error`), not a traceback.  Table columns whose value is
the same in every row (backbone, weights sha256, ddof, ...) are moved out of the Markdown and
LaTeX body into a provenance list under the table; the CSV keeps every column on every row.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

from . import provenance as prov

# the atomic writers live in the bottom layer (harness/atomic_io.py); re-exported here
from .atomic_io import (  # noqa: F401
    WRITE_ERRNOS,
    atomic_path,
    atomic_write_bytes,
    atomic_write_text,
    ensure_dir,
    is_write_error,
    json_text,
    write_error,
    write_json,
)

RANDOM_WEIGHTS_BANNER = "RANDOM WEIGHTS: not a real score (smoke run of the pipeline)"
UNVERIFIED_WEIGHTS_BANNER = (
    "UNVERIFIED WEIGHTS: the weights match no published file; not a citable score"
)
#: weights status (:mod:`harness.backbones.weights`) -> the banner on every output of a run
BANNERS = {"random": RANDOM_WEIGHTS_BANNER, "unverified": UNVERIFIED_WEIGHTS_BANNER}
#: the ``weights_note`` column of a bannered table
NOTES = {"random": "random weights", "unverified": "unverified weights"}


def banner_status(random_weights: bool = False, weights_status: str | None = None) -> str | None:
    """The status whose banner a run's outputs carry: random, unverified, or None (no banner)."""
    if random_weights:
        return "random"
    return weights_status if weights_status in BANNERS else None


def weights_banner(random_weights: bool = False, weights_status: str | None = None) -> str | None:
    """:data:`RANDOM_WEIGHTS_BANNER`, :data:`UNVERIFIED_WEIGHTS_BANNER` or None."""
    return BANNERS.get(banner_status(random_weights, weights_status))


# --------------------------------------------------------------------------- formatting


def _fmt(v, digits: int = 6) -> str:
    if v is None:
        return ""
    if isinstance(v, (float, np.floating)):
        v = float(v) + 0.0  # no "-0"
        if math.isnan(v):
            return "nan"
        if math.isinf(v):
            return "inf" if v > 0 else "-inf"
        if v != 0 and (abs(v) >= 1e6 or abs(v) < 1e-4):
            return f"{v:.{digits - 2}e}"
        return f"{v:.{digits}g}" if abs(v) >= 1e3 else f"{v:.{digits}f}".rstrip("0").rstrip(".")
    if isinstance(v, (bool, np.bool_)):
        return "yes" if v else "no"
    return str(v)


def split_constant_columns(df: pd.DataFrame, keep: list | None = None):
    """Columns that vary (the table body) and a dict of columns constant over all rows."""
    keep = set(keep or [])
    body, const = [], {}
    for c in df.columns:
        vals = df[c].tolist()
        same = len(df) > 1 and all(_fmt(v) == _fmt(vals[0]) for v in vals)
        if same and c not in keep:
            const[c] = vals[0]
        else:
            body.append(c)
    return body, const


def to_markdown(df: pd.DataFrame, digits: int = 6) -> str:
    cols = [str(c) for c in df.columns]
    rows = [[_fmt(v, digits).replace("|", "\\|") for v in r] for r in df.itertuples(index=False)]
    lines = ["| " + " | ".join(cols) + " |", "|" + "|".join("---" for _ in cols) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


_TEX_ESCAPES = {
    "\\": r"\textbackslash{}",
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
}


def tex_escape(s: str) -> str:
    return "".join(_TEX_ESCAPES.get(ch, ch) for ch in str(s))


def to_latex(df: pd.DataFrame, caption: str = "", digits: int = 6) -> str:
    cols = list(df.columns)
    align = "".join("r" if pd.api.types.is_numeric_dtype(df[c]) else "l" for c in cols)
    out = [r"\begin{table}[t]", r"\centering", r"\small"]
    if caption:
        out.append(r"\caption{" + tex_escape(caption) + "}")
    out += [r"\begin{tabular}{" + align + "}", r"\toprule"]
    out.append(" & ".join(tex_escape(c) for c in cols) + r" \\")
    out.append(r"\midrule")
    for r in df.itertuples(index=False):
        out.append(" & ".join(tex_escape(_fmt(v, digits)) for v in r) + r" \\")
    out += [r"\bottomrule", r"\end{tabular}", r"\end{table}"]
    return "\n".join(out) + "\n"


def write_table(
    df: pd.DataFrame,
    run_dir,
    name: str = "table",
    title: str = "",
    notes: list[str] | None = None,
    random_weights: bool = False,
    keep_columns: list | None = None,
    digits: int = 6,
    weights_status: str | None = None,
) -> dict:
    """Write ``<name>.csv``, ``<name>.md`` and ``<name>.tex`` atomically; return their paths.

    ``random_weights`` (or ``weights_status="unverified"``) puts :data:`RANDOM_WEIGHTS_BANNER`
    (:data:`UNVERIFIED_WEIGHTS_BANNER`) into the title of every format and a ``weights_note``
    column into the CSV, so no reader can mistake a smoke run or an unknown network for a result.
    """
    run_dir = Path(run_dir)
    df = df.copy()
    status = banner_status(random_weights, weights_status)
    if status:
        title = f"[{BANNERS[status]}] {title}".strip()
        df["weights_note"] = NOTES[status]
    paths = {}
    with atomic_path(run_dir / f"{name}.csv") as tmp:
        df.to_csv(tmp, index=False, float_format="%.10g")
    paths["csv"] = run_dir / f"{name}.csv"

    body_cols, const = split_constant_columns(df, keep=keep_columns)
    body = df[body_cols] if body_cols else df
    md = []
    if title:
        md.append(f"## {title}\n")
    md.append(to_markdown(body, digits))
    if const:
        md.append("\nSame for every row:\n")
        md += [f"- `{k}`: {_fmt(v, digits)}" for k, v in const.items()]
    if notes:
        md.append("")
        md += [f"> {n}" for n in notes]
    paths["md"] = atomic_write_text(run_dir / f"{name}.md", "\n".join(md) + "\n")

    tex = to_latex(body, caption=title, digits=digits)
    if const or notes:
        extra = [f"% {k}: {_fmt(v, digits)}" for k, v in const.items()] + [
            f"% {n}" for n in notes or []
        ]
        tex = "% Same for every row:\n" + "\n".join(extra) + "\n" + tex
    paths["tex"] = atomic_write_text(run_dir / f"{name}.tex", tex)
    return paths


def print_table(df: pd.DataFrame, title: str = "", columns: list | None = None, digits: int = 5):
    """Print the main table to the terminal (body columns only)."""
    view = df[[c for c in columns if c in df.columns]] if columns else df
    if title:
        print(f"\n{title}")
    with pd.option_context(
        "display.max_columns", None, "display.width", 200, "display.max_colwidth", 60
    ):
        print(view.to_string(index=False, float_format=lambda v: _fmt(v, digits)))


def save_figure(
    fig,
    run_dir,
    name: str,
    random_weights: bool = False,
    dpi: int = 150,
    weights_status: str | None = None,
) -> dict:
    """Save a matplotlib figure as ``<name>.png`` and ``<name>.pdf`` atomically, then close it.

    Random (or unverified) weights put their banner under the axes as a watermark."""
    import matplotlib.pyplot as plt

    banner = weights_banner(random_weights, weights_status)
    if banner:  # below the axes: never over a title or caption
        fig.text(
            0.5,
            -0.01,
            banner,
            ha="center",
            va="top",
            color="crimson",
            fontsize=9,
            weight="bold",
        )
    run_dir = Path(run_dir)
    paths = {}
    try:
        for ext in ("png", "pdf"):
            target = run_dir / f"{name}.{ext}"
            with atomic_path(target) as tmp:
                # no timestamps in the files: the same figure gives the same bytes
                meta = {"CreationDate": None} if ext == "pdf" else {}
                fig.savefig(tmp, format=ext, dpi=dpi, bbox_inches="tight", metadata=meta)
            paths[ext] = target
    finally:
        plt.close(fig)
    return paths


def write_provenance(
    run_dir,
    config: dict,
    extra: dict | None = None,
    started: str | None = None,
    random_weights: bool = False,
    weights_status: str | None = None,
) -> Path:
    """``provenance.json``: config, package versions, git commit, seed, timestamps, host.

    ``weights_note`` is the run's banner (None: none); ``weights_status`` what the networks'
    weights are (random | unverified | verified | trained here | user network; None: no
    network)."""
    record = {
        "weights_note": weights_banner(random_weights, weights_status),
        "weights_status": "random" if random_weights else weights_status,
        "config": config,
        "seed": config.get("seed") if isinstance(config, dict) else None,
        "started": started,
        "finished": prov.now_iso(),
        "packages": prov.package_versions(),
        "git": prov.git_state(),
        "host": prov.host_info(),
    }
    if extra:
        record.update(extra)
    return write_json(Path(run_dir) / "provenance.json", record)
