"""Unstructured pruning: zero the individual weights with the lowest scores, per layer or under one global threshold.

`select` is the whole idea: scope "local" drops the same fraction of every layer; scope "global" ranks all weights
together under one threshold, so layers end with different sparsities (and, at extreme sparsity, a layer can lose
every weight: see `detect_layer_collapse`); scope "row" drops the same fraction of every output row (the comparison
group of Wanda, Sun et al. 2024). `select_min_density` extends it with a floor per layer. `pattern="N:M"` replaces
the scope by groups of M consecutive inputs that each keep N (`course.pruning.nm`).
`prune_unstructured` scores a model, selects, and returns a new model carrying course masks (bool `prune_mask`
buffers, pruned weights zeroed; see `course.pruning.masks`). It prunes every weight matrix of the usual layers
(`course.pruning.targets`: Linear, Conv, ConvTranspose, attention and recurrent weights), warns with a
`NotPrunedWarning` naming the weight matrices it left out when the model as a whole misses the requested sparsity
(embeddings, say: `include=[nn.Embedding]` prunes them), and warns with a `LayerCollapseWarning` when a weight
loses every entry, at any scope.
Introduced in 01_what_is_pruning (scopes in 02_unstructured and 05_local_vs_global)
"""
from __future__ import annotations

import copy
import math
import warnings
from collections.abc import Callable, Iterable
from typing import Any

import torch
from torch import nn

from course import arguments
from course.pruning.criteria import DEFAULT_NUM_BATCHES, criterion_for
from course.pruning.masks import apply_masks
from course.pruning.nm import nm_masks, parse_pattern
from course.pruning.stats import LayerCollapseWarning
from course.pruning.targets import Prunable, prunable_weights, weight_matrices

__all__ = ["SCOPES", "NotPrunedWarning", "lowest", "select", "select_min_density", "unstructured_masks",
           "prune_unstructured"]

SCOPES = ("local", "global", "row")
#: How far below the requested sparsity the whole model may end before `NotPrunedWarning` names what was left out.
SHORTFALL = 0.005


class NotPrunedWarning(UserWarning):
    """The model as a whole is less sparse than asked because some weight matrices are not prunable by default."""


def lowest(scores: torch.Tensor, k: int) -> torch.Tensor:
    """Bool flags on the k lowest of flat `scores`; ties go to the lower index, as a stable sort would.

    `torch.kthvalue` finds the k-th smallest score (the threshold) in linear time, where a sort would take
    O(n log n); everything below it is dropped, and the first tied entries fill the remaining places.
    """
    n = scores.numel()
    if k <= 0 or k >= n:
        return torch.full((n,), k > 0, dtype=torch.bool)
    if torch.isnan(scores).any():                          # NaN ranks last in a sort; kthvalue has no such rule
        drop = torch.zeros(n, dtype=torch.bool)
        drop[torch.sort(scores, stable=True).indices[:k]] = True
        return drop
    threshold = torch.kthvalue(scores, k).values
    drop = scores < threshold
    ties = torch.nonzero(scores == threshold).flatten()
    drop[ties[: k - int(drop.sum())]] = True
    return drop


def select(scores: dict[str, torch.Tensor], sparsity: float, scope: str = "local") -> dict[str, torch.Tensor]:
    """Keep-masks (True = kept) dropping k = round(sparsity·n) lowest scores per layer (local), overall (global), or
    of each output row (row: n = the row's fan-in, so every row of every layer keeps the same fraction).

    A score of -inf (an already pruned weight) is always dropped and counts toward k.
    """
    if scope == "row":
        return {name: _select_rows(s, sparsity) for name, s in scores.items()}
    flat = [s.flatten() for s in scores.values()]
    def k_of(s: torch.Tensor) -> int:
        return max(round(sparsity * s.numel()), int(torch.isneginf(s).sum()))
    if scope == "local":
        drops = [lowest(s, k_of(s)) for s in flat]
    else:
        everything = torch.cat(flat)                                    # (N,): one ranking, one threshold
        drops = lowest(everything, k_of(everything)).split([s.numel() for s in flat])
    return {name: ~d.view_as(s) for (name, s), d in zip(scores.items(), drops)}


def _select_rows(scores: torch.Tensor, sparsity: float) -> torch.Tensor:
    """Keep-mask dropping the k = round(sparsity·fan_in) lowest scores of every output row (ties: lower index)."""
    rows = scores.reshape(scores.shape[0], -1)                              # (out, fan_in)
    k = torch.clamp(torch.isneginf(rows).sum(1), min=round(sparsity * rows.shape[1]))   # (out,)
    rank = torch.argsort(torch.argsort(rows, dim=1, stable=True), dim=1)   # 0 = the row's lowest score
    return (rank >= k[:, None]).view_as(scores)


def _global_counts(flat: list[torch.Tensor], k: int, caps: list[int]) -> list[int]:
    """How many weights each layer loses under one global threshold pruning k in all, no layer above its cap.

    Water-filling: rank all scores together; a layer that would exceed its cap is fixed at the cap and the rest
    of the budget is ranked again among the other layers, until no layer is over its cap.
    """
    counts = [0] * len(flat)
    active = list(range(len(flat)))
    budget = k
    while active and budget > 0:
        dropped = lowest(torch.cat([flat[i] for i in active]), budget)     # (sum of active sizes,)
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


def select_min_density(scores: dict[str, torch.Tensor], sparsity: float, scope: str,
                       min_density: float) -> dict[str, torch.Tensor]:
    """`select` where no layer keeps fewer than ceil(min_density·n) weights (already pruned ones stay pruned).

    local: each layer drops min(round(s·n), its cap). global: one threshold, but the budget a capped layer cannot
    take goes to the other layers (`_global_counts`); a sparsity the floors make unreachable warns, at either scope.
    """
    flat = [s.flatten() for s in scores.values()]
    sizes = [s.numel() for s in flat]
    already = [int(torch.isneginf(s).sum()) for s in flat]
    caps = [max(n - math.ceil(min_density * n - 1e-9), a) for n, a in zip(sizes, already)]
    if scope == "local":
        wanted = [max(round(sparsity * n), a) for n, a in zip(sizes, already)]
        counts = [min(w, c) for w, c in zip(wanted, caps)]
        capped = [name for name, w, c in zip(scores, wanted, caps) if w > c]
        if capped:
            warnings.warn(f"min_density={min_density} keeps layers {capped} below sparsity {sparsity}, so the local "
                          f"target is not reached there: {sum(counts)} of {sum(sizes)} weights pruned "
                          f"({sum(counts) / sum(sizes):.4f})", stacklevel=4)
    else:
        k = max(round(sparsity * sum(sizes)), sum(already))
        if k > sum(caps):
            warnings.warn(f"min_density={min_density} allows at most {sum(caps)} of {sum(sizes)} weights to be "
                          f"pruned; sparsity {sparsity} (= {k} weights) is not reachable", stacklevel=4)
        counts = _global_counts(flat, min(k, sum(caps)), caps)
    return {name: ~lowest(s, c).view_as(v) for (name, v), s, c in zip(scores.items(), flat, counts)}


def unstructured_masks(layers: list[Prunable], scores: dict[str, torch.Tensor], sparsity: float,
                       scope: str = "local", min_density: float | None = None, pattern: str | None = None
                       ) -> dict[str, torch.Tensor]:
    """Keep-masks for `layers` from `scores` (see `select`, or `nm_masks` with a pattern); weights an existing
    course mask pruned score -inf, so they stay pruned and count toward the target."""
    prepared = {}
    for name, layer in layers:
        s = scores[name].detach().float().cpu().clone().view(layer.weight.shape)
        old = layer.mask
        if old is not None:
            s[~old.cpu()] = -math.inf
        prepared[name] = s
    if pattern is not None:
        return nm_masks(prepared, *parse_pattern(pattern))
    if min_density is None:
        return select(prepared, sparsity, scope)
    return select_min_density(prepared, sparsity, scope, min_density)


def prune_unstructured(model: nn.Module, sparsity: float, *, criterion: str | Callable = "magnitude",
                       scope: str | None = None, pattern: str | None = None, data: Any = None,
                       exclude: Iterable[str] = (), min_density: float | None = None, inplace: bool = False,
                       seed: int = 0, loss_fn: Callable | None = None, num_batches: int = DEFAULT_NUM_BATCHES,
                       include: Iterable | None = None) -> nn.Module:
    """Zero the `sparsity` fraction of the prunable weights with the lowest `criterion` scores; returns a new model.

    Prunable: every weight matrix of Linear, Conv, ConvTranspose, MultiheadAttention and LSTM/GRU/RNN layers, plus
    `include` (layer types such as nn.Embedding, or keys/parameter names), minus `exclude` (keys, parameter names or
    module names); see `course.pruning.targets`. A model carrying torch.nn.utils.prune reparametrisations is refused
    with the way to convert it (`from_torch_prune`).

    scope: "local" (each layer loses round(sparsity·n_layer) weights), "global" (round(sparsity·N) weights in all, N
    counting the layers not in `exclude`, under one threshold) or "row" (each output row loses round(sparsity·fan_in));
    None = the criterion's own comparison group ("row" for "wanda", "local" for the others). `min_density` (local,
    global): no layer keeps fewer than ceil(min_density·n_layer) weights; under global the budget a capped layer cannot
    take goes to the others. `pattern="N:M"` (e.g. "2:4") keeps the N best of every M consecutive inputs instead of a
    scope; sparsity must then be 1 − N/M, and layers whose input dimension is not a multiple of M stay dense with an
    `NMSkipWarning`. Biases and BatchNorm are never pruned. Already-pruned weights stay pruned (pruning is idempotent).
    `criterion`: a name of `course.pruning.criteria` or a function fn(weight) / fn(weight, grad) -> scores;
    `data` is needed by the criteria that read data ("gradient", "taylor", "snip", fn(weight, grad), ...) only;
    `loss_fn(model, batch) -> loss` computes their loss on batches that are not (X, y) pairs (`course.inputs`).
    """
    sparsity = arguments.sparsity(sparsity)
    crit = criterion_for(criterion, "weights")
    scope_given = scope
    scope = crit.scope if scope is None else arguments.choice(scope, SCOPES, "scope")
    min_density = arguments.fraction(min_density, "min_density", closed=True, none=True,
                                     meaning="fraction of weights kept")
    if pattern is not None:
        n, m = parse_pattern(pattern)
        if scope_given is not None:
            raise ValueError(f"pattern {pattern!r} compares scores inside each group of {m} inputs, so it replaces the "
                             f"scope; leave scope unset (got scope={scope_given!r})")
        if not math.isclose(sparsity, 1 - n / m, abs_tol=1e-9):
            raise ValueError(f"pattern {pattern!r} keeps {n} of every {m} weights, so its sparsity is {1 - n / m:g}; "
                             f"pass sparsity={1 - n / m:g} (got {sparsity:g})")
        if min_density is not None:
            raise ValueError(f"min_density does not apply to pattern {pattern!r}: every group of {m} keeps {n}")
    elif min_density is not None and scope == "row":
        raise ValueError("min_density applies to the local and global scopes; scope 'row' already keeps the same "
                         "fraction of every row")
    layers = prunable_weights(model, include=include, exclude=exclude)    # refuses unknown names, torch-pruned weights
    if not layers:
        raise ValueError("model has no prunable layers (Linear, Conv, attention or recurrent weights) outside "
                         "`exclude`; pass include=[...] to prune other layers")
    scores = crit(model, layers, data=data, seed=seed, loss_fn=loss_fn, num_batches=num_batches)
    masks = unstructured_masks(layers, scores, sparsity, scope, min_density, pattern)
    if not masks:
        raise ValueError(f"no prunable layer has an input dimension divisible by {parse_pattern(pattern)[1]}, so none "
                         f"can be {pattern} sparse")
    emptied = [name for name, m in masks.items() if not m.any()]
    if emptied:
        warnings.warn(f"layer collapse: {emptied} lost every weight (scope {scope!r}, sparsity {sparsity}); the "
                      f"output may no longer depend on the input. See detect_layer_collapse; min_density=, "
                      f"criterion='lamp' or a local scope prevents it", LayerCollapseWarning, stacklevel=2)
    out = apply_masks(model if inplace else copy.deepcopy(model), masks, inplace=True)
    _warn_unpruned(out, sparsity, include, exclude)
    return out


def _warn_unpruned(model: nn.Module, sparsity: float, include: Iterable | None, exclude: Iterable[str]) -> None:
    """NotPrunedWarning naming the weight matrices outside the selection (and not excluded by name) when the model
    as a whole misses `sparsity`."""
    matrices = weight_matrices(model)
    total = sum(t.weight.numel() for t in matrices)
    zeros = sum(int((t.weight.detach() == 0).sum()) for t in matrices)
    if not total or zeros / total >= sparsity - SHORTFALL:
        return
    selectable = {t.name for t in prunable_weights(model, include=include)}
    left = [t for t in matrices if t.name not in selectable and t.mask is None]
    wanted = [] if include is None else [include] if isinstance(include, (str, type)) else list(include)
    named = {t.name for t in prunable_weights(model, include=wanted + [t.name for t in left], exclude=exclude)}
    left = [t for t in left if t.name in named]                      # a weight you excluded by name is not news
    if left:
        names = ", ".join(f"{t.name} ({type(t.module).__name__}, {t.weight.numel():,} weights)" for t in left)
        warnings.warn(f"the model is {zeros / total:.4f} sparse over all its weight matrices, not {sparsity}: "
                      f"not pruned: {names}. Prune them with include=[...] (layer types such as nn.Embedding, or "
                      f"these names), or silence this with exclude=[...]", NotPrunedWarning, stacklevel=3)
