"""The FGSM IS-inflation attack: gradient sign, invariants, every backbone's gradient path."""

import numpy as np
import pytest

from harness import attack, backbones, data
from harness.errors import HarnessError

from .conftest import needs_tf, needs_torch


@needs_torch
def test_gradient_sign_matches_finite_differences_on_a_tiny_model():
    import torch

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 4 * 4, 7)).double()
    x = torch.rand(3, 3, 4, 4, dtype=torch.float64) * 2 - 1
    t = torch.tensor([1, 4, 6])
    eps = 1e-3
    lo, hi = torch.tensor(-1.0, dtype=torch.float64), torch.tensor(1.0, dtype=torch.float64)
    logits, x1 = attack.fgsm_step_torch(model, x, t, eps, lo, hi)

    def logp(z):
        return torch.log_softmax(model(z), 1)[torch.arange(3), t]

    # central finite differences of log p(t|x), pixel by pixel
    h = 1e-6
    fd = torch.zeros_like(x)
    flat = x.reshape(3, -1)
    for j in range(flat.shape[1]):
        e = torch.zeros_like(flat)
        e[:, j] = h
        fd.reshape(3, -1)[:, j] = (
            logp((flat + e).reshape(x.shape)) - logp((flat - e).reshape(x.shape))
        ) / (2 * h)
    expected = torch.clamp(x + eps * torch.sign(fd), -1, 1)
    assert torch.equal(x1, expected)
    assert (logp(x1) > logp(x)).all()  # one step raises the target's log-probability
    np.testing.assert_allclose(logits.numpy(), model(x).detach().numpy())


def _check_invariants(res, net, eps_net, n_iter):
    h = res.history
    assert len(h) == n_iter + 1
    assert h[-1]["is_1split"] > h[0]["is_1split"]
    assert h[-1]["mean_target_prob"] > h[0]["mean_target_prob"]
    for row in h:  # L-inf distance after k steps is at most k * eps
        assert row["linf_network"] <= row["iteration"] * eps_net + 1e-6
    q = res.final_uint8
    assert q.dtype == np.uint8 and q.shape[-1] == 3
    # quantised images stay within n*eps (in grey levels, +0.5 for rounding) of the start at network
    # res
    assert res.final["quantized_uint8"]["is_1split"] > res.final["start"]["is_1split"]


@needs_torch
def test_attack_raises_is_on_random_torchvision_cpu():
    net = backbones.load_backbone("torchvision", weights="random:0", input_size=75, batch_size=16)
    x = data.load_source("noise", count=24).read_all()
    s = attack.AttackSettings(eps=0.01, iterations=6, batch_size=12)
    res = attack.run_attack(net, x, s, progress=False)
    _check_invariants(res, net, 0.01, 6)
    assert res.targets.tolist() == list(range(24))
    # pixel-unit epsilon: 1 grey level per step = 1/127.5 in [-1, 1] units
    r2 = attack.run_attack(
        net, x[:4], attack.AttackSettings(eps=1, eps_units="pixel", iterations=2), progress=False
    )
    assert (
        r2.history[-1]["linf_pixels"] <= 2 + 1e-4
        and r2.history[-1]["linf_network"] <= 2 / 127.5 + 1e-6
    )
    # attacking the 32x32 source through the (differentiable) resize
    r3 = attack.run_attack(
        net,
        x[:6],
        attack.AttackSettings(eps=0.02, iterations=3, attack_at="source"),
        progress=False,
    )
    assert r3.final_uint8.shape == (6, 32, 32, 3)
    assert r3.history[-1]["mean_target_prob"] > r3.history[0]["mean_target_prob"]


@needs_torch
def test_start_images_stay_in_range_and_quantisation_is_exact():
    net = backbones.load_backbone("torchvision", weights="random:0", input_size=75)
    x = np.zeros((2, 32, 32, 3), np.uint8)
    x[1] = 255
    res = attack.run_attack(net, x, attack.AttackSettings(eps=0.05, iterations=3), progress=False)
    # clipping at the valid range: black stays >= 0, white <= 255, and the start image survives
    # quantisation exactly when the attack is switched off
    assert res.final_uint8.min() >= 0 and res.final_uint8.max() <= 255
    zero = attack.run_attack(net, x, attack.AttackSettings(eps=0.05, iterations=0), progress=False)
    np.testing.assert_array_equal(
        zero.final_uint8, np.stack([np.zeros((75, 75, 3)), np.full((75, 75, 3), 255)])
    )


@needs_tf
def test_attack_paths_of_keras_tfhub_and_tf2015(keras_net, tfhub_net, tf2015_net):
    x = data.load_source("synthetic", count=4).read_all()
    # at 299x299 (the 2015 graph's fixed size) the random network is far more sensitive, and
    # large sign steps overshoot, so it gets a smaller step
    for net, n_img, eps in ((keras_net, 4, 0.02), (tfhub_net, 4, 0.02), (tf2015_net, 2, 0.0002)):
        res = attack.run_attack(
            net,
            x[:n_img],
            attack.AttackSettings(eps=eps, iterations=2, batch_size=4),
            progress=False,
        )
        assert res.history[-1]["mean_target_prob"] > res.history[0]["mean_target_prob"], net.name
        # eps on [-1, 1] = eps * 127.5 grey levels per step, whatever the backbone's input scale
        assert res.history[-1]["linf_pixels"] <= 2 * eps * 127.5 + 1e-3, net.name


def test_errors():
    with pytest.raises(HarnessError, match="eps must be positive"):
        attack.AttackSettings(eps=0)
    with pytest.raises(HarnessError, match="eps_units"):
        attack.AttackSettings(eps_units="percent")
    with pytest.raises(HarnessError, match="iterations must be >= 0"):
        attack.AttackSettings(iterations=-1)
    with pytest.raises(HarnessError, match="attack_at must be"):
        attack.AttackSettings(attack_at="pixels")
    with pytest.raises(HarnessError, match="precision must be one of"):
        attack.AttackSettings(precision="fp8")
    # the paper's 0.001 on [-1, 1] is 0.1275 grey levels: in the 2015 graph's 0..255 input units
    # that is 0.1275, in [-1, 1] units 0.001, in [0, 1] units 0.0005
    s = attack.AttackSettings()
    np.testing.assert_allclose(s.eps_network(np.ones(3)), 0.1275)
    np.testing.assert_allclose(s.eps_network(np.full(3, 1 / 127.5)), 0.001)
    np.testing.assert_allclose(s.eps_network(np.full(3, 1 / 255)), 0.0005)

    class NoGrad:
        name, has_gradients = "opaque", False

    with pytest.raises(HarnessError, match="no gradient path"):
        attack.run_attack(NoGrad(), np.zeros((1, 32, 32, 3), np.uint8))
    assert attack.cycling_targets(5, 3).tolist() == [0, 1, 2, 0, 1]
