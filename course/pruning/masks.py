"""Masks, the common currency of pruning: a bool buffer per pruned parameter, kept true in any training loop.

Convention: a pruned parameter `attr` of a module carries a bool buffer (`prune_mask` for `weight`,
`<attr>_prune_mask` otherwise; True = kept), and the parameter itself holds zeros where the mask is False. The
forward pass is the plain dense one (unlike `torch.nn.utils.prune`, which recomputes `weight_orig * weight_mask`
before every forward and saves twice the bytes). Masks are named by *key*: the module's name for its `weight`
("fc1", "layer1.0.conv2"), "module.parameter" for any other ("encoder.layers.0.self_attn.in_proj_weight",
"lstm.weight_hh_l1"). A parameter shared by two modules (tied weights) has one mask tensor, registered in both,
and the key of its first owner (as `named_parameters` names it); any owner's key works in `apply_masks`.

What keeps pruned weights exactly zero in your own loop (SGD with momentum, Adam, AdamW, any torch.optim optimizer):
  1. one step post-hook for every optimizer of the process (`register_optimizer_step_post_hook`): after `step()`,
     w <- w * m for each masked parameter it holds, even with momentum built up before pruning. It touches only
     parameters that carry course masks (about 1 µs each per step);
  2. a gradient hook per masked parameter (`register_post_accumulate_grad_hook`): g <- g * m as soon as it is
     accumulated, so momentum and Adam moments never build up on pruned weights and `clip_grad_norm_` sees the
     norm torch.nn.utils.prune gives;
  3. a forward pre-hook: w <- w * m for each masked parameter written since it was last masked (its version counter
     moved: a manual write, `load_state_dict`); it also re-registers 2 on copies (deepcopy, pickling). Masking only
     on a version change keeps two forwards before one backward legal. A `load_state_dict` post-hook re-masks at once.
The pre-hook sits on the owning module, lifted to a MultiheadAttention (it reads `out_proj.weight` without calling
`out_proj`) and above an nn.TransformerEncoderLayer: a hook inside one turns off its fused path and, under
nn.TransformerEncoder's nested-tensor path (eval, padding mask), makes torch 2.13 fail.
Limits: torch.func.functional_call runs on the tensors it is given and its gradients are not masked; writes through
`.data` skip the version counter and a compiled forward (torch.compile) does not re-mask manual writes (`check_masks`
finds them; `save_pruned` calls it).
Introduced in 01_what_is_pruning
"""
from __future__ import annotations

import copy
import weakref
from dataclasses import dataclass
from typing import Any, Iterator

import torch
from torch import nn
from torch.optim.optimizer import register_optimizer_step_post_hook
from torch.utils.hooks import RemovableHandle
from torch.utils.weak import WeakIdKeyDictionary

__all__ = ["MASK", "mask_name", "weight_key", "owners", "MaskMismatchError", "get_masks", "has_masks", "apply_masks",
           "masked_parameters", "check_masks", "reapply_masks", "mask_gradients", "remove_masks", "enforce_masks"]

MASK = "prune_mask"
_FUSED_LAYERS = (nn.TransformerEncoderLayer, nn.TransformerDecoderLayer)
_CONTAINERS = (nn.ModuleList, nn.ModuleDict)

Owner = tuple[str, nn.Module, str]                 # (module name, module, parameter attribute)


class MaskMismatchError(ValueError):
    """A masked parameter holds nonzero values where its mask is False (or tied copies of a mask disagree)."""


def mask_name(attr: str) -> str:
    """The buffer that holds the mask of parameter `attr`: `prune_mask` for `weight`, else `<attr>_prune_mask`."""
    return MASK if attr == "weight" else f"{attr}_{MASK}"


def _param_of(buffer: str) -> str:
    return "weight" if buffer == MASK else buffer[: -len(MASK) - 1]


def weight_key(module_name: str, attr: str) -> str:
    """The key of parameter `attr` of module `module_name`: the module name for `weight`, else "module.attr"."""
    if attr == "weight":
        return module_name
    return f"{module_name}.{attr}" if module_name else attr


def owners(model: nn.Module) -> dict[str, list[Owner]]:
    """{key: [(module name, module, attribute), ...]} for every parameter, each once; tied: every owner, first first."""
    by_id: dict[int, list[Owner]] = {}
    for mname, module in model.named_modules():
        for attr, p in module._parameters.items():
            if p is not None:
                by_id.setdefault(id(p), []).append((mname, module, attr))
    return {weight_key(places[0][0], places[0][2]): places for places in by_id.values()}


def _aliases(places: list[Owner]) -> set[str]:
    """Every name a parameter answers to: each owner's key and full parameter name ("fc1" and "fc1.weight")."""
    return {n for m, _, a in places for n in (weight_key(m, a), f"{m}.{a}" if m else a)}


@dataclass
class _Tracked:
    """What the hooks know about a masked Parameter: its owner, the mask's buffer, the version it was masked at."""

    owner: weakref.ref
    buffer: str
    version: int
    grad_hook: RemovableHandle | None

    def mask(self) -> torch.Tensor | None:
        module = self.owner()
        return None if module is None else module._buffers.get(self.buffer)


_TRACKED: WeakIdKeyDictionary = WeakIdKeyDictionary()     # Parameter -> _Tracked, by identity, never keeps it alive
_STEP_HOOK: list[RemovableHandle] = []


def _zero(t: torch.Tensor, mask: torch.Tensor) -> None:
    """t <- t * mask in place, bitwise +0.0 where the mask is False (a uint8 view multiplies ~4x faster than bool)."""
    t.mul_(mask.view(torch.uint8) if mask.dtype == torch.bool else mask).add_(0.0)   # -0.0 + 0.0 = +0.0


def _masked_params(module: nn.Module) -> Iterator[tuple[str, torch.Tensor, torch.Tensor]]:
    """(buffer name, parameter, mask) for each masked parameter that `module` owns directly."""
    for buffer, mask in list(module._buffers.items()):
        if mask is not None and buffer.endswith(MASK):
            param = module._parameters.get(_param_of(buffer))
            if param is not None:
                yield buffer, param, mask


def _mask_grad(param: torch.Tensor) -> None:
    """Gradient hook: g <- 0 where the mask is False."""
    tracked = _TRACKED.get(param)
    mask = None if tracked is None else tracked.mask()
    if mask is not None and param.grad is not None:
        _zero(param.grad, mask)


def _track(param: torch.Tensor, module: nn.Module, buffer: str) -> None:
    """Remember `param`'s current version; on first sight register its gradient hook."""
    tracked = _TRACKED.get(param)
    if tracked is None:
        hook = param.register_post_accumulate_grad_hook(_mask_grad) if param.requires_grad else None
        _TRACKED[param] = _Tracked(weakref.ref(module), buffer, param._version, hook)
    else:
        tracked.version = param._version


def _remask(site: nn.Module, force: bool = False) -> None:
    """w <- w * m for every masked parameter under `site` written since it was last masked (all of them if `force`)."""
    stale = []
    for module in site.modules():
        for buffer, param, mask in _masked_params(module):
            tracked = _TRACKED.get(param)
            if isinstance(param, nn.Parameter) and (force or tracked is None or tracked.version != param._version):
                stale.append((module, buffer, param, mask))
    if not stale:                                # the usual case: nothing written since the last mask
        return
    with torch.no_grad():
        for _, _, param, mask in stale:
            _zero(param, mask)
    for module, buffer, param, _ in stale:       # record versions after all writes: views share one counter
        _track(param, module, buffer)


# _enforce and _after_load are module-level functions, never closures: a pickled model names them, so keep the names.
def _enforce(site: nn.Module, args: Any = None) -> None:
    """Forward pre-hook: re-mask what was written since the last mask. Under torch.compile a traced no-op (no graph
    break); there the step and gradient hooks still hold the masks, and loading a state_dict re-masks at once."""
    if not torch.compiler.is_compiling():
        _remask(site)


def _after_load(site: nn.Module, incompatible_keys: Any) -> None:
    """load_state_dict post-hook: new weights or new masks were loaded, so re-mask everything under `site`."""
    _remask(site, force=True)


@torch.no_grad()
def _after_step(optimizer: torch.optim.Optimizer, args: Any, kwargs: Any) -> None:
    """Global optimizer step post-hook: w <- w * m for every masked parameter the optimizer holds."""
    done = []
    for group in optimizer.param_groups:
        for param in group["params"]:
            tracked = _TRACKED.get(param)
            mask = None if tracked is None else tracked.mask()
            if mask is not None:
                _zero(param, mask)
                done.append((tracked, param))
    for tracked, param in done:
        tracked.version = param._version


def _hook_site(model: nn.Module, mname: str) -> nn.Module:
    """The module whose forward pre-hook guards `mname`'s parameters (see the module docstring)."""
    parts = mname.split(".") if mname else []
    chain = [model] + [model.get_submodule(".".join(parts[: i + 1])) for i in range(len(parts))]
    fused = next((i for i, m in enumerate(chain) if isinstance(m, _FUSED_LAYERS)), None)
    if fused is not None:
        i = fused - 1
        while i > 0 and isinstance(chain[i], _CONTAINERS):
            i -= 1
        return chain[max(i, 0)]
    if len(chain) > 1 and isinstance(chain[-2], nn.MultiheadAttention):
        return chain[-2]
    return chain[-1]


def has_masks(model: nn.Module) -> bool:
    """Whether any module of `model` carries a course mask."""
    return any(True for m in model.modules() for _ in _masked_params(m))


def masked_parameters(model: nn.Module) -> list[tuple[str, list[Owner], torch.Tensor, torch.Tensor]]:
    """[(key, owners, parameter, mask)] for every masked parameter, each tied parameter once, in module order."""
    out = []
    for key, places in owners(model).items():
        mask = next((o._buffers.get(mask_name(a)) for _, o, a in places if o._buffers.get(mask_name(a)) is not None),
                    None)
        if mask is not None:
            out.append((key, places, places[0][1]._parameters[places[0][2]], mask))
    return out


def get_masks(model: nn.Module) -> dict[str, torch.Tensor]:
    """{key: bool mask (a copy; True = kept)} for every masked parameter ("fc1", "lstm.weight_hh_l1"), tied ones once."""
    return {key: mask.clone() for key, _, _, mask in masked_parameters(model)}


@torch.no_grad()
def apply_masks(model: nn.Module, masks: dict[str, torch.Tensor], *, inplace: bool = False) -> nn.Module:
    """Attach `masks` ({key: bool tensor shaped like the parameter}) and zero what they prune; returns the model.

    A key may also be the full parameter name ("fc1.weight") or any owner of a tied parameter ("lm_head").
    """
    model = model if inplace else copy.deepcopy(model)
    places = owners(model)
    alias = {name: key for key, ps in places.items() for name in _aliases(ps)}
    unknown = sorted(set(masks) - set(alias))
    if unknown:
        raise ValueError(f"masks for {unknown} match no parameter of the model; keys look like {list(places)[:4]}")
    if not _STEP_HOOK:
        _STEP_HOOK.append(register_optimizer_step_post_hook(_after_step))
    for name, mask in masks.items():
        key = alias[name]
        _, module, attr = places[key][0]
        param = module._parameters[attr]
        if tuple(mask.shape) != tuple(param.shape):
            raise ValueError(f"mask for {name!r} has shape {tuple(mask.shape)}, the parameter {tuple(param.shape)}")
        shared = mask.detach().to(device=param.device, dtype=torch.bool).clone()      # one tensor for all owners
        param.masked_fill_(~shared, 0)
        for mname, owner, a in places[key]:
            if mask_name(a) in owner._buffers:
                owner._buffers[mask_name(a)] = shared
            else:
                owner.register_buffer(mask_name(a), shared)
            site = _hook_site(model, mname)
            if _enforce not in site._forward_pre_hooks.values():
                site.register_forward_pre_hook(_enforce)
                site.register_load_state_dict_post_hook(_after_load)
        _track(param, module, mask_name(attr))
    return model


def check_masks(model: nn.Module) -> None:
    """Raise MaskMismatchError naming each parameter nonzero where its mask is False, or whose tied masks differ."""
    bad = []
    for key, places, param, mask in masked_parameters(model):
        grown = int((param.detach()[~mask] != 0).sum())
        if grown:
            bad.append(f"{key}: {grown} pruned weights are nonzero")
        tied = [m for m in (o._buffers.get(mask_name(a)) for _, o, a in places) if m is not None]
        if any(not torch.equal(mask, m) for m in tied[1:]):
            bad.append(f"{key}: its tied owners carry different masks")
    if bad:
        raise MaskMismatchError("weights disagree with their masks: " + "; ".join(bad) + ". Written behind the masks "
                                "(through .data, or by a compiled forward)? Run one forward pass (it re-masks) or "
                                "reapply_masks(model), then check again")


@torch.no_grad()
def reapply_masks(model: nn.Module) -> None:
    """Zero every masked weight now (the hooks do this by themselves; use it after writing through `.data`)."""
    _remask(model, force=True)


@torch.no_grad()
def mask_gradients(model: nn.Module) -> None:
    """grad <- grad * mask for every masked parameter (the gradient hook already does it during backward)."""
    for _, _, param, mask in masked_parameters(model):
        if param.grad is not None:
            _zero(param.grad, mask)


def enforce_masks(optimizer: torch.optim.Optimizer, model: nn.Module) -> RemovableHandle:
    """Re-apply `model`'s masks after every `optimizer.step()`; returns the hook handle (`.remove()` to stop).

    Every optimizer already does this through the global step hook; this explicit one stays for code that asks.
    """
    return optimizer.register_step_post_hook(lambda *_: reapply_masks(model))


@torch.no_grad()
def remove_masks(model: nn.Module, *, inplace: bool = False) -> nn.Module:
    """Make pruning permanent: zero the pruned weights one last time, drop masks and hooks; returns the model."""
    model = model if inplace else copy.deepcopy(model)
    for module in model.modules():
        for buffer, param, mask in list(_masked_params(module)):
            _zero(param, mask)
            tracked = _TRACKED.pop(param, None)
            if tracked is not None and tracked.grad_hook is not None:
                tracked.grad_hook.remove()
            del module._buffers[buffer]
        for hooks, fn in ((module._forward_pre_hooks, _enforce), (module._load_state_dict_post_hooks, _after_load)):
            for key in [k for k, f in hooks.items() if f is fn]:
                del hooks[key]
    return model
