"""When a metric "detects" a change: an effect size against measured set-to-set noise.

Arrays and numbers only (no experiment, no network): ``metric_properties`` feeds it its rows.

* **Noise** of a metric at N samples: how far two independent real sets of N samples differ.
  Measured on disjoint random halves of the real set (each halving a pair A, B of N/2
  samples, redrawn per seed and resample, every draw with its own seed): the difference of two
  N-sets has standard deviation ``rms(A - B) / sqrt(2)`` when the metric's spread falls as
  1/sqrt(N) (:func:`set_noise`).  ``A - B`` has mean 0 by symmetry, so the root mean square has
  as many degrees of freedom as there are halvings.
* **Effect** of a corruption: the mean over seeds of the corrupted value minus the mean over
  the same seeds of the uncorrupted value (each seed's own random draws, e.g. KID's subsets).
* **Rule**: detected when ``|effect| > threshold x noise``; the direction (better / worse) is
  read from what the metric calls better (:data:`ORIENTATION`).  Under the null (the change is
  no larger than replacing the real set by another real set of the same size) the rule fires
  with probability ``P(|t_dof| > threshold)``; :func:`rule_power` states it and the power.
* **Degenerate estimators**: k-NN radii of exactly duplicated rows are 0, so recall (the
  samples' own radii) counts nothing inside them, and a leave-one-out 1-NN decision about a
  duplicated row is its twin's (:func:`duplicate_stats`, :func:`degenerate_under_duplicates`).

>>> round(set_noise(np.array([1.0, -1.0, 1.0, -1.0])), 4)   # rms 1 -> 1/sqrt(2)
0.7071
>>> better_or_worse("fid", 10.0, 12.0), better_or_worse("one_nn_accuracy", 0.5, 0.8)
('worse', 'worse')
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

__all__ = [
    "ORIENTATION",
    "set_noise",
    "contrast_noise",
    "effect_in_noise_units",
    "better_or_worse",
    "RulePower",
    "rule_power",
    "duplicate_stats",
    "degenerate_under_duplicates",
]

#: how each metric names "better": ("higher",), ("lower",) or ("closer_to", target)
ORIENTATION = {
    "is_mean": ("higher",),
    "sg_nats": ("higher",),
    "is_inf": ("higher",),
    "mode_score": ("higher",),
    "fid": ("lower",),
    "kid": ("lower",),
    "fid_inf": ("lower",),
    "mmd2": ("lower",),
    "w1": ("lower",),
    "precision": ("higher",),
    "recall": ("higher",),
    "density": ("closer_to", 1.0),
    "coverage": ("higher",),
    "one_nn_accuracy": ("closer_to", 0.5),
    "ct": ("closer_to", 0.0),
    "authenticity": ("higher",),
    "cmmd": ("lower",),
}


def set_noise(halves_differences) -> float:
    """Standard deviation of a metric's difference between two independent real sets of N
    samples, from the differences ``A - B`` of disjoint N/2 halves (NaN when none is finite).

    Each ``A - B`` has variance ``2 s^2(N/2) = 4 s^2(N)`` under 1/sqrt(N) scaling; two N-sets
    differ with variance ``2 s^2(N)``, i.e. ``mean((A - B)^2) / 2``.
    """
    d = np.asarray(halves_differences, dtype=np.float64)
    d = d[np.isfinite(d)]
    if not len(d):
        return float("nan")
    return float(np.sqrt(np.mean(d * d) / 2.0))


def contrast_noise(base_contrasts) -> float:
    """Standard deviation of the difference of two contrasts (each a metric against one
    reference half minus against the other), from the uncorrupted set's contrasts (mean 0 by
    symmetry): ``sqrt(2 mean(c^2))``."""
    c = np.asarray(base_contrasts, dtype=np.float64)
    c = c[np.isfinite(c)]
    if not len(c):
        return float("nan")
    return float(np.sqrt(2.0 * np.mean(c * c)))


def better_or_worse(metric: str, before: float, after: float) -> str | None:
    """``'better'`` / ``'worse'`` / ``None`` (no change, or a metric without an orientation)."""
    how = ORIENTATION.get(metric)
    if how is None or not (np.isfinite(before) and np.isfinite(after)) or before == after:
        return None
    if how[0] == "higher":
        gain = after - before
    elif how[0] == "lower":
        gain = before - after
    else:
        gain = abs(before - how[1]) - abs(after - how[1])
    return None if gain == 0 else "better" if gain > 0 else "worse"


@dataclass(frozen=True)
class RulePower:
    threshold: float
    dof: int
    false_alarm: float  # P(|t_dof| > threshold): a change no larger than set-to-set variation
    power_at: float  # an effect of this many noise units ...
    power: float  # ... is detected with this probability
    effect_for_80: float  # the effect (noise units) detected with probability 0.8

    def text(self) -> str:
        return (
            f"threshold {self.threshold:g} x noise, noise from {self.dof} halvings: a change "
            f"within the noise (no effect beyond set-to-set variation) is called detected with "
            f"probability {self.false_alarm:.3g}; an effect of "
            f"{self.power_at:g} x noise is detected with probability {self.power:.2f}, and "
            f"one of {self.effect_for_80:.2f} x noise with probability 0.80"
        )


def rule_power(threshold: float, dof: int, power_at: float = 5.0) -> RulePower:
    """The rule's false-alarm rate and power with the noise estimated from ``dof`` halvings.

    The effect's statistic is ``effect / noise_hat`` with ``noise_hat^2 ~ noise^2 chi2_dof /
    dof``: Student's t under the null, non-central t (non-centrality = the effect in noise
    units) otherwise.
    """
    from scipy import optimize, stats

    dof, threshold = int(dof), float(threshold)
    if dof < 1:
        nan = float("nan")
        return RulePower(threshold, dof, nan, power_at, nan, nan)

    def power(delta: float) -> float:
        nct = stats.nct(dof, delta)
        # scipy's far tail of the non-central t can be NaN where it is below 1e-17
        lower = float(nct.cdf(-threshold))
        return float(nct.sf(threshold)) + (lower if np.isfinite(lower) else 0.0)

    false_alarm = float(2 * stats.t.sf(threshold, dof))
    hi = threshold + 1.0
    while power(hi) < 0.8:
        hi *= 2
    eff80 = float(optimize.brentq(lambda d: power(d) - 0.8, 0.0, hi, xtol=1e-6))
    return RulePower(threshold, dof, false_alarm, float(power_at), power(power_at), eff80)


def duplicate_stats(features, k: int) -> dict:
    """Exact duplicates among the rows of ``features``: the fraction of rows that have a twin,
    and the fraction with at least ``k`` twins (their k-NN radius within the set is 0)."""
    x = np.ascontiguousarray(np.asarray(features))
    if x.ndim != 2 or not len(x):
        return {"duplicate_fraction": float("nan"), "zero_knn_radius_fraction": float("nan")}
    rows = x.view(np.dtype((np.void, x.dtype.itemsize * x.shape[1]))).ravel()
    _, inverse, counts = np.unique(rows, return_inverse=True, return_counts=True)
    copies = counts[inverse.ravel()] - 1  # twins of each row
    return {
        "duplicate_fraction": float(np.mean(copies >= 1)),
        "zero_knn_radius_fraction": float(np.mean(copies >= int(k))),
    }


def degenerate_under_duplicates(metric: str, stats_: dict, k_recall: int) -> str | None:
    """Why an estimator's value on a set with exact duplicates is an artefact of them (None
    when it is not)."""
    if metric == "recall" and stats_.get("zero_knn_radius_fraction", 0) > 0:
        share = stats_["zero_knn_radius_fraction"]
        return (
            f"{share:.0%} of the samples have >= {k_recall} exact twins: their "
            f"{k_recall}-NN radius is 0, so no reference row falls inside it"
        )
    if metric == "one_nn_accuracy" and stats_.get("duplicate_fraction", 0) > 0:
        share = stats_["duplicate_fraction"]
        return (
            f"{share:.0%} of the samples have an exact twin: a twin is its nearest "
            "neighbour (distance 0), so its leave-one-out label is its twin's"
        )
    return None


def effect_in_noise_units(effect: float, noise: float) -> float:
    """``effect / noise``; 0 for no effect; +-inf for an effect against zero noise."""
    if not np.isfinite(effect) or not np.isfinite(noise):
        return float("nan")
    if effect == 0:
        return 0.0
    return effect / noise if noise > 0 else math.copysign(math.inf, effect)
