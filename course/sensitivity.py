"""Per-layer sparsities from a sensitivity scan: spend an overall budget where it hurts least, then prune to it.

    scan = sensitivity_scan(model, [0.5, 0.9, 0.99], (X, y), kind="unstructured")   # course.capstone
    plan = allocate_sparsity(scan, 0.95)          # {layer: sparsity}, overall exactly 95% of the weights
    pruned = prune_per_layer(model, plan)         # magnitude within each layer, at its own sparsity

Introduced in 05_local_vs_global
"""
from __future__ import annotations

import copy
import math
import numbers
from collections.abc import Callable, Mapping
from typing import Any

from torch import nn

from course.pruning.criteria import DEFAULT_NUM_BATCHES, NEEDS_DATA, check_criterion, score
from course.pruning.masks import apply_masks, prunable_layers
from course.pruning.unstructured import check_sparsity, unstructured_masks

__all__ = ["allocate_sparsity", "prune_per_layer", "overall_sparsity"]


def _check_scan(scan: Any) -> None:
    for attr in ("accuracy", "sizes", "baseline", "ratios"):
        if not hasattr(scan, attr):
            raise TypeError(f"scan must be a SensitivityScan (course.capstone.sensitivity_scan(..., "
                            f"kind='unstructured')); got {type(scan).__name__} without .{attr}")
    if getattr(scan, "kind", "unstructured") != "unstructured":
        raise ValueError(f"allocate_sparsity needs an unstructured scan (weights zeroed), got kind={scan.kind!r}")


def allocate_sparsity(scan: Any, budget: float) -> dict[str, float]:
    """{layer: sparsity} with Σ n_l·s_l = budget·Σ n_l, chosen greedily from a one-layer-at-a-time scan.

    Every layer starts dense. Each step raises one layer to its next scanned sparsity: the step with the smallest
    cost = (accuracy lost by that layer alone) / (weights it removes), i.e. accuracy per weight. The last step
    is cut short so the overall sparsity equals `budget`. Layers the scan does not cover stay dense.
    """
    _check_scan(scan)
    if isinstance(budget, bool) or not isinstance(budget, numbers.Real) or not 0.0 <= float(budget) < 1.0:
        raise ValueError(f"budget must be the overall sparsity, a number in [0, 1), got {budget!r}")
    sizes: dict[str, int] = dict(scan.sizes)
    total = sum(sizes.values())
    want = float(budget) * total                                    # weights to remove in all
    grid = [0.0] + sorted(scan.ratios)
    acc = {name: [scan.baseline] + [scan.accuracy[name][r] for r in sorted(scan.ratios)] for name in sizes}
    level = dict.fromkeys(sizes, 0)                                 # index into grid, per layer
    removed = 0.0
    sparsity = dict.fromkeys(sizes, 0.0)
    while removed < want - 1e-9:
        steps = [((acc[n][k] - acc[n][k + 1]) / (sizes[n] * (grid[k + 1] - grid[k])), -sizes[n], n)
                 for n, k in level.items() if k + 1 < len(grid)]
        if not steps:
            top = sum(sizes[n] * grid[-1] for n in sizes) / total
            raise ValueError(f"budget {budget} is beyond the scan: with every layer at its largest scanned "
                             f"sparsity ({grid[-1]}) the overall sparsity is {top:.4f}; scan larger sparsities")
        _, _, name = min(steps)
        k = level[name]
        gain = sizes[name] * (grid[k + 1] - grid[k])
        if removed + gain >= want:                                  # cut the last step short: exact budget
            sparsity[name] = grid[k] + (want - removed) / sizes[name]
            break
        removed += gain
        level[name] = k + 1
        sparsity[name] = grid[k + 1]
    return sparsity


def prune_per_layer(model: nn.Module, sparsities: Mapping[str, float], *, criterion: str = "magnitude",
                    data: Any = None, seed: int = 0, loss_fn: Callable | None = None,
                    num_batches: int = DEFAULT_NUM_BATCHES, inplace: bool = False) -> nn.Module:
    """Prune each layer named in `sparsities` to its own sparsity: drop round(s_l·n_l) lowest scores of layer l.

    Scores come from one call of `criterion` on the whole model (so gradient criteria see the unpruned model);
    layers not named stay as they are. Returns a new model unless `inplace`.
    """
    check_criterion(criterion)
    layers = dict(prunable_layers(model))
    unknown = sorted(set(sparsities) - set(layers))
    if unknown:
        raise ValueError(f"unknown layers {unknown}; prunable layers: {list(layers)}")
    if not sparsities:
        raise ValueError("sparsities is empty: pass {layer name: sparsity}")
    values = {n: check_sparsity(s, f"sparsity of {n!r}") for n, s in sparsities.items()}
    if criterion in NEEDS_DATA and data is None:
        raise ValueError(f"criterion {criterion!r} needs gradients: pass data= "
                         "(a DataLoader or an iterable of (X, y) batches)")
    others = [n for n in layers if n not in values]
    scores = score(model, criterion, data, seed=seed, loss_fn=loss_fn, num_batches=num_batches, exclude=others)
    masks = {}
    for name, s in values.items():
        masks.update(unstructured_masks([(name, layers[name])], {name: scores[name]}, s, "local"))
    out = model if inplace else copy.deepcopy(model)
    return apply_masks(out, masks, inplace=True)


def overall_sparsity(sizes: Mapping[str, int], sparsities: Mapping[str, float]) -> float:
    """Σ n_l·s_l / Σ n_l over the layers in `sizes` (a layer missing from `sparsities` counts as dense)."""
    total = sum(sizes.values())
    return math.fsum(sizes[n] * sparsities.get(n, 0.0) for n in sizes) / total
