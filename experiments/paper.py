"""Experiment ``paper``: every experiment whose inputs are available, and what is missing for the
rest.

Each sub-experiment runs into ``<run dir>/<label>/`` with its own tables, figures and provenance.
A missing weights file or dataset marks it *skipped* (its directory is not left behind) with the
exact messages (file, hash, where to put it); a user-fixable error marks it *failed* with its
line; anything else is a bug: *failed*, with the traceback in ``<label>_traceback.txt``.
``weights=``, ``device=``, ``seed=`` and ``progress=`` given to ``paper`` are passed on to every
sub-experiment, unless an item names the ones it takes (``passthrough``).  The summary prints
each missing file once, in full.

The digits replication (items with ``section: digits``, labels ``digits_<experiment>``): the
paper's experiments on the digits CNN trained here (:mod:`harness.digits_cnn`: PyTorch seeds 0
and 1, Keras seed 0, trained by the first item and cached) on scikit-learn's bundled digits,
8x8 uniform noise and tiles of scikit-learn's bundled photographs.  They run offline in a few
CPU minutes after the Inception items, take ``seed`` and ``progress`` only (never ``weights=``:
they are real trained weights; never ``device=``: they are sized for the CPU) and are printed
in their own section of the summary: a digits classifier, not Inception V3, and not the
paper's numbers.
"""

from __future__ import annotations

import time
import traceback

import pandas as pd

from harness import config
from harness import settings as S
from harness.api import compose, run_with_config
from harness.errors import ConfigError, HarnessError, MissingInputError
from harness.experiment_registry import experiment
from harness.runner import Result

#: what ``paper`` can pass on to a sub-experiment (an item's ``passthrough`` chooses among them)
PASSTHROUGH = ("seed", "device", "progress", "weights")
ITEM_KEYS = ("name", "label", "overrides", "passthrough", "section")
#: summary sections: items without ``section`` come first, under the main heading
SECTIONS = {
    "digits": "Reproduced on a trained digits classifier (the digits CNN trained here on "
    "scikit-learn's digits; not Inception V3, not the paper's numbers)",
}

# ---- the digits replication's items (harness.digits_cnn; docs: README "Reproduced on a trained
# digits classifier")
_DIGITS_OWN = ["seed", "progress"]  # real trained weights, sized for the CPU: no weights/device
_TEST = ["dataset=digits", "dataset.split=test"]
_TEST_AT = "+dataset@datasets.digits_test=digits"
_TEST_SPLIT = "datasets.digits_test.split=test"
_NOISE8 = ["datasets.noise.size=8", "datasets.noise.count=539"]  # as many as the test digits
_TILES = ["+dataset@datasets.photo_tiles=photo_tiles", "datasets.photo_tiles.count=120"]
_REFERENCE = ["dataset@reference=digits", "reference.split=train"]
_INCEPTION4 = ["tf2015", "torchvision", "keras", "tfhub"]
#: metric_properties on the test digits against the training digits, in the classifier's
#: features and in pixel space alike
_CORRUPTED_DIGITS = [
    *_TEST,
    *_REFERENCE,
    "n=null",
    "kid.subset_size=auto",
    "corruptions.intra_class_collapse=[5,1]",
    "corruptions.mode_dropping=[5,1]",
    "corruptions.memorization=[0.5,1.0]",
    "corruptions.memorization_jittered=[]",
    "corruptions.noise=[0.5]",
    "corruptions.shift=[1]",
    "corruptions.rotate=[5,15]",
    "corruptions.jpeg=[]",
    "corruptions.blur=[1.5]",
    "corruptions.sample_size=[200]",
]


def _digits(name: str, overrides: list, label: str | None = None) -> dict:
    return {
        "name": name,
        "label": label or f"digits_{name}",
        "overrides": overrides,
        "passthrough": _DIGITS_OWN,
        "section": "digits",
    }


def _three(node: str, inception=_INCEPTION4) -> list:
    """The three digits CNNs under ``node`` (keras, pytorch, pytorch_seed1) in place of the
    Inception networks the experiment has there (``keras`` is swapped in place)."""
    drop = [f"~{node}.{k}" for k in inception if k != "keras"]
    return [
        *drop,
        f"backbone@{node}.keras=digits_keras",
        f"+backbone@{node}.pytorch=digits_torch",
        f"+backbone@{node}.pytorch_seed1=digits_torch_s1",
    ]


DIGITS_ITEMS = [
    _digits("train_classifier", []),
    _digits(
        "weights_sensitivity",
        [
            *_three("backbones"),
            "~datasets.cifar10_train",
            "~datasets.imagenet_val",
            _TEST_AT,
            _TEST_SPLIT,
            "+dataset@datasets.noise=noise",
            *_NOISE8,
            *_TILES,
        ],
    ),
    _digits(
        "splits",
        [
            "backbone=digits_torch",
            *_TEST,
            "n_splits=[1,2,5,10,20,50]",
            "sample_sizes=[100,200,400]",
        ],
    ),
    _digits(
        "ordering",
        [
            "~backbones.torchvision",
            "+backbone@backbones.pytorch=digits_torch",
            "~datasets.imagenet_val",
            _TEST_AT,
            _TEST_SPLIT,
            "datasets.digits_test.arrangement=class_sorted",
        ],
    ),
    _digits(
        "memorization",
        [
            "~backbones.torchvision",
            "+backbone@backbones.pytorch=digits_torch",
            "dataset@datasets.train=digits",
            "dataset@datasets.heldout=digits",
            "datasets.heldout.split=test",
            "replay_sizes=[10,100,1258]",
            "n_samples=539",
            "kid.subset_size=auto",
        ],
    ),
    _digits(
        "beyond_imagenet",
        [
            *_three("backbones"),
            "~datasets.cifar10_train",
            "~datasets.imagenet_val",
            *_NOISE8,
            _TEST_AT,
            _TEST_SPLIT,
            *_TILES,
            "top_classes_dataset=photo_tiles",
        ],
    ),
    _digits(
        "adversarial",
        ["backbone=digits_torch", *_TEST, "~dataset.count", "attack.n_images=100"],
    ),
    _digits(
        "adversarial",
        ["backbone=digits_torch", "dataset.size=8", "attack.n_images=100"],
        label="digits_adversarial_noise",
    ),
    _digits(
        "fid_sensitivity",
        [
            *_three("backbones", ("tf2015", "tf2015_torch", "torchvision", "keras", "tfhub")),
            *_TEST,
            *_REFERENCE,
            "resizes=[]",
            "kid.subset_size=auto",
        ],
    ),
    _digits(
        "metric_properties",
        [
            "backbone=digits_torch",
            *_CORRUPTED_DIGITS,
        ],
    ),
    # Xu et al.'s comparison in pixel space (the 8x8 digits' own pixels as features)
    _digits(
        "metric_properties",
        [
            "backbone=pixels",
            "backbone.channels=1",  # the digits are grey: 64 pixel features, not 3 x 64
            *_CORRUPTED_DIGITS,
        ],
        "digits_metric_properties_pixels",
    ),
    _digits(
        "sanity",
        [
            "backbone=digits_torch",
            *_TEST,
            "+dataset@reference=digits",
            "reference.split=train",
            "~other_backbones.tf2015",
            "~other_backbones.torchvision",
            "~other_backbones.tfhub",
            "backbone@other_backbones.keras=digits_keras",
            "+backbone@other_backbones.pytorch_seed1=digits_torch_s1",
        ],
    ),
]


def _check_items(values: dict, prefix: str) -> None:
    """Each item of ``paper.experiments``: known keys, a name, a passthrough from
    :data:`PASSTHROUGH`, a section from :data:`SECTIONS`, labels unique (each is a folder)."""
    items = ((values.get("paper") or {}).get("experiments")) or []
    where = f"{prefix}paper.experiments"
    labels = []
    for i, item in enumerate(items):
        at = f"{where}[{i}]"
        if not isinstance(item, dict) or not item.get("name"):
            raise ConfigError(f"{at} must be a mapping with a name, e.g. {{name: splits}}")
        bad = [k for k in item if k not in ITEM_KEYS]
        if bad:
            raise ConfigError(f"{at}: unknown key {bad[0]!r}; valid: {', '.join(ITEM_KEYS)}")
        over = item.get("overrides")
        if over is not None and not isinstance(over, (list, tuple)):
            raise ConfigError(f"{at}.overrides must be a list of key=value strings")
        passed = item.get("passthrough")
        if passed is not None:
            if not isinstance(passed, (list, tuple)) or any(p not in PASSTHROUGH for p in passed):
                raise ConfigError(
                    f"{at}.passthrough={passed!r}: a list of {', '.join(PASSTHROUGH)}"
                )
        if item.get("section") is not None and item["section"] not in SECTIONS:
            raise ConfigError(
                f"{at}.section={item['section']!r}: one of {', '.join(SECTIONS)} (or none)"
            )
        labels.append(item.get("label") or item["name"])
    dup = sorted({lab for lab in labels if labels.count(lab) > 1})
    if dup:
        raise ConfigError(f"{where}: label {dup[0]!r} is used twice; give each run its own label")


SETTINGS = S.ExperimentSettings(
    "Everything: runs each experiment whose inputs are available and explains exactly what is "
    "missing.",
    S.Schema(
        [
            config.weights_override(
                "passed to every network experiment (e.g. random:0: all run on random weights, "
                "labelled)"
            ),
            S.Section(
                "paper",
                S.Schema(
                    [
                        S.Setting(
                            "experiments",
                            S.AnyList(),
                            [
                                {"name": "toy_gaussian"},
                                {
                                    "name": "splits",
                                    "label": "splits_simulated",
                                    "overrides": ["source=simulated"],
                                },
                                {"name": "splits", "label": "splits_network"},
                                {"name": "weights_sensitivity"},
                                {"name": "beyond_imagenet"},
                                {"name": "ordering"},
                                {"name": "memorization"},
                                {"name": "implementation_vs_weights"},
                                {"name": "adversarial"},
                                *DIGITS_ITEMS,
                            ],
                            "the runs: name, label, overrides, passthrough (of seed, device, "
                            "progress, weights; default all), section (digits)",
                        )
                    ]
                ),
            ),
        ],
        checks=[_check_items],
    ),
)


def _passthrough(cfg, keys=PASSTHROUGH) -> list[str]:
    """The run-wide settings of ``paper`` passed on to one sub-experiment (``keys`` of
    :data:`PASSTHROUGH`; ``weights`` only when given)."""
    out = []
    if "seed" in keys:
        out.append(f"seed={cfg.seed}")
    if "device" in keys:
        out.append(f"device={cfg.device}")
    if "progress" in keys:
        out.append(f"progress={str(bool(cfg.get('progress', True))).lower()}")
    if "weights" in keys and cfg.get("weights"):
        out.append(f"weights={cfg.weights}")
    return out


def _item_passthrough(item, cfg) -> list[str]:
    keys = item.get("passthrough")
    if keys is not None:
        return _passthrough(cfg, tuple(keys))
    if item.name == "toy_gaussian":  # no network, no progress bar: the seed only
        return _passthrough(cfg, ("seed",))
    return _passthrough(cfg)


def compute(cfg) -> Result:
    return Result({}, objects={"cfg": cfg})


def present(result: Result, run) -> None:
    """Sub-runs write into this run's directory, so they happen here, in order."""
    cfg = result.objects["cfg"]
    rows, missing = [], {}
    for item in cfg.paper.experiments:
        name, label = item.name, item.get("label") or item.name
        overrides = list(item.get("overrides") or []) + _item_passthrough(item, cfg)
        t0 = time.perf_counter()
        status, detail, sub_dir, needs = "ran", "", run.run_dir / label, []
        print(f"\n=== {label} ===", flush=True)
        try:
            sub = run_with_config(compose(name, overrides), sub_dir)
            headline = experiment(name).headline
            detail = headline(sub.result) if headline else f"{len(sub.table)} rows"
        except MissingInputError as exc:
            status = "skipped"
            for item_msg in exc.items:
                missing.setdefault(item_msg, []).append(label)
                needs.append(list(missing).index(item_msg) + 1)
            detail = "needs " + ", ".join(f"[{i}]" for i in needs)
            print(f"skipped: {detail}", flush=True)
        except HarnessError as exc:
            status, detail = "failed", str(exc)
            print(f"failed: {detail}", flush=True)
        except Exception as exc:  # a bug: say so, keep going, keep the traceback
            status, detail = "failed", f"{type(exc).__name__}: {exc} (a bug)"
            run.text(traceback.format_exc(), f"{label}_traceback.txt")
            print(f"failed (traceback in {label}_traceback.txt): {detail}", flush=True)
        rows.append(
            {
                "experiment": label,
                "section": item.get("section") or "",
                "status": status,
                "seconds": round(time.perf_counter() - t0, 1),
                "run_dir": str(sub_dir) if status == "ran" else "",
                "detail": detail,
                "overrides": " ".join(overrides),
            }
        )
    table = pd.DataFrame(rows)
    run.table(table, title="paper: what ran, and exactly what is missing for the rest", quiet=True)
    if missing:
        miss = pd.DataFrame(
            [
                {"item": i, "missing": m, "needed_by": ", ".join(labels)}
                for i, (m, labels) in enumerate(missing.items(), 1)
            ]
        )
        run.table(miss, name="missing", title="Missing inputs (each once)", quiet=True)
    print_summary(table, missing)


def print_summary(table: pd.DataFrame, missing: dict) -> None:
    """One line per experiment (each section under its heading, with its total time), then every
    missing input once, unbroken (URLs stay whole)."""
    print(
        "\n" + "=" * 80 + "\npaper: what ran, and exactly what is missing for the rest\n" + "=" * 80
    )
    sections = table["section"] if "section" in table else pd.Series([""] * len(table))
    for section in dict.fromkeys(["", *sections]):
        part = table[sections.to_numpy() == section]
        if not len(part):
            continue
        if section:
            print(f"\n{SECTIONS.get(section, section)}:")
        for r in part.itertuples(index=False):
            print(f"{r.experiment:<26} {r.status:<8} {r.seconds:>7.1f} s  {r.detail}")
        if section:
            ran = int((part.status == "ran").sum())
            print(f"({section}: {ran} of {len(part)} ran, {part.seconds.sum():.1f} s in all)")
    if missing:
        print("\nMissing inputs (each needed by the experiments named):")
        for i, (msg, labels) in enumerate(missing.items(), 1):
            print(f"[{i}] ({', '.join(labels)}) {msg}")
