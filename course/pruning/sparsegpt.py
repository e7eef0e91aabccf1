"""SparseGPT (Frantar & Alistarh 2023): prune a layer and update the weights it keeps, so that WX changes least.

For one layer with calibration inputs X (samples as rows) a change δ of a weight row w costs ‖δXᵀ‖²/n = ½ δHδᵀ with
H = 2XᵀX/n. Optimal Brain Surgeon (Hassibi & Stork 1993) removes weight j at the cost (the *saliency*)
ε_j = w_j² / [H⁻¹]_jj and moves the others by δ = −(w_j / [H⁻¹]_jj)·H⁻¹[j, :]: the *compensation* (`obs_step`).

SparseGPT makes this affordable for every row at once. It visits the columns left to right; once the columns before
j are settled, the inverse Hessian of the remaining columns is read off U, the upper Cholesky factor of H⁻¹
(H⁻¹ = UᵀU): [(H_{≥j,≥j})⁻¹]_jj = U_jj² and its row j is U_jj·U[j, ≥j]. So the OBS step for column j is
    err = (w_j − q_j) / U_jj,    W[:, ≥j] −= err ⊗ U[j, ≥j],    saliency w_j² / U_jj².
Which weights go is chosen per block of `blocksize` columns by that saliency, all rows compared together ("adaptive
mask selection"), or N of every M inputs for `pattern="N:M"` (with `course.pruning.nm`); updates to later blocks are
batched into one matmul per block ("lazy batch updates"). Layers are pruned one after the other in forward order, each
on calibration inputs that pass through the layers already pruned.

Follows the authors' sparsegpt.py (github.com/IST-DASLab/sparsegpt). Differences, none of which changes the method:
each block prunes exactly round(sparsity·n) weights (the reference prunes those at or below the k-th saliency, so ties
can add a few); the algebra runs in float64 on the CPU (the reference: float32 on a GPU); n counts tokens, not
sequences (H is scaled by a constant, which changes nothing); the reference collects the inputs of all Linears of one
transformer block at once, here every layer sees the layers pruned before it, in its own block too.
Introduced in 10_transformers
"""
from __future__ import annotations

import copy
import math
import warnings
from collections.abc import Iterable
from typing import Any

import torch
from torch import nn
from tqdm.auto import tqdm

from course import arguments
from course.pruning.calibration import calibration_inputs, check_layer, collect_stats, forward_order
from course.pruning.criteria import DEFAULT_NUM_BATCHES
from course.pruning.masks import MASK, apply_masks
from course.pruning.targets import prunable_layers
from course.pruning.nm import NMSkipWarning, group_view, nm_mask, parse_pattern

__all__ = ["inverse_hessian_factor", "obs_step", "sparsegpt_layer", "sparsegpt"]


def inverse_hessian_factor(H: torch.Tensor, damp: float = 0.01) -> torch.Tensor:
    """U, the upper Cholesky factor of (H + λI)⁻¹ = UᵀU, with dampening λ = damp · mean(diag H)."""
    H = H + damp * H.diagonal().mean() * torch.eye(len(H), dtype=H.dtype, device=H.device)
    Hinv = torch.cholesky_inverse(torch.linalg.cholesky(H))             # (H + λI)⁻¹ from its Cholesky factor
    return torch.linalg.cholesky(Hinv, upper=True)


def obs_step(w: torch.Tensor, Hinv: torch.Tensor, j: int) -> tuple[torch.Tensor, float]:
    """One OBS step on a weight row w: zero w_j and move the rest by δ = −(w_j / [H⁻¹]_jj)·H⁻¹[j, :].

    Returns (w + δ, ε_j) with the saliency ε_j = w_j² / [H⁻¹]_jj = 2 × the error ‖δXᵀ‖²/n it causes.
    """
    saliency = float(w[j] ** 2 / Hinv[j, j])
    w = w - w[j] / Hinv[j, j] * Hinv[j, :]                             # the compensation
    w[j] = 0.0                                                         # exactly zero, not 1e-17
    return w, saliency


def _block_mask(W1: torch.Tensor, d: torch.Tensor, sparsity: float, pruned: torch.Tensor) -> torch.Tensor:
    """Prune-mask of one block: the round(sparsity·numel) lowest saliencies w²/d², all rows compared together."""
    saliency = (W1 ** 2 / d[None, :] ** 2).flatten()                   # (rows·B,)
    saliency[pruned.flatten()] = -math.inf                             # already pruned: stays pruned
    k = max(round(sparsity * saliency.numel()), int(pruned.sum()))
    prune = torch.zeros(saliency.numel(), dtype=torch.bool)
    prune[torch.argsort(saliency, stable=True)[:k]] = True
    return prune.view_as(W1)


@torch.no_grad()
def sparsegpt_layer(W: torch.Tensor, H: torch.Tensor, sparsity: float, *, pattern: str | None = None,
                    blocksize: int = 128, damp: float = 0.01, pruned: torch.Tensor | None = None
                    ) -> tuple[torch.Tensor, torch.Tensor]:
    """Prune W (rows, cols) to `sparsity` (or to N:M) with OBS updates from H (cols, cols): (new W, keep-mask).

    `pruned` (bool, like W) marks weights that are already pruned; they stay pruned and count toward the target.
    """
    W, H = W.detach().clone().double().cpu(), H.detach().clone().double().cpu()
    rows, cols = W.shape
    pruned = torch.zeros(rows, cols, dtype=torch.bool) if pruned is None else pruned.cpu().clone()
    dead = H.diagonal() == 0                                           # inputs that were always zero
    H[dead, dead] = 1.0
    W[:, dead] = 0.0
    U = inverse_hessian_factor(H, damp)                                # (cols, cols), upper triangular
    n, m = parse_pattern(pattern) if pattern is not None else (0, 0)
    mask = torch.zeros(rows, cols, dtype=torch.bool)                   # True = pruned
    for i1 in range(0, cols, blocksize):
        i2 = min(i1 + blocksize, cols)
        W1, U1 = W[:, i1:i2].clone(), U[i1:i2, i1:i2]                  # (rows, B), (B, B)
        d = U1.diagonal()                                              # U_jj: sqrt of [H_{≥j}⁻¹]_jj
        Err1 = torch.zeros_like(W1)
        mask1 = pruned[:, i1:i2].clone() if m else _block_mask(W1, d, sparsity, pruned[:, i1:i2])
        for i in range(i2 - i1):
            if m and i % m == 0:                                       # N:M: choose in the next M columns, now
                saliency = W1[:, i:i + m] ** 2 / d[None, i:i + m] ** 2
                saliency[pruned[:, i1 + i:i1 + i + m]] = -math.inf
                mask1[:, i:i + m] = ~nm_mask(saliency, n, m)
            w = W1[:, i]
            q = torch.where(mask1[:, i], torch.zeros_like(w), w)       # the column as it will be: pruned entries 0
            err = (w - q) / d[i]                                       # OBS: w_j / U_jj on the pruned rows, else 0
            W1[:, i:] -= err[:, None] * U1[i, i:][None, :]             # compensation in the later columns of the block
            Err1[:, i] = err
        W[:, i1:i2] = W1
        mask[:, i1:i2] = mask1
        W[:, i2:] -= Err1 @ U[i1:i2, i2:]                              # lazy batched update of all later blocks
    W[mask] = 0.0
    return W.float(), ~mask


def _columns(module: nn.Module, pattern: str | None) -> torch.Tensor | None:
    """Column order for a Conv2d under an N:M pattern: (C, kh, kw) -> (kh, kw, C), so groups of M run along the
    input channels at each kernel position, as in `course.pruning.nm` (ASP's layout). None: keep the order."""
    if pattern is None or not isinstance(module, nn.Conv2d):
        return None
    c, kh, kw = module.weight.shape[1:]
    return torch.arange(c * kh * kw).view(c, kh * kw).T.flatten()     # (kh·kw·C,): new column -> old column


def _check(sparsity: float, pattern: str | None, blocksize: int, damp: float) -> tuple[float, int, float]:
    sparsity = arguments.sparsity(sparsity)
    blocksize = arguments.integer(blocksize, "blocksize", low=1)
    damp = arguments.number(damp, "damp", low=0.0, high=1.0, high_open=True, meaning="a fraction of mean(diag H)")
    if pattern is not None:
        n, m = parse_pattern(pattern)
        if not math.isclose(sparsity, 1 - n / m, abs_tol=1e-9):
            raise ValueError(f"pattern {pattern!r} keeps {n} of every {m} weights, so its sparsity is {1 - n / m:g}; "
                             f"pass sparsity={1 - n / m:g} (got {sparsity:g})")
        if blocksize % m:
            raise ValueError(f"blocksize={blocksize} must be a multiple of M={m} for pattern {pattern!r}")
    return sparsity, blocksize, damp


@torch.no_grad()
def sparsegpt(model: nn.Module, sparsity: float, data: Any, *, pattern: str | None = None, blocksize: int = 128,
              damp: float = 0.01, exclude: Iterable[str] = (), num_batches: int | None = DEFAULT_NUM_BATCHES,
              progress: bool = True) -> nn.Module:
    """SparseGPT on every Linear/Conv2d not in `exclude`, one layer at a time in forward order; returns a new model.

    Each layer's H = 2XᵀX/n comes from calibration inputs (`data`: a tensor X, an (X, y) pair or a loader, the first
    `num_batches` batches; labels are never used) that pass through the layers already pruned. `pattern="N:M"` prunes
    N:M (sparsity must be 1 − N/M); layers whose input dimension is not a multiple of M stay dense with an
    `NMSkipWarning`. The result carries course masks (`prune_mask`); `model` is never changed.
    """
    sparsity, blocksize, damp = _check(sparsity, pattern, blocksize, damp)
    net = copy.deepcopy(model)
    layers = prunable_layers(net, arguments.names(exclude, "exclude"))
    if not layers:
        raise ValueError("model has no prunable layers (nn.Linear / nn.Conv2d) outside `exclude`")
    for name, module in layers:
        check_layer(name, module)
    if pattern is not None:
        m = parse_pattern(pattern)[1]
        skipped = [f"{n} (grouped dimension {group_view(mod.weight).shape[1]})" for n, mod in layers
                   if group_view(mod.weight).shape[1] % m]
        if skipped:
            warnings.warn(f"{pattern} sparsity needs the input dimension to be a multiple of {m}; left dense: "
                          f"{', '.join(skipped)}. Pass exclude=[...] with these names to silence this warning.",
                          NMSkipWarning, stacklevel=2)
        layers = [(n, mod) for n, mod in layers if group_view(mod.weight).shape[1] % m == 0]
        if not layers:
            raise ValueError(f"no prunable layer has an input dimension divisible by {m}, so none can be {pattern}")
    inputs = calibration_inputs(data, num_batches)
    modules = dict(net.named_modules())
    order = forward_order(net, [n for n, _ in layers], inputs[0].to(layers[0][1].weight.device))
    masks = {}
    for name in tqdm(order, desc="sparsegpt", unit="layer", leave=False, disable=not progress):
        layer = modules[name]
        H = collect_stats(net, [name], inputs, gram=True)[name].hessian   # inputs through the already pruned layers
        W, old = layer.weight.flatten(1), getattr(layer, MASK, None)
        pruned = None if old is None else ~old.flatten(1)
        perm = _columns(layer, pattern)
        if perm is not None:                                           # conv under N:M: channels innermost
            W, H = W[:, perm], H[perm][:, perm]
            pruned = None if pruned is None else pruned[:, perm]
        W, keep = sparsegpt_layer(W, H, sparsity, pattern=pattern, blocksize=blocksize, damp=damp, pruned=pruned)
        if perm is not None:
            inverse = torch.argsort(perm)
            W, keep = W[:, inverse], keep[:, inverse]
        layer.weight.copy_(W.view_as(layer.weight))
        masks[name] = keep.view(layer.weight.shape)
        apply_masks(net, {name: masks[name]}, inplace=True)               # so later layers see this layer pruned
    return net
