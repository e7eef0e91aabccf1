"""Structured pruning: score whole units (neurons, filters), choose which to remove, and cut them out.

`ratio` is the fraction of units removed. `unit_scores` scores (the unit criteria of `course.pruning.criteria`),
`structured_masks` selects (local or global scope), `prune_structured` returns a physically smaller dense model
and `mask_structured` its masked twin. The surgery itself lives in `course.pruning.surgery`.
Introduced in 03_structured
"""
from __future__ import annotations

import math
from collections.abc import Callable, Iterable

import torch
from torch import nn

from course import arguments
from course.pruning.criteria import DEFAULT_NUM_BATCHES, criterion_for
from course.pruning.surgery import Link, chain_links, remove_units, zero_units

__all__ = ["SCOPES", "unit_scores", "structured_masks", "prune_structured", "mask_structured"]

SCOPES = ("local", "global")
Criterion = str | Callable


def _prunable(model: nn.Module, exclude: Iterable[str]) -> list[Link]:
    """The chain's links minus excluded layers; unknown names or nothing left -> ValueError."""
    links = chain_links(model)
    exclude = set(arguments.names(exclude, "exclude"))
    names = {n for n, _ in model.named_modules()}
    if exclude - names:
        raise ValueError(f"exclude names {sorted(exclude - names)} are not modules of the model; "
                         f"prunable layers: {[link.layer for link in links]}")
    kept = [link for link in links if link.layer not in exclude]
    if not kept:
        raise ValueError("no prunable layers: structured pruning needs a Linear/Conv2d before the final layer "
                         f"that is not excluded (prunable: {[link.layer for link in links]}, exclude: {sorted(exclude)})")
    return kept


def unit_scores(
    model: nn.Module,
    criterion: Criterion = "l1",
    data: Iterable | tuple | None = None,
    *,
    exclude: Iterable[str] = (),
    loss_fn: Callable | None = None,
    num_batches: int = DEFAULT_NUM_BATCHES,
    seed: int = 0,
) -> dict[str, torch.Tensor]:
    """Score every output unit of every prunable layer -> {layer: (units,)}; higher = more important.

    "l1" (= "magnitude"): sum_j |W[u, j]| over the unit's incoming weights (Li et al. 2017); "l2": sqrt(sum_j W[u, j]^2);
    "random": U(0, 1) from a generator seeded with `seed`; "bn_gamma": |γ| of the BatchNorm after the layer (Liu et
    al. 2017); "next_layer": the L2 norm of the next layer's weights that read the unit; "taylor": mean over batches
    of (sum_p w_p * dL_b/dw_p)^2 over the unit's weights, bias and BN gamma/beta (Molchanov et al. 2019; see
    `course.pruning.unit_criteria`); or a function fn(weight[, grad]) -> (out,) (see `course.pruning.criteria`).
    """
    crit = criterion_for(criterion, "units")
    links = _prunable(model, exclude)
    return crit(model, links, data=data, seed=seed, loss_fn=loss_fn, num_batches=num_batches)


def _top(scores: torch.Tensor, n_keep: int) -> torch.Tensor:
    """Bool mask keeping the `n_keep` highest scores (ties: the lower index wins)."""
    keep = torch.zeros(len(scores), dtype=torch.bool)
    keep[torch.argsort(scores, descending=True, stable=True)[:n_keep]] = True
    return keep


def _round_keep(n_keep: int, units: int, round_to: int) -> int:
    """Round the kept count down to a multiple of `round_to`, but keep at least `round_to` (or all units)."""
    return min(units, max(round_to, n_keep - n_keep % round_to)) if round_to > 1 else n_keep


def _global_removals(scores: dict[str, torch.Tensor], ratio: float) -> dict[str, int]:
    """How many units each layer loses when the round(ratio * total) lowest normalised scores go.

    Scores are divided by their layer's mean (s / mean(s)): raw L1 norms grow with fan-in (about sqrt(fan_in)
    at init) and Taylor scores carry the loss's units, so only scores relative to the layer's own average are
    comparable for every criterion. This is also Torch-Pruning's default normaliser ("mean").
    Each layer's best unit is protected, so every layer keeps at least one.
    """
    normed = {n: s / s.mean() if s.mean() > 0 else s.clone() for n, s in scores.items()}
    for s in normed.values():
        s[s.argmax()] = math.inf
    flat = torch.cat(list(normed.values()))                                   # (total units,)
    n = min(round(ratio * len(flat)), len(flat) - len(normed))
    removed = torch.zeros(len(flat), dtype=torch.bool)
    removed[torch.argsort(flat, stable=True)[:n]] = True
    counts = [int(r.sum()) for r in removed.split([len(s) for s in normed.values()])]
    return dict(zip(normed, counts))


def structured_masks(
    model: nn.Module,
    ratio: float,
    *,
    criterion: Criterion = "l1",
    scope: str = "local",
    data: Iterable | tuple | None = None,
    exclude: Iterable[str] = (),
    loss_fn: Callable | None = None,
    num_batches: int = DEFAULT_NUM_BATCHES,
    round_to: int = 1,
    seed: int = 0,
) -> dict[str, torch.Tensor]:
    """Which units to keep -> {layer: bool (units,)}, True = kept.

    "local": every layer loses min(round(ratio * units), units - 1) units. "global": the round(ratio * total)
    units with the lowest mean-normalised scores go, at least one unit per layer stays. With `round_to` > 1
    each layer's kept count is rounded down to a multiple of it.
    """
    ratio = arguments.ratio(ratio)
    scope = arguments.choice(scope, SCOPES, "scope")
    round_to = arguments.integer(round_to, "round_to", low=1)
    scores = unit_scores(model, criterion, data, exclude=exclude, loss_fn=loss_fn, num_batches=num_batches, seed=seed)
    if scope == "local":
        removals = {n: min(round(ratio * len(s)), len(s) - 1) for n, s in scores.items()}
    else:
        removals = _global_removals(scores, ratio)
    return {n: _top(s, _round_keep(len(s) - removals[n], len(s), round_to)) for n, s in scores.items()}


def prune_structured(
    model: nn.Module,
    ratio: float,
    *,
    criterion: Criterion = "l1",
    scope: str = "local",
    data: Iterable | tuple | None = None,
    exclude: Iterable[str] = (),
    inplace: bool = False,
    loss_fn: Callable | None = None,
    num_batches: int = DEFAULT_NUM_BATCHES,
    round_to: int = 1,
    seed: int = 0,
) -> nn.Module:
    """Remove a `ratio` of the units (neurons, filters) and return a physically smaller dense model.

    Units are chosen by `structured_masks`; the final classifier keeps all its outputs. Chains only
    (nn.Sequential); residual graphs go through `prune_with_torch_pruning`.
    """
    keep = structured_masks(model, ratio, criterion=criterion, scope=scope, data=data, exclude=exclude,
                            loss_fn=loss_fn, num_batches=num_batches, round_to=round_to, seed=seed)
    return remove_units(model, keep, inplace=inplace)


def mask_structured(
    model: nn.Module,
    ratio: float,
    *,
    criterion: Criterion = "l1",
    scope: str = "local",
    data: Iterable | tuple | None = None,
    exclude: Iterable[str] = (),
    inplace: bool = False,
    loss_fn: Callable | None = None,
    num_batches: int = DEFAULT_NUM_BATCHES,
    round_to: int = 1,
    seed: int = 0,
) -> nn.Module:
    """The masked twin of `prune_structured`: same selection, same shapes, removed units zeroed and masked."""
    keep = structured_masks(model, ratio, criterion=criterion, scope=scope, data=data, exclude=exclude,
                            loss_fn=loss_fn, num_batches=num_batches, round_to=round_to, seed=seed)
    return zero_units(model, keep, inplace=inplace)
