"""What goes on every result row: the scores of one probability matrix and their provenance."""

from __future__ import annotations

import json
from pathlib import Path

from . import scores

#: provenance keys a backbone may add beyond the standard ones
_OPTIONAL_BACKBONE_KEYS = ("transform_input", "keras_backend", "handle", "precision", "pool_compat")


def dataset_label(src) -> str:
    """What a source really holds, in words: its kind, what tells it apart (a folder's or file's
    name, a split, a callable) and its size, e.g. ``folder samples (300 images)``.

    Tables and figure titles name a source by this, never by the config key it was loaded under
    (``datasets.cifar10_train`` may hold any folder); the key keeps its own column.
    """
    kind = str(getattr(src, "kind", type(src).__name__))
    detail = None
    if kind == "folder" and getattr(src, "root", None) is not None:
        root = Path(src.root)
        detail = root.name or str(root)
    elif getattr(src, "path", None) is not None:  # arrays: the file
        detail = Path(src.path).name
    elif kind == "generator" and getattr(src, "spec", None):
        detail = str(src.spec)
    elif getattr(src, "split", None) is not None:  # cifar10 train/test, digits train/test
        detail = str(src.split)
    return f"{kind}{f' {detail}' if detail else ''} ({len(src):,} images)"


def provenance_columns(
    net=None, source=None, splits: scores.SplitSpec | None = None, seed=None
) -> dict:
    """Backbone, weights sha256, framework versions, preprocessing, classes, bias, split
    convention and shuffle, ddof, sample count, seed, device, dtype: one row's provenance."""
    row = {}
    if net is not None:
        p = net.provenance()
        row.update(
            {
                "backbone": p["backbone"],
                "weights": p["weights"],
                "weights_sha256": p.get("weights_sha256"),
                # random | unverified | verified | trained here | user network, and the
                # published file verified weights are
                "weights_status": p.get("weights_status"),
                "weights_name": p.get("weights_name"),
                "framework_versions": json.dumps(p["framework_versions"], sort_keys=True),
                "resize": p["resize"],
                "value_range": p["value_range"],
                "classes": p.get("classes"),  # an ImageNet network's class selection
                "num_classes": p["num_classes"],
                "bias": p.get("bias"),
                "device": p["device"],
                "dtype": p["dtype"],
                "input_size": p["input_size"],
            }
        )
        for k in _OPTIONAL_BACKBONE_KEYS:
            if k in p:
                # "precision" is also a metric (precision/recall): the CUDA knob gets its own name
                row["compute_precision" if k == "precision" else k] = p[k]
    if source is not None:
        sp = source.provenance()
        row.update(
            {
                "dataset": sp["dataset"],
                "dataset_label": dataset_label(source),
                "dataset_fingerprint": sp["fingerprint"],
                "n_samples": sp["n_samples"],
                "order": sp["order"],
            }
        )
    if splits is not None:
        if source is not None and len(source) >= splits.n_splits:
            row.update(splits.used(len(source)))  # the splits used, not only those asked for
        else:
            row["n_splits"] = splits.n_splits
        row.update(splits.provenance())
    if seed is not None:
        row["seed"] = seed
    return row


def score_row(probs, splits: scores.SplitSpec) -> dict:
    """IS (classic, under ``splits``), S(G) and entropies of one probability matrix, float64."""
    prep = scores.prepare(probs)
    r = scores.inception_score(prep, splits=splits)
    sg = scores.improved_score(prep)
    return {
        "is_mean": r.mean,
        "is_std": r.std,
        "sg_nats": sg.nats,
        "sg_bits": sg.bits,
        "sg_sem_nats": sg.sem,
        "h_y_given_x_bits": scores.conditional_entropy(prep, 2),
        "h_y_bits": scores.marginal_entropy(prep, 2),
        "underflow_rows": scores.underflow_count(prep.probs),
    }
