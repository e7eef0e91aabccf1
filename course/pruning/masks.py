"""Masks, the common currency of pruning: apply, re-apply, remove, and convert to/from `torch.nn.utils.prune`.

Convention: a pruned layer carries a bool buffer `prune_mask` shaped like its weight (True = kept), and its
weight already holds zeros where the mask is False. The forward pass is the plain dense one, so a masked
model runs at dense speed (unlike `torch.nn.utils.prune`, which recomputes `weight_orig * weight_mask`
before every forward). Training keeps pruned weights at zero: `mask_gradients` before each optimizer step (so
momentum and Adam moments never build up on them) and `reapply_masks` after it (`course.training.train` does both).
Introduced in 01_what_is_pruning
"""
from __future__ import annotations

import copy
from collections.abc import Iterable

import torch
from torch import nn
from torch.nn.utils import prune as torch_prune

__all__ = [
    "MASK", "PRUNABLE", "prunable_layers", "get_masks", "apply_masks", "reapply_masks", "mask_gradients", "remove_masks",
    "has_masks", "enforce_masks", "to_torch_prune", "from_torch_prune",
]

MASK = "prune_mask"
PRUNABLE = (nn.Linear, nn.Conv2d)


def prunable_layers(model: nn.Module, exclude: Iterable[str] = ()) -> list[tuple[str, nn.Module]]:
    """The (name, module) pairs whose weights pruning may touch: every Linear and Conv2d not in `exclude`."""
    exclude = set(exclude)
    names = {n for n, _ in model.named_modules()}
    unknown = exclude - names
    if unknown:
        raise ValueError(f"exclude names {sorted(unknown)} are not modules of the model; valid names: "
                         f"{[n for n, m in model.named_modules() if isinstance(m, PRUNABLE)]}")
    return [(n, m) for n, m in model.named_modules() if isinstance(m, PRUNABLE) and n not in exclude]


def get_masks(model: nn.Module) -> dict[str, torch.Tensor]:
    """The current masks by layer name (copies; True = weight kept). Unmasked layers are absent."""
    return {n: getattr(m, MASK).clone() for n, m in model.named_modules() if hasattr(m, MASK)}


def has_masks(model: nn.Module) -> bool:
    """Whether any layer of `model` carries a course mask."""
    return any(hasattr(m, MASK) for m in model.modules())


@torch.no_grad()
def apply_masks(model: nn.Module, masks: dict[str, torch.Tensor], *, inplace: bool = False) -> nn.Module:
    """Attach `masks` (name -> bool tensor shaped like the weight) and zero the pruned weights."""
    if not inplace:
        model = copy.deepcopy(model)
    modules = dict(model.named_modules())
    for name, mask in masks.items():
        if name not in modules or not isinstance(modules[name], PRUNABLE):
            raise ValueError(f"mask for {name!r} matches no Linear/Conv2d layer of the model")
        module = modules[name]
        if mask.shape != module.weight.shape:
            raise ValueError(f"mask for {name!r} has shape {tuple(mask.shape)}, weight has {tuple(module.weight.shape)}")
        mask = mask.to(device=module.weight.device, dtype=torch.bool)
        if hasattr(module, MASK):
            setattr(module, MASK, mask.clone())
        else:
            module.register_buffer(MASK, mask.clone())
        module.weight.mul_(mask)
    return model


@torch.no_grad()
def reapply_masks(model: nn.Module) -> None:
    """Zero every masked weight again (call after each optimizer step). Mutates `model` by design."""
    for m in model.modules():
        mask = getattr(m, MASK, None)
        if mask is not None:
            m.weight.mul_(mask)


@torch.no_grad()
def mask_gradients(model: nn.Module) -> None:
    """grad <- grad * mask for every masked weight (call between backward and the optimizer step)."""
    for m in model.modules():
        mask = getattr(m, MASK, None)
        if mask is not None and m.weight.grad is not None:
            m.weight.grad.mul_(mask)


def remove_masks(model: nn.Module, *, inplace: bool = False) -> nn.Module:
    """Make pruning permanent: drop the mask buffers, keep the zeros in the weights."""
    if not inplace:
        model = copy.deepcopy(model)
    reapply_masks(model)
    for m in model.modules():
        if hasattr(m, MASK):
            del m._buffers[MASK]
    return model


def enforce_masks(optimizer: torch.optim.Optimizer, model: nn.Module):
    """Re-apply `model`'s masks after every `optimizer.step()`; returns the hook handle (`.remove()` to stop).

    Works for any optimizer (SGD with momentum, Adam, ...): whatever the update, masked weights end at 0.
    """
    return optimizer.register_step_post_hook(lambda *_: reapply_masks(model))


def to_torch_prune(model: nn.Module, *, inplace: bool = False) -> nn.Module:
    """Convert course masks to `torch.nn.utils.prune` form (`weight_orig` + `weight_mask` + a forward pre-hook)."""
    if not inplace:
        model = copy.deepcopy(model)
    for m in model.modules():
        mask = getattr(m, MASK, None)
        if mask is not None:
            del m._buffers[MASK]
            torch_prune.custom_from_mask(m, "weight", mask.to(m.weight.dtype))
    return model


def from_torch_prune(model: nn.Module, *, inplace: bool = False) -> nn.Module:
    """Convert a model pruned with `torch.nn.utils.prune` to course masks (plain weights + `prune_mask`)."""
    if not inplace:
        model = copy.deepcopy(model)
    for m in model.modules():
        if isinstance(m, PRUNABLE) and torch_prune.is_pruned(m) and hasattr(m, "weight_mask"):
            mask = m.weight_mask.detach().bool().clone()
            torch_prune.remove(m, "weight")
            m.register_buffer(MASK, mask)
    return model
