"""The detection rule of ``metric_properties`` (harness/detection.py, issue 27 item 5), each
piece against an independent computation: Monte Carlo for the rule's false-alarm rate and
power, brute-force loops for exact duplicates, hand-built tables for the verdicts the issue
found wrong."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from experiments import metric_properties as mp
from harness import detection


@pytest.mark.parametrize("dof", [3, 6])
def test_rule_power_matches_a_monte_carlo_of_the_rule(dof):
    """The statement printed under the table: simulate the rule itself (an effect ~ N(delta,
    sigma^2) against a noise estimated from ``dof`` halving differences A - B ~ N(0, 2 sigma^2)
    by set_noise) and count how often it fires."""
    rng = np.random.default_rng(0)
    trials, sigma = 200_000, 1.7
    diffs = rng.normal(0, np.sqrt(2) * sigma, size=(trials, dof))
    noise_hat = np.sqrt(np.mean(diffs**2, axis=1) / 2)  # set_noise, written out
    stated = detection.rule_power(3.0, dof, power_at=5.0)
    for delta, want in (
        (0.0, stated.false_alarm),
        (5.0, stated.power),
        (stated.effect_for_80, 0.8),
    ):
        effect = rng.normal(delta * sigma, sigma, size=trials)
        fired = np.mean(np.abs(effect) > 3.0 * noise_hat)
        se = np.sqrt(want * (1 - want) / trials)
        assert abs(fired - want) < 5 * se + 1e-4, (dof, delta, fired, want)
    assert detection.set_noise(diffs[0]) == pytest.approx(noise_hat[0], rel=1e-12)


def test_duplicate_stats_against_brute_force():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(40, 3))
    x[5] = x[7]
    x[10:14] = x[20]  # x[20] and four copies: each has 4 twins
    got = detection.duplicate_stats(x, k=3)
    twins = np.array([sum(np.array_equal(a, b) for b in x) - 1 for a in x])
    assert got["duplicate_fraction"] == np.mean(twins >= 1) == 7 / 40
    assert got["zero_knn_radius_fraction"] == np.mean(twins >= 3) == 5 / 40
    # the k-NN radius (k=3) of those rows within the set is exactly 0, of no other row
    d = np.sqrt(((x[:, None] - x[None]) ** 2).sum(-1))
    radius = np.sort(d, axis=1)[:, 3]  # column 0 is the row itself
    assert np.array_equal(radius == 0, twins >= 3)
    reason = detection.degenerate_under_duplicates("recall", got, 3)
    assert reason.startswith("12% of the samples have >= 3 exact twins")
    assert detection.degenerate_under_duplicates("fid", got, 3) is None


@pytest.mark.parametrize(
    "metric, before, after, want",
    [
        ("is_mean", 9.0, 8.0, "worse"),
        ("fid", 10.0, 2.0, "better"),
        ("one_nn_accuracy", 0.55, 0.48, "better"),
        ("one_nn_accuracy", 0.5, 0.2, "worse"),
        ("ct", -0.5, -4.0, "worse"),
        ("density", 1.3, 1.0, "better"),
        ("recall", 0.9, 0.9, None),
    ],
)
def test_better_or_worse_follows_each_metrics_ideal(metric, before, after, want):
    assert detection.better_or_worse(metric, before, after) == want


def _table(metric, base, halves, strengths):
    """A long table as metric_properties writes it: uncorrupted rows per seed, halvings, and
    one corruption's rows per strength and seed."""
    rows = [
        {"corruption": mp.UNCORRUPTED, "strength": "none", "seed": s, "metric": metric, "value": v}
        for s, v in enumerate(base)
    ]
    for i, (a, b) in enumerate(halves):
        for half, v in (("half A", a), ("half B", b)):
            rows.append(
                {
                    "corruption": mp.NOISE,
                    "strength": f"{half} #{i % 2}",
                    "seed": i // 2,
                    "metric": metric,
                    "value": v,
                }
            )
    for name, values in strengths.items():
        for s, v in enumerate(values):
            rows.append(
                {
                    "corruption": "intra_class_collapse",
                    "strength": name,
                    "seed": s,
                    "metric": metric,
                    "value": v,
                }
            )
    long = pd.DataFrame(rows)
    long["zero_knn_radius_fraction"] = 0.0
    long["duplicate_fraction"] = 0.0
    return long


def test_a_step_back_does_not_hide_a_large_fall():
    """The issue's IS under collapse: a 0.058 step back against 0.036 noise, while IS falls
    31x its noise at the strongest corruption: detected (worse); the step back is reported as
    ``monotone=False``, not a verdict."""
    d = 0.036 * 2  # halving differences A - B of rms 0.072 -> noise 0.072 / sqrt(2)
    noise = d / np.sqrt(2)
    halves = [(9.0 + d / 2, 9.0 - d / 2), (9.0 - d / 2, 9.0 + d / 2)] * 2
    fall = 31 * noise
    long = _table(
        "is_mean",
        [9.0, 9.0],
        halves,
        {
            "k=20": [9.0 - fall / 2] * 2,
            "k=5": [9.0 - fall / 2 + 0.058] * 2,
            "k=1": [9.0 - fall] * 2,
        },
    )
    row = mp.detects(long).iloc[0]
    assert row.noise_std == pytest.approx(noise) and row.noise_dof == 4
    assert row.effect_in_noise_units == pytest.approx(-31)
    assert row.detects and row.direction == "worse" and not row.monotone
    assert row.first_detected == "k=20"  # 15.5x its noise already


def test_the_baseline_is_the_mean_over_seeds_of_the_seeded_draws():
    """KID's uncorrupted value differs per seed (its subset draw): the baseline is their mean,
    not the first seed's draw (the issue: 4.19 where 20 draws give 0.73 +- 1.56)."""
    base = [4.19, -0.5, -1.5]
    halves = [(0.1, -0.1)] * 6
    long = _table("kid", base, halves, {"k=1": [2.0, 2.2, 1.8]})
    row = mp.detects(long).iloc[0]
    assert row.change_at_strongest == pytest.approx(2.0 - np.mean(base))


def test_sample_efficiency_by_hand():
    """Paired subsets: effect at N = mean over seeds of (corrupted - uncorrupted); noise at N =
    the full-N noise x sqrt(N_full / N); the smallest N from which on every larger N
    separates."""
    rows = []
    for s in (0, 1):
        for size, base, corr in ((200, 10.0, 16.0), (50, 10.0, 13.0)):
            rows.append(
                {
                    "corruption": mp.UNCORRUPTED,
                    "strength": "none",
                    "seed": s,
                    "size": size,
                    "fid": base + s,
                }
            )
            rows.append(
                {
                    "corruption": "mode_dropping",
                    "strength": "m=1",
                    "seed": s,
                    "size": size,
                    "fid": corr + s,
                }
            )
    summary = pd.DataFrame(
        [
            {
                "corruption": "mode_dropping",
                "metric": "fid",
                "change_at_strongest": 8.0,
                "set_noise_std": 1.0,
                "noise_std": 1.0,
                "strongest": "m=1",
            }
        ]
    )
    t = mp.sample_efficiency(pd.DataFrame(rows), summary, n=400, threshold=3.0)
    t = t.set_index("n")
    assert list(t.index) == [400, 200, 50]
    assert t.loc[200, "effect"] == 6.0 and t.loc[200, "noise_std"] == pytest.approx(np.sqrt(2))
    assert t.loc[50, "noise_std"] == pytest.approx(np.sqrt(8))
    assert list(t.separates) == [True, True, False]  # 8 > 3; 6 > 4.24; 3 < 8.49
    assert (t.smallest_n == 200).all()


def test_disagreement_with_xu_et_al():
    both = {"mode_collapse": True, "mode_dropping": True, "memorization": False}
    assert mp._disagreement("mmd2", both) == "fails here: memorization"
    assert mp._disagreement("one_nn_accuracy", dict(both, memorization=True)) == "agrees"
    assert mp._disagreement("is_mean", both) == "agrees (fails memorization)"
    assert mp._disagreement("is_mean", {"mode_dropping": True}).startswith("does well here")
