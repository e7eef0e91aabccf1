"""Unstructured pruning: zero individual weights chosen by a criterion, compared per layer or globally.

`prune_unstructured` returns a new model carrying course masks (bool `prune_mask` buffers, pruned weights
zeroed; see `course.pruning.masks`). Scope "local" prunes the same fraction of every layer; scope "global"
ranks all weights together under one threshold, so layers end with different sparsities (and, at extreme
sparsity, a layer can lose every weight: see `detect_layer_collapse`).
"""
from __future__ import annotations

import copy
import math
import numbers
import warnings
from collections.abc import Callable, Iterable
from typing import Any

import torch
from torch import nn

from course.pruning.criteria import DEFAULT_NUM_BATCHES, NEEDS_DATA, check_criterion, score
from course.pruning.masks import MASK, apply_masks, prunable_layers
from course.pruning.stats import (
    CollapseReport, LayerCollapseWarning, SparsityTable, detect_layer_collapse, layer_sparsity,
)

__all__ = ["prune_unstructured", "unstructured_masks", "layer_sparsity", "detect_layer_collapse",
           "SparsityTable", "CollapseReport", "LayerCollapseWarning", "SCOPES", "check_sparsity"]

SCOPES = ("local", "global")


def check_sparsity(sparsity: Any, name: str = "sparsity") -> float:
    """Return `sparsity` as a float in [0, 1); raise TypeError/ValueError naming the valid range otherwise."""
    if isinstance(sparsity, bool) or not isinstance(sparsity, numbers.Real):
        raise TypeError(f"{name} must be a number in [0, 1) (fraction of weights set to zero), "
                        f"got {type(sparsity).__name__} {sparsity!r}")
    value = float(sparsity)
    if math.isnan(value) or not 0.0 <= value < 1.0:
        raise ValueError(f"{name} must be in [0, 1) (fraction of weights set to zero), got {sparsity!r}")
    return value


def _check_min_density(min_density: Any) -> float | None:
    """None, or a float in [0, 1]: the smallest fraction of weights any pruned layer keeps."""
    if min_density is None:
        return None
    if isinstance(min_density, bool) or not isinstance(min_density, numbers.Real):
        raise TypeError(f"min_density must be None or a number in [0, 1], got {type(min_density).__name__}")
    value = float(min_density)
    if math.isnan(value) or not 0.0 <= value <= 1.0:
        raise ValueError(f"min_density must be None or in [0, 1] (fraction of weights kept), got {min_density!r}")
    return value


def _drop_lowest(scores: torch.Tensor, k: int) -> torch.Tensor:
    """Bool flags (flat) on the k lowest scores; ties go to the lower flat index, as a stable sort would.

    `torch.kthvalue` finds the k-th smallest score in linear time; everything below it is dropped, and the
    remaining places go to the first tied entries. A full sort would give the same flags in O(n log n).
    """
    n = scores.numel()
    if k <= 0:
        return torch.zeros(n, dtype=torch.bool)
    if k >= n:
        return torch.ones(n, dtype=torch.bool)
    if torch.isnan(scores).any():                       # NaN ranks last in a sort; kthvalue has no such rule
        drop = torch.zeros(n, dtype=torch.bool)
        drop[torch.sort(scores, stable=True).indices[:k]] = True
        return drop
    kth = torch.kthvalue(scores, k).values
    drop = scores < kth
    missing = k - int(drop.sum())
    if missing > 0:
        drop[torch.nonzero(scores == kth).flatten()[:missing]] = True
    return drop


def _lowest(scores: torch.Tensor, k: int) -> torch.Tensor:
    """Bool keep-mask (flat) that drops the k lowest scores; ties go to the lower flat index."""
    return ~_drop_lowest(scores, k)


def _global_counts(flat: list[torch.Tensor], k: int, caps: list[int]) -> list[int]:
    """How many weights each layer loses under one global threshold pruning k in all, no layer above its cap.

    Water-filling: rank all scores together; a layer that would exceed its cap is fixed at the cap and the rest
    of the budget is ranked again among the other layers, until no layer is over its cap.
    """
    counts = [0] * len(flat)
    active = list(range(len(flat)))
    budget = k
    while active and budget > 0:
        dropped = _drop_lowest(torch.cat([flat[i] for i in active]), budget)   # (sum of active sizes,)
        per_layer = [int(d.sum()) for d in dropped.split([flat[i].numel() for i in active])]
        over = [i for j, i in enumerate(active) if per_layer[j] > caps[i]]
        if not over:
            for j, i in enumerate(active):
                counts[i] = per_layer[j]
            break
        for i in over:
            counts[i] = caps[i]
            budget -= caps[i]
        active = [i for i in active if i not in over]
    return counts


def unstructured_masks(layers: list[tuple[str, nn.Module]], scores: dict[str, torch.Tensor], sparsity: float,
                       scope: str = "local", min_density: float | None = None) -> dict[str, torch.Tensor]:
    """Keep-masks for `layers` from `scores`: drop round(sparsity·n) lowest per layer (local) or overall (global).

    Weights an existing `prune_mask` already pruned score -inf, so they stay pruned and count toward the target.
    """
    flat, sizes, already, caps = [], [], [], []
    for name, module in layers:
        s = scores[name].detach().flatten().float().cpu().clone()           # (n,)
        old = getattr(module, MASK, None)
        if old is not None:
            s[~old.flatten().cpu()] = -math.inf
        n = s.numel()
        pruned = int(torch.isneginf(s).sum())
        cap = n if min_density is None else n - math.ceil(min_density * n - 1e-9)
        flat.append(s)
        sizes.append(n)
        already.append(pruned)
        caps.append(max(cap, pruned))
    if scope == "local":
        counts = [min(max(round(sparsity * n), a), c) for n, a, c in zip(sizes, already, caps)]
    else:
        k = max(round(sparsity * sum(sizes)), sum(already))
        if k > sum(caps):
            warnings.warn(f"min_density={min_density} allows at most {sum(caps)} of {sum(sizes)} weights to be "
                          f"pruned; sparsity {sparsity} (= {k} weights) is not reachable", stacklevel=3)
        counts = _global_counts(flat, min(k, sum(caps)), caps)
    return {name: _lowest(s, c).view(module.weight.shape) for (name, module), s, c in zip(layers, flat, counts)}


def prune_unstructured(model: nn.Module, sparsity: float, *, criterion: str = "magnitude", scope: str = "local",
                       data: Any = None, exclude: Iterable[str] = (), min_density: float | None = None,
                       inplace: bool = False, seed: int = 0, loss_fn: Callable | None = None,
                       num_batches: int = DEFAULT_NUM_BATCHES) -> nn.Module:
    """Zero the `sparsity` fraction of Linear/Conv2d weights with the lowest `criterion` scores; returns a new model.

    local: each layer loses round(sparsity·n_layer) weights. global: round(sparsity·N) weights in all, N counting
    the layers not in `exclude`, under one threshold. `min_density` (any scope): no layer keeps fewer than
    ceil(min_density·n_layer) weights; under global the budget a capped layer cannot take goes to the others.
    Biases and BatchNorm are never pruned. Already-pruned weights stay pruned (pruning is idempotent).
    `data` is needed by the gradient criteria ("gradient", "taylor", "snip") only.
    """
    sparsity = check_sparsity(sparsity)
    check_criterion(criterion)
    if scope not in SCOPES:
        raise ValueError(f"unknown scope {scope!r}; choose one of {list(SCOPES)}")
    min_density = _check_min_density(min_density)
    exclude = (exclude,) if isinstance(exclude, str) else tuple(exclude)
    layers = prunable_layers(model, exclude)                                  # raises on unknown exclude names
    if not layers:
        raise ValueError("model has no prunable layers (nn.Linear / nn.Conv2d weights) outside `exclude`")
    if criterion in NEEDS_DATA and data is None:
        raise ValueError(f"criterion {criterion!r} needs gradients: pass data= "
                         "(a DataLoader or an iterable of (X, y) batches)")
    scores = score(model, criterion, data, seed=seed, loss_fn=loss_fn, num_batches=num_batches, exclude=exclude)
    masks = unstructured_masks(layers, scores, sparsity, scope, min_density)
    out = model if inplace else copy.deepcopy(model)
    return apply_masks(out, masks, inplace=True)
