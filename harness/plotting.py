"""Figures: one non-interactive backend, one style for paper_figs/, readable axes, and titles
that name what a figure shows.

Conventions every experiment's figure follows (checked by ``tests/test_figures.py``):

* the title names the network(s) and the images actually used (:func:`inputs_title`: the source's
  own description, never the config key it was loaded under);
* a legend only where it tells two or more things apart (:func:`legend`);
* "±" for a spread, never "+-";
* categories (backbones, protocols, ...) on the x axis as bars or unconnected markers, never
  joined by lines.
"""

from __future__ import annotations

import contextlib

import numpy as np
import pandas as pd


def subplots(*args, **kwargs):
    """``plt.subplots`` on the Agg backend (figures are only ever written to files)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt.subplots(*args, **kwargs)


def integer_ticks(axis) -> None:
    """Integer tick labels (split numbers, iterations, counts)."""
    from matplotlib.ticker import MaxNLocator

    axis.set_major_locator(MaxNLocator(integer=True))


def legend(ax, handles=None, labels=None, **kwargs):
    """``ax.legend`` only when there are two or more entries (one entry says nothing the axis
    label and title do not); returns the legend or None."""
    if handles is None:
        handles, labels = ax.get_legend_handles_labels()
    old = ax.get_legend()
    if len(handles) < 2:
        if old is not None:
            old.remove()
        return None
    return ax.legend(handles, labels, **kwargs)


def suptitle(fig, text: str, fontsize: float = 10, **kwargs):
    """``fig.suptitle`` wrapped to the figure's width (long titles name networks and images)."""
    import textwrap

    width = max(40, int(fig.get_figwidth() * 120 / fontsize))
    text = textwrap.fill(text, width, break_long_words=False, break_on_hyphens=False)
    return fig.suptitle(text, fontsize=fontsize, **kwargs)


def note_below(ax, text: str, y: float = -0.2) -> None:
    """A small note under an axes (what is said in words instead of drawn as a number)."""
    ax.text(0.01, y, text, transform=ax.transAxes, fontsize=7, va="top", wrap=True)


def defined_ratio(num, den) -> np.ndarray:
    """``num / den`` where a ratio means something (``den > 0`` and ``num >= 0``), NaN elsewhere:
    unbiased KID can be negative, and -0.004 / -0.011 = 0.35 says nothing about either."""
    num = np.asarray(num, dtype=float)
    den = np.asarray(den, dtype=float)
    ok = (den > 0) & (num >= 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(ok, num / np.where(ok, den, 1.0), np.nan)


def _distinct(table: pd.DataFrame, column: str) -> list[str]:
    if column not in table.columns:
        return []
    return [str(v) for v in dict.fromkeys(table[column].dropna())]


def dataset_labels(table: pd.DataFrame) -> list[str]:
    """The images a table's rows were computed on, in words: ``dataset_label`` (the source's own
    description, :func:`harness.rows.dataset_label`); tables written before that column existed
    fall back to the source kind and size."""
    got = _distinct(table, "dataset_label")
    if got:
        return got
    if "dataset" in table.columns:
        n = table["n_samples"] if "n_samples" in table.columns else [None] * len(table)
        return list(
            dict.fromkeys(
                f"{d} ({int(k):,} images)" if k is not None and pd.notna(k) else str(d)
                for d, k in zip(table["dataset"], n)
                if pd.notna(d)
            )
        )
    return []


def inputs_title(table: pd.DataFrame, what: str = "", backbone_column: str = "backbone") -> str:
    """``<what>: <network(s)> on <images>`` from a table's own columns (what was really used)."""
    nets = _distinct(table, backbone_column)
    images = dataset_labels(table)
    on = " on ".join(p for p in (", ".join(nets), ", ".join(images)) if p)
    return f"{what}: {on}" if what and on else (what or on)


@contextlib.contextmanager
def paper_style():
    import matplotlib.pyplot as plt

    with plt.rc_context(
        {
            "font.size": 9,
            "axes.titlesize": 10,
            "axes.labelsize": 9,
            "legend.fontsize": 8,
            "axes.grid": True,
            "grid.alpha": 0.3,
            "axes.spines.top": False,
            "axes.spines.right": False,
            "figure.dpi": 100,
            "savefig.dpi": 200,
            "lines.linewidth": 1.5,
        }
    ):
        yield
