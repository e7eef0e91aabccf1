"""Structured pruning of any graph (residual adds included) through Torch-Pruning's dependency graph.

Torch-Pruning (Fang et al. 2023, "DepGraph") traces the model, groups every parameter that must shrink
together when one channel goes (a conv, its BN, the conv reading it, the other branch of a residual add)
and prunes whole groups. The course's chain surgery (`prune_structured`) is the readable special case.
Introduced in 03_structured
"""
from __future__ import annotations

import copy
import re
import warnings
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import torch
import torch_pruning as tp
from torch import nn

from course import arguments
from course.inputs import any_batches, batch_loss, call, eval_mode, model_device, to_device
from course.pruning.masks import has_masks, owners
from course.pruning.reparam import check_plain
from course.pruning.surgery import UnsupportedModelError

__all__ = ["IMPORTANCES", "prune_with_torch_pruning", "dependency_groups", "DependencyGroup"]

#: Torch-Pruning scorers by the course's unit-criterion names ("magnitude" is "l1", as for `prune_structured`).
IMPORTANCES = ("l1", "l2", "taylor", "random", "magnitude")
REDUCTIONS = ("mean", "first")
LAYERS = (nn.modules.conv._ConvNd, nn.Linear)


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


def output_layers(model: nn.Module, example_inputs: Any, forward_fn: Callable | None = None) -> list[str]:
    """Names of the Linear/Conv layers whose output is the model's output (the classifier)."""
    seen: dict[str, torch.Tensor] = {}
    hooks = [m.register_forward_hook(lambda mod, i, o, n=n: seen.__setitem__(n, o))
             for n, m in model.named_modules() if isinstance(m, LAYERS)]
    try:
        with torch.no_grad(), eval_mode(model):
            out = forward_fn(model, example_inputs) if forward_fn is not None else call(model, example_inputs)
    finally:
        for h in hooks:
            h.remove()
    hits = [n for n, o in seen.items() if o is out]
    return hits or [n for n, m in model.named_modules() if isinstance(m, LAYERS)][-1:]


def _modules_by_name(model: nn.Module, names: Iterable, original: nn.Module, what: str = "ignored layer"
                     ) -> list[nn.Module]:
    """Map layer names (or modules of `original`) to the modules of the copy `model`."""
    by_module = {m: n for n, m in original.named_modules()}
    modules = dict(model.named_modules())
    out = []
    for item in names:
        name = by_module.get(item) if isinstance(item, nn.Module) else item
        if name not in modules:
            raise ValueError(f"{what} {item!r} is not a module of the model; layers: "
                             f"{[n for n, m in original.named_modules() if isinstance(m, LAYERS)]}")
        out.append(modules[name])
    return out


def _tied_owners(model: nn.Module) -> list[nn.Module]:
    """Every module that shares a parameter with another (tied embedding and lm_head): Torch-Pruning would cut one."""
    return [module for places in owners(model).values() if len(places) > 1 for _, module, _ in places]


def _course_ratios(model: nn.Module, ratio: float, ignored: list[nn.Module]) -> dict[nn.Module, float]:
    """Per-layer ratios so Torch-Pruning removes min(round(ratio * C), C - 1) units, as `prune_structured` does.

    Torch-Pruning keeps int(C * (1 - r)) units; with r = (n - 0.5) / C that is exactly C - n.
    """
    out = {}
    for m in model.modules():
        if isinstance(m, LAYERS) and m not in ignored:
            c = m.out_features if isinstance(m, nn.Linear) else m.out_channels
            n = min(round(ratio * c), c - 1)
            out[m] = (n - 0.5) / c if n > 0 else 0.0
    return out


def _accumulate_grads(net: nn.Module, data: Any, loss_fn: Callable | None, num_batches: int, seed: int) -> None:
    """Sum dL/dw over a few batches in train mode (seeded dropout, the caller's RNG untouched), then restore every
    parameter and BN statistic."""
    state = {k: v.clone() for k, v in net.state_dict().items()}
    loss = batch_loss(loss_fn)
    net.train().zero_grad(set_to_none=True)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for batch in any_batches(data, limit=arguments.integer(num_batches, "num_batches", low=1)):
            loss(net, batch).backward()
    net.load_state_dict(state)   # the forwards moved the BN running statistics; put them back


def _refuse(model: nn.Module, ignored: list[nn.Module]) -> None:
    """Refuse, by name and with what to do instead, what Torch-Pruning 1.6 cannot prune (or what it would break)."""
    if has_masks(model):
        raise ValueError("the model carries course masks, which Torch-Pruning would not shrink with the weights: "
                         "call remove_masks(model) first (the zeros stay), then prune_with_torch_pruning")
    check_plain(model)
    deep = [n for n, m in model.named_modules() if isinstance(m, nn.LSTM) and m.num_layers > 1 and m not in ignored]
    if deep:
        raise UnsupportedModelError(
            f"Torch-Pruning cannot prune a multi-layer nn.LSTM ({', '.join(deep)}: its LSTM pruner handles "
            f"num_layers=1 only). Pass ignored_layers={deep} to prune the other layers, or prune the LSTM's weights "
            f"unstructured with prune_unstructured(model, sparsity) (course masks, no smaller matrices)")


def _translate(error: Exception, model: nn.Module) -> UnsupportedModelError:
    """Torch-Pruning's bare failures as a message that says what is not supported and what to do instead."""
    text = f"{type(error).__name__}: {error}" if str(error) else f"a bare {type(error).__name__}"
    fused = [n for n, m in model.named_modules() if isinstance(m, nn.Linear) and m.out_features % 3 == 0
             and m.out_features // 3 == m.in_features]
    hint = (f" Layers whose output is split or reshaped by your forward (a fused q/k/v projection such as "
            f"{fused[:2]}, heads viewed out of one Linear) cannot lose channels one by one: pass them in "
            f"ignored_layers=[...]" if fused else "")
    return UnsupportedModelError(
        f"Torch-Pruning failed on this {type(model).__name__} ({text}).{hint} Attention written as "
        f"nn.MultiheadAttention needs num_heads (passed for you); other layers it does not know can be listed in "
        f"ignored_layers=[...], parameters it does not see in unwrapped_parameters={{name: dim}}. Or prune unstructured "
        f"with prune_unstructured, which handles every weight matrix")


def _forward_ok(net: nn.Module, inputs: Any, forward_fn: Callable | None) -> None:
    """Run the pruned copy once; a model Torch-Pruning left inconsistent raises here, not in the user's loop."""
    try:
        with torch.no_grad(), eval_mode(net):
            forward_fn(net, inputs) if forward_fn is not None else call(net, inputs)
    except (RuntimeError, ValueError, IndexError, AssertionError) as e:
        raise _translate(e, net) from e


def _step(net: nn.Module, inputs: Any, seed: int, options: dict) -> None:
    """Build Torch-Pruning's pruner on `net` and prune once, in place (seeded: RandomImportance draws globally)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Maximum recursive depth reached")   # its tracer, per packed step
        pruner = tp.pruner.BasePruner(net, inputs, **options)
        with torch.random.fork_rng(devices=[]), torch.no_grad():
            torch.manual_seed(seed)
            pruner.step()


def prune_with_torch_pruning(
    model: nn.Module,
    ratio: float,
    example_inputs: Any,
    *,
    importance: str = "l1",
    ignored_layers: Iterable | None = None,
    global_pruning: bool = False,
    data: Any = None,
    loss_fn: Callable | None = None,
    num_batches: int = 4,
    round_to: int | None = None,
    group_reduction: str = "mean",
    seed: int = 0,
    num_heads: dict | None = None,
    unwrapped_parameters: dict | None = None,
    forward_fn: Callable | None = None,
) -> nn.Module:
    """Remove a `ratio` of the channels/neurons of any traceable model with Torch-Pruning; returns a new model.

    Coupled layers (a residual add's branches, the next block's input) are pruned as one group, scored by
    `importance` ("l1"/"l2": sum_j |w_j|^p, "taylor": |sum_j w_j dL/dw_j| on `data` with `loss_fn(model, batch)`,
    "random"), reduced over the group by `group_reduction` ("mean" = Torch-Pruning's group importance, "first" = the
    root layer alone, like `prune_structured`). Local pruning removes min(round(ratio * C), C - 1) channels per group,
    the course's rounding; global pruning ranks mean-normalised scores of all groups. The layers producing the
    model's output are always ignored, and so are the owners of tied weights (an embedding tied to its lm_head),
    plus `ignored_layers` (names or modules).

    Passed through to Torch-Pruning: `example_inputs` as the model takes them (a tensor, a tuple, a dict),
    `forward_fn(model, example_inputs)`, `round_to` (kept channels a multiple of it), `num_heads` ({layer name or
    module: heads}; default: every nn.MultiheadAttention's own `num_heads`, so heads stay whole),
    `unwrapped_parameters` ({parameter name or Parameter: pruning dim} for parameters outside any layer).
    Its failures become an `UnsupportedModelError` saying what is unsupported (a multi-layer LSTM, a fused q/k/v
    projection) and what to do instead; the pruned copy runs once on `example_inputs` before it is returned, and a
    call that removed nothing warns.
    """
    ratio = arguments.ratio(ratio)
    scorer = _importance(importance, group_reduction)
    if importance == "taylor" and data is None:
        raise ValueError("importance 'taylor' needs data: pass data=(x, y) or a DataLoader of batches (and "
                         "loss_fn=fn(model, batch) for batches that are not (x, y) pairs)")
    forward_fn = arguments.function(forward_fn, "forward_fn", signature="forward_fn(model, example_inputs)", none=True)
    net = copy.deepcopy(model)
    inputs = to_device(example_inputs, model_device(net))
    names = list(output_layers(net, inputs, forward_fn)) + list(arguments.each(ignored_layers, "ignored_layers",
                                                                               lambda v, n: v) if ignored_layers else [])
    ignored = _modules_by_name(net, names, model) + _tied_owners(net)
    _refuse(net, ignored)
    heads = {m: m.num_heads for m in net.modules() if isinstance(m, nn.MultiheadAttention)}
    for item, h in (num_heads or {}).items():
        heads[_modules_by_name(net, [item], model, "num_heads layer")[0]] = arguments.integer(h, "num_heads", low=1)
    params = dict(net.named_parameters())
    unwrapped = {}
    for item, dim in (unwrapped_parameters or {}).items():
        name = item if isinstance(item, str) else next((n for n, p in model.named_parameters() if p is item), None)
        if name not in params:
            raise ValueError(f"unwrapped parameter {item!r} is not a parameter of the model; e.g. {list(params)[:4]}")
        unwrapped[params[name]] = arguments.integer(dim, "unwrapped parameter dim", low=0)
    if importance == "taylor":
        _accumulate_grads(net, data, loss_fn, num_batches, seed)
    before = sum(p.numel() for p in net.parameters())
    options = dict(importance=scorer, pruning_ratio=ratio, global_pruning=global_pruning,
                   pruning_ratio_dict=None if global_pruning else _course_ratios(net, ratio, ignored),
                   ignored_layers=ignored, round_to=round_to, num_heads=heads,
                   unwrapped_parameters=list(unwrapped.items()) or None, forward_fn=forward_fn)   # (p, dim) pairs
    try:
        _step(net, inputs, seed, options)
    except (AssertionError, IndexError, RuntimeError, ValueError, KeyError) as e:
        raise _translate(e, model) from e
    _forward_ok(net, inputs, forward_fn)
    net.zero_grad(set_to_none=True)
    if sum(p.numel() for p in net.parameters()) == before and ratio > 0:
        warnings.warn(f"Torch-Pruning removed nothing from this {type(model).__name__}: no layer it can shrink feeds "
                      f"another it can follow (an nn.LSTM fed by an embedding, say), or every such layer is "
                      f"ignored ({len(ignored)} ignored). prune_unstructured prunes every weight matrix instead",
                      stacklevel=2)
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


def dependency_groups(model: nn.Module, example_inputs: Any, layer_name: str) -> DependencyGroup:
    """Trace `model` with Torch-Pruning and list every layer coupled to output channel 0 of `layer_name`.

    Members come root first, then in the model's module order.
    """
    net = copy.deepcopy(model).eval()
    modules = dict(net.named_modules())
    layers = [n for n, m in modules.items() if isinstance(m, LAYERS)]
    if layer_name not in layers:
        raise ValueError(f"unknown layer {layer_name!r}; Linear/Conv2d layers: {layers}")
    graph = tp.DependencyGraph().build_dependency(net, example_inputs=to_device(example_inputs, model_device(net)))
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
