"""NASWOT: oracle tests against explicit Hamming distances and the reference code."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch
from torch import nn

import edgenas.naswot as naswot
from edgenas.models import build_model
from edgenas.naswot import fixed_batch, hamming_kernel, naswot_score, reference_score
from edgenas.space import LDPSpace


class TinyNet(nn.Module):
    """Two ReLUs, one ReLU6, one LeakyReLU, a sigmoid (ignored) and a functional relu (ignored)."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 4, 3, padding=1)
        self.act1 = nn.ReLU()
        self.conv2 = nn.Conv2d(4, 4, 3, padding=1)
        self.act2 = nn.ReLU6()
        self.act3 = nn.LeakyReLU(0.1)
        self.gate = nn.Sigmoid()
        self.fc = nn.Linear(4 * 5 * 5, 6)
        self.act4 = nn.ReLU(inplace=True)

    def forward(self, x):
        x = self.act1(self.conv1(x))
        x = self.act3(self.act2(self.conv2(x)) - 3.0)
        x = torch.relu(self.gate(x) - 0.5)  # functional: not counted
        return self.act4(self.fc(x.flatten(1)))


def explicit_codes(model: nn.Module, images: torch.Tensor) -> np.ndarray:
    """Concatenated binary codes of the counted activations' inputs."""
    codes = []

    def grab(module, inputs):
        codes.append((inputs[0].detach().reshape(len(images), -1) > 0).numpy())

    handles = [
        m.register_forward_pre_hook(grab)
        for m in model.modules()
        if isinstance(m, (nn.ReLU, nn.ReLU6, nn.LeakyReLU))
    ]
    with torch.no_grad():
        model.train()(images)
    for handle in handles:
        handle.remove()
    return np.concatenate(codes, axis=1)


def test_kernel_equals_n_minus_hamming_distance():
    torch.manual_seed(0)
    model, images = TinyNet(), torch.randn(6, 3, 5, 5)
    codes = explicit_codes(model, images)
    n_a = codes.shape[1]
    assert n_a == 4 * 25 + 4 * 25 + 4 * 25 + 6  # act1, act2, act3, act4
    expected = np.array(
        [[n_a - np.sum(codes[i] != codes[j]) for j in range(6)] for i in range(6)], dtype=np.float64
    )
    kernel = hamming_kernel(model, images).numpy()
    np.testing.assert_array_equal(kernel, expected)
    _sign, logdet = np.linalg.slogdet(expected)
    assert naswot_score(model, images) == pytest.approx(logdet, rel=1e-12)


@pytest.mark.parametrize("seed", range(5))
def test_matches_reference_implementation_on_ldp_networks(seed):
    genotype = LDPSpace().sample_unique(5, seed=11, scales=(2, 3))[seed]
    torch.manual_seed(seed)
    model = build_model(genotype, ["depth", "segmentation", "sr", "classification", "depth"][seed])
    images = fixed_batch((8, 3, 24, 24), seed)
    ours = naswot_score(model, images)
    reference = reference_score(model, images)
    assert math.isfinite(ours)
    assert ours == pytest.approx(reference, rel=1e-9)


def test_chunked_products_are_exact(monkeypatch):
    torch.manual_seed(1)
    model = build_model(LDPSpace().sample_unique(1, seed=2, scales=(2,))[0], "depth")
    images = fixed_batch((6, 3, 16, 16), 0)
    whole = hamming_kernel(model, images)
    monkeypatch.setattr(naswot, "_CHUNK", 97)  # many chunks, ragged last chunk
    chunked = hamming_kernel(model, images)
    assert torch.equal(whole, chunked)


def test_counted_activations():
    counted = [
        naswot.is_counted_activation(m)
        for m in (nn.ReLU(), nn.ReLU6(), nn.LeakyReLU(), nn.PReLU(), nn.RReLU())
    ]
    ignored = [
        naswot.is_counted_activation(m)
        for m in (nn.Sigmoid(), nn.GELU(), nn.Softplus(), nn.SiLU(), nn.Conv2d(1, 1, 1))
    ]
    assert all(counted) and not any(ignored)


def test_network_without_relu_scores_minus_infinity():
    model = nn.Sequential(nn.Conv2d(3, 2, 1), nn.Sigmoid())
    assert naswot_score(model, torch.randn(4, 3, 4, 4)) == float("-inf")


def test_identical_inputs_make_the_kernel_singular():
    images = torch.randn(1, 3, 8, 8).repeat(4, 1, 1, 1)
    assert naswot_score(TinyNet().eval(), images[:, :, :5, :5]) == float("-inf")


def test_mode_and_weights_are_left_untouched():
    model = TinyNet().eval()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    naswot_score(model, torch.randn(4, 3, 5, 5))
    assert not model.training
    for key, value in model.state_dict().items():
        if "running" not in key and "num_batches" not in key:
            assert torch.equal(value, before[key])


def test_scores_rank_wider_networks_higher_on_average():
    # More units -> more distinct codes -> larger log|K|; a sanity check of direction.
    images = fixed_batch((16, 3, 16, 16), 0)
    space = LDPSpace()
    genotypes = space.sample_unique(1, seed=0, scales=(2,))
    base = genotypes[0]
    narrow = type(base)(
        base.scales, tuple(type(b)(**{**b.__dict__, "channels": 8}) for b in base.blocks)
    )
    wide = type(base)(
        base.scales, tuple(type(b)(**{**b.__dict__, "channels": 48}) for b in base.blocks)
    )
    scores = {}
    for name, genotype in (("narrow", narrow), ("wide", wide)):
        values = []
        for seed in range(3):
            torch.manual_seed(seed)
            values.append(naswot_score(build_model(genotype, "depth"), images))
        scores[name] = np.mean(values)
    assert scores["wide"] > scores["narrow"]


def test_fixed_batch_is_seeded():
    assert torch.equal(fixed_batch((2, 3, 4, 4), 5), fixed_batch((2, 3, 4, 4), 5))
    assert not torch.equal(fixed_batch((2, 3, 4, 4), 5), fixed_batch((2, 3, 4, 4), 6))


def test_pairwise_symmetry_and_diagonal():
    torch.manual_seed(3)
    model, images = TinyNet(), torch.randn(5, 3, 5, 5)
    kernel = hamming_kernel(model, images)
    n_a = explicit_codes(model, images).shape[1]
    assert torch.equal(kernel, kernel.T)
    assert all(kernel[i, i] == n_a for i in range(5))
    for i, j in itertools.combinations(range(5), 2):
        assert 0 <= kernel[i, j] <= n_a


def test_channels_last_option_is_close_and_restores_the_model():
    torch.manual_seed(4)
    model = build_model(LDPSpace().sample_unique(1, seed=4, scales=(2,))[0], "depth")
    images = fixed_batch((8, 3, 24, 24), 0)
    exact = naswot_score(model, images)
    fast = naswot_score(model, images, channels_last=True)
    assert fast == pytest.approx(exact, rel=1e-3)
    conv = next(m for m in model.modules() if isinstance(m, nn.Conv2d))
    assert conv.weight.is_contiguous()
    assert naswot_score(model, images) == exact


def test_search_scores_large_inputs_on_downsized_images():
    from edgenas.search.config import SearchConfig
    from edgenas.search.evaluation import SCORE_MAX_PIXELS, CandidateEvaluator

    evaluator = CandidateEvaluator(SearchConfig(task="seg", proxy_input=(128, 160)))
    height, width = evaluator.score_images.shape[-2:]
    assert height * width <= SCORE_MAX_PIXELS * 1.05 and abs(width / height - 1.25) < 0.05
    small = CandidateEvaluator(SearchConfig(task="seg", proxy_input=(32, 40)))
    assert tuple(small.score_images.shape[-2:]) == (32, 40)  # small inputs are kept
    assert math.isfinite(evaluator.score(evaluator.config.start_genotypes[0]))
