"""Structured pruning of any graph (residual adds included) through Torch-Pruning's dependency graph.

Torch-Pruning (Fang et al. 2023, "DepGraph") traces the model, groups every parameter that must shrink
together when one channel goes (a conv, its BN, the conv reading it, the other branch of a residual add)
and prunes whole groups. The course's chain surgery (`prune_structured`) is the readable special case.
Introduced in 03_structured
"""
from __future__ import annotations

import copy
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import torch
import torch_pruning as tp
from torch import nn

from course import arguments
from course.inputs import batches

__all__ = ["IMPORTANCES", "prune_with_torch_pruning", "dependency_groups", "DependencyGroup"]

#: Torch-Pruning scorers by the course's unit-criterion names ("magnitude" is "l1", as for `prune_structured`).
IMPORTANCES = ("l1", "l2", "taylor", "random", "magnitude")
REDUCTIONS = ("mean", "first")
LAYERS = (nn.Conv2d, nn.Linear)


def _importance(name: str, group_reduction: str) -> tp.importance.Importance:
    """Torch-Pruning scorer; "mean" averages over all coupled layers, "first" scores the root layer alone."""
    name = arguments.choice(name, IMPORTANCES, "importance")
    group_reduction = arguments.choice(group_reduction, REDUCTIONS, "group_reduction")
    if name == "random":
        return tp.importance.RandomImportance()
    if name == "taylor":   # |sum_j w_j g_j| per layer, reduced over the group
        return tp.importance.GroupTaylorImportance(group_reduction=group_reduction, normalizer="mean",
                                                   multivariable=True)
    return tp.importance.GroupMagnitudeImportance(p=2 if name == "l2" else 1, group_reduction=group_reduction,
                                                  normalizer="mean")


def output_layers(model: nn.Module, example_inputs: torch.Tensor) -> list[str]:
    """Names of the Linear/Conv2d layers whose output is the model's output (the classifier)."""
    seen: dict[str, torch.Tensor] = {}
    hooks = [m.register_forward_hook(lambda mod, i, o, n=n: seen.__setitem__(n, o))
             for n, m in model.named_modules() if isinstance(m, LAYERS)]
    was_training = model.training
    try:
        with torch.no_grad():
            out = model.eval()(example_inputs)
    finally:
        for h in hooks:
            h.remove()
        model.train(was_training)
    hits = [n for n, o in seen.items() if o is out]
    return hits or [n for n, m in model.named_modules() if isinstance(m, LAYERS)][-1:]


def _modules_by_name(model: nn.Module, names: Iterable, original: nn.Module) -> list[nn.Module]:
    """Map layer names (or modules of `original`) to the modules of the copy `model`."""
    by_module = {m: n for n, m in original.named_modules()}
    modules = dict(model.named_modules())
    out = []
    for item in names:
        name = by_module.get(item) if isinstance(item, nn.Module) else item
        if name not in modules:
            raise ValueError(f"ignored layer {item!r} is not a module of the model; layers: "
                             f"{[n for n, m in original.named_modules() if isinstance(m, LAYERS)]}")
        out.append(modules[name])
    return out


def _course_ratios(model: nn.Module, ratio: float, ignored: list[nn.Module]) -> dict[nn.Module, float]:
    """Per-layer ratios so Torch-Pruning removes min(round(ratio * C), C - 1) units, as `prune_structured` does.

    Torch-Pruning keeps int(C * (1 - r)) units; with r = (n - 0.5) / C that is exactly C - n.
    """
    out = {}
    for m in model.modules():
        if isinstance(m, LAYERS) and m not in ignored:
            c = m.out_channels if isinstance(m, nn.Conv2d) else m.out_features
            n = min(round(ratio * c), c - 1)
            out[m] = (n - 0.5) / c if n > 0 else 0.0
    return out


def _accumulate_grads(net: nn.Module, data: Iterable | tuple, loss_fn: Callable, num_batches: int) -> None:
    """Sum dL/dw over a few batches in train mode, then restore every parameter and BN statistic."""
    state = {k: v.clone() for k, v in net.state_dict().items()}
    device = next(net.parameters()).device
    net.train().zero_grad(set_to_none=True)
    for x, y in batches(data, limit=arguments.integer(num_batches, "num_batches", low=1)):
        loss_fn(net(x.to(device)), y.to(device)).backward()
    net.load_state_dict(state)   # the forwards moved the BN running statistics; put them back


def prune_with_torch_pruning(
    model: nn.Module,
    ratio: float,
    example_inputs: torch.Tensor,
    *,
    importance: str = "l1",
    ignored_layers: Iterable | None = None,
    global_pruning: bool = False,
    data: Iterable | tuple | None = None,
    loss_fn: Callable | None = None,
    num_batches: int = 4,
    round_to: int | None = None,
    group_reduction: str = "mean",
    seed: int = 0,
) -> nn.Module:
    """Remove a `ratio` of the channels/neurons of any traceable model with Torch-Pruning; returns a new model.

    Coupled layers (a residual add's branches, the next block's input) are pruned as one group, scored by
    `importance` ("l1"/"l2": sum_j |w_j|^p, "taylor": |sum_j w_j dL/dw_j|, "random"), reduced over the group
    by `group_reduction` ("mean" = Torch-Pruning's group importance, "first" = the root layer alone, like
    `prune_structured`). Local pruning removes min(round(ratio * C), C - 1) channels per group, the course's
    rounding; global pruning ranks mean-normalised scores of all groups. The layers producing the model's output
    are always ignored, plus `ignored_layers` (names or modules).
    """
    ratio = arguments.ratio(ratio)
    scorer = _importance(importance, group_reduction)
    if importance == "taylor" and data is None:
        raise ValueError("importance 'taylor' needs data: pass data=(x, y) or a DataLoader of (x, y) batches")
    net = copy.deepcopy(model)
    example_inputs = example_inputs.to(next(net.parameters()).device)
    names = list(output_layers(net, example_inputs)) + list(ignored_layers or [])
    ignored = _modules_by_name(net, names, model)
    if importance == "taylor":
        _accumulate_grads(net, data, loss_fn or nn.functional.cross_entropy, num_batches)
    pruner = tp.pruner.BasePruner(
        net, example_inputs, importance=scorer, pruning_ratio=ratio, global_pruning=global_pruning,
        pruning_ratio_dict=None if global_pruning else _course_ratios(net, ratio, ignored),
        ignored_layers=ignored, round_to=round_to)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)           # RandomImportance draws from the global generator
        with torch.no_grad():
            pruner.step()
    net.zero_grad(set_to_none=True)
    return net.train(model.training)      # tracing put the copy in eval mode


@dataclass
class DependencyGroup:
    """What else shrinks when one output channel of `layer` goes: `members` are (layer, what, count) rows."""

    layer: str
    members: list[tuple[str, str, int]]   # e.g. ("bn6", "BN entry", 1), ("fc1", "input feature", 4)
    edges: list[tuple[str, str]]          # (source, target) steps of the dependency search (not data flow)

    def __str__(self) -> str:
        rows = [f"  {name:<20} {count:>3} {_plural(what, count)}" for name, what, count in self.members]
        return f"removing output channel 0 of {self.layer} removes:\n" + "\n".join(rows)

    def __repr__(self) -> str:
        return f"DependencyGroup(layer={self.layer!r}, members={[m[0] for m in self.members]})"


def _plural(what: str, count: int) -> str:
    return what if count == 1 else what[:-1] + "ies" if what.endswith("y") else what + "s"


def _label(node, names: dict[nn.Module, str]) -> str:
    """A readable node name: the module's name, or autograd op and node id (e.g. "AddBackward0#3") for graph ops."""
    if node.module in names:
        return names[node.module]
    m = re.match(r"_?([A-Za-z]+)_(\d+)\((.*)\)$", node.name)
    return f"{m[3] or m[1]}#{m[2]}" if m else node.name


def _what(target: nn.Module, out: bool) -> str:
    if isinstance(target, nn.modules.batchnorm._BatchNorm):
        return "BN entry"
    return f"{'output' if out else 'input'} {'channel' if isinstance(target, nn.Conv2d) else 'feature'}"


def dependency_groups(model: nn.Module, example_inputs: torch.Tensor, layer_name: str) -> DependencyGroup:
    """Trace `model` with Torch-Pruning and list every layer coupled to output channel 0 of `layer_name`.

    Members come root first, then in the model's module order.
    """
    net = copy.deepcopy(model).eval()
    modules = dict(net.named_modules())
    layers = [n for n, m in modules.items() if isinstance(m, LAYERS)]
    if layer_name not in layers:
        raise ValueError(f"unknown layer {layer_name!r}; Linear/Conv2d layers: {layers}")
    graph = tp.DependencyGraph().build_dependency(net, example_inputs=example_inputs.to(next(net.parameters()).device))
    layer = modules[layer_name]
    group = graph.get_pruning_group(layer, graph.get_pruner_of_module(layer).prune_out_channels, idxs=[0])
    names = {m: n for n, m in modules.items()}
    members, edges = {}, []
    for dep, idxs in group:
        source, target = _label(dep.source, names), _label(dep.target, names)
        if source != target and (source, target) not in edges:
            edges.append((source, target))
        if dep.target.module in names:
            what = _what(dep.target.module, graph.is_out_channel_pruning_fn(dep.handler))
            members.setdefault((target, what), len(idxs))
    order = {n: i for i, n in enumerate(modules)}
    rows = sorted(((n, w, c) for (n, w), c in members.items()), key=lambda r: (r[0] != layer_name, order[r[0]]))
    return DependencyGroup(layer_name, rows, edges)
