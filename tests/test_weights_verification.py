"""Weights verification (issue 26, item 1): every weights file of an Inception backbone is
compared with the published files; anything else is UNVERIFIED WEIGHTS on every output, as
random weights are RANDOM WEIGHTS; check 8 is not judged on random weights.

The published hashes below are typed from their publishers (torchvision's file name, Keras'
``keras.applications`` source, pytorch-fid's / torch-fidelity's file names), not read from the
code under test.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from harness import backbones, results, sanity, scores
from harness.backbones import weights as W

from .conftest import needs_torch
from .fixtures import run_cli

ROOT = Path(__file__).resolve().parent.parent
TINY = ["progress=false", "backbone.input_size=75", "dataset=synthetic", "dataset.count=24"]


@pytest.fixture(scope="module")
def exported_random(tmp_path_factory) -> Path:
    """The finding's file: random:0 exported in the peers' layout, under a neutral name."""
    from harness.export import export_2015_weights

    d = tmp_path_factory.mktemp("exported")
    return export_2015_weights(d / "tf2015_random0.pth", "random:0")


def _sha256(path: Path) -> str:
    import hashlib

    return hashlib.sha256(path.read_bytes()).hexdigest()


# ------------------------------------------------------------------------------ the table
def test_the_table_holds_every_published_file_with_hash_size_and_origin():
    table = W.published_table()
    by_hash = {(e.hash_kind, e.hash): e for e in table}
    tv = by_hash[("sha256_prefix", "0cc3c7bd")]
    assert "torchvision" in tv.backbones and tv.filename == "inception_v3_google-0cc3c7bd.pth"
    assert tv.origin == "https://download.pytorch.org/models/inception_v3_google-0cc3c7bd.pth"
    keras = by_hash[("md5", "9a0d58056eeedaa3f26cb7ebd46da564")]
    assert "keras" in keras.backbones
    peer = by_hash[("sha256_prefix", "6726825d")]
    assert "tf2015_torch" in peer.backbones
    assert "pt_inception-2015-12-05-6726825d.pth" in peer.filename
    assert "weights-inception-2015-12-05-6726825d.pth" in peer.filename
    # the 2015 tgz and TF-Hub publish no hash: in the table, stated, never verified
    tgz = next(e for e in table if e.filename == "inception-2015-12-05.tgz")
    assert tgz.hash is None and {"tf2015", "tf2015_torch"} <= set(tgz.backbones)
    assert "none published" in tgz.describe_hash()
    assert any(e.hash is None and "tfhub" in e.backbones for e in table)
    for e in table:
        assert e.name and e.origin and e.size and e.backbones
    # identification by content, never by name
    assert W.identify({"sha256": "0cc3c7bd" + "0" * 56, "md5": None}) == tv
    assert W.identify({"sha256": "f" * 64, "md5": "9a0d58056eeedaa3f26cb7ebd46da564"}) == keras
    assert W.identify({"sha256": "6726825d" + "1" * 56, "md5": "0" * 32}) == peer
    assert W.identify({"sha256": "4f82cd7e0ac3" + "0" * 52, "md5": "0" * 32}) is None


def test_readme_shows_the_table_of_known_files():
    readme = (ROOT / "README.md").read_text()
    assert "### Known weights files" in readme
    assert W.published_markdown() in readme


def test_status_of_each_kind_of_weights():
    def status(spec, record=None, published=True):
        return W.verification(W.WeightsSpec.parse(spec), record or {}, published, "keras")

    assert status("random:0")["weights_status"] == "random"
    assert status("ported:torchvision:random:3")["weights_status"] == "random"
    assert status("file:/x.h5", {"weights_published": None})["weights_status"] == "unverified"
    assert status("pretrained", {"weights_published": None})["weights_status"] == "unverified"
    ok = status("pretrained", {"weights_published": "Keras x"})
    assert ok == {"weights_status": "verified", "weights_name": "Keras x"}
    ported = status("ported:torchvision", {"source_published": "torchvision y"})
    assert ported["weights_status"] == "verified" and "torchvision y" in ported["weights_name"]
    assert "keras" in ported["weights_name"]  # says where it runs
    assert status("ported:torchvision", {"source_published": None})["weights_status"] == (
        "unverified"
    )
    # a network of one's own, or one trained here, claims no published file
    assert status("file:/mine.pt", published=False)["weights_status"] == "user network"
    assert status("trained:digits_cnn/torch/0", published=False)["weights_status"] == (
        "trained here"
    )
    assert status("random:1", published=False)["weights_status"] == "random"


# ------------------------------------------------------------------------------ the finding
@needs_torch
def test_exported_random_weights_loaded_back_are_unverified_and_no_path_is_printed(
    exported_random,
):
    net = backbones.load_backbone("tf2015_torch", weights=f"file:{exported_random}", input_size=75)
    assert not net.random_weights  # not random by spec, and yet ...
    assert net.weights_status == "unverified" and net.weights_name is None
    prov = net.provenance()
    assert prov["weights_status"] == "unverified"
    r = scores.inception_score(scores.prepare(np.full((4, 10), 0.1)), splits=scores.SplitSpec(2))
    line, latex = sanity.reporting_line(prov, r, 0.0)
    assert line.startswith("UNVERIFIED WEIGHTS, not a citable Inception Score: IS = ")
    assert latex.startswith(r"\textbf{UNVERIFIED WEIGHTS")
    assert _sha256(exported_random)[:12] in line  # named by a short sha256 ...
    assert str(exported_random.parent) not in line and "tf2015_random0" not in line  # no path
    assert str(exported_random.parent) not in latex


@needs_torch
def test_a_published_file_is_verified_by_its_hash_whatever_its_name(
    exported_random, tmp_path, monkeypatch
):
    from harness.backbones.tf2015_torch import TF2015Torch

    # a file with a published name but other bytes is not the published file
    fake = tmp_path / "pt_inception-2015-12-05-6726825d.pth"
    shutil.copy(exported_random, fake)
    net = backbones.load_backbone("tf2015_torch", weights=f"file:{fake}", input_size=75)
    assert net.weights_status == "unverified"
    # a file whose full sha256 is in the table is verified, under any name, and named by it
    entry = W.PublishedWeights(
        "test-published 2015 port",
        "published.pth",
        "https://example.org/published.pth",
        "sha256",
        _sha256(exported_random),
        "1 MB",
    )
    monkeypatch.setattr(TF2015Torch, "published", (*TF2015Torch.published, entry))
    net = backbones.load_backbone("tf2015_torch", weights=f"file:{exported_random}", input_size=75)
    assert net.weights_status == "verified" and net.weights_name == "test-published 2015 port"
    prov = net.provenance()
    r = scores.inception_score(scores.prepare(np.full((4, 10), 0.1)), splits=scores.SplitSpec(2))
    line, _ = sanity.reporting_line(prov, r, 0.0)
    assert line.startswith("IS = ") and "test-published 2015 port, sha256 " in line
    assert "UNVERIFIED" not in line and str(exported_random.parent) not in line


def test_exporting_random_weights_under_a_published_name_is_refused(tmp_path):
    from harness.errors import HarnessError
    from harness.export import export_2015_weights

    for name in (
        "pt_inception-2015-12-05-6726825d.pth",
        "weights-inception-2015-12-05-6726825d.pth",
    ):
        with pytest.raises(HarnessError, match="published file"):
            export_2015_weights(tmp_path / name, "random:0")
    assert not list(tmp_path.iterdir())


# ------------------------------------------------------------------------------ every output
def test_unverified_banner_on_tables_figures_and_provenance(tmp_path):
    df = pd.DataFrame({"is_mean": [3.7]})
    paths = results.write_table(df, tmp_path, title="t", weights_status="unverified")
    assert pd.read_csv(paths["csv"]).weights_note.tolist() == ["unverified weights"]
    for k in ("md", "tex"):
        assert "UNVERIFIED WEIGHTS" in paths[k].read_text()
    clean = results.write_table(df, tmp_path / "v", title="t", weights_status="verified")
    assert "UNVERIFIED" not in clean["md"].read_text()
    assert "weights_note" not in pd.read_csv(clean["csv"]).columns
    rec = json.loads(
        results.write_provenance(tmp_path, {"seed": 1}, weights_status="unverified").read_text()
    )
    assert "UNVERIFIED WEIGHTS" in rec["weights_note"] and rec["weights_status"] == "unverified"

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    texts = {}
    for status in ("random", "unverified", "verified"):
        fig, ax = plt.subplots()
        ax.set_title("FID by resize")
        results.save_figure(fig, tmp_path, f"fig_{status}", weights_status=status)
        texts[status] = " ".join(t.get_text() for t in fig.texts)
    assert "UNVERIFIED WEIGHTS" in texts["unverified"] and "RANDOM WEIGHTS" in texts["random"]
    assert texts["verified"] == ""
    # a watermark that suits any metric (an FID chart is not an Inception Score)
    for banner in results.BANNERS.values():
        assert "Inception Score" not in banner and "score" in banner


@needs_torch
def test_sanity_on_unverified_weights_is_bannered_everywhere_and_strict_fails(
    exported_random, tmp_path, capsys
):
    base = [
        "+experiment=sanity",
        f"weights=file:{exported_random}",
        *TINY,
        "~other_backbones",
        "n_splits=2",
        "checks=[3,8,9]",
    ]
    code, out, err = run_cli(capsys, *base, f"hydra.run.dir={tmp_path / 'run'}")
    assert code == 0, err[-3000:]
    run = tmp_path / "run"
    rep = json.loads((run / "report.json").read_text())
    assert rep["weights_status"] == "unverified" and rep["random_weights"] is False
    assert rep["reporting_line"].startswith("UNVERIFIED WEIGHTS")
    assert str(exported_random.parent) not in rep["reporting_line"]
    assert results.UNVERIFIED_WEIGHTS_BANNER in (run / "report.md").read_text()
    assert results.UNVERIFIED_WEIGHTS_BANNER in (run / "table.md").read_text()
    assert pd.read_csv(run / "table.csv").weights_note.unique().tolist() == ["unverified weights"]
    prov = json.loads((run / "provenance.json").read_text())
    assert prov["weights_status"] == "unverified"
    assert prov["weights_note"] == results.UNVERIFIED_WEIGHTS_BANNER
    assert [n["weights_status"] for n in prov["networks"]] == ["unverified"]
    by = {c["id"]: c for c in rep["checks"]}
    assert by[8]["status"] in ("PASS", "WARN", "FAIL")  # judged: the weights are not random
    # strict=true: a failure (exit code 3) after the outputs are written
    code, out, err = run_cli(capsys, *base, "strict=true", f"hydra.run.dir={tmp_path / 'strict'}")
    assert code == 3, err[-3000:]
    assert "UNVERIFIED WEIGHTS" in err.strip().splitlines()[-1]
    assert "FAIL" in out and (tmp_path / "strict" / "report.md").exists()


@needs_torch
def test_sanity_on_random_weights_does_not_judge_domain_fit(tmp_path, capsys):
    code, _, err = run_cli(
        capsys,
        "+experiment=sanity",
        "weights=random:0",
        *TINY,
        "~other_backbones",
        "n_splits=2",
        "checks=[8]",
        "strict=true",  # random weights stay a labelled smoke run, not a strict failure
        f"hydra.run.dir={tmp_path / 'run'}",
    )
    assert code == 0, err[-3000:]
    rep = json.loads((tmp_path / "run" / "report.json").read_text())
    (c8,) = rep["checks"]
    assert c8["id"] == 8 and c8["status"] != "PASS"
    assert "not judged on random weights" in c8["threshold"]
    assert "not judged on random weights" in (tmp_path / "run" / "report.md").read_text()
    assert rep["weights_status"] == "random"


def test_domain_fit_is_judged_only_on_trained_weights():
    rng = np.random.default_rng(0)
    confident = scores.prepare(scores.softmax(rng.normal(size=(50, 1000)) * 30))
    assert sanity.check_domain_fit(confident).status == sanity.PASS
    c = sanity.check_domain_fit(confident, random_weights=True)
    assert c.status == sanity.NOT_JUDGED != sanity.PASS
    assert c.threshold.startswith("not judged on random weights")
    assert c.value == pytest.approx(sanity.check_domain_fit(confident).value)  # still measured


# ------------------------------------------------------------------------------ own networks
@needs_torch
def test_own_networks_keep_their_labels_and_random_ones_stay_random(tmp_path):
    import torch

    (tmp_path / "mynet.py").write_text(
        "import torch\n\n\ndef build():\n    torch.manual_seed(0)\n"
        "    return torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 10))\n"
    )
    import importlib.util

    spec = importlib.util.spec_from_file_location("mynet_verif", tmp_path / "mynet.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    torch.save(mod.build().state_dict(), tmp_path / "w.pth")
    kw = {"builder": f"{tmp_path / 'mynet.py'}:build", "input_size": 8, "channels": 1}
    own = backbones.load_backbone(
        "torch_model", weights=f"file:{tmp_path / 'w.pth'}", title="my digits net", **kw
    )
    assert own.weights_status == "user network"
    prov = own.provenance()
    assert sanity.weights_warning(prov) is None
    label = sanity.weights_label(prov)
    assert label == "my digits net" and "UNVERIFIED" not in label and "Inception" not in label
    rnd = backbones.load_backbone("torch_model", weights="random:5", **kw)
    assert rnd.weights_status == "random" and sanity.weights_warning(rnd.provenance()) == (
        "RANDOM WEIGHTS"
    )
