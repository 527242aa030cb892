"""Figures: one non-interactive backend, one style for paper_figs/, readable axes."""

from __future__ import annotations

import contextlib


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
