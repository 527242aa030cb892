"""One figure style for everything under paper_figs/."""

from __future__ import annotations

import contextlib


@contextlib.contextmanager
def paper_style():
    import matplotlib.pyplot as plt

    with plt.rc_context({
        "font.size": 9, "axes.titlesize": 10, "axes.labelsize": 9, "legend.fontsize": 8,
        "axes.grid": True, "grid.alpha": 0.3, "axes.spines.top": False, "axes.spines.right": False,
        "figure.dpi": 100, "savefig.dpi": 200, "lines.linewidth": 1.5,
    }):
        yield
