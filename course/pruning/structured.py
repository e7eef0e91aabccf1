"""Structured pruning: score whole units (neurons, filters), choose which to remove, and cut them out.

`ratio` is the fraction of units removed. `unit_scores` scores, `structured_masks` selects (local or global
scope), `prune_structured` returns a physically smaller dense model and `mask_structured` its masked twin.
The surgery itself lives in `course.pruning.surgery`.
"""
from __future__ import annotations

import copy
import math
import numbers
from collections.abc import Callable, Iterable
from itertools import islice

import torch
from torch import nn

from course.pruning.surgery import Link, chain_links, remove_units, zero_units

__all__ = ["UNIT_CRITERIA", "SCOPES", "unit_scores", "structured_masks", "prune_structured", "mask_structured"]

UNIT_CRITERIA = ("l1", "l2", "random", "taylor")
SCOPES = ("local", "global")
Batches = Iterable | tuple


def check_ratio(ratio: float, name: str = "ratio") -> float:
    """Return `ratio` as a float if it is a real number in [0, 1); raise TypeError/ValueError otherwise."""
    if isinstance(ratio, bool) or not isinstance(ratio, numbers.Real):
        raise TypeError(f"{name} must be a real number in [0, 1), got {type(ratio).__name__}")
    ratio = float(ratio)
    if math.isnan(ratio) or not 0.0 <= ratio < 1.0:
        raise ValueError(f"{name} must be in [0, 1) (the fraction of units removed), got {ratio}")
    return ratio


def _check_choice(value: str, choices: tuple[str, ...], what: str) -> None:
    if value not in choices:
        raise ValueError(f"unknown {what} {value!r}; choose one of {list(choices)}")


def _check_int(value: int, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
    return int(value)


def batches(data: Batches, num_batches: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Up to `num_batches` (x, y) batches from a DataLoader-like iterable, or the single batch `(x, y)`."""
    if isinstance(data, (tuple, list)) and len(data) == 2 and all(isinstance(t, torch.Tensor) for t in data):
        return [tuple(data)]
    out = [(x, y) for x, y in islice(iter(data), num_batches)]
    if not out:
        raise ValueError("data yielded no batches; pass a DataLoader or an (x, y) pair")
    return out


def _prunable(model: nn.Module, exclude: Iterable[str]) -> list[Link]:
    """The chain's links minus excluded layers; unknown names or nothing left -> ValueError."""
    links = chain_links(model)
    if isinstance(exclude, str):
        exclude = (exclude,)
    exclude = set(exclude)
    names = {n for n, _ in model.named_modules()}
    if exclude - names:
        raise ValueError(f"exclude names {sorted(exclude - names)} are not modules of the model; "
                         f"prunable layers: {[link.layer for link in links]}")
    kept = [link for link in links if link.layer not in exclude]
    if not kept:
        raise ValueError("no prunable layers: structured pruning needs a Linear/Conv2d before the final layer "
                         f"that is not excluded (prunable: {[link.layer for link in links]}, exclude: {sorted(exclude)})")
    return kept


def _taylor(model: nn.Module, links: list[Link], data: Batches, loss_fn: Callable, num_batches: int) -> dict:
    """Group Taylor score (Molchanov et al. 2019): mean over batches of |sum_{p in unit} w_p * dL/dw_p|."""
    net = copy.deepcopy(model).train()      # a copy: gradients and BN statistics never touch `model`
    modules = dict(net.named_modules())
    device = next(net.parameters()).device
    totals = {link.layer: torch.zeros(link.units) for link in links}
    todo = batches(data, num_batches)
    for x, y in todo:
        net.zero_grad(set_to_none=False)
        loss_fn(net(x.to(device)), y.to(device)).backward()
        with torch.no_grad():
            for link in links:
                layer = modules[link.layer]
                params = [layer.weight, layer.bias] + [p for bn in link.norms
                                                      for p in (modules[bn].weight, modules[bn].bias)]
                s = sum((p * p.grad).reshape(link.units, -1).sum(1) for p in params if p is not None)  # (units,)
                totals[link.layer] += s.abs().float().cpu()
    return {name: t / len(todo) for name, t in totals.items()}


def unit_scores(
    model: nn.Module,
    criterion: str = "l1",
    data: Batches | None = None,
    *,
    exclude: Iterable[str] = (),
    loss_fn: Callable | None = None,
    num_batches: int = 4,
    seed: int = 0,
) -> dict[str, torch.Tensor]:
    """Score every output unit of every prunable layer -> {layer: (units,)}; higher = more important.

    "l1": sum_j |W[u, j]| over the unit's incoming weights (Li et al. 2017); "l2": sqrt(sum_j W[u, j]^2);
    "random": U(0, 1) from a generator seeded with `seed`; "taylor": mean over batches of
    |sum_p w_p * dL/dw_p| over the unit's weights, bias and BN gamma/beta (Molchanov et al. 2019).
    Introduced in 03_structured.
    """
    _check_choice(criterion, UNIT_CRITERIA, "criterion")
    links = _prunable(model, exclude)
    modules = dict(model.named_modules())
    if criterion == "taylor":
        if data is None:
            raise ValueError("criterion 'taylor' needs data: pass data=(x, y) or a DataLoader of (x, y) batches")
        return _taylor(model, links, data, loss_fn or nn.functional.cross_entropy, _check_int(num_batches, "num_batches"))
    if criterion == "random":
        gen = torch.Generator().manual_seed(seed)
        return {link.layer: torch.rand(link.units, generator=gen) for link in links}
    p = 1 if criterion == "l1" else 2
    return {link.layer: modules[link.layer].weight.detach().flatten(1).float().norm(p=p, dim=1).cpu()
            for link in links}      # (units, fan_in) -> (units,)


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
    criterion: str = "l1",
    scope: str = "local",
    data: Batches | None = None,
    exclude: Iterable[str] = (),
    loss_fn: Callable | None = None,
    num_batches: int = 4,
    round_to: int = 1,
    seed: int = 0,
) -> dict[str, torch.Tensor]:
    """Which units to keep -> {layer: bool (units,)}, True = kept.

    "local": every layer loses min(round(ratio * units), units - 1) units. "global": the round(ratio * total)
    units with the lowest mean-normalised scores go, at least one unit per layer stays. With `round_to` > 1
    each layer's kept count is rounded down to a multiple of it. Introduced in 03_structured.
    """
    ratio = check_ratio(ratio)
    _check_choice(scope, SCOPES, "scope")
    round_to = _check_int(round_to, "round_to")
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
    criterion: str = "l1",
    scope: str = "local",
    data: Batches | None = None,
    exclude: Iterable[str] = (),
    inplace: bool = False,
    loss_fn: Callable | None = None,
    num_batches: int = 4,
    round_to: int = 1,
    seed: int = 0,
) -> nn.Module:
    """Remove a `ratio` of the units (neurons, filters) and return a physically smaller dense model.

    Units are chosen by `structured_masks`; the final classifier keeps all its outputs. Chains only
    (nn.Sequential); residual graphs go through `prune_with_torch_pruning`. Introduced in 03_structured.
    """
    keep = structured_masks(model, ratio, criterion=criterion, scope=scope, data=data, exclude=exclude,
                            loss_fn=loss_fn, num_batches=num_batches, round_to=round_to, seed=seed)
    return remove_units(model, keep, inplace=inplace)


def mask_structured(
    model: nn.Module,
    ratio: float,
    *,
    criterion: str = "l1",
    scope: str = "local",
    data: Batches | None = None,
    exclude: Iterable[str] = (),
    inplace: bool = False,
    loss_fn: Callable | None = None,
    num_batches: int = 4,
    round_to: int = 1,
    seed: int = 0,
) -> nn.Module:
    """The masked twin of `prune_structured`: same selection, same shapes, removed units zeroed and masked."""
    keep = structured_masks(model, ratio, criterion=criterion, scope=scope, data=data, exclude=exclude,
                            loss_fn=loss_fn, num_batches=num_batches, round_to=round_to, seed=seed)
    return zero_units(model, keep, inplace=inplace)
