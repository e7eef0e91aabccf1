"""Prune-and-measure in one call, accuracy-vs-sparsity sweeps, and where "free" pruning ends on a curve.

    r = prune_and_evaluate(model, 0.9, test_loader)          # PruneResult(sparsity, nonzero, total, accuracy)
    acc = sparsity_curve(model, [0.0, 0.5, 0.9], test_loader, criterion="random", seeds=range(3))  # (3, 3)
    largest_sparsity_within([0.0, 0.5, 0.9], acc[0], reference=acc[0, 0], tol=0.01)

Every function prunes a copy: the model it is given is never changed.
Introduced in 01_what_is_pruning
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from torch import nn
from tqdm.auto import tqdm

from course import arguments
from course.metrics import evaluate
from course.pruning.stats import layer_sparsity
from course.pruning.unstructured import prune_unstructured

__all__ = ["PruneResult", "prune_and_evaluate", "sparsity_curve", "largest_sparsity_within"]


@dataclass(frozen=True)
class PruneResult:
    """One pruned copy: achieved sparsity = zeros / weights over Linear/Conv2d weights, nonzero of total, accuracy."""

    target: float
    sparsity: float
    nonzero: int
    total: int
    accuracy: float

    def __repr__(self) -> str:
        return (f"target {self.target:.1%} → sparsity {self.sparsity:.2%} ({self.nonzero:,} of {self.total:,} "
                f"weights kept), accuracy {self.accuracy:.2%}")


def prune_and_evaluate(model: nn.Module, sparsity: float, loader: Iterable, *, criterion: str = "magnitude",
                       scope: str = "local", seed: int = 0, **prune_kwargs: Any) -> PruneResult:
    """Prune a copy of `model` to `sparsity` with `prune_unstructured`, then measure its sparsity and accuracy."""
    pruned = prune_unstructured(model, sparsity, criterion=criterion, scope=scope, seed=seed, **prune_kwargs)
    overall = layer_sparsity(pruned).overall
    return PruneResult(target=float(sparsity), sparsity=overall.sparsity, nonzero=overall.weights - overall.zeros,
                       total=overall.weights, accuracy=evaluate(pruned, loader))


def sparsity_curve(model: nn.Module, sparsities: Sequence[float], loader: Iterable, *,
                   criterion: str = "magnitude", seeds: Iterable[int] = (0,), scope: str = "local",
                   progress: bool = True, **prune_kwargs: Any) -> np.ndarray:
    """Accuracy of one-shot pruned copies (no fine-tuning): array (len(seeds), len(sparsities)), row i = seed i."""
    sparsities = arguments.each(sparsities, "sparsities", arguments.sparsity)
    seeds = arguments.each(list(seeds), "seeds", arguments.integer)
    acc = np.zeros((len(seeds), len(sparsities)))
    bar = tqdm(total=acc.size, desc=f"{criterion} curve", disable=not progress, leave=False)
    for i, seed in enumerate(seeds):
        for j, s in enumerate(sparsities):
            pruned = prune_unstructured(model, s, criterion=criterion, scope=scope, seed=seed, **prune_kwargs)
            acc[i, j] = evaluate(pruned, loader)
            bar.update(1)
    bar.close()
    return acc


def largest_sparsity_within(sparsities: Sequence[float], accuracies: Sequence[float], reference: float,
                            tol: float) -> float:
    """Largest s such that EVERY point with sparsity <= s has accuracy >= reference - tol (0.0 if none does).

    Accuracies and `tol` are fractions (tol=0.01 is 1 percentage point). Points need not be sorted. The
    first drop below the tolerance ends the search, even if a later, sparser point comes back within it.
    """
    s_vals = arguments.each(sparsities, "sparsities", arguments.number)
    a_vals = arguments.each(accuracies, "accuracies", arguments.number)
    reference = arguments.number(reference, "reference")
    tol = arguments.fraction(tol, "tol", meaning="a fraction: 0.01 = 1 percentage point")
    if len(s_vals) != len(a_vals):
        raise ValueError(f"sparsities and accuracies must be equally long, got {len(s_vals)} and {len(a_vals)}")
    best = 0.0
    for s, a in sorted(zip(s_vals, a_vals)):
        if a < reference - tol - 1e-12:
            break
        best = s
    return best
