"""Resize methods against the reference ops they claim to be."""

import numpy as np
import pytest

from harness import resize as rs
from harness.errors import HarnessError

from .conftest import needs_tf, needs_torch


def img(n, h, w, seed=0):
    return np.random.default_rng(seed).integers(0, 256, size=(n, h, w, 3)).astype(np.uint8)


@needs_tf
@pytest.mark.parametrize("h,w", [(32, 32), (500, 500), (500, 375)])
def test_tf1_bilinear_matches_tf_compat_v1_resize_bilinear(h, w):
    from harness.backbones.base import import_tensorflow

    tf = import_tensorflow()
    x = img(2, h, w).astype(np.float32)
    ref = tf.compat.v1.image.resize_bilinear(x, (299, 299), align_corners=False).numpy()
    ours = rs.resize_numpy(x, (299, 299), "tf1_bilinear")
    assert np.abs(ours - ref).max() <= 1e-4
    ours64 = rs.resize_numpy(x, (299, 299), "tf1_bilinear", dtype=np.float64)
    assert np.abs(ours64 - ref).max() <= 1e-4


@needs_tf
def test_tf2_bilinear_matches_tf_image_resize():
    from harness.backbones.base import import_tensorflow

    tf = import_tensorflow()
    for h, w in [(32, 32), (500, 375)]:
        x = img(1, h, w).astype(np.float32)
        ref = tf.image.resize(x, (299, 299), "bilinear").numpy()
        assert np.abs(rs.resize_numpy(x, (299, 299), "tf2_bilinear") - ref).max() <= 1e-3


@needs_torch
@pytest.mark.parametrize("h,w", [(32, 32), (500, 375), (7, 9)])
def test_torch_methods_match_f_interpolate(h, w):
    import torch
    import torch.nn.functional as F

    x = img(2, h, w).astype(np.float32)
    xt = torch.from_numpy(x).permute(0, 3, 1, 2)
    for ac in (True, False):
        ref = (
            F.interpolate(xt, (299, 299), mode="bilinear", align_corners=ac)
            .permute(0, 2, 3, 1)
            .numpy()
        )
        assert np.abs(rs.resize_numpy(x, (299, 299), "torch_bilinear", ac) - ref).max() <= 1e-3
        assert (
            np.abs(
                rs.resize_torch(xt, (299, 299), "torch_bilinear", ac).permute(0, 2, 3, 1).numpy()
                - ref
            ).max()
            <= 1e-3
        )
    ref = F.interpolate(xt, (299, 299), mode="bilinear", align_corners=False, antialias=True)
    ref = ref.permute(0, 2, 3, 1).numpy()
    assert np.abs(rs.resize_numpy(x, (299, 299), "antialias") - ref).max() <= 1e-2  # 4e-5 relative
    # downsampling, where antialias matters
    big = img(1, 500, 400).astype(np.float32)
    bt = torch.from_numpy(big).permute(0, 3, 1, 2)
    ref = (
        F.interpolate(bt, (75, 75), mode="bilinear", align_corners=False, antialias=True)
        .permute(0, 2, 3, 1)
        .numpy()
    )
    assert np.abs(rs.resize_numpy(big, (75, 75), "antialias") - ref).max() <= 1e-2


@needs_tf
@needs_torch
@pytest.mark.parametrize("h,w", [(32, 32), (300, 500), (1024, 1024), (640, 700)])
def test_nhwc_torch_resize_matches_tf_on_narrow_and_wide_images(h, w):
    """Both W passes (per-row products below GEMM_W_PASS_MIN_WIDTH, one large product from it)
    against TensorFlow's own TF1 bilinear, and against each other within float32 rounding."""
    import torch

    from harness.backbones.base import import_tensorflow

    tf = import_tensorflow()
    x = img(2, h, w, seed=h + w).astype(np.float32)
    ref = tf.compat.v1.image.resize_bilinear(x, (299, 299), align_corners=False).numpy()
    ours = rs.resize_torch_nhwc(torch.from_numpy(x), (299, 299), "tf1_bilinear")
    assert ours.is_contiguous() and tuple(ours.shape) == (2, 299, 299, 3)
    assert np.abs(ours.numpy() - ref).max() <= 1e-4
    narrow = rs.resize_torch_nhwc  # the per-row path, forced
    old = rs.GEMM_W_PASS_MIN_WIDTH
    try:
        rs.GEMM_W_PASS_MIN_WIDTH = 10**9
        per_row = narrow(torch.from_numpy(x), (299, 299), "tf1_bilinear").numpy()
    finally:
        rs.GEMM_W_PASS_MIN_WIDTH = old
    assert np.abs(ours.numpy() - per_row).max() <= 255 * 2**-23 * 2  # at most ~1 ulp at 255
    if w < old:
        np.testing.assert_array_equal(ours.numpy(), per_row)  # narrow images: unchanged numbers


def test_pil_bicubic_is_pil():
    from PIL import Image

    x = img(2, 40, 30)
    out = rs.resize_numpy(x, (75, 60), "pil_bicubic", dtype=np.float64)
    for i in range(2):
        np.testing.assert_array_equal(
            out[i], np.asarray(Image.fromarray(x[i]).resize((60, 75), Image.BICUBIC))
        )


def test_matrices_are_stochastic_and_identity_at_same_size():
    for m in ("tf1_bilinear", "tf2_bilinear", "antialias"):
        wm = rs.weight_matrix(m, 299, 37)
        np.testing.assert_allclose(wm.sum(axis=1), 1.0, atol=1e-12)
        assert (wm >= 0).all()
    np.testing.assert_allclose(rs.weight_matrix("torch_bilinear", 13, 13, True), np.eye(13))
    x = img(1, 20, 20).astype(np.float32)
    np.testing.assert_array_equal(rs.resize_numpy(x, (20, 20), "tf1_bilinear"), x)


def test_errors():
    with pytest.raises(HarnessError, match="unknown resize"):
        rs.check_method("lanczos3", None)
    with pytest.raises(HarnessError, match="align_corners applies only"):
        rs.check_method("tf1_bilinear", True)
    with pytest.raises(HarnessError, match="resize=none needs"):
        rs.resize_numpy(img(1, 20, 20), (30, 30), "none")
