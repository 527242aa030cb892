"""Image sources on tiny data generated here: CIFAR pickles, folders, arrays, generators."""

import pickle
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from harness import data, imagenet
from harness.errors import HarnessError, MissingInputError

ROOT = Path(__file__).resolve().parent.parent


# ----------------------------------------------------------------------------- fixtures
def write_cifar(root: Path, n_per_batch=6, seed=0):
    """A CIFAR-10 python-pickle tree (cifar-10-batches-py/) with random content."""
    rng = np.random.default_rng(seed)
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    images = {}
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        x = rng.integers(0, 256, size=(n_per_batch, 3072), dtype=np.uint8)
        y = rng.integers(0, 10, size=n_per_batch).tolist()
        with open(folder / name, "wb") as f:
            pickle.dump({b"data": x, b"labels": y, b"batch_label": name.encode()}, f)
        images[name] = (x.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1), np.array(y))
    return images


def write_folder(root: Path):
    """PNG/JPEG/WebP images incl. grayscale, RGBA, palette, in nested folders."""
    rng = np.random.default_rng(1)
    (root / "b" / "deep").mkdir(parents=True)
    arrs = {}
    for rel, mode in [
        ("a_rgb.png", "RGB"),
        ("b/c_gray.png", "L"),
        ("b/deep/d_rgba.png", "RGBA"),
        ("e_pal.png", "P"),
        ("f.webp", "RGB"),
    ]:
        a = rng.integers(0, 256, size=(20, 24, 3), dtype=np.uint8)
        im = Image.fromarray(a)
        if mode == "L":
            im = im.convert("L")
        elif mode == "RGBA":
            im = im.convert("RGBA")
        elif mode == "P":
            im = im.quantize(16)
        im.save(root / rel)
        arrs[rel] = np.asarray(Image.open(root / rel).convert("RGB"))
    Image.fromarray(rng.integers(0, 256, size=(20, 24, 3), dtype=np.uint8)).save(
        root / "b" / "g.jpg", quality=95
    )
    arrs["b/g.jpg"] = np.asarray(Image.open(root / "b" / "g.jpg").convert("RGB"))
    (root / "notes.txt").write_text("not an image")
    return arrs


# ----------------------------------------------------------------------------- cifar10
def test_cifar10_reads_pickles_in_order(tmp_path):
    imgs = write_cifar(tmp_path)
    with pytest.warns(UserWarning, match="official md5"):
        src = data.load_source("cifar10", root=str(tmp_path), split="train")
    assert len(src) == 30
    x = src.read_all()
    expect = np.concatenate([imgs[f"data_batch_{i}"][0] for i in range(1, 6)])
    np.testing.assert_array_equal(x, expect)
    np.testing.assert_array_equal(
        src.labels, np.concatenate([imgs[f"data_batch_{i}"][1] for i in range(1, 6)])
    )
    assert src.provenance()["official_md5_match"] is False
    with pytest.warns(UserWarning):
        test = data.load_source(
            "cifar10", root=str(tmp_path / "cifar-10-batches-py"), split="test", n=4
        )
    np.testing.assert_array_equal(test.read_all(), imgs["test_batch"][0][:4])


def test_cifar10_missing_offline_names_root_and_files(tmp_path):
    with pytest.raises(MissingInputError) as ei:
        data.load_source("cifar10", root=str(tmp_path / "nowhere"))
    msg = str(ei.value)
    assert "nowhere/cifar-10-batches-py" in msg and "data_batch_1" in msg and "\n" not in msg


def test_cifar10_corrupt_pickle(tmp_path):
    write_cifar(tmp_path)
    (tmp_path / "cifar-10-batches-py" / "data_batch_3").write_bytes(b"garbage")
    with pytest.warns(UserWarning):
        src = data.load_source("cifar10", root=str(tmp_path))
    with pytest.raises(HarnessError, match="cannot read .*data_batch_3"):
        src.read_all()


# ----------------------------------------------------------------------------- folder
def test_folder_sorted_recursive_rgb(tmp_path):
    arrs = write_folder(tmp_path)
    src = data.load_source("folder", root=str(tmp_path))
    names = [src._rel(f) for f in src.files]
    assert names == sorted(arrs)  # sorted relative paths, .txt ignored
    x = src.read_all()
    assert x.shape == (6, 20, 24, 3)
    for k, name in enumerate(names):
        np.testing.assert_array_equal(x[k], arrs[name])
    prov = src.provenance()
    assert prov["color_modes"] == {"RGB": 3, "L": 1, "RGBA": 1, "P": 1}
    assert prov["converted_to_rgb"] == 3


def test_folder_corrupt_file_errors_or_is_skipped(tmp_path):
    write_folder(tmp_path)
    (tmp_path / "zz_bad.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"broken" * 10)
    with pytest.raises(HarnessError) as ei:
        data.load_source("folder", root=str(tmp_path))
    assert "zz_bad.png" in str(ei.value) and "skip_bad=true" in str(ei.value)
    src = data.load_source("folder", root=str(tmp_path), skip_bad=True)
    assert len(src) == 6 and src.provenance()["skipped_files"] == 1
    assert src.provenance()["skipped_examples"] == ["zz_bad.png"]


def test_folder_truncated_jpeg_fails_at_decode_with_name(tmp_path):
    write_folder(tmp_path)
    raw = (tmp_path / "b" / "g.jpg").read_bytes()
    (tmp_path / "b" / "g.jpg").write_bytes(raw[: len(raw) // 2])
    src = data.load_source("folder", root=str(tmp_path))  # header still parses
    with pytest.raises(HarnessError, match="g.jpg"):
        src.read_all()
    assert len(data.load_source("folder", root=str(tmp_path), skip_bad=True)) == 5


def test_folder_empty_and_missing(tmp_path):
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "readme.txt").write_text("x")
    with pytest.raises(HarnessError, match="no images"):
        data.load_source("folder", root=str(tmp_path / "empty"))
    with pytest.raises(MissingInputError, match="does not exist"):
        data.load_source("folder", root=str(tmp_path / "missing"))


def test_folder_mixed_sizes_yield_runs_and_preprocessing(tmp_path):
    rng = np.random.default_rng(0)
    for i, (h, w) in enumerate([(20, 30), (20, 30), (40, 25), (20, 30)]):
        Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(tmp_path / f"{i}.png")
    src = data.load_source("folder", root=str(tmp_path))
    shapes = [b.shape for b in src.batches(8)]
    assert shapes == [(2, 20, 30, 3), (1, 40, 25, 3), (1, 20, 30, 3)]
    assert src.provenance()["resolution"] == "varies (preprocess=none)"
    crop = data.load_source("folder", root=str(tmp_path), preprocess="resize_center_crop", size=16)
    assert crop.read_all().shape == (4, 16, 16, 3)
    assert crop.fingerprint() != src.fingerprint()
    # independent check of resize-shorter-side + center crop with PIL directly
    im = Image.open(tmp_path / "2.png")  # 25 wide x 40 high
    short = round(16 / 0.875)
    im2 = im.resize((short, round(40 * short / 25)), Image.BILINEAR)
    top = (im2.size[1] - 16) // 2
    left = (im2.size[0] - 16) // 2
    np.testing.assert_array_equal(
        crop.read_all()[2], np.asarray(im2.crop((left, top, left + 16, top + 16)))
    )


# ----------------------------------------------------------------------------- imagenet_val
def test_imagenet_val_class_subfolders_class_sorted_with_wnid_labels(tmp_path):
    rng = np.random.default_rng(0)
    wn = ["n01443537", "n01440764", "n15075141"]
    for w in wn:
        (tmp_path / w).mkdir()
        for j in range(2):
            Image.fromarray(rng.integers(0, 256, (40, 50, 3), dtype=np.uint8)).save(
                tmp_path / w / f"v{j}.JPEG"
            )
    src = data.load_source("imagenet_val", root=str(tmp_path), size=32)
    assert src.layout == "class_subfolders"
    assert src.labels.tolist() == [0, 0, 1, 1, 999, 999]  # sorted wnid order, standard indices
    assert src.read_all().shape == (6, 32, 32, 3)


def test_imagenet_val_flat_with_devkit_ground_truth(tmp_path):
    rng = np.random.default_rng(0)
    for j in range(3):
        Image.fromarray(rng.integers(0, 256, (30, 30, 3), dtype=np.uint8)).save(
            tmp_path / f"ILSVRC2012_val_{j + 1:08d}.JPEG"
        )
    gt = tmp_path / "gt.txt"
    gt.write_text("449\n1\n1000\n")  # devkit ids: tench, kit fox, dumbbell
    src = data.load_source(
        "imagenet_val", root=str(tmp_path), label_file=str(gt), preprocess="none"
    )
    idx = imagenet.devkit_id_to_index()
    assert src.labels.tolist() == [0, idx[1], idx[1000]]
    assert imagenet.class_names("imagenet1000")[idx[1]] == "kit fox"
    gt.write_text("449\n1\n")
    with pytest.raises(HarnessError, match="2 labels for 3 images"):
        data.load_source("imagenet_val", root=str(tmp_path), label_file=str(gt))
    gt.write_text(
        "ILSVRC2012_val_00000001.JPEG n01440764\nILSVRC2012_val_00000002.JPEG n01443537\n"
        "ILSVRC2012_val_00000003.JPEG n15075141\n"
    )
    src = data.load_source(
        "imagenet_val", root=str(tmp_path), label_file=str(gt), label_format="wnid"
    )
    assert src.labels.tolist() == [0, 1, 999]


def test_imagenet_val_missing_is_actionable(tmp_path):
    with pytest.raises(MissingInputError, match="50,000 ILSVRC2012 validation images"):
        data.load_source("imagenet_val", root=str(tmp_path / "val"))


def test_class_lists_match_torchvision():
    tv = pytest.importorskip("torchvision.models._meta")
    ours = imagenet.class_names("imagenet1000")
    norm = [n.split(" (n")[0].lower().replace("-", " ") for n in ours]
    theirs = [n.lower().replace("-", " ") for n in tv._IMAGENET_CATEGORIES]
    assert sum(a == b for a, b in zip(norm, theirs)) >= 998  # crane/maillot named differently
    assert imagenet.class_names("tfhub1001")[0] == "background"
    assert imagenet.class_names("tfhub1001")[1:] == ours
    tf = imagenet.class_names("tf2015_1008")
    assert len(tf) == 1008 and tf[449] == "tench" and tf[0] == "(unused)" and tf[1001] == "(unused)"
    label_map = 'entry {\n  target_class: 449\n  target_class_string: "n01440764"\n}\n'
    assert imagenet.tf2015_names_from_label_map(label_map)[449] == "tench"


# ----------------------------------------------------------------------------- arrays
@pytest.mark.parametrize(
    "vr,lo,hi", [("0_1", 0.0, 1.0), ("-1_1", -1.0, 1.0), ("0_255", 0.0, 255.0)]
)
def test_arrays_float_ranges_and_layouts(tmp_path, vr, lo, hi):
    rng = np.random.default_rng(0)
    u8 = rng.integers(0, 256, size=(7, 18, 17, 3), dtype=np.uint8)
    f = (lo + u8.astype(np.float64) / 255 * (hi - lo)).astype(np.float32)
    np.savez(tmp_path / "s.npz", images=f.transpose(0, 3, 1, 2))  # NCHW float
    src = data.load_source("arrays", path=str(tmp_path / "s.npz"), value_range=vr)
    assert src.layout == "NCHW"
    np.testing.assert_array_equal(src.read_all(), u8)  # exact round trip through the declared range


def test_arrays_out_of_range_and_undeclared_are_errors(tmp_path):
    f = np.random.default_rng(0).uniform(-1, 1, size=(4, 16, 16, 3)).astype(np.float32)
    np.save(tmp_path / "a.npy", f)
    with pytest.raises(HarnessError, match=r"outside the declared value_range 0_1"):
        data.load_source("arrays", path=str(tmp_path / "a.npy"), value_range="0_1")
    with pytest.raises(HarnessError, match="declare their range"):
        data.load_source("arrays", path=str(tmp_path / "a.npy"))
    np.save(tmp_path / "bad.npy", np.zeros((4, 16, 16)))
    with pytest.raises(HarnessError, match="N x H x W x 3"):
        data.load_source("arrays", path=str(tmp_path / "bad.npy"), value_range="0_1")
    np.save(tmp_path / "i.npy", np.full((2, 16, 16, 3), 300, dtype=np.int32))
    with pytest.raises(HarnessError, match=r"\[0, 255\]"):
        data.load_source("arrays", path=str(tmp_path / "i.npy"))
    nanf = np.zeros((2, 16, 16, 3), np.float32)
    nanf[0, 0, 0, 0] = np.nan
    np.save(tmp_path / "n.npy", nanf)
    with pytest.raises(HarnessError, match="NaN"):
        data.load_source("arrays", path=str(tmp_path / "n.npy"), value_range="0_1")


def test_arrays_npz_stored_is_memory_mapped_and_compressed_works(tmp_path, monkeypatch):
    monkeypatch.setenv("INCEPTION_NOTE_CACHE", str(tmp_path / "cache"))
    x = np.random.default_rng(0).integers(0, 256, size=(9, 16, 16, 3), dtype=np.uint8)
    np.savez(tmp_path / "s.npz", images=x, labels=np.arange(9))
    src = data.load_source("arrays", path=str(tmp_path / "s.npz"))
    assert isinstance(src.arr, np.memmap)
    np.testing.assert_array_equal(src.read_all(), x)
    assert src.labels.tolist() == list(range(9))
    np.savez_compressed(tmp_path / "c.npz", x=x)
    c = data.load_source("arrays", path=str(tmp_path / "c.npz"))
    np.testing.assert_array_equal(c.read_all(), x)
    assert c.fingerprint() == data.load_source("arrays", path=str(tmp_path / "c.npz")).fingerprint()


def test_arrays_streaming_memory_is_bounded(tmp_path):
    """Stream a 400 MB memmapped array in batches of 256: peak RSS grows by far less than it."""
    path = tmp_path / "big.npy"
    mm = np.lib.format.open_memmap(path, mode="w+", dtype=np.uint8, shape=(1500, 299, 299, 3))
    mm[::100] = 7
    mm.flush()
    del mm
    code = textwrap.dedent(f"""
        import resource, numpy as np
        from harness import data
        src = data.load_source("arrays", path={str(path)!r})
        base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        total = 0
        for b in src.batches(256):
            total += int(b[:, 0, 0, 0].sum())
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        print(total, (peak - base) // 1024)
    """)
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    total, grew_mb = map(int, out.stdout.split())
    assert total == 15 * 7
    assert grew_mb < 250, f"RSS grew by {grew_mb} MB for a 400 MB array"


# ----------------------------------------------------------------------------- noise / synthetic
def test_noise_is_uniform_seeded_and_random_access():
    a = data.load_source("noise", count=200, seed=3)
    x = a.read_all()
    assert x.shape == (200, 32, 32, 3)
    assert abs(x.mean() - 127.5) < 1.0 and x.min() == 0 and x.max() == 255
    np.testing.assert_array_equal(x, data.load_source("noise", count=200, seed=3).read_all())
    assert not np.array_equal(x, data.load_source("noise", count=200, seed=4).read_all())
    sh = data.load_source("noise", count=200, seed=3, order="shuffled", order_seed=1)
    np.testing.assert_array_equal(sh.read_all(), x[np.random.default_rng(1).permutation(200)])
    assert "assumption" in a.provenance()


def test_synthetic_families_and_class_sorted_arrangement():
    s = data.load_source("synthetic", count=40, arrangement="class_sorted", families=4)
    assert s.labels.tolist() == [0] * 10 + [1] * 10 + [2] * 10 + [3] * 10
    x = s.read_all()
    assert x.dtype == np.uint8 and x.shape == (40, 32, 32, 3)
    # families look different: mean per-family images are far apart
    means = np.stack([x[s.labels == k].reshape(10, -1).std(axis=1).mean() for k in range(4)])
    assert np.ptp(means) > 1.0


# ----------------------------------------------------------------------------- generator
GEN_MODULE = """
import numpy as np
def make(n, seed, scale=1.0):
    rng = np.random.default_rng(seed)
    return (rng.uniform(-1, 1, size=(n, 3, 16, 16)) * scale).astype("float32")
def bad(n, seed):
    return np.zeros((n, 5), "uint8")
"""


def test_generator_callable_from_file(tmp_path):
    f = tmp_path / "mygan.py"
    f.write_text(GEN_MODULE)
    src = data.load_source(
        "generator", callable=f"{f}:make", count=25, chunk_size=10, value_range="-1_1", seed=5
    )
    x = src.read_all()
    assert x.shape == (25, 16, 16, 3)
    # chunk 1 is exactly make(10, chunk_seed(1)) mapped from [-1, 1]
    ref = (
        np.random.default_rng(src.chunk_seed(1))
        .uniform(-1, 1, size=(10, 3, 16, 16))
        .astype("float32")
    )
    expect = (
        np.clip(np.rint((ref.astype(np.float64) + 1) * 127.5), 0, 255)
        .astype(np.uint8)
        .transpose(0, 2, 3, 1)
    )
    np.testing.assert_array_equal(x[10:20], expect)
    fp = src.fingerprint()
    assert (
        fp
        == data.load_source(
            "generator", callable=f"{f}:make", count=25, chunk_size=10, value_range="-1_1", seed=5
        ).fingerprint()
    )
    assert (
        fp
        != data.load_source(
            "generator", callable=f"{f}:make", count=25, chunk_size=10, value_range="-1_1", seed=6
        ).fingerprint()
    )
    with pytest.raises(HarnessError, match=r"outside the declared value_range 0_1"):
        data.load_source("generator", callable=f"{f}:make", count=5, value_range="0_1")
    with pytest.raises(HarnessError, match="returned shape"):
        data.load_source("generator", callable=f"{f}:bad", count=5)
    with pytest.raises(HarnessError, match="module:function"):
        data.load_source("generator", callable="nocolon", count=5)
    with pytest.raises(HarnessError, match="no callable 'nope'"):
        data.load_source("generator", callable=f"{f}:nope", count=5)


# ----------------------------------------------------------------------------- common behaviour
def test_fingerprint_stable_and_sensitive(tmp_path):
    base = dict(count=30, seed=0)
    fp = data.load_source("synthetic", **base).fingerprint()
    assert fp == data.load_source("synthetic", **base).fingerprint()
    others = [
        data.load_source("synthetic", **base, n=29),
        data.load_source("synthetic", **base, order="shuffled", order_seed=0),
        data.load_source("synthetic", **base, order="shuffled", order_seed=1),
        data.load_source("synthetic", count=30, seed=1),
        data.load_source("synthetic", **base, size=31),
    ]
    fps = {fp} | {o.fingerprint() for o in others}
    assert len(fps) == 6
    # a fixed value: the fingerprint must not drift between runs or machines
    code = (
        "from harness import data; "
        "print(data.load_source('synthetic', count=30, seed=0).fingerprint())"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert out.stdout.strip() == fp


def test_folder_fingerprint_ignores_location_but_not_content(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    write_folder(a)
    import shutil

    shutil.copytree(a, b)
    fa = data.load_source("folder", root=str(a)).fingerprint()
    assert fa == data.load_source("folder", root=str(b)).fingerprint()
    Image.fromarray(np.zeros((20, 24, 3), np.uint8)).save(b / "a_rgb.png")
    assert fa != data.load_source("folder", root=str(b)).fingerprint()


def test_order_n_and_errors():
    with pytest.raises(HarnessError, match="order_seed"):
        data.load_source("synthetic", count=10, order="shuffled")
    with pytest.raises(HarnessError, match="order must be one of"):
        data.load_source("synthetic", count=10, order="sorted")
    with pytest.raises(HarnessError, match="holds only 10"):
        len(data.load_source("synthetic", count=10, n=11))
    with pytest.raises(HarnessError, match="unknown dataset 'cifar100'"):
        data.load_source("cifar100")
    with pytest.raises(HarnessError, match="unknown parameter"):
        data.load_source("noise", colour=True)
    s = data.load_source("synthetic", count=10, n=4, order="shuffled", order_seed=2)
    perm = np.random.default_rng(2).permutation(10)[:4]
    np.testing.assert_array_equal(s.indices, perm)
    np.testing.assert_array_equal(
        s.read_all(), data.load_source("synthetic", count=10).read_all()[perm]
    )


def test_value_range_survives_yaml_and_hydra_parsing():
    from harness.data.base import normalize_value_range

    assert [normalize_value_range(v) for v in (1, -11, 255, "0_1", "[-1, 1]", None)] == [
        "0_1",
        "-1_1",
        "0_255",
        "0_1",
        "-1_1",
        None,
    ]
    with pytest.raises(HarnessError, match="unknown value_range"):
        normalize_value_range("0_2")


def test_bad_batches_give_one_line_errors():
    with pytest.raises(HarnessError, match="uint8"):
        data.check_uint8_images(np.zeros((2, 8, 8, 3), np.float32), "x")
    with pytest.raises(HarnessError, match="N x H x W x 3"):
        data.check_uint8_images(np.zeros((2, 8, 8), np.uint8), "x")
    with pytest.raises(HarnessError, match="batch_size"):
        next(data.load_source("noise", count=3).batches(0))


def test_every_dataset_config_composes_and_builds_or_names_what_is_missing(tmp_path):
    """conf/dataset/*.yaml: each composes through Hydra and maps onto the source's parameters."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    from harness.experiment_registry import CONF_DIR

    GlobalHydra.instance().clear()
    names = sorted(p.stem for p in (CONF_DIR / "dataset").glob("*.yaml"))
    assert {
        "cifar10",
        "imagenet_val",
        "noise",
        "folder",
        "arrays",
        "generator",
        "synthetic",
    } <= set(names)
    write_folder(tmp_path / "imgs")
    extra = {
        "folder": [f"dataset.root={tmp_path / 'imgs'}"],
        "arrays": [f"dataset.path={tmp_path / 'x.npy'}"],
        "generator": [
            f"dataset.callable={tmp_path / 'g.py'}:make",
            "dataset.value_range=-1_1",
            "dataset.count=5",
        ],
        "noise": ["dataset.count=5"],
    }
    np.save(tmp_path / "x.npy", np.zeros((3, 16, 16, 3), np.uint8))
    (tmp_path / "g.py").write_text(GEN_MODULE)
    with initialize_config_dir(version_base="1.3", config_dir=str(CONF_DIR)):
        for name in names:
            cfg = compose(
                "config",
                overrides=[
                    f"+dataset={name}",
                    f"data_root={tmp_path / 'nodata'}",
                    *extra.get(name, []),
                ],
            )
            try:
                src = data.from_config(cfg.dataset)
                assert len(src) > 0
            except MissingInputError as exc:  # cifar10 / imagenet_val are not here
                assert name in ("cifar10", "cifar10_test", "imagenet_val"), name
                assert str(tmp_path / "nodata") in str(exc)
    GlobalHydra.instance().clear()


def _decode_tmp_files() -> set:
    """The shared-memory blocks this process's decode pools hold now (after a collection, so
    sources that are gone have released theirs); another pytest worker's blocks are not ours."""
    import gc
    import os

    from harness.data.files import SHM_PREFIX

    gc.collect()
    return set(Path("/dev/shm").glob(f"{SHM_PREFIX}{os.getpid()}-*"))


@pytest.mark.parametrize("worker_type", ["thread", "process"])
def test_parallel_decode_and_prefetch_give_the_serial_batches(tmp_path, worker_type):
    """num_workers threads or processes + prefetch: bit-identical batches, in order, same
    provenance, no shared-memory file left behind."""
    from harness.data.files import decode_workers

    from .fixtures import write_pngs

    before = _decode_tmp_files()
    write_pngs(tmp_path / "imgs", n=23, seed=5, size=160)  # large enough for the threads
    serial = data.load_source("folder", root=str(tmp_path / "imgs"), num_workers=1, prefetch=0)
    par = data.load_source(
        "folder", root=str(tmp_path / "imgs"), num_workers=3, prefetch=2, worker_type=worker_type
    )
    a = list(serial.batches(5))
    b = list(par.batches(5))
    assert [x.shape for x in a] == [x.shape for x in b] and len(a) == 5
    assert serial._pool is None and serial._procs is None
    # the threads or the processes really decoded
    assert (par._procs if worker_type == "process" else par._pool) is not None
    assert all(x.flags.writeable for x in b)  # torch.from_numpy warns on read-only arrays
    if worker_type == "process":  # blocks are kept for the next pass and go with the source
        assert len(_decode_tmp_files() - before) >= 1
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)
    np.testing.assert_array_equal(
        np.concatenate(list(serial.batches_range(3, 17, 4))),
        np.concatenate(list(par.batches_range(3, 17, 4))),
    )
    assert serial.fingerprint() == par.fingerprint()  # workers are not part of the identity
    assert serial.provenance()["decode_handling"] == par.provenance()["decode_handling"]
    del par
    assert _decode_tmp_files() <= before
    assert decode_workers("auto") >= 1
    with pytest.raises(HarnessError, match="num_workers"):
        decode_workers(0)


@pytest.mark.parametrize("worker_type", ["thread", "process"])
def test_an_error_in_a_decode_worker_names_the_file(tmp_path, worker_type, monkeypatch):
    from harness.data import files as files_mod

    from .fixtures import write_pngs

    # one batch per process job (small images share a job, and so its error)
    monkeypatch.setattr(files_mod, "PROCESS_JOB_MIN_PIXELS", 1)
    before = _decode_tmp_files()
    write_pngs(tmp_path / "imgs", n=8, seed=1, size=160)
    src = data.load_source(
        "folder", root=str(tmp_path / "imgs"), num_workers=2, prefetch=2, worker_type=worker_type
    )
    bad = src.files[6]
    bad.write_bytes(bad.read_bytes()[:60])  # truncated after the scan
    it = src.batches(4)
    assert len(next(it)) == 4  # the first batch is fine
    with pytest.raises(HarnessError, match=bad.name) as e:
        next(it)
    assert "\n" not in str(e.value)
    del it, src, e
    assert _decode_tmp_files() <= before


def test_decode_processes_mixed_sizes_early_stop_and_auto(tmp_path, monkeypatch):
    """Runs of equal size keep their order; stopping early leaves no shared-memory file; auto
    starts processes only for enough pixels."""
    from harness.data import files as files_mod

    from .fixtures import write_pngs

    before = _decode_tmp_files()
    write_pngs(tmp_path / "imgs", n=7, seed=2, size=40)
    write_pngs(tmp_path / "imgs" / "z_large", n=5, seed=3, size=56)
    root = str(tmp_path / "imgs")
    serial = [x.copy() for x in data.load_source("folder", root=root, num_workers=1).batches(4)]
    par = data.load_source("folder", root=root, num_workers=2, worker_type="process", prefetch=0)
    got = list(par.batches(4))
    assert [x.shape for x in got] == [x.shape for x in serial]  # 4, 3 | 1 + ... by size runs
    for x, y in zip(serial, got):
        np.testing.assert_array_equal(x, y)
    it = par.batches(2)
    next(it)
    it.close()  # the consumer stops: jobs in flight are waited for and their blocks freed
    assert len(par._free) == len(par._blocks)
    del par, it
    assert _decode_tmp_files() <= before
    auto = data.load_source("folder", root=root, num_workers=2)
    list(auto.batches(4))
    assert auto._procs is None  # 12 small images: far below the threshold
    monkeypatch.setattr(files_mod, "PROCESS_MIN_TOTAL_PIXELS", 100)
    auto = data.load_source("folder", root=root, num_workers=2)
    for x, y in zip(serial, auto.batches(4)):
        np.testing.assert_array_equal(x, y)
    assert auto._procs is not None
    with pytest.raises(HarnessError, match="worker_type must be one of") as e:
        data.load_source("folder", root=root, worker_type="fork")
    assert "\n" not in str(e.value)


def test_prefetch_stops_when_the_consumer_stops():
    import threading
    import time

    from harness.data.base import prefetched

    made = []

    def gen():
        for i in range(1000):
            made.append(i)
            yield i

    it = prefetched(gen(), 2)
    assert [next(it) for _ in range(3)] == [0, 1, 2]
    it.close()
    time.sleep(0.3)
    assert len(made) <= 3 + 2 + 1  # bounded: at most `ahead` items beyond what was consumed
    assert not any(t.name == "prefetch" and t.is_alive() for t in threading.enumerate())


def test_unguarded_script_with_decode_processes_is_a_clear_error(tmp_path):
    """spawn re-imports the main script in each worker: without a __main__ guard the workers
    die while starting; the error says what to do instead of a BrokenProcessPool traceback."""
    from .fixtures import write_pngs

    write_pngs(tmp_path / "imgs", n=6, seed=1, size=40)
    script = tmp_path / "unguarded.py"
    script.write_text(
        "from harness import data\n"
        f"src = data.load_source('folder', root={str(tmp_path / 'imgs')!r}, num_workers=2,"
        " worker_type='process', progress=False)\n"
        "print(sum(len(b) for b in src.batches(3)))\n"
    )
    r = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120)
    assert r.returncode != 0
    assert "a decode process died" in r.stderr and "worker_type=thread" in r.stderr


def test_decode_processes_recover_from_a_dead_worker_and_check_dev_shm(tmp_path, monkeypatch):
    import os
    import signal

    from harness.data import files as files_mod

    from .fixtures import write_pngs

    monkeypatch.setattr(files_mod, "PROCESS_JOB_MIN_PIXELS", 1)  # one batch per job
    write_pngs(tmp_path / "imgs", n=12, seed=4, size=40)
    root = str(tmp_path / "imgs")
    serial = np.concatenate(list(data.load_source("folder", root=root, num_workers=1).batches(3)))
    src = data.load_source("folder", root=root, num_workers=2, worker_type="process", prefetch=0)
    it = src.batches(3)
    next(it)
    for pid in list(src._procs._processes):  # the pool loses its processes
        os.kill(pid, signal.SIGKILL)
    with pytest.raises(HarnessError, match="a decode process died") as e:
        list(it)
    assert "\\n" not in str(e.value)
    np.testing.assert_array_equal(np.concatenate(list(src.batches(3))), serial)  # a new pool
    # /dev/shm too small: an explicit process request says so; auto falls back to threads
    monkeypatch.setattr(files_mod, "shm_free_bytes", lambda: 1000)
    small = data.load_source("folder", root=root, num_workers=2, worker_type="process")
    with pytest.raises(HarnessError, match="/dev/shm has 0 MiB free") as e:
        next(small.batches(3))
    assert "worker_type=thread" in str(e.value)
    monkeypatch.setattr(files_mod, "PROCESS_MIN_TOTAL_PIXELS", 1)
    auto = data.load_source("folder", root=root, num_workers=2)
    np.testing.assert_array_equal(np.concatenate(list(auto.batches(3))), serial)
    assert auto._procs is None


def test_png_xmp_orientation_is_taken_from_pillow(tmp_path):
    """Orientation in an XMP text chunk (no eXIf): the scan defers to Pillow, as decoding does."""
    from PIL import PngImagePlugin

    pixels = np.arange(20 * 30 * 3, dtype=np.uint8).reshape(20, 30, 3)
    info = PngImagePlugin.PngInfo()
    xmp = (
        '<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/'
        '22-rdf-syntax-ns#"><rdf:Description xmlns:tiff="http://ns.adobe.com/tiff/1.0/" '
        'tiff:Orientation="6"/></rdf:RDF></x:xmpmeta>'
    )
    info.add_itxt("XML:com.adobe.xmp", xmp)
    Image.fromarray(pixels).save(tmp_path / "x.png", pnginfo=info)
    with Image.open(tmp_path / "x.png") as im:
        im.load()
        assert im.getexif().get(0x0112) == 6  # Pillow reads it
    src = data.load_source("folder", root=str(tmp_path))
    assert src.sizes == [(30, 20)]
    np.testing.assert_array_equal(src.read_all()[0], np.rot90(pixels, k=-1))
