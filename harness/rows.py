"""Provenance columns that go on every result row, and the backbone/dataset loading experiments share."""

from __future__ import annotations

import json

from . import scores
from .errors import MissingInputError


def provenance_columns(net=None, source=None, n_splits=None, order=None, ddof=None, seed=None) -> dict:
    """Backbone, weights sha256, framework versions, preprocessing, classes, bias, split settings,
    sample count, seed, device, dtype: the standard provenance of one result row."""
    row = {}
    if net is not None:
        p = net.provenance()
        row.update({
            "backbone": p["backbone"],
            "weights": p["weights"],
            "weights_sha256": p.get("weights_sha256"),
            "framework_versions": json.dumps(p["framework_versions"], sort_keys=True),
            "resize": p["resize"],
            "value_range": p["value_range"],
            "classes": p["classes"],
            "num_classes": p["num_classes"],
            "bias": p["bias"],
            "device": p["device"],
            "dtype": p["dtype"],
            "input_size": p["input_size"],
        })
        for k in ("transform_input", "keras_backend", "handle", "precision"):
            if k in p:
                row[k] = p[k]
    if source is not None:
        sp = source.provenance()
        row.update({"dataset": sp["dataset"], "dataset_fingerprint": sp["fingerprint"],
                    "n_samples": sp["n_samples"], "order": sp["order"]})
    if n_splits is not None:
        row["n_splits"] = n_splits
        row["split_assignment"] = scores.split_assignment_label(order)
    if ddof is not None:
        row["std_ddof"] = ddof
    if seed is not None:
        row["seed"] = seed
    return row


def score_row(probs, n_splits: int, order=None, ddof: int = 0) -> dict:
    """IS (classic), S(G) and entropies of one probability matrix, float64."""
    prep = scores.prepare(probs)
    r = scores.inception_score(prep, n_splits, order=order, ddof=ddof)
    sg = scores.improved_score(prep)
    return {
        "is_mean": r.mean, "is_std": r.std,
        "sg_nats": sg.nats, "sg_bits": sg.bits, "sg_sem_nats": sg.sem,
        "h_y_given_x_bits": scores.conditional_entropy(prep, 2),
        "h_y_bits": scores.marginal_entropy(prep, 2),
        "underflow_rows": scores.underflow_count(prep.probs),
    }


def load_backbones(specs: dict, device: str | None = None):
    """Load several backbones; collect every missing weights file into one error message.

    ``specs``: name -> backbone config node.  Returns name -> Backbone.
    """
    from . import backbones

    nets, missing = {}, []
    for key, cfg in specs.items():
        try:
            over = {}
            if device is not None and cfg.get("name") == "torchvision":
                over["device"] = device
            nets[key] = backbones.from_config(cfg, **over)
        except MissingInputError as exc:
            missing.append(f"[{key}] {exc}")
    if missing:
        raise MissingInputError(
            f"{len(missing)} backbone(s) lack weights, nothing was computed: " + " | ".join(missing)
            + " | or run with weights=random:<seed> for a labelled smoke run")
    return nets


def any_random(nets) -> bool:
    return any(n.random_weights for n in (nets.values() if isinstance(nets, dict) else nets))
