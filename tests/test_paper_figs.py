"""paper_figs from fake runs with real-looking provenance (issue 17): real runs chosen over
smoke runs, placeholders naming their command, byte-identical regeneration, and every paper
number beside its measured counterpart."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pandas as pd

from harness import api

PAPER_T1 = {
    ("IV2 TF", "cifar10_train"): (11.237, 0.11),
    ("IV3 Torch", "cifar10_train"): (9.737, 0.148),
    ("IV3 Keras", "cifar10_train"): (10.852, 0.181),
    ("IV2 TF", "imagenet_val"): (63.028, 8.311),
    ("IV3 Torch", "imagenet_val"): (63.702, 7.869),
    ("IV3 Keras", "imagenet_val"): (65.938, 8.616),
}
KEYS = {"IV2 TF": "tf2015", "IV3 Torch": "torchvision", "IV3 Keras": "keras"}


def fake_weights_sensitivity(
    root: Path, name: str, finished: str, smoke: bool, offset: float, paper_images: bool = True
):
    d = root / "weights_sensitivity" / name
    d.mkdir(parents=True)
    rows = []
    for (label, ds), (mean, std) in PAPER_T1.items():
        rows.append(
            {
                "backbone": KEYS[label],
                "backbone_key": KEYS[label],
                "paper_label": label,
                "dataset_key": ds,
                # a smoke run's images are rarely the paper's 50,000 (e.g. a synthetic set
                # under the key cifar10_train): no paper dataset, so nothing matches by name
                "paper_dataset": ds if paper_images else None,
                "is_mean": mean + offset,
                "is_std": std,
                "paper_is_mean": mean,
                "paper_is_std": std,
                "top1": 0.75 if ds == "imagenet_val" else None,
                "n_samples": 50000 if paper_images else 24,
                "weights": "random:0" if smoke else "pretrained",
                "weights_sha256": "random:0" if smoke else f"{KEYS[label]}aaaa" + "0" * 50,
            }
        )
    t = pd.DataFrame(rows)
    t.to_csv(d / "table.csv", index=False)
    from experiments.weights_sensitivity import pairwise

    pairwise(t).to_csv(d / "pairwise.csv", index=False)
    argv = [
        "/x/harness/__main__.py",
        "+experiment=weights_sensitivity",
        *(["weights=random:0"] if smoke else []),
        f"hydra.run.dir={d}",
    ]
    rec = {
        "experiment": "weights_sensitivity",
        "finished": finished,
        "config": {},
        "host": {"argv": argv},
        "outputs": {},
    }
    if smoke:
        rec["weights_note"] = "RANDOM WEIGHTS: not a real Inception Score"
    (d / "provenance.json").write_text(json.dumps(rec))
    return d


def tree_bytes(d: Path) -> dict:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(d.iterdir())}


def test_paper_figs_from_fake_runs(tmp_path):
    root = tmp_path / "results"
    real = fake_weights_sensitivity(root, "real", "2026-01-01T00:00:00+00:00", False, 0.5)
    fake_weights_sensitivity(root, "smoke", "2026-06-01T00:00:00+00:00", True, -5.0)  # newer
    # two real offline runs of the harness itself
    api.run_experiment("toy_gaussian", ["toy.mc_samples=2000"], run_dir=root / "toy" / "r")
    api.run_experiment(
        "splits",
        ["source=simulated", "simulated.n=2000", "resamples=2", "sample_sizes=[500,1000]"],
        run_dir=root / "splits" / "sim",
    )
    out = tmp_path / "pf"
    args = [f"output_root={root}", f"paper_figs.out_dir={out}", "progress=false"]
    res = api.run_experiment("paper_figs", args, run_dir=tmp_path / "run1")
    src = res.table.set_index("experiment")
    assert src.loc["weights_sensitivity", "source"] == "real"
    assert src.loc["weights_sensitivity", "source_run"] == str(real)  # not the newer smoke run
    assert src.loc["toy_gaussian", "source"] == "real"
    assert (
        src.loc["splits", "source"] == "none"
        and "source=simulated" in src.loc["splits", "why_not_real"]
    )
    readme = (out / "README.md").read_text()
    # the real run's own command line, its weights hash and dir
    assert "python -m harness +experiment=weights_sensitivity" in readme and str(real) in readme
    assert "tf2015aaaa" in readme
    # placeholders name the command that makes them
    for cmd in (
        "+experiment=beyond_imagenet",
        "attack.n_images=50000",
        "+experiment=splits source=network",
    ):
        assert cmd in readme
    # placeholders under the item's own figure names (the same with or without a run)
    assert (out / "table3_conditional_entropy.png").exists()
    assert (out / "table2_splits.png").exists() and (out / "table2_splits_simulated.png").exists()
    # every paper number beside its measured counterpart (Table 1), paper numbers in placeholders
    t1 = (out / "table1_is_per_network.md").read_text()
    for mean, std in PAPER_T1.values():
        assert f"{mean:.3f} ± {std:.3f}" in t1 and f"{mean + 0.5:.3f} ± {std:.3f}" in t1
    assert "11.45" in (out / "table1_differences.md").read_text()
    t2 = (out / "table2_is_vs_splits.md").read_text()
    assert "9.9147" in t2 and "9.0884" in t2 and "no qualifying run" in t2
    assert "6.512" in (out / "sec421_conditional_entropy.md").read_text()
    assert "986.1" in (out / "sec422_attack.md").read_text()
    assert (out / "table1_is_per_network.tex").exists()
    toy = (out / "sec411_toy.md").read_text()  # the toy run is real: measured beside the paper
    assert "2 (the maximum)" in toy and "1.9674" in toy
    assert "replays training images" in (out / "sec423_memorization.md").read_text()
    # regenerating from the same runs changes no bytes
    before = tree_bytes(out)
    api.run_experiment("paper_figs", args, run_dir=tmp_path / "run2")
    assert tree_bytes(out) == before
    # allow_smoke: the newest run even if smoke, watermarked; placeholders stay where none exist
    res = api.run_experiment(
        "paper_figs", [*args, "paper_figs.allow_smoke=true"], run_dir=tmp_path / "run3"
    )
    assert res.table.set_index("experiment").loc["weights_sensitivity", "source"] == "real"


def test_paper_figs_where_it_writes_stable_names_and_smoke_tables(tmp_path, monkeypatch, capsys):
    """Issue 26: paper_figs wrote ./paper_figs wherever it ran; file names changed with
    allow_smoke=true; a smoke run's Table 1 markdown had an empty measured column while the
    figure showed values."""
    from experiments import paper_figs

    root = tmp_path / "results"
    fake_weights_sensitivity(
        root, "smoke", "2026-06-01T00:00:00+00:00", True, -5.0, paper_images=False
    )
    base = [f"output_root={root}", "progress=false"]
    # run outside any checkout: into the run's own dir, said on stdout and in provenance
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    monkeypatch.setattr(paper_figs, "checkout_root", lambda: None)
    capsys.readouterr()
    res = api.run_experiment("paper_figs", base, run_dir=tmp_path / "r1")
    out = res.run_dir
    assert (out / "README.md").exists() and not (elsewhere / "paper_figs").exists()
    assert list(elsewhere.iterdir()) == []
    assert f"paper_figs: writing into {out.resolve()} (this run's dir" in capsys.readouterr().out
    prov = json.loads((res.run_dir / "provenance.json").read_text())
    assert prov["paper_figs_dir"] == str(out.resolve())
    # the real figure's name, as a placeholder
    assert (out / "table1_weights_sensitivity.png").exists()
    assert not (out / "weights_sensitivity.png").exists()
    names = sorted(p.name for p in out.iterdir() if not p.name.startswith(("table.", "prov")))

    # allow_smoke=true: the same file names; the smoke run's values in the table, labelled
    smoke_out = tmp_path / "smoke_out"
    res = api.run_experiment(
        "paper_figs",
        [*base, f"paper_figs.out_dir={smoke_out}", "paper_figs.allow_smoke=true"],
        run_dir=tmp_path / "r2",
    )
    assert res.table.set_index("experiment").loc["weights_sensitivity", "source"] == "smoke"
    assert sorted(p.name for p in smoke_out.iterdir()) == names  # the same files
    t1 = (smoke_out / "table1_is_per_network.md").read_text()
    assert "SMOKE RUN" in t1
    for mean, std in PAPER_T1.values():
        assert f"{mean - 5.0:.3f} ± {std:.3f}" in t1  # the smoke run's value
        assert f"{mean:.3f} ± {std:.3f}" in t1  # the paper's, beside it
    diffs = (smoke_out / "table1_differences.md").read_text()
    assert "SMOKE RUN" in diffs and "11.45" in diffs

    # in a checkout (here a fake one): its paper_figs/ when run from inside it, never with smoke
    co = tmp_path / "checkout"
    (co / "sub").mkdir(parents=True)
    monkeypatch.setattr(paper_figs, "checkout_root", lambda: co)
    monkeypatch.chdir(co / "sub")
    api.run_experiment("paper_figs", base, run_dir=tmp_path / "r3")
    assert sorted(p.name for p in (co / "paper_figs").iterdir()) == names
    before = tree_bytes(co / "paper_figs")
    capsys.readouterr()
    smoke = [*base, "paper_figs.allow_smoke=true"]
    res = api.run_experiment("paper_figs", smoke, run_dir=tmp_path / "r4")
    assert tree_bytes(co / "paper_figs") == before  # committed files untouched by smoke runs
    assert "allow_smoke=true never rewrites" in capsys.readouterr().out
    assert "SMOKE RUN" in (res.run_dir / "table1_is_per_network.md").read_text()
