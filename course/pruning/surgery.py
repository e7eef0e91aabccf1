"""Structured surgery on `nn.Sequential` chains: find what each unit feeds, then cut rows, columns and BN entries.

A *unit* is an output neuron of a Linear or an output channel (filter) of a Conv2d. Removing unit `u` of a
layer removes row `W[u]` and `b[u]`, entry `u` of every BatchNorm after it, and the inputs of the next
Linear/Conv2d that read it: one input channel of a Conv2d, or, across a Flatten, the `H'*W'` block
`[u*H'*W', (u+1)*H'*W')` of a Linear's inputs. Graphs with residual adds or concatenations couple layers in
ways a chain walk cannot see; they go through `course.pruning.prune_with_torch_pruning`.

The steps are public and say what they cut (as Torch-Pruning's `prune_conv_out_channels` does): `prune_out_units`
(rows of a layer), `prune_norm_units` (entries of a BatchNorm), `prune_in_units` (inputs of the next layer, the ones
`unit_inputs` says the removed units fed). `remove_units` runs them along the chain. After the cut,
`recalibrate_bn` re-estimates the BatchNorms' running statistics, which the cut made stale (any graph).
Introduced in 03_structured
"""
from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from itertools import chain, islice
from typing import Any

import torch
from torch import nn

from course import arguments
from course.inputs import any_batches, batches, model_device
from course.pruning.masks import MASK, apply_masks

__all__ = ["Link", "UnsupportedModelError", "chain_links", "unit_inputs", "prune_out_units", "prune_in_units",
           "prune_norm_units", "remove_units", "zero_units", "recalibrate_bn"]

#: Channel-wise ops with f(0) = 0 that keep the number of channels: a zeroed unit stays exactly zero through them.
PASS_THROUGH = (
    nn.ReLU, nn.LeakyReLU, nn.ReLU6, nn.ELU, nn.GELU, nn.SiLU, nn.Tanh, nn.Hardtanh, nn.Identity,
    nn.Dropout, nn.Dropout2d, nn.MaxPool2d, nn.AvgPool2d, nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d,
)
NORMS = (nn.BatchNorm1d, nn.BatchNorm2d)
LAYERS = (nn.Linear, nn.Conv2d)


class UnsupportedModelError(ValueError):
    """The model is not a plain chain that chain surgery understands (e.g. residual adds)."""


def _unsupported(why: str) -> UnsupportedModelError:
    return UnsupportedModelError(
        f"structured surgery handles nn.Sequential chains of Linear/Conv2d, BatchNorm, ReLU-like, pooling and "
        f"Flatten layers only, and {why}. For other graphs (residual adds, concatenation, custom forward) use "
        f"course.pruning.prune_with_torch_pruning(model, ratio, example_inputs), which follows the dependency graph."
    )


@dataclass(frozen=True)
class Link:
    """A prunable layer's output units and what they feed, up to the next Linear/Conv2d (`consumer`)."""

    layer: str                 # the Linear/Conv2d whose output units are removed
    units: int                 # its number of output units
    norms: tuple[str, ...]     # BatchNorm layers with one entry per unit
    consumer: str              # the next Linear/Conv2d: its inputs shrink
    block: int                 # inputs of `consumer` per unit: H'*W' across a Flatten, else 1


def _leaves(model: nn.Module, prefix: str = "") -> list[tuple[str, nn.Module]]:
    """The leaf modules of a (nested) nn.Sequential in forward order; raise for anything else."""
    if not isinstance(model, nn.Sequential) or type(model).forward is not nn.Sequential.forward:
        where = f"{prefix!r} is" if prefix else "the model is"
        raise _unsupported(f"{where} a {type(model).__name__} with its own forward")
    leaves = []
    for name, child in model.named_children():
        full = f"{prefix}.{name}" if prefix else name
        if isinstance(child, nn.Sequential) or len(list(child.children())) > 0:
            leaves += _leaves(child, full)
        else:
            leaves.append((full, child))
    return leaves


def _units(layer: nn.Module) -> int:
    return layer.out_features if isinstance(layer, nn.Linear) else layer.out_channels


def _link(producer: tuple[str, nn.Module], norms: list[str], flattened: bool, name: str, consumer: nn.Module) -> Link:
    """Check that `producer`'s units reach `consumer` one-to-one (or one-to-block across a Flatten)."""
    p_name, p = producer
    units = _units(p)
    if isinstance(consumer, nn.Conv2d):
        if flattened or isinstance(p, nn.Linear) or consumer.in_channels != units:
            raise _unsupported(f"{p_name} -> {name} does not map channels one-to-one")
        return Link(p_name, units, tuple(norms), name, 1)
    if isinstance(p, nn.Conv2d) and not flattened:
        raise _unsupported(f"{p_name} (Conv2d) reaches {name} (Linear) without a Flatten")
    block, rest = divmod(consumer.in_features, units)
    if rest or (isinstance(p, nn.Linear) and block != 1):
        raise _unsupported(f"{name}.in_features={consumer.in_features} is not a multiple of {p_name}'s {units} units")
    return Link(p_name, units, tuple(norms), name, block)


def chain_links(model: nn.Module) -> list[Link]:
    """One `Link` per prunable layer, in forward order; the last Linear/Conv2d (the classifier) has none."""
    links: list[Link] = []
    producer, norms, flattened = None, [], False
    for name, m in _leaves(model):
        if isinstance(m, LAYERS):
            if isinstance(m, nn.Conv2d) and m.groups != 1:
                raise _unsupported(f"{name} is a grouped convolution (groups={m.groups})")
            if producer is not None:
                links.append(_link(producer, norms, flattened, name, m))
            producer, norms, flattened = (name, m), [], False
        elif isinstance(m, NORMS):
            if producer is not None and m.num_features != _units(producer[1]):
                raise _unsupported(f"{name} has {m.num_features} features after {producer[0]}'s {_units(producer[1])}")
            if producer is not None:
                norms.append(name)
        elif isinstance(m, nn.Flatten):
            if m.start_dim != 1 or m.end_dim != -1:
                raise _unsupported(f"{name} flattens dims {m.start_dim}..{m.end_dim}, not 1..-1")
            flattened = True
        elif not isinstance(m, PASS_THROUGH):
            raise _unsupported(f"{name} ({type(m).__name__}) is not a supported layer")
    return links


def _check_keep(links: list[Link], keep: dict[str, torch.Tensor]) -> dict[str, Link]:
    """Validate unit masks (layer name -> bool (units,), True = kept) against the chain."""
    by_layer = {link.layer: link for link in links}
    for name, mask in keep.items():
        if name not in by_layer:
            raise ValueError(f"{name!r} is not a prunable layer; prunable layers: {list(by_layer)}")
        if mask.dtype != torch.bool or mask.shape != (by_layer[name].units,):
            raise ValueError(f"unit mask for {name!r} must be a bool tensor of shape ({by_layer[name].units},)")
        if not mask.any():
            raise ValueError(f"unit mask for {name!r} keeps no unit; keep at least one per layer")
    return by_layer


def unit_inputs(units: torch.Tensor, block: int) -> torch.Tensor:
    """The consumer's inputs fed by `units` (indices): unit u -> inputs [u*block, (u+1)*block)."""
    return (units[:, None] * block + torch.arange(block, device=units.device)).flatten()   # (len(units)*block,)


def _set(module: nn.Module, name: str, value: torch.Tensor) -> None:
    """Replace parameter or buffer `name` of `module` by `value` (same kind, same requires_grad)."""
    old = getattr(module, name)
    if isinstance(old, nn.Parameter):
        value = nn.Parameter(value.clone(), requires_grad=old.requires_grad)
    setattr(module, name, value if isinstance(value, nn.Parameter) else value.clone())


@torch.no_grad()
def prune_out_units(layer: nn.Module, keep: torch.Tensor) -> None:
    """Cut every output unit of a Linear/Conv2d not in `keep` (indices): W <- W[keep], b <- b[keep], mask rows too."""
    for name in ("weight", "bias", MASK):
        if getattr(layer, name, None) is not None:
            _set(layer, name, getattr(layer, name)[keep])
    setattr(layer, "out_features" if isinstance(layer, nn.Linear) else "out_channels", len(keep))


@torch.no_grad()
def prune_in_units(layer: nn.Module, keep: torch.Tensor) -> None:
    """Cut every input of a Linear/Conv2d not in `keep` (indices): W <- W[:, keep], the mask's columns too."""
    for name in ("weight", MASK):
        if getattr(layer, name, None) is not None:
            _set(layer, name, getattr(layer, name)[:, keep])
    setattr(layer, "in_features" if isinstance(layer, nn.Linear) else "in_channels", len(keep))


@torch.no_grad()
def prune_norm_units(bn: nn.Module, keep: torch.Tensor) -> None:
    """Cut every entry of a BatchNorm not in `keep` (indices): gamma, beta, running mean and running variance."""
    for name in ("weight", "bias", "running_mean", "running_var"):
        if getattr(bn, name, None) is not None:
            _set(bn, name, getattr(bn, name)[keep])
    bn.num_features = len(keep)


def remove_units(model: nn.Module, keep: dict[str, torch.Tensor], *, inplace: bool = False) -> nn.Module:
    """Physically remove the units where `keep[layer]` is False; returns a smaller dense model."""
    links = chain_links(model)
    _check_keep(links, keep)
    if any(hasattr(m, "weight_orig") for m in model.modules()):
        raise ValueError("the model carries torch.nn.utils.prune hooks; call course.pruning.from_torch_prune first")
    if not inplace:
        model = copy.deepcopy(model)
    modules = dict(model.named_modules())
    for link in links:
        if link.layer not in keep:
            continue
        idx = keep[link.layer].to(modules[link.layer].weight.device).nonzero().flatten()   # kept units, in order
        prune_out_units(modules[link.layer], idx)
        for bn in link.norms:
            prune_norm_units(modules[bn], idx)
        prune_in_units(modules[link.consumer], unit_inputs(idx, link.block))
    return model


@torch.no_grad()
def zero_units(model: nn.Module, keep: dict[str, torch.Tensor], *, inplace: bool = False) -> nn.Module:
    """The masked twin of `remove_units`: same shapes, removed units' rows, bias, BN gamma/beta and the
    consumer's input columns set to 0 (weights also get course masks), so a removed unit outputs exactly 0.

    The masks keep the weights at zero during fine-tuning; biases and BN shifts are zeroed once, not held.
    """
    links = chain_links(model)
    by_layer = _check_keep(links, keep)
    if not inplace:
        model = copy.deepcopy(model)
    modules = dict(model.named_modules())
    masks: dict[str, torch.Tensor] = {}

    def _mask(name: str) -> torch.Tensor:
        if name not in masks:
            old = getattr(modules[name], MASK, None)
            masks[name] = old.clone() if old is not None else torch.ones_like(modules[name].weight, dtype=torch.bool)
        return masks[name]

    for name, kept in keep.items():
        link = by_layer[name]
        drop = (~kept).to(modules[name].weight.device).nonzero().flatten()
        _mask(name)[drop] = False                                  # rows of the layer
        _mask(link.consumer)[:, unit_inputs(drop, link.block)] = False  # columns of the consumer
        if modules[name].bias is not None:
            modules[name].bias[drop] = 0
        for bn in link.norms:
            if not modules[bn].affine:
                raise ValueError(f"{bn} has no affine gamma/beta, so its removed units cannot be zeroed")
            modules[bn].weight[drop] = 0
            modules[bn].bias[drop] = 0
    return apply_masks(model, masks, inplace=True)


@torch.no_grad()
def recalibrate_bn(model: nn.Module, data: Any, num_batches: int = 20, *, inplace: bool = False,
                   forward: Callable[[nn.Module, Any], Any] | None = None) -> nn.Module:
    """Re-estimate every BatchNorm's running mean and variance: reset them, then average the batch statistics of
    the first `num_batches` batches of `data` (momentum=None: the cumulative average, no momentum constant).

    Why: removing a unit changes what the next layer computes, so the BatchNorm after it normalises with statistics
    of a model that no longer exists. Forward passes only (train-mode BN, no gradient, no weight changes); every
    other module runs in eval mode (dropout off), and each module's mode and momentum are restored after.
    `data`: (x, y) batches (a DataLoader, an iterable, one pair); for batches of another form pass
    `forward=fn(model, batch)`. A model without BatchNorm comes back unchanged.
    """
    num_batches = arguments.integer(num_batches, "num_batches", low=1)
    net = model if inplace else copy.deepcopy(model)
    norms = [m for m in net.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    if not norms:
        return net
    run = forward if forward is not None else (lambda m, batch: m(batch[0].to(model_device(m))))
    source = islice(any_batches(data) if forward is not None else batches(data), num_batches)
    first = next(source, None)
    if first is None:
        raise ValueError("recalibrate_bn: data= yielded no batches; pass a DataLoader or an iterable of (x, y) "
                         "batches from the training set")
    modes = [(m, m.training) for m in net.modules()]
    momenta = [(m, m.momentum) for m in norms]
    try:
        net.eval()
        for m in norms:
            m.reset_running_stats()             # mean 0, var 1, num_batches_tracked 0
            m.momentum = None                   # running stat = mean over the batches seen
            m.train()
        for batch in chain([first], source):
            run(net, batch)
    finally:
        for m, momentum in momenta:
            m.momentum = momentum
        for m, flag in modes:
            m.training = flag
    return net
