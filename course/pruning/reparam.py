"""Weights another mechanism recomputes before every forward: `torch.nn.utils.prune` (convert both ways) and
`torch.nn.utils.parametrize` (refused by name).

A model carrying torch prune's `weight_orig * weight_mask` cannot be pruned in place: the next forward pass would
recompute the weight from `weight_orig` and undo it. `check_plain` says so and how to convert; `from_torch_prune`
turns every such parameter (any name: `in_proj_weight`, `weight_hh_l1`, ...) into a course mask, `to_torch_prune` the
other way round. torch prune keeps every pruned weight's *original* value in `<name>_orig`; a course-pruned model
holds zeros there, so only `to_torch_prune(model, original)` (the dense model the masks were made from) gives the
tensors torch itself would hold, byte for byte.
Introduced in 02_unstructured
"""
from __future__ import annotations

import copy

import torch
from torch import nn
from torch.nn.utils import parametrize
from torch.nn.utils import prune as torch_prune

from course.pruning.masks import apply_masks, masked_parameters, mask_name, owners, weight_key

__all__ = ["torch_pruned", "check_plain", "original_values", "to_torch_prune", "from_torch_prune"]


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


def original_values(model: nn.Module, original: nn.Module) -> dict[str, torch.Tensor]:
    """{key: `original`'s value of each parameter `model` masks}, refusing an `original` that is not a plain dense
    twin (masked, reparametrised, or shaped differently) by name."""
    if not isinstance(original, nn.Module):
        raise TypeError(f"original must be the nn.Module the masks were made from, got {type(original).__name__}")
    pruned = [k for k, _, _, m in masked_parameters(original) if not bool(m.all())]
    pruned += [weight_key(n, p) for n, m in original.named_modules() for p in torch_pruned(m)]
    if pruned:
        where = ", ".join(pruned)
        raise ValueError(f"original is itself pruned ({where}): its pruned weights are gone. Pass the dense model the "
                         f"pruning started from (e.g. the one train_or_load returned)")
    theirs = owners(original)
    values = {}
    for key, _, param, _ in masked_parameters(model):
        if key not in theirs:
            raise ValueError(f"original has no parameter {key!r}; pass the dense model this one was pruned from")
        value = theirs[key][0][1]._parameters[theirs[key][0][2]].detach()
        if value.shape != param.shape:
            raise ValueError(f"original's {key!r} has shape {tuple(value.shape)}, the model's {tuple(param.shape)}; "
                             f"pass the dense model this one was pruned from")
        values[key] = value.to(device=param.device, dtype=param.dtype)
    cut = {k: ~m for k, _, _, m in masked_parameters(model) if not bool(m.all())}
    if cut and all(not bool(values[k][c].any()) for k, c in cut.items()):
        raise ValueError(f"original is zero wherever the masks prune ({', '.join(cut)}): it looks like the pruned "
                         f"model made permanent, not the dense one. Pass the dense model the pruning started from")
    return values


def to_torch_prune(model: nn.Module, original: nn.Module | None = None, *, inplace: bool = False) -> nn.Module:
    """Convert course masks to `torch.nn.utils.prune` form: <name>_orig, a float <name>_mask, a forward pre-hook.

    <name>_orig = where(mask, w, w_original) with `original` (the dense model the masks were made from): exactly what
    torch prune holds, its file byte for byte. Without it the pruned places hold the course model's zeros: the same
    forward pass, but not the file torch writes (`course.export` refuses to measure that form without `original`).
    """
    model = model if inplace else copy.deepcopy(model)
    originals = {} if original is None else original_values(model, original)
    for key, places, param, mask in masked_parameters(model):
        for _, module, attr in places:
            del module._buffers[mask_name(attr)]
        if key in originals:
            with torch.no_grad():
                param.copy_(torch.where(mask, param, originals[key]))   # torch prune never zeroes weight_orig
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
