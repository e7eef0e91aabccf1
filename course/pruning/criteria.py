"""Criteria: how important is each weight? A criterion maps a model to one score tensor per layer.

A *criterion* scores, a *scope* compares the scores (per layer or globally), a *schedule* decides when.
Low score = pruned first. Every criterion returns `{layer_name: scores}` with scores shaped like the weight.
Gradient-based criteria run on a private copy of the model, so the model you pass is never touched.
"""
from __future__ import annotations

import copy
from collections.abc import Callable, Iterable
from typing import Any

import torch
from torch import nn

from course.pruning.masks import prunable_layers

__all__ = ["magnitude", "gradient", "taylor", "snip", "random", "CRITERIA", "NEEDS_DATA", "score",
           "accumulate_gradients"]

Layers = list[tuple[str, nn.Module]]
Scores = dict[str, torch.Tensor]
DEFAULT_NUM_BATCHES = 4


def magnitude(model: nn.Module, layers: Layers, **_: Any) -> Scores:
    """Magnitude: score = |w|. Small weights change the output least (Han et al. 2015).
    """
    return {name: module.weight.detach().abs().clone() for name, module in layers}


def random(model: nn.Module, layers: Layers, *, seed: int = 0, **_: Any) -> Scores:
    """Random: score ~ U(0, 1), seeded, independent of the weights. The baseline every criterion must beat."""
    gen = torch.Generator().manual_seed(int(seed))
    return {name: torch.rand(m.weight.shape, generator=gen).to(m.weight.device) for name, m in layers}


def _as_batches(data: Any) -> Iterable:
    """Accept a DataLoader, any iterable of (X, y) batches, or one (X, y) pair."""
    if isinstance(data, (tuple, list)) and len(data) == 2 and all(isinstance(t, torch.Tensor) for t in data):
        return [tuple(data)]
    return data


def accumulate_gradients(model: nn.Module, layers: Layers, data: Any, *, loss_fn: Callable | None = None,
                         num_batches: int = DEFAULT_NUM_BATCHES, seed: int = 0) -> Scores:
    """g = (1/B) Σ_b ∂L_b/∂w over the first `num_batches` batches: the gradient of the mean loss on that data.

    We average the signed gradients and take |·| afterwards (|mean g|, not mean |g|): the first-order Taylor term
    ΔL ≈ g·Δw needs the gradient of the loss on the data, and per-batch noise that cancels out should not count.
    Runs on a deep copy in train mode, so the caller's weights, grads, BatchNorm statistics and mode are untouched.
    """
    if data is None:
        raise ValueError("this criterion needs gradients: pass data= (a DataLoader or an iterable of (X, y) batches)")
    if not isinstance(num_batches, int) or isinstance(num_batches, bool) or num_batches < 1:
        raise ValueError(f"num_batches must be an int >= 1, got {num_batches!r}")
    loss_fn = nn.CrossEntropyLoss() if loss_fn is None else loss_fn
    names = [n for n, _ in layers]
    work = copy.deepcopy(model).train()
    modules = dict(work.named_modules())
    weights = [modules[n].weight for n in names]
    dev = weights[0].device
    totals = [torch.zeros_like(w) for w in weights]
    seen = 0
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        with torch.enable_grad():
            for X, y in _as_batches(data):
                if seen == num_batches:
                    break
                loss = loss_fn(work(X.to(dev)), y.to(dev))
                for total, g in zip(totals, torch.autograd.grad(loss, weights, allow_unused=True)):
                    if g is not None:
                        total.add_(g)
                seen += 1
    if seen == 0:
        raise ValueError("data= yielded no batches")
    return {n: (t / seen).detach() for n, t in zip(names, totals)}


def gradient(model: nn.Module, layers: Layers, *, data: Any = None, **kw: Any) -> Scores:
    """Gradient: score = |g|, g the mean gradient over a few batches (see `accumulate_gradients`)."""
    return {n: g.abs() for n, g in accumulate_gradients(model, layers, data, **kw).items()}


def taylor(model: nn.Module, layers: Layers, *, data: Any = None, **kw: Any) -> Scores:
    """Taylor: score = |w·g| ≈ |L(w) − L(w with this weight zeroed)|, first order (Molchanov et al. 2017, 2019)."""
    grads = accumulate_gradients(model, layers, data, **kw)
    return {n: (m.weight.detach() * grads[n]).abs() for n, m in layers}


def snip(model: nn.Module, layers: Layers, *, data: Any = None, **kw: Any) -> Scores:
    """SNIP connection sensitivity: s = |w·g| / Σ_all |w·g| (Lee et al. 2019). Meant for pruning at init."""
    raw = taylor(model, layers, data=data, **kw)
    total = sum(s.sum() for s in raw.values())
    total = total if float(total) > 0 else torch.tensor(1.0)
    return {n: s / total for n, s in raw.items()}


#: name -> criterion function `(model, layers, *, data=None, seed=0, loss_fn=None, num_batches=4) -> scores`.
CRITERIA: dict[str, Callable[..., Scores]] = {
    "magnitude": magnitude, "gradient": gradient, "taylor": taylor, "snip": snip, "random": random,
}
#: Criteria that need `data=` (they back-propagate a loss).
NEEDS_DATA = frozenset({"gradient", "taylor", "snip"})


def check_criterion(criterion: Any) -> str:
    """Return `criterion` if it names a registered criterion; else raise ValueError listing the choices."""
    if not isinstance(criterion, str) or criterion not in CRITERIA:
        raise ValueError(f"unknown criterion {criterion!r}; choose one of {sorted(CRITERIA)}")
    return criterion


def score(model: nn.Module, criterion: str = "magnitude", data: Any = None, *, seed: int = 0,
          loss_fn: Callable | None = None, num_batches: int = DEFAULT_NUM_BATCHES,
          exclude: Iterable[str] = ()) -> Scores:
    """Score every prunable weight with `criterion`: {layer name: tensor shaped like its weight}. Higher = keep.

    `data` (DataLoader or iterable of (X, y)) is needed by "gradient", "taylor" and "snip" only.
    """
    check_criterion(criterion)
    layers = prunable_layers(model, [exclude] if isinstance(exclude, str) else exclude)
    if not layers:
        raise ValueError("model has no prunable layers (nn.Linear / nn.Conv2d) left to score")
    if criterion in NEEDS_DATA and data is None:
        raise ValueError(f"criterion {criterion!r} needs gradients: pass data= "
                         "(a DataLoader or an iterable of (X, y) batches)")
    return CRITERIA[criterion](model, layers, data=data, seed=seed, loss_fn=loss_fn, num_batches=num_batches)
