"""Weights another mechanism recomputes before every forward: `torch.nn.utils.prune` (convert both ways) and
`torch.nn.utils.parametrize` (refused by name).

A model carrying torch prune's `weight_orig * weight_mask` cannot be pruned in place: the next forward pass would
recompute the weight from `weight_orig` and undo it. `check_plain` says so and how to convert; `from_torch_prune`
turns every such parameter (any name: `in_proj_weight`, `weight_hh_l1`, ...) into a course mask, `to_torch_prune` the
other way round.
Introduced in 02_unstructured
"""
from __future__ import annotations

import copy

import torch
from torch import nn
from torch.nn.utils import parametrize
from torch.nn.utils import prune as torch_prune

from course.pruning.masks import apply_masks, masked_parameters, mask_name, weight_key

__all__ = ["torch_pruned", "check_plain", "to_torch_prune", "from_torch_prune"]


def torch_pruned(module: nn.Module) -> list[str]:
    """Names of `module`'s parameters reparametrised by torch.nn.utils.prune (`<name>_orig` + `<name>_mask`)."""
    hooks = [h for h in module._forward_pre_hooks.values() if isinstance(h, torch_prune.BasePruningMethod)]
    return [getattr(h, "_tensor_name", "weight") for h in hooks]


def check_plain(model: nn.Module) -> None:
    """Raise ValueError naming each parameter that another mechanism computes (torch prune, parametrize), and how
    to turn it back into a plain parameter."""
    found = [f"{n + '.' if n else ''}{p} (torch.nn.utils.prune: convert with "
             f"course.from_torch_prune(model), or make it permanent with torch.nn.utils.prune.remove(module, {p!r}))"
             for n, m in model.named_modules() for p in torch_pruned(m)]
    found += [f"{n + '.' if n else ''}{p} (torch.nn.utils.parametrize: "
              f"torch.nn.utils.parametrize.remove_parametrizations(module, {p!r}))"
              for n, m in model.named_modules() if parametrize.is_parametrized(m) for p in m.parametrizations]
    if found:
        raise ValueError("these weights are recomputed before every forward pass by another mechanism, so pruning "
                         "them in place would be undone: " + "; ".join(found))


def to_torch_prune(model: nn.Module, *, inplace: bool = False) -> nn.Module:
    """Convert course masks to `torch.nn.utils.prune` form (`<name>_orig` + `<name>_mask` + a forward pre-hook)."""
    model = model if inplace else copy.deepcopy(model)
    for _, places, param, mask in masked_parameters(model):
        for _, module, attr in places:
            del module._buffers[mask_name(attr)]
        for _, module, attr in places:                       # every owner of a tied parameter recomputes it
            torch_prune.custom_from_mask(module, attr, mask.to(param.dtype))
    return model


def _copy(model: nn.Module) -> nn.Module:
    """A deep copy of a model carrying torch prune hooks: their computed weights (not graph leaves, which deepcopy
    refuses) are left out of the copy and recomputed from <name>_orig * <name>_mask."""
    computed = {id(getattr(m, h._tensor_name)): None for m in model.modules() for h in m._forward_pre_hooks.values()
                if isinstance(h, torch_prune.BasePruningMethod)}
    twin = copy.deepcopy(model, memo=dict(computed))
    for m in twin.modules():
        for h in m._forward_pre_hooks.values():
            if isinstance(h, torch_prune.BasePruningMethod):
                setattr(m, h._tensor_name, h.apply_mask(m))
    return twin


def from_torch_prune(model: nn.Module, *, inplace: bool = False) -> nn.Module:
    """Convert torch.nn.utils.prune reparametrisations (any parameter name) into course masks: w = w_orig * mask."""
    model = model if inplace else _copy(model)
    masks = {}
    for mname, module in model.named_modules():
        for attr in torch_pruned(module):
            masks[weight_key(mname, attr)] = getattr(module, f"{attr}_mask").detach().bool().clone()
            torch_prune.remove(module, attr)
    return apply_masks(model, masks, inplace=True) if masks else model
