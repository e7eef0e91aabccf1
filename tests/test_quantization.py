"""course.quantization: torch's fake-quantizer is the oracle for "linear", Lloyd's algorithm for "kmeans"; masks,
zeros and the given model are kept; the grids are recovered from the weights alone."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings, strategies as st

from course.models import build_model
from course.pruning.masks import get_masks
from course.pruning.unstructured import prune_unstructured
from course.quantization import (int_grid, is_on_int_grid, is_weight_shared, kmeans_1d, linear_quantize, quantize,
                                 shared_codebook)


@pytest.mark.parametrize("bits", [2, 3, 4, 6, 8])
def test_linear_matches_torch_fake_quantize_per_channel(bits):
    w = torch.randn(30, 50, generator=torch.Generator().manual_seed(bits)) * 0.1
    kept = torch.ones_like(w, dtype=torch.bool)
    w_hat, q, scale = linear_quantize(w, bits, kept)
    qmax = 2 ** (bits - 1) - 1
    oracle = torch.fake_quantize_per_channel_affine(w, scale, torch.zeros(30, dtype=torch.int32), 0, -qmax, qmax)
    assert torch.equal(w_hat, oracle)
    assert torch.equal(scale, w.abs().amax(dim=1) / qmax)
    assert q.abs().max() == qmax and torch.equal(q.float() * scale[:, None], w_hat)


def test_linear_per_tensor_uses_one_scale_and_matches_torch():
    w = torch.randn(4, 6, generator=torch.Generator().manual_seed(1))
    w_hat, _, scale = linear_quantize(w, 8, torch.ones_like(w, dtype=torch.bool), per_channel=False)
    assert torch.all(scale == w.abs().max() / 127)
    assert torch.equal(w_hat, torch.fake_quantize_per_tensor_affine(w, float(scale[0]), 0, -127, 127))


def test_linear_of_a_conv_is_per_output_channel_and_pruned_weights_stay_zero():
    w = torch.randn(6, 3, 5, 5, generator=torch.Generator().manual_seed(2))
    kept = torch.rand(6, 3, 5, 5, generator=torch.Generator().manual_seed(3)) > 0.5
    w_hat, q, scale = linear_quantize(w, 4, kept)
    assert (w_hat[~kept] == 0).all() and scale.shape == (6,)
    masked = torch.where(kept, w, torch.zeros(()))
    oracle = torch.fake_quantize_per_channel_affine(masked, scale, torch.zeros(6, dtype=torch.int32), 0, -7, 7)
    assert torch.equal(w_hat, oracle)


def _lloyd_oracle(values: np.ndarray, k: int) -> np.ndarray:
    """Plain O(n·k) Lloyd's algorithm with linear initialisation (float64)."""
    c = np.linspace(values.min(), values.max(), k)
    for _ in range(300):
        labels = np.abs(values[:, None] - c[None, :]).argmin(axis=1)
        new = np.array([values[labels == j].mean() if (labels == j).any() else c[j] for j in range(k)])
        if np.array_equal(new, c):
            break
        c = new
    return c


def test_kmeans_matches_a_plain_lloyd_oracle():
    g = torch.Generator().manual_seed(0)
    values = torch.cat([torch.randn(500, generator=g) * 0.01 - 0.1, torch.randn(300, generator=g) * 0.02 + 0.05,
                        torch.randn(50, generator=g) * 0.01 + 0.3])
    centroids, labels = kmeans_1d(values, 8)
    assert np.allclose(centroids.numpy(), _lloyd_oracle(values.double().numpy(), 8), atol=1e-6)
    nearest = (values[:, None] - centroids[None, :]).abs().argmin(dim=1)
    assert torch.equal(labels, nearest)                                   # every value sits at its nearest centroid


def test_empty_clusters_stay_unless_relocated():
    values = torch.cat([torch.linspace(-1.0, -0.8, 50), torch.linspace(0.8, 1.0, 50)])   # a pruning gap around 0
    _, labels = kmeans_1d(values, 8)
    assert torch.unique(labels).numel() < 8                               # linear init wastes centroids in the gap
    _, labels = kmeans_1d(values, 8, relocate_empty=True)
    assert torch.unique(labels).numel() == 8


def test_kmeans_with_few_distinct_values_is_exact():
    values = torch.tensor([0.5, -0.25, 0.5, 1.0])
    centroids, labels = kmeans_1d(values, 16)
    assert torch.equal(centroids[labels], values)


@pytest.mark.parametrize("method, bits", [("linear", 8), ("linear", 4), ("kmeans", 4), ("kmeans", 2)])
def test_quantize_keeps_masks_zeros_biases_and_the_input_model(method, bits):
    torch.manual_seed(0)
    model = prune_unstructured(build_model("lenet5", (1, 28, 28)), 0.8, scope="global")
    before = {k: v.clone() for k, v in model.state_dict().items()}
    q = quantize(model, bits, method=method)
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in before.items())   # not mutated
    for name, mask in get_masks(q).items():
        layer = q.get_submodule(name)
        assert torch.equal(mask, get_masks(model)[name]) and (layer.weight[~mask] == 0).all()
        distinct = torch.unique(layer.weight[mask]).numel()
        assert distinct <= (2 ** bits if method == "kmeans" else layer.weight.shape[0] * (2 ** bits - 1))
        assert (is_weight_shared(layer) if method == "kmeans" else is_on_int_grid(layer))
    assert torch.equal(q.fc1.bias, model.fc1.bias)                        # biases stay fp32
    assert not torch.equal(q.fc1.weight, model.fc1.weight)


def test_inplace_quantizes_the_given_model_and_exclude_keeps_layers_fp32():
    torch.manual_seed(0)
    model = build_model("lenet300")
    fc3 = model.fc3.weight.clone()
    out = quantize(model, 3, method="kmeans", exclude=["fc3"], inplace=True)
    assert out is model and torch.unique(model.fc2.weight).numel() <= 8
    assert torch.equal(model.fc3.weight, fc3)


def test_unmasked_zeros_count_as_pruned():
    torch.manual_seed(0)
    model = build_model("lenet300")
    with torch.no_grad():
        model.fc2.weight[:, :150] = 0.0
    q = quantize(model, 2, method="kmeans")
    assert (q.fc2.weight[:, :150] == 0).all()
    assert torch.unique(q.fc2.weight[:, 150:]).numel() <= 4               # the zeros are not a fitted centroid


def test_shared_codebook_recovers_the_codebook_and_refuses_float_weights():
    torch.manual_seed(0)
    q = quantize(prune_unstructured(build_model("lenet300"), 0.9), 4, method="kmeans")
    codebook, index, kept = shared_codebook(q.fc1)
    assert codebook.numel() <= 16 and torch.equal(codebook[index], q.fc1.weight[kept])
    with pytest.raises(ValueError, match="distinct values.*method='kmeans'"):
        shared_codebook(build_model("lenet300").fc1)


def test_int_grid_recovers_the_exact_integers_and_scales():
    g = torch.Generator().manual_seed(0)
    w = torch.randn(20, 30, generator=g)
    kept = torch.rand(20, 30, generator=g) > 0.5
    rows = torch.arange(20)[:, None].expand(20, 30)
    for bits in (8, 5, 2):
        for per_channel in (True, False):
            w_hat, _, _ = linear_quantize(w, bits, kept, per_channel)
            q, s = int_grid(w_hat, kept)
            assert torch.equal(q.float()[kept] * s[rows[kept]], w_hat[kept])
    assert int_grid(w, torch.ones_like(kept)) is None                     # float weights are on no int8 grid
    assert int_grid(w, torch.ones_like(kept), rows=1) is None


@settings(max_examples=30, deadline=None)
@given(st.integers(2, 8), st.booleans(), st.integers(0, 10_000))
def test_every_linear_grid_is_found(bits, per_channel, seed):
    g = torch.Generator().manual_seed(seed)
    w = torch.randn(7, 13, generator=g) * 10 ** torch.empty(()).uniform_(-4, 2, generator=g)
    kept = torch.rand(7, 13, generator=g) > 0.3
    w_hat, _, _ = linear_quantize(w, bits, kept, per_channel)
    grid = int_grid(w_hat, kept)
    assert grid is not None
    q, s = grid
    assert torch.equal((q.float() * s[:, None])[kept], w_hat[kept])


@pytest.mark.parametrize("kwargs, error, match", [
    (dict(bits=1), ValueError, "bits"), (dict(bits=9, method="kmeans"), ValueError, "bits"),
    (dict(bits=4.0), TypeError, "bits"), (dict(method="log"), ValueError, "method"),
    (dict(per_channel="yes"), TypeError, "per_channel"), (dict(exclude=["conv9"]), ValueError, "conv9"),
    (dict(exclude=["fc1", "fc2", "fc3"]), ValueError, "no Linear/Conv2d"),
])
def test_bad_arguments_name_what_is_wrong(kwargs, error, match):
    with pytest.raises(error, match=match):
        quantize(build_model("lenet300"), **kwargs)
    with pytest.raises(TypeError, match="nn.Module"):
        quantize({"fc1.weight": torch.zeros(2, 2)})
