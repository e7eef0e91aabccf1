"""SparseGPT against the formulas it implements: the OBS step, the Cholesky identity, lazy updates, reconstruction."""
from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from course import prune_unstructured
from course.models import ViT
from course.pruning import NMSkipWarning, get_masks, is_nm_sparse
from course.pruning.sparsegpt import inverse_hessian_factor, obs_step, sparsegpt, sparsegpt_layer
from tests.test_wanda import inputs_with_outliers


def _vit(seed: int = 0) -> ViT:
    torch.manual_seed(seed)
    return ViT(dim=16, depth=2, heads=4, mlp_ratio=2).eval()


def _images(n: int = 32, seed: int = 1) -> torch.Tensor:
    return torch.randn(n, 1, 28, 28, generator=torch.Generator().manual_seed(seed))


def _hessian(X: torch.Tensor) -> torch.Tensor:
    X = X.double()
    return 2 * X.T @ X / len(X)


def test_upper_cholesky_factor_of_the_inverse_gives_the_obs_denominators():
    H = _hessian(inputs_with_outliers(d=12))
    U = inverse_hessian_factor(H, damp=0.0)
    torch.testing.assert_close(U.T @ U, torch.linalg.inv(H))
    for j in range(12):                                                # [(H_{≥j,≥j})⁻¹]_jj = U_jj²
        torch.testing.assert_close(torch.linalg.inv(H[j:, j:])[0, 0], U[j, j] ** 2)
    damped = inverse_hessian_factor(H, damp=0.1)
    lam = 0.1 * H.diagonal().mean()
    torch.testing.assert_close(damped.T @ damped, torch.linalg.inv(H + lam * torch.eye(12, dtype=H.dtype)))


def test_obs_step_is_optimal_and_its_saliency_is_twice_the_error_it_causes():
    X = inputs_with_outliers(d=10).double()
    H = _hessian(X)
    w = torch.randn(10, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    new, saliency = obs_step(w, torch.linalg.inv(H), j=4)
    err = lambda v: float(((v - w) @ X.T).pow(2).mean())               # ‖δXᵀ‖²/n = ½ δᵀHδ
    assert new[4] == 0
    assert err(new) == pytest.approx(saliency / 2, rel=1e-9)
    zeroed = w.clone()
    zeroed[4] = 0
    assert err(new) < err(zeroed)
    g = torch.Generator().manual_seed(1)
    for _ in range(20):                                                # no other w with w_4 = 0 does better
        other = new + 0.01 * torch.randn(10, dtype=torch.float64, generator=g)
        other[4] = 0
        assert err(new) <= err(other)


def test_sparsegpt_layer_at_zero_sparsity_leaves_weights_unchanged():
    W, X = torch.randn(6, 16), inputs_with_outliers(d=16)
    new, keep = sparsegpt_layer(W, _hessian(X), 0.0)
    assert keep.all()
    torch.testing.assert_close(new, W)


def test_pruning_the_first_column_is_exactly_one_obs_step_per_row():
    H = _hessian(inputs_with_outliers(d=12))
    W = torch.randn(5, 12, dtype=torch.float64)
    pruned = torch.zeros(5, 12, dtype=torch.bool)
    pruned[:, 0] = True
    new, keep = sparsegpt_layer(W, H, 0.0, pruned=pruned, damp=0.01)
    Hinv = torch.linalg.inv(H + 0.01 * H.diagonal().mean() * torch.eye(12, dtype=torch.float64))
    expected = torch.stack([obs_step(w, Hinv, 0)[0] for w in W])
    torch.testing.assert_close(new.double(), expected, atol=1e-5, rtol=1e-5)
    assert torch.equal(keep, ~pruned)


def test_lazy_batched_updates_give_the_same_weights_for_any_blocksize():
    H, W = _hessian(inputs_with_outliers(d=32)), torch.randn(6, 32)
    pruned = torch.rand(6, 32, generator=torch.Generator().manual_seed(3)) < 0.5     # a fixed mask
    results = [sparsegpt_layer(W, H, 0.0, pruned=pruned, blocksize=b)[0] for b in (1, 4, 7, 32)]
    for other in results[1:]:
        torch.testing.assert_close(other, results[0], atol=1e-5, rtol=1e-5)


def test_the_compensation_is_what_makes_sparsegpt_better_than_its_own_mask():
    torch.manual_seed(0)
    lin, X = nn.Linear(64, 32), inputs_with_outliers()
    sg = sparsegpt(lin, 0.6, X, progress=False)
    no_update = copy.deepcopy(lin)
    with torch.no_grad():
        no_update.weight.mul_(sg.prune_mask)                           # the same mask, weights not updated
    error = lambda m: float((m(X) - lin(X)).detach().norm())
    assert error(sg) < 0.92 * error(no_update)


@pytest.mark.parametrize("pattern, sparsity", [(None, 0.5), (None, 0.7), ("2:4", 0.5)])
def test_sparsegpt_beats_magnitude_on_a_single_linear_and_never_mutates_it(pattern, sparsity):
    torch.manual_seed(0)
    lin, X = nn.Linear(64, 32), inputs_with_outliers()
    before = copy.deepcopy(lin.state_dict())
    sg = sparsegpt(lin, sparsity, X, pattern=pattern, progress=False)
    mag = prune_unstructured(lin, sparsity, pattern=pattern)
    assert all(torch.equal(before[k], v) for k, v in lin.state_dict().items())
    assert sg is not lin and not hasattr(lin, "prune_mask")
    error = lambda m: float((m(X) - lin(X)).detach().norm())          # ‖WX − ŴX‖
    assert error(sg) < 0.8 * error(mag)
    assert int((sg.weight == 0).sum()) == round(sparsity * sg.weight.numel())
    if pattern:
        assert is_nm_sparse(sg.weight, 2, 4)


def test_sparsegpt_on_a_vit_is_exact_per_layer_and_handles_dead_inputs():
    model = _vit()
    with torch.no_grad():
        model.blocks[0].mlp.fc1.weight[:5] = 0                          # 5 hidden neurons always GELU(0 + 0) = 0
        model.blocks[0].mlp.fc1.bias[:5] = 0
    before = copy.deepcopy(model.state_dict())
    pruned = sparsegpt(model, 0.5, _images(), exclude=["patch_embed", "head"], progress=False)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    masks = get_masks(pruned)
    assert sorted(masks) == sorted(n for n, m in model.named_modules()
                                   if isinstance(m, nn.Linear) and n not in ("patch_embed", "head"))
    for name, mask in masks.items():
        assert (~mask).sum() == round(0.5 * mask.numel()), name
    assert torch.all(pruned.blocks[0].mlp.fc2.weight[:, :5] == 0)        # weights on dead inputs are zeroed
    assert torch.isfinite(pruned(_images())).all()


def test_two_four_sparsegpt_skips_the_patch_embedding_with_a_named_warning():
    with pytest.warns(NMSkipWarning, match=r"patch_embed \(grouped dimension 49\)"):
        pruned = sparsegpt(_vit(), 0.5, _images(), pattern="2:4", progress=False)
    masks = get_masks(pruned)
    assert "patch_embed" not in masks and len(masks) == 13
    assert all(is_nm_sparse(dict(pruned.named_modules())[n].weight, 2, 4) for n in masks)


def test_sparsegpt_handles_convolutions_with_the_nm_layout_of_the_engine_and_refuses_grouped_ones():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 4, 3), nn.Flatten(),
                        nn.Linear(4 * 26 * 26, 10))
    x = torch.randn(8, 1, 28, 28)
    pruned = sparsegpt(net, 0.5, x, exclude=["4"], progress=False)
    assert int((pruned[0].weight == 0).sum()) == 36                     # round(0.5 · 8·1·3·3)
    nm = sparsegpt(net, 0.5, x, pattern="2:4", exclude=["0", "4"], progress=False)
    assert is_nm_sparse(nm[2].weight, 2, 4)                             # groups of 4 input channels per position
    grouped = nn.Sequential(nn.Conv2d(2, 2, 3, groups=2))
    with pytest.raises(ValueError, match="groups=2"):
        sparsegpt(grouped, 0.5, torch.randn(4, 2, 8, 8), progress=False)


def test_sparsegpt_checks_its_arguments():
    model = _vit()
    with pytest.raises(ValueError, match="sparsity"):
        sparsegpt(model, 1.5, _images())
    with pytest.raises(TypeError, match="data must be"):
        sparsegpt(model, 0.5, 3)
    with pytest.raises(ValueError, match="sparsity is 0.5"):
        sparsegpt(model, 0.6, _images(), pattern="2:4")
    with pytest.raises(ValueError, match="blocksize"):
        sparsegpt(model, 0.5, _images(), blocksize=0)
    with pytest.raises(ValueError, match="multiple of M=4"):
        sparsegpt(model, 0.5, _images(), pattern="2:4", blocksize=6)
