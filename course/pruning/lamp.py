"""LAMP (Lee et al. 2021, "Layer-adaptive Sparsity for the Magnitude-based Pruning"): magnitude, made comparable
across layers.

With a layer's weights sorted so that w_1² ≤ w_2² ≤ ... ≤ w_n²,

    score(u) = w_u² / Σ_{v ≥ u} w_v²          (the weight's share of what is left of its layer from it upwards)

Within a layer the order is magnitude's; across layers the scores are on one scale (the largest weight of every
layer scores exactly 1), so one global threshold never empties a layer, and multiplying a layer by a constant
changes nothing. The paper uses it with one global threshold: registered as the weight criterion "lamp" with scope
"global", so `prune_unstructured(model, 0.99, criterion="lamp")` is LAMP as published.
Introduced in 05_local_vs_global
"""
from __future__ import annotations

from typing import Any

import torch
from torch import nn

from course.pruning.criteria import register

__all__ = ["lamp_score", "lamp_scores"]


def lamp_score(weight: torch.Tensor) -> torch.Tensor:
    """LAMP score of each entry of one weight tensor: w_u² / Σ_{v ≥ u} w_v², v running over the entries ≥ it."""
    w2 = weight.detach().flatten().double().square()                        # (n,)
    order = torch.argsort(w2, stable=True)                                  # ascending
    tail = w2[order].flip(0).cumsum(0).flip(0)                              # Σ_{v ≥ u} w_v², in sorted order
    scores = torch.empty_like(w2)
    scores[order] = w2[order] / tail.clamp_min(torch.finfo(torch.float64).tiny)
    return scores.view_as(weight).float()


@register("lamp", "weights", scope="global")
def lamp_scores(model: nn.Module, layers: list, **_: Any) -> dict[str, torch.Tensor]:
    """LAMP: score = w_u² / Σ_{v ≥ u} w_v² within each layer (Lee et al. 2021); meant for the global scope."""
    return {name: lamp_score(layer.weight) for name, layer in layers}
