"""Run dirs and the command line (issue 24): no setting deletes a user's files, a replaced run
is replaced only once the new one has finished, and paths that cannot be written are one line.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from harness import cli

from .fixtures import write_pngs

TOY = ["+experiment=toy_gaussian", "toy.mc_samples=2000", "progress=false"]
SIM = [
    "+experiment=splits",
    "source=simulated",
    "simulated.n=400",
    "simulated.num_classes=20",
    "n_splits=[1,2]",
    "sample_sizes=[100,200]",
    "resamples=2",
    "progress=false",
]


def _run(capsys, *args) -> tuple[int, str]:
    capsys.readouterr()
    try:
        cli.main(list(args))
        code = 0
    except SystemExit as exc:
        code = exc.code
    return code, capsys.readouterr().err


def _snapshot(d: Path) -> dict:
    return {
        p.relative_to(d).as_posix(): p.read_bytes() for p in sorted(d.rglob("*")) if p.is_file()
    }


def test_overwrite_never_empties_a_directory_the_harness_did_not_make(tmp_path, capsys):
    """`hydra.run.dir=imgs overwrite=true dataset.root=imgs` deleted 24 PNGs and a notes file."""
    imgs = tmp_path / "imgs"
    write_pngs(imgs, n=6)
    (imgs / "notes.txt").write_text("my notes")
    before = _snapshot(imgs)
    code, err = _run(
        capsys,
        "+experiment=sanity",
        "dataset=folder",
        f"dataset.root={imgs}",
        f"hydra.run.dir={imgs}",
        "overwrite=true",
        "weights=random:0",
    )
    assert code == 2 and err.count("\n") == 1, err
    assert "lies inside hydra.run.dir" in err or "made by inception-note" in err
    assert _snapshot(imgs) == before
    # the same without the inputs inside: still not a harness dir
    other = tmp_path / "elsewhere"
    other.mkdir()
    (other / "thesis.tex").write_text("chapter 1")
    code, err = _run(capsys, *TOY, f"hydra.run.dir={other}", "overwrite=true")
    assert code == 2 and "replaces only a run dir made by inception-note" in err, err
    assert (other / "thesis.tex").read_text() == "chapter 1"
    assert sorted(p.name for p in other.iterdir()) == ["thesis.tex"]


def test_a_failed_overwrite_keeps_the_old_results(tmp_path, capsys):
    """A new run that fails (here: more splits than samples, found only at run time) used to
    delete the old results first, then compute nothing."""
    run = tmp_path / "run"
    code, err = _run(capsys, *SIM, f"hydra.run.dir={run}")
    assert code == 0, err
    old = _snapshot(run)
    assert "table.csv" in old
    code, err = _run(
        capsys,
        *SIM[:-3],
        "n_splits=[500]",
        "sample_sizes=[100]",
        f"hydra.run.dir={run}",
        "overwrite=true",
        "progress=false",
    )
    assert code == 2 and "n_splits" in err, err
    # the old results and the .hydra/ that describes them, byte for byte
    assert _snapshot(run) == old
    assert not (run / ".overwritten").exists() and not (run / "INCOMPLETE").exists()
    # a successful overwrite replaces them (another seed: other numbers, other overrides)
    code, err = _run(capsys, *SIM, "simulated.seed=3", f"hydra.run.dir={run}", "overwrite=true")
    assert code == 0, err
    new = _snapshot(run)
    assert new["table.csv"] != old["table.csv"]
    assert b"simulated.seed=3" in new[".hydra/overrides.yaml"]
    assert not (run / ".overwritten").exists() and not (run / ".hydra.previous").exists()


def test_a_bad_override_with_overwrite_deletes_nothing(tmp_path, capsys):
    run = tmp_path / "run"
    assert _run(capsys, *TOY, f"hydra.run.dir={run}")[0] == 0
    old = _snapshot(run)
    code, err = _run(capsys, *TOY, "toy.mc_samples=-5", f"hydra.run.dir={run}", "overwrite=true")
    assert code == 2 and "toy.mc_samples" in err
    assert _snapshot(run) == old


def test_a_run_dir_that_is_a_file_or_lies_under_one_is_one_line(tmp_path, capsys):
    f = tmp_path / "afile"
    f.write_text("x")
    code, err = _run(capsys, *TOY, f"hydra.run.dir={f}")
    assert code == 2 and "is a file" in err and err.count("\n") == 1, err
    code, err = _run(capsys, *TOY, f"hydra.run.dir={f}/sub")
    assert code == 2 and "is a file" in err and err.count("\n") == 1, err
    code, err = _run(capsys, *TOY, f"output_root={f}/sub")
    assert code == 2 and "output_root" in err and err.count("\n") == 1, err
    assert f.read_text() == "x"


GEN = """
def make(n, seed):
    raise ValueError("my model's checkpoint is broken")
"""


def test_a_generator_that_raises_is_reported_as_the_generators_error(tmp_path, capsys):
    gen = tmp_path / "gen.py"
    gen.write_text(GEN)
    code, err = _run(
        capsys,
        "+experiment=sanity",
        "dataset=generator",
        f"dataset.callable={gen}:make",
        "dataset.count=20",
        "weights=random:0",
        f"output_root={tmp_path / 'out'}",
        "progress=false",
    )
    assert code == 1
    assert "my model's checkpoint is broken" in err  # the traceback into the user's code
    assert "your generator" in err and "bug in inception-note" not in err


@pytest.mark.parametrize("value", ["-1", "5000000000", "1e20"])
def test_seeds_numpy_and_torch_refuse_are_config_errors(tmp_path, capsys, value):
    code, err = _run(
        capsys,
        *SIM,
        "splits.shuffle=numpy_randomstate",
        f"splits.seed={value}",
        f"output_root={tmp_path}",
    )
    assert code == 2 and "splits.seed must be a seed" in err, err
    assert not any(tmp_path.rglob("*"))


def test_the_run_passes_its_cache_setting_to_what_it_builds(tmp_path):
    """cache.enabled=false reached the logits cache only: random weights were still written
    under cache.dir, and compressed npz members went to ~/.cache whatever cache.dir said."""
    import numpy as np

    from harness import inputs
    from harness.api import compose
    from harness.backbones import weights as W

    x = np.random.default_rng(0).integers(0, 256, (4, 16, 16, 3), dtype=np.uint8)
    np.savez_compressed(tmp_path / "s.npz", images=x)
    over = ["dataset=arrays", f"dataset.path={tmp_path / 's.npz'}", f"cache.dir={tmp_path / 'c'}"]
    cfg = compose("reference_stats", over)
    assert inputs.backbone_specs(cfg)["backbone"]["cache_dir"] == str(tmp_path / "c")
    src = inputs.load_inputs(cfg, nets=(), sources=("dataset",)).source()
    assert str(src.provenance()["extracted_to"]).startswith(str(tmp_path / "c" / "npz"))
    off = [*over[:-1], f"cache.dir={tmp_path / 'off'}", "cache.enabled=false"]
    cfg = compose("reference_stats", off)
    assert inputs.backbone_specs(cfg)["backbone"]["cache_dir"] == W.NO_DISK_CACHE
    src = inputs.load_inputs(cfg, nets=(), sources=("dataset",)).source()
    assert src.read_all().shape == x.shape
    assert not (tmp_path / "off").exists()
