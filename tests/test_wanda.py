"""Calibration statistics and Wanda: the inputs a layer sees, exact per-row sparsity, 2:4, and outlier features."""
from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from course import prune_unstructured
from course.models import ViT
from course.pruning import NMSkipWarning, activation_norms, get_masks, is_nm_sparse
from course.pruning.calibration import InputStats, calibration_inputs, forward_order, layer_inputs


def _vit(seed: int = 0) -> ViT:
    torch.manual_seed(seed)
    return ViT(dim=16, depth=2, heads=4, mlp_ratio=2).eval()


def _batch(n: int = 32, seed: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 1, 28, 28, generator=g), torch.randint(0, 10, (n,), generator=g)


def inputs_with_outliers(n: int = 256, d: int = 64, seed: int = 0) -> torch.Tensor:
    """Correlated inputs where 3 features are 20× larger, like the outlier features of LLMs."""
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(n, d, generator=g) @ torch.randn(d, d, generator=g) / d ** 0.5
    X[:, :3] *= 20
    return X


# --- calibration --------------------------------------------------------------------------------------------------
def test_conv_layer_inputs_reproduce_the_convolution():
    conv = nn.Conv2d(3, 5, 3, stride=2, padding=1)
    x = torch.randn(2, 3, 9, 9)
    X = layer_inputs(conv, x)                                          # (2·5·5, 27)
    y = X @ conv.weight.flatten(1).T + conv.bias                       # (50, 5)
    torch.testing.assert_close(y, conv(x).permute(0, 2, 3, 1).reshape(-1, 5), atol=1e-5, rtol=1e-5)


def test_input_stats_norms_and_hessian_match_the_formulas():
    lin = nn.Linear(6, 2)
    x = torch.randn(4, 5, 6)                                           # (N, T, in): 20 samples
    s = InputStats(lin, gram=True)
    s.add(x[:2])
    s.add(x[2:])
    X = x.reshape(-1, 6).double()
    torch.testing.assert_close(s.norms, X.norm(dim=0).float())
    torch.testing.assert_close(s.hessian, 2 * X.T @ X / 20)
    with pytest.raises(ValueError, match="gram=True"):
        InputStats(lin).hessian


def test_calibration_takes_a_tensor_a_pair_or_a_loader_and_orders_layers_by_data_flow():
    x, y = _batch(8)
    assert torch.equal(calibration_inputs(x)[0], x)
    assert torch.equal(calibration_inputs((x, y))[0], x)
    assert len(calibration_inputs([(x, y)] * 5, num_batches=2)) == 2
    with pytest.raises(TypeError, match="data must be"):
        calibration_inputs(3)

    class Backwards(nn.Module):                                       # registered b, a; runs a, b
        def __init__(self):
            super().__init__()
            self.b, self.a = nn.Linear(4, 2), nn.Linear(3, 4)

        def forward(self, x):
            return self.b(self.a(x))
    assert forward_order(Backwards(), ["b", "a"], torch.randn(2, 3)) == ["a", "b"]


# --- Wanda --------------------------------------------------------------------------------------------------------
def test_wanda_prunes_exactly_the_same_count_in_every_row_of_every_layer():
    pruned = prune_unstructured(_vit(), 0.5, criterion="wanda", data=_batch())
    masks = get_masks(pruned)
    assert len(masks) == 2 * 6 + 2                                     # q, k, v, o, fc1, fc2 per block + embed + head
    for name, mask in masks.items():
        rows = mask.flatten(1)
        assert torch.all(rows.sum(1) == rows.shape[1] - round(0.5 * rows.shape[1])), name


def test_wanda_score_is_weight_times_input_norm_and_keeps_weights_on_outlier_features():
    torch.manual_seed(0)
    lin = nn.Linear(64, 8)
    X = inputs_with_outliers()
    torch.testing.assert_close(activation_norms(lin, X)[""], X.norm(dim=0))
    pruned = prune_unstructured(lin, 0.5, criterion="wanda", data=X)
    score = lin.weight.detach().abs() * X.norm(dim=0)
    for row in range(8):                                               # each row keeps its 32 best scores
        best = set(torch.argsort(score[row], descending=True)[:32].tolist())
        assert set(torch.nonzero(pruned.prune_mask[row]).flatten().tolist()) == best
    on_outliers = lambda m: int(m.prune_mask[:, :3].sum())             # kept weights reading the 3 outlier features
    assert on_outliers(pruned) >= 22                                   # of 24: Wanda keeps them
    assert on_outliers(prune_unstructured(lin, 0.5)) <= 16             # magnitude is blind to the inputs


def test_wanda_with_equal_input_norms_is_magnitude_per_row():
    torch.manual_seed(0)
    lin = nn.Linear(16, 4)
    X = torch.eye(16).repeat(3, 1)                                     # every feature has norm sqrt(3)
    a = prune_unstructured(lin, 0.25, criterion="wanda", data=X)
    b = prune_unstructured(lin, 0.25, criterion="magnitude", scope="row")
    assert torch.equal(a.prune_mask, b.prune_mask)


def test_wanda_on_a_convolution_scores_each_kernel_entry_by_its_patch_norm():
    torch.manual_seed(0)
    conv = nn.Conv2d(2, 3, 3, padding=1)
    x = torch.randn(4, 2, 6, 6)
    pruned = prune_unstructured(conv, 0.5, criterion="wanda", data=x)
    norms = layer_inputs(conv, x).norm(dim=0).view(1, 2, 3, 3)          # (1, C, kh, kw)
    score = (conv.weight.detach().abs() * norms).flatten(1)
    keep = torch.zeros_like(score, dtype=torch.bool).scatter_(1, score.argsort(1, descending=True)[:, :9], True)
    assert torch.equal(pruned.prune_mask.flatten(1), keep)


def test_wanda_needs_data_refuses_grouped_convs_by_name_and_never_touches_the_model():
    model = _vit()
    before = copy.deepcopy(model.state_dict())
    with pytest.raises(ValueError, match="needs data"):
        prune_unstructured(model, 0.5, criterion="wanda")
    prune_unstructured(model, 0.5, criterion="wanda", data=_batch())
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    depthwise = nn.Sequential(nn.Conv2d(4, 4, 3, groups=4), nn.Flatten(), nn.Linear(4 * 4 * 4, 2))
    with pytest.raises(ValueError, match="'0' is a grouped or depthwise Conv2d"):
        prune_unstructured(depthwise, 0.5, criterion="wanda", data=torch.randn(2, 4, 6, 6))
    assert prune_unstructured(depthwise, 0.5, criterion="wanda", data=torch.randn(2, 4, 6, 6), exclude=["0"])


def test_two_four_wanda_holds_the_pattern_and_skips_the_49_wide_patch_embedding_by_name():
    with pytest.warns(NMSkipWarning, match=r"patch_embed \(grouped dimension 49\)"):
        pruned = prune_unstructured(_vit(), 0.5, criterion="wanda", pattern="2:4", data=_batch())
    masks = get_masks(pruned)
    assert "patch_embed" not in masks and len(masks) == 13
    for name, mask in masks.items():
        assert torch.all(mask.flatten(1).reshape(mask.shape[0], -1, 4).sum(-1) == 2), name
        assert is_nm_sparse(dict(pruned.named_modules())[name].weight, 2, 4)


def test_row_scope_keeps_already_pruned_weights_pruned():
    model = _vit()
    once = prune_unstructured(model, 0.3, criterion="magnitude", scope="row")
    twice = prune_unstructured(once, 0.5, criterion="wanda", data=_batch())
    for name, mask in get_masks(twice).items():
        assert not (mask & ~get_masks(once)[name]).any(), name        # nothing pruned comes back
        rows = mask.flatten(1)
        assert torch.all(rows.sum(1) == rows.shape[1] - round(0.5 * rows.shape[1]))
