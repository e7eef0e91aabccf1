"""Criteria: how important is each weight, or each unit? One registry for both. Low score = pruned first.

A *criterion* scores, a *scope* compares the scores (per layer or globally), a *schedule* decides when.

    kind      name                 score                                             needs data=
    weights   magnitude            |w|                                               no
              gradient             |g|, g = mean gradient over a few batches         yes
              taylor               (1/B) Σ_b (w·g_b)², g_b = batch b's gradient      yes
              taylor_signed_mean   |w·g|, g = mean gradient over a few batches       yes
              snip                 |w·g| / Σ_all |w·g|                               yes
              random               u ~ U(0, 1), seeded                               no
              obd                  ½·h·w², h = Gauss-Newton diagonal (curvature.py)  yes
              lamp                 w_u² / Σ_{v ≥ u} w_v², scope global (lamp.py)     no
    units     magnitude (or "l1")  Σ_j |W[u, j]|, the L1 norm of the unit's weights  no
              l2                   sqrt(Σ_j W[u, j]²)                                no
              random               u ~ U(0, 1), seeded                               no
              bn_gamma, next_layer, taylor, taylor_abs_mean: course.pruning.unit_criteria

`criterion=` (in `prune_unstructured`, `prune_structured`, `score`, `unit_scores`, ...) takes a registered name or
your own function of ONE layer's weight, which the library calls layer by layer:

    fn(weight) -> scores           e.g. lambda w: w.abs()
    fn(weight, grad) -> scores     grad = dL/dW, the mean over the first batches of `data=` (so data= is needed)

For weights the scores are shaped like the weight; for units they are one per output unit, shape (out,). So the
first-order score you write in Exercise 04.1 plugs straight in (it is `taylor_signed_mean`):
`prune_unstructured(model, 0.9, criterion=taylor_score, data=loader)`.

Gradients come from `data=` through a loss of (model, batch): by default cross-entropy on (X, y) pairs; pass
`loss_fn=fn(model, batch) -> loss` for batches in another form (dicts, (x, mask, y), ...), see `course.inputs`.

Adding a criterion to the library is registering it: decorate `fn(model, layers, *, data, seed, loss_fn,
num_batches) -> {layer: scores}` with `@register("name", "weights" | "units", needs_data=...)`. For "weights",
`layers` are `course.pruning.targets.Prunable`s (`for name, layer in layers: layer.weight`); for "units" they are
`course.pruning.surgery.Link`s (a layer, its BatchNorms).
Introduced in 04_criteria (weights) and 03_structured (units)
"""
from __future__ import annotations

import copy
import inspect
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from course import arguments
from course.inputs import any_batches, batch_loss
from course.pruning.gradients import DEFAULT_NUM_BATCHES, accumulate_gradients, per_batch_gradients
from course.pruning.gradients import targets_of as _targets
from course.pruning.surgery import Link
from course.pruning.targets import prunable_weights

__all__ = ["Criterion", "CRITERIA", "UNIT_CRITERIA", "ALIASES", "KINDS", "register", "criterion_for", "score",
           "accumulate_gradients", "per_batch_gradients", "magnitude_scores", "gradient_scores", "taylor_scores",
           "taylor_signed_mean_scores", "snip_scores",
           "random_scores", "unit_norms", "unit_l1_scores", "unit_l2_scores", "unit_random_scores", "DEFAULT_NUM_BATCHES"]

Scores = dict[str, torch.Tensor]
KINDS = ("weights", "units")


@dataclass(frozen=True)
class Criterion:
    """A criterion: `fn(model, layers, *, data, seed, loss_fn, num_batches) -> {layer: scores}` of one `kind`."""

    name: str
    kind: str                 # "weights" (scores shaped like each weight) or "units" (one score per output unit)
    fn: Callable[..., Scores]
    needs_data: bool = False
    scope: str = "local"      # the scope `prune_unstructured(scope=None)` uses with it (the paper's comparison group)

    def __call__(self, model: nn.Module, layers: list, *, data: Any = None, seed: int = 0,
                 loss_fn: Callable | None = None, num_batches: int = DEFAULT_NUM_BATCHES) -> Scores:
        """Score `layers` of `model`; a criterion that back-propagates refuses to run without `data`."""
        if self.needs_data and data is None:
            raise ValueError(f"criterion {self.name!r} needs data: it needs gradients or activations on a few "
                             "batches; pass data= (a DataLoader, an iterable of (X, y) batches, or one (X, y) pair)")
        return self.fn(model, layers, data=data, seed=seed, loss_fn=loss_fn, num_batches=num_batches)

    def __repr__(self) -> str:
        return f"Criterion({self.name!r}, {self.kind}{', needs data' if self.needs_data else ''})"


#: The registry: kind -> {name: Criterion}. `CRITERIA` (weights) and `UNIT_CRITERIA` (units) are its two halves.
_REGISTRY: dict[str, dict[str, Criterion]] = {kind: {} for kind in KINDS}
CRITERIA: dict[str, Criterion] = _REGISTRY["weights"]
UNIT_CRITERIA: dict[str, Criterion] = _REGISTRY["units"]
#: Other names for registered criteria, per kind.
ALIASES: dict[str, dict[str, str]] = {"weights": {}, "units": {"l1": "magnitude"}}


def register(name: str, kind: str, *, needs_data: bool = False, scope: str = "local") -> Callable[[Callable], Callable]:
    """Decorator: add `fn(model, layers, *, data, seed, loss_fn, num_batches) -> {layer: scores}` to the registry.

    `scope` is the comparison group the criterion's paper uses ("local", "global" or "row"); it is the default when
    `prune_unstructured` is called with scope=None.
    """
    arguments.choice(kind, KINDS, "kind")

    def deco(fn: Callable) -> Callable:
        _REGISTRY[kind][name] = Criterion(name, kind, fn, needs_data, scope)
        return fn
    return deco


def _from_function(fn: Callable, kind: str) -> Criterion:
    """Wrap a learner's `fn(weight)` or `fn(weight, grad)` (one layer at a time) as a Criterion of `kind`."""
    try:
        params = [p for p in inspect.signature(fn).parameters.values()
                  if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) and p.default is p.empty]
    except (TypeError, ValueError):                      # builtins without a signature: assume fn(weight)
        params = [None]
    if len(params) not in (1, 2):
        raise TypeError(f"a criterion function takes (weight) or (weight, grad) and returns scores; "
                        f"{getattr(fn, '__name__', fn)!r} takes {len(params)} arguments")
    name = getattr(fn, "__name__", type(fn).__name__)

    def run(model: nn.Module, layers: list, *, data: Any = None, **kw: Any) -> Scores:
        targets = _targets(model, layers)
        grads = accumulate_gradients(model, targets, data, **kw) if len(params) == 2 else {}
        out = {}
        for layer, target in targets:
            w = target.weight.detach().clone()
            s = fn(w, grads[layer].clone()) if grads else fn(w)
            want = tuple(w.shape) if kind == "weights" else (w.shape[0],)
            if not isinstance(s, torch.Tensor) or tuple(s.shape) != want:
                got = tuple(s.shape) if isinstance(s, torch.Tensor) else type(s).__name__
                raise ValueError(f"criterion {name!r} must return a tensor of shape {want} for layer {layer!r} "
                                 f"({'one score per weight' if kind == 'weights' else 'one score per output unit'}), "
                                 f"got {got}")
            out[layer] = s.detach().float()
        return out
    return Criterion(name, kind, run, needs_data=len(params) == 2)


def criterion_for(criterion: str | Callable | Criterion, kind: str = "weights") -> Criterion:
    """The Criterion that `criterion=` means: a registered name (or alias), a Criterion, or a function to wrap."""
    if isinstance(criterion, Criterion):
        if criterion.kind != kind:
            raise ValueError(f"criterion {criterion.name!r} scores {criterion.kind}, not {kind}")
        return criterion
    if callable(criterion):
        return _from_function(criterion, kind)
    name = ALIASES[kind].get(criterion, criterion) if isinstance(criterion, str) else criterion
    choices = sorted([*_REGISTRY[kind], *ALIASES[kind]])
    if not isinstance(name, str) or name not in _REGISTRY[kind]:
        raise ValueError(f"unknown criterion {criterion!r} for {kind}; choose one of {choices}, "
                         f"or pass a function fn(weight) or fn(weight, grad)")
    return _REGISTRY[kind][name]


# --- weights: scores shaped like each weight ----------------------------------------------------------------

@register("magnitude", "weights")
def magnitude_scores(model: nn.Module, layers: list, **_: Any) -> Scores:
    """Magnitude: score = |w|. Small weights change the output least (Han et al. 2015)."""
    return {name: layer.weight.detach().abs().clone() for name, layer in layers}


@register("random", "weights")
def random_scores(model: nn.Module, layers: list, *, seed: int = 0, **_: Any) -> Scores:
    """Random: score ~ U(0, 1), seeded, independent of the weights. The baseline every criterion must beat."""
    gen = torch.Generator().manual_seed(int(seed))
    return {name: torch.rand(layer.weight.shape, generator=gen).to(layer.weight.device) for name, layer in layers}


@register("gradient", "weights", needs_data=True)
def gradient_scores(model: nn.Module, layers: list, *, data: Any = None, **kw: Any) -> Scores:
    """Gradient: score = |g|, g the mean gradient over a few batches (see `accumulate_gradients`)."""
    return {n: g.abs() for n, g in accumulate_gradients(model, layers, data, **kw).items()}


@register("taylor", "weights", needs_data=True)
def taylor_scores(model: nn.Module, layers: list, *, data: Any = None, **kw: Any) -> Scores:
    """Taylor (Molchanov et al. 2019): score = (1/B) Σ_b (w·g_b)², g_b the gradient of batch b's loss.

    Squared per batch, then averaged over the B batches, as in the authors' code (NVlabs/Taylor_pruning,
    pruning_engine.py accumulates `(w * w.grad) ** 2` per mini-batch). E_b[(w·g_b)²] = (w·ḡ)² + w²·Var(g_b): at a
    trained minimum the mean gradient ḡ vanishes, the batch-to-batch noise remains, and it grows with w².
    """
    totals, seen = {}, 0
    for grads in per_batch_gradients(model, layers, data, **kw):
        for name, layer in layers:
            term = (layer.weight.detach() * grads[name]).square()
            totals[name] = totals[name] + term if name in totals else term
        seen += 1
    return {n: t / seen for n, t in totals.items()}


@register("taylor_signed_mean", "weights", needs_data=True)
def taylor_signed_mean_scores(model: nn.Module, layers: list, *, data: Any = None, **kw: Any) -> Scores:
    """Signed-mean Taylor: score = |w·ḡ|, ḡ the mean signed gradient over a few batches (not Molchanov's estimator)."""
    grads = accumulate_gradients(model, layers, data, **kw)
    return {n: (layer.weight.detach() * grads[n]).abs() for n, layer in layers}


@register("snip", "weights", needs_data=True)
def snip_scores(model: nn.Module, layers: list, *, data: Any = None, **kw: Any) -> Scores:
    """SNIP connection sensitivity: s = |w·g| / Σ_all |w·g|, g the mean gradient (Lee et al. 2019). Meant for init."""
    raw = taylor_signed_mean_scores(model, layers, data=data, **kw)
    total = sum(s.sum() for s in raw.values())
    total = total if float(total) > 0 else torch.tensor(1.0)
    return {n: s / total for n, s in raw.items()}


def score(model: nn.Module, criterion: str | Callable = "magnitude", data: Any = None, *, seed: int = 0,
          loss_fn: Callable | None = None, num_batches: int = DEFAULT_NUM_BATCHES,
          exclude: Iterable[str] = (), include: Iterable | None = None) -> Scores:
    """Score every prunable weight with `criterion`: {key: tensor shaped like its weight}. Higher = keep.

    `data` (DataLoader, iterable of batches, or one batch) is needed by criteria that use gradients; `loss_fn`
    gives the loss of a batch (see `course.inputs.batch_loss`). `include`/`exclude`: see `prunable_weights`.
    """
    crit = criterion_for(criterion, "weights")
    layers = prunable_weights(model, include=include, exclude=exclude)
    if not layers:
        raise ValueError("model has no prunable layers (Linear, Conv, attention or recurrent weights) left to score")
    return crit(model, layers, data=data, seed=seed, loss_fn=loss_fn, num_batches=num_batches)


# --- units: one score per output unit (neuron, filter) ------------------------------------------------------

def unit_norms(model: nn.Module, links: list[Link], p: int = 1) -> Scores:
    """||W[u]||_p over each unit's incoming weights: (units, fan_in) -> (units,). p=1 is Li et al. (2017)."""
    modules = dict(model.named_modules())
    return {link.layer: modules[link.layer].weight.detach().flatten(1).float().norm(p=p, dim=1).cpu()
            for link in links}


@register("magnitude", "units")
def unit_l1_scores(model: nn.Module, links: list[Link], **_: Any) -> Scores:
    """Magnitude of a unit (alias "l1"): Σ_j |W[u, j]|, the L1 norm of its incoming weights."""
    return unit_norms(model, links, p=1)


@register("l2", "units")
def unit_l2_scores(model: nn.Module, links: list[Link], **_: Any) -> Scores:
    """L2 norm of a unit's incoming weights: sqrt(Σ_j W[u, j]²)."""
    return unit_norms(model, links, p=2)


@register("random", "units")
def unit_random_scores(model: nn.Module, links: list[Link], *, seed: int = 0, **_: Any) -> Scores:
    """Random: one U(0, 1) score per unit from a generator seeded with `seed`."""
    gen = torch.Generator().manual_seed(seed)
    return {link.layer: torch.rand(link.units, generator=gen) for link in links}
