"""Experiment ``train_classifier``: the digits CNN trained here, in PyTorch and in Keras.

Real trained weights for the digits replication on any machine, offline
(:mod:`harness.digits_cnn`): one small CNN trained on the ``digits`` train split in PyTorch (one
run per seed in ``seeds``) and, with the same architecture, in Keras (``keras_seed``), from
identical initial weights and the identical batch order, with the same SGD recipe (``train.*``),
deterministically on the CPU: the same command gives byte-identical checkpoints.

Writes each checkpoint into the run dir (torch: state dict ``.pth`` and TorchScript ``.pt``;
keras: ``.keras`` and ``.weights.h5``; plus its record ``<name>.json`` and the test logits) and
keeps them under ``<cache.dir>/trained/digits_cnn/<key>/`` (keyed by the training config, the
data's bytes, the code and the framework versions; checked by sha256 before reuse, so a second
run reuses them instead of training; nothing there with ``cache.enabled=false``).  Tables:
``table`` (one row per file: sha256, weights sha256, train/test accuracy, seconds) and
``agreement`` (logits of every pair of checkpoints on the test split); ``use_weights.txt``
holds the ``backbone=... backbone.weights=file:...`` overrides that score images with them.
Everything is labelled "digits classifier (trained here), not Inception V3".
"""

from __future__ import annotations

import sys
from itertools import combinations
from pathlib import Path

import numpy as np
import pandas as pd

from harness import digits_cnn as D  # light: torch and TensorFlow are imported when used
from harness import settings as S
from harness.errors import ConfigError
from harness.runner import Result

LABEL = D.LABEL
FRAMEWORKS = D.FRAMEWORKS


def _cpu_only(values: dict, prefix: str) -> None:
    if values.get("device") == "cuda":
        raise ConfigError(
            "device=cuda: train_classifier trains on the CPU only (that is what makes its "
            "checkpoints byte-identical); remove device=cuda"
        )


_KERAS = S.When(
    "frameworks", fn=lambda v: "keras" in (v.get("frameworks") or ()), text="frameworks has keras"
)
_TORCH = S.When(
    "frameworks", fn=lambda v: "torch" in (v.get("frameworks") or ()), text="frameworks has torch"
)

SETTINGS = S.ExperimentSettings(
    "Trains the digits CNN in PyTorch and Keras (identical init and batches, deterministic on the "
    "CPU): real trained weights with sha256 and test accuracy, not Inception V3.",
    S.Schema(
        [
            S.Section(
                "train",
                S.Schema(
                    [
                        S.Setting(
                            "epochs",
                            S.Int(lo=1, hi=10_000),
                            D.DEFAULT_TRAIN["epochs"],
                            "passes over the train split",
                        ),
                        S.Setting(
                            "batch_size",
                            S.Int(lo=1, hi=100_000),
                            D.DEFAULT_TRAIN["batch_size"],
                            "images per SGD step (the last batch of an epoch is smaller)",
                        ),
                        S.Setting(
                            "lr",
                            S.Float(lo=0, lo_open=True, hi=10),
                            D.DEFAULT_TRAIN["lr"],
                            "SGD learning rate (constant)",
                        ),
                        S.Setting(
                            "momentum",
                            S.Float(lo=0, hi=1, hi_open=True),
                            D.DEFAULT_TRAIN["momentum"],
                            "heavy-ball momentum (no dampening, no Nesterov), the same update in "
                            "both frameworks",
                        ),
                        S.Setting(
                            "weight_decay",
                            S.Float(lo=0, hi=1),
                            D.DEFAULT_TRAIN["weight_decay"],
                            "L2 added to every gradient (torch SGD's weight_decay; Keras: the "
                            "same, added in the training step)",
                        ),
                    ]
                ),
                "the training recipe, the same in both frameworks",
            ),
            S.Setting(
                "frameworks",
                S.ListOf(S.Choice(FRAMEWORKS), unique=True),
                list(FRAMEWORKS),
                "torch (one run per seed in seeds) and/or keras (one run, keras_seed)",
            ),
            S.Setting(
                "seeds",
                S.ListOf(S.Seed(), unique=True),
                list(D.DEFAULT_SEEDS),
                "PyTorch runs: each seed draws its initial weights and batch order",
                applies=_TORCH,
            ),
            S.Setting(
                "keras_seed",
                S.Seed(),
                D.DEFAULT_KERAS_SEED,
                "the Keras run's seed (0: the initial weights and batches of torch seed 0)",
                applies=_KERAS,
            ),
        ],
        checks=[_cpu_only],
    ),
)


def _plain(node):
    from omegaconf import DictConfig, ListConfig, OmegaConf

    if isinstance(node, (DictConfig, ListConfig)):
        return OmegaConf.to_container(node, resolve=True)
    return node


def compute(cfg) -> Result:
    from harness.inputs import cache_dir_of

    cache_dir = cache_dir_of(cfg)
    train = dict(_plain(cfg.train))
    specs = D.checkpoint_specs(
        _plain(cfg.get("seeds", list(D.DEFAULT_SEEDS))),
        _plain(cfg.get("frameworks", list(FRAMEWORKS))),
        int(cfg.get("keras_seed", D.DEFAULT_KERAS_SEED)),
    )
    trained = []
    for fw, seed in specs:
        if cfg.get("progress", True):
            print(f"[train_classifier] {fw} seed {seed} ...", file=sys.stderr, flush=True)
        got = D.obtain(fw, seed, train, cache_dir)
        r = got.record
        if cfg.get("progress", True):
            how = "reused from the cache" if got.reused else f"trained in {r['seconds']:.1f} s"
            print(
                f"[train_classifier] {got.name}: {how}, test accuracy {r['test_accuracy']:.4f}",
                file=sys.stderr,
                flush=True,
            )
        trained.append(got)
    tables = {"table": _table(trained), "agreement": _agreement(trained)}
    extra = {
        "label": LABEL,
        "checkpoints": {t.name: _summary(t) for t in trained},
        "digits_data": D.data_provenance(),
    }
    return Result(tables, random_weights=False, extra=extra, objects={"trained": trained})


def _summary(t) -> dict:
    """The record without what the table already says per file (kept in <name>.json)."""
    r = t.record
    keep = (
        "framework",
        "seed",
        "init_seed",
        "train",
        "files",
        "weights_sha256",
        "init_weights_sha256",
        "train_accuracy",
        "test_accuracy",
        "seconds",
        "wall_seconds",
        "versions",
        "key",
    )
    out = {k: r.get(k) for k in keep}
    out["reused_from_cache"] = t.reused
    out["cache_entry"] = None if t.entry_dir is None else str(t.entry_dir)
    return out


def _table(trained: list) -> pd.DataFrame:
    rows = []
    for t in trained:
        r = t.record
        v = r["versions"]
        fw_version = (
            f"torch {v.get('torch')}"
            if t.framework == "torch"
            else f"keras {v.get('keras')} / tensorflow {v.get('tensorflow')}"
        )
        for kind, info in r["files"].items():
            rows.append(
                {
                    "checkpoint": t.name,
                    "framework": t.framework,
                    "seed": t.seed,
                    "init_seed": r["init_seed"],
                    "kind": kind,
                    "file": info["file"],
                    "sha256": info["sha256"],
                    "weights_sha256": r["weights_sha256"],
                    "init_weights_sha256": r["init_weights_sha256"],
                    "train_accuracy": r["train_accuracy"],
                    "test_accuracy": r["test_accuracy"],
                    "seconds": r["seconds"],
                    "wall_seconds": r.get("wall_seconds"),
                    "reused_from_cache": t.reused,
                    "epochs": r["train"]["epochs"],
                    "batch_size": r["train"]["batch_size"],
                    "lr": r["train"]["lr"],
                    "momentum": r["train"]["momentum"],
                    "weight_decay": r["train"]["weight_decay"],
                    "framework_version": fw_version,
                    "numpy": v.get("numpy"),
                    "scikit_learn": v.get("scikit-learn"),
                    "n_train": r["data"]["train"]["n"],
                    "n_test": r["data"]["test"]["n"],
                    "train_fingerprint": r["data"]["train"]["fingerprint"],
                    "test_fingerprint": r["data"]["test"]["fingerprint"],
                    "label": LABEL,
                    "random_weights": False,
                }
            )
    return pd.DataFrame(rows)


def _agreement(trained: list) -> pd.DataFrame:
    """Every pair of checkpoints on the same test images: how far their logits are apart."""
    rows = []
    for a, b in combinations(trained, 2):
        la, lb = a.test_logits.astype(np.float64), b.test_logits.astype(np.float64)
        d = np.abs(la - lb)
        rows.append(
            {
                "a": a.name,
                "b": b.name,
                "same_init": a.record["init_weights_sha256"] == b.record["init_weights_sha256"],
                "max_abs_logit_diff": float(d.max()),
                "mean_abs_logit_diff": float(d.mean()),
                "prediction_agreement": float((la.argmax(1) == lb.argmax(1)).mean()),
                "n_test": int(len(la)),
                "label": LABEL,
            }
        )
    return pd.DataFrame(rows)


def present(result: Result, run) -> None:
    from harness.results import atomic_write_bytes, write_json

    trained = result.objects["trained"]
    files = {}
    usage = []
    for t in trained:
        for name, blob in t.files.items():
            files[name] = str(atomic_write_bytes(run.run_dir / name, blob))
        logits = f"digits_cnn_{t.name}_test_logits.npy"
        files[logits] = str(atomic_write_bytes(run.run_dir / logits, D.npy_bytes(t.test_logits)))
        rec_path = write_json(run.run_dir / f"digits_cnn_{t.name}.json", t.record)
        files[rec_path.name] = str(rec_path)
        rec = {
            **t.record,
            "paths": {k: (run.run_dir / i["file"]).resolve() for k, i in t.record["files"].items()},
        }
        usage += [f"# {t.name} (test accuracy {t.record['test_accuracy']:.4f}; {LABEL})"]
        usage += D.usage_lines(rec)
    run.outputs["checkpoints"] = files
    table = result.tables["table"]
    run.table(
        table,
        title=f"{LABEL}: checkpoints",
        notes=[
            "sha256: the file's; weights_sha256: the arrays in the canonical (PyTorch) layout; "
            "the same command gives the same bytes (deterministic CPU training).",
            "seconds: the training loop and its evaluation; wall_seconds: the whole training "
            "(Keras: including the start of its own process, which imports TensorFlow).",
            "Copies under <cache.dir>/trained/digits_cnn/ (reused when their sha256 matches).",
        ],
        print_columns=[
            "framework",
            "seed",
            "file",
            "sha256",
            "weights_sha256",
            "train_accuracy",
            "test_accuracy",
            "seconds",
        ],
    )
    if len(result.tables["agreement"]):
        run.table(
            result.tables["agreement"],
            name="agreement",
            title=f"{LABEL}: logits of each pair on the digits test split",
            print_columns=["a", "b", "same_init", "max_abs_logit_diff", "prediction_agreement"],
        )
    text = "\n".join(usage) + "\n"
    run.text(text, "use_weights.txt")
    print("\nScore images with these checkpoints (python -m harness +experiment=<name> ...):")
    print(text, end="")


def headline(result: Result) -> str:
    t = result.table.drop_duplicates("checkpoint")
    return ", ".join(f"{c} test accuracy {a:.4f}" for c, a in zip(t.checkpoint, t.test_accuracy))


def checkpoint_paths(run_dir) -> dict:
    """``{checkpoint name: {kind: path}}`` of a finished run (for other experiments)."""
    run_dir = Path(run_dir)
    df = pd.read_csv(run_dir / "table.csv")
    out: dict = {}
    for r in df.itertuples():
        out.setdefault(r.checkpoint, {})[r.kind] = run_dir / r.file
    return out
