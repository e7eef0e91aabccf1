"""Wanda (Sun et al. 2024, "A Simple and Effective Pruning Approach for Large Language Models"): weights and activations.

score S_ij = |W_ij| · ‖X_j‖₂, compared within each output row (the paper's comparison group: `scope="row"`).

Zeroing W_ij changes output i by W_ij·x_j on every calibration token, so its error over the set is |W_ij|·‖X_j‖₂
(X_j = input feature j over all N·T tokens). A weight matters if it is large or if the feature it reads is large:
LLMs have a few outlier features 100× larger than the rest (Dettmers et al. 2022); magnitude pruning cuts the weights
reading them, Wanda keeps them. No weight update, no gradient, one forward pass. Registered as the weight criterion
"wanda", so `prune_unstructured(model, 0.5, criterion="wanda", data=calibration)` is Wanda (and `pattern="2:4"` too).
Introduced in 10_transformers
"""
from __future__ import annotations

from typing import Any

import torch
from torch import nn

from course.pruning.calibration import calibration_inputs, check_layer, collect_stats
from course.pruning.criteria import DEFAULT_NUM_BATCHES, register

__all__ = ["activation_norms", "wanda_scores"]

Layers = list[tuple[str, nn.Module]]


def activation_norms(model: nn.Module, data: Any, *, layers: Layers | None = None,
                     num_batches: int | None = DEFAULT_NUM_BATCHES) -> dict[str, torch.Tensor]:
    """‖X_j‖₂ of every input feature j of every Linear/Conv2d (or of `layers`): {name: (fan_in,)}, one forward pass."""
    if layers is None:
        layers = [(n, m) for n, m in model.named_modules() if isinstance(m, (nn.Linear, nn.Conv2d))]
    for name, module in layers:
        check_layer(name, module)
    stats = collect_stats(model, [n for n, _ in layers], calibration_inputs(data, num_batches))
    return {n: s.norms for n, s in stats.items()}


@register("wanda", "weights", needs_data=True, scope="row")
def wanda_scores(model: nn.Module, layers: Layers, *, data: Any = None, num_batches: int = DEFAULT_NUM_BATCHES,
                 **_: Any) -> dict[str, torch.Tensor]:
    """Wanda: S_ij = |W_ij| · ‖X_j‖₂, ‖X_j‖₂ over the calibration inputs of each layer; shaped like each weight.

    The norms come from one pass of the model as given, as in the authors' ViT code (image_classifiers/prune_utils.py);
    their LLM code recomputes them block by block after pruning the blocks before.
    """
    modules = []
    for name, target in layers:                         # Prunable targets (the engine) or (name, module) pairs
        attr = getattr(target, "attr", "weight")
        if attr != "weight":
            raise TypeError(f"weight {name!r} ({attr} of a {type(target.module).__name__}) has no input of its own "
                            "that calibration can record; Wanda scores nn.Linear and nn.Conv2d weights. Leave it out "
                            "with exclude=[...].")
        modules.append((name, getattr(target, "module", target)))
    norms = activation_norms(model, data, layers=modules, num_batches=num_batches)
    return {n: m.weight.detach().abs() * norms[n].to(m.weight.device).view(1, *m.weight.shape[1:])  # (out, in, ...)
            for n, m in modules}
