"""The gradients criteria are built from: one per batch (`per_batch_gradients`), or their mean (`accumulate_gradients`).

Both run on a deep copy in train mode, with a random stream of their own, so the model, its gradients and the
caller's generator stay as they were. The loss of a batch is `course.inputs.batch_loss(loss_fn)`: cross-entropy on
(X, y) pairs by default, or your `loss_fn(model, batch)` for batches in any other form.
Introduced in 04_criteria
"""
from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from typing import Any

import torch
from torch import nn

from course import arguments
from course.inputs import any_batches, batch_loss
from course.pruning.surgery import Link
from course.pruning.targets import Prunable

__all__ = ["DEFAULT_NUM_BATCHES", "targets_of", "per_batch_gradients", "accumulate_gradients"]

Scores = dict[str, torch.Tensor]
DEFAULT_NUM_BATCHES = 4


def targets_of(model: nn.Module, layers: list) -> list[Prunable]:
    """`layers` as Prunables: Prunables as they are; surgery `Link`s and (name, module) pairs as the module's weight."""
    modules = dict(model.named_modules())
    out = []
    for item in layers:
        if isinstance(item, Prunable):
            out.append(item)
        else:
            name = item.layer if isinstance(item, Link) else item[0]
            out.append(Prunable(name, name, modules[name], "weight"))
    return out


def per_batch_gradients(model: nn.Module, layers: list, data: Any, *, loss_fn: Callable | None = None,
                        num_batches: int = DEFAULT_NUM_BATCHES, seed: int = 0) -> Iterator[Scores]:
    """Yield g_b = ∂L_b/∂w for each of the first `num_batches` batches b, L_b = that batch's loss: {key: (shape of w)}.

    L_b = `course.inputs.batch_loss(loss_fn)(model, batch)` (cross-entropy on (X, y) pairs by default). Runs on a deep
    copy in train mode with its own seeded random state (dropout draws the same masks for the same `seed`, and the
    caller's generator is never advanced, even between two batches); frozen weights (requires_grad=False) are scored
    too. A weight the loss reaches in no batch: ValueError naming it, after the last batch.
    """
    if data is None:
        raise ValueError("this criterion needs gradients: pass data= (a DataLoader or an iterable of (X, y) batches)")
    num_batches = arguments.integer(num_batches, "num_batches", low=1)
    loss = batch_loss(loss_fn)
    targets = targets_of(model, layers)
    work = copy.deepcopy(model).train()
    weights = [work.get_submodule(t.module_name)._parameters[t.attr] for t in targets]
    for w in weights:
        w.requires_grad_(True)                          # frozen layers get a gradient on the copy
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        state = torch.get_rng_state()                   # the copy's own stream, carried from batch to batch
    reached, seen = [False] * len(weights), 0
    for batch in any_batches(data, limit=num_batches):
        with torch.random.fork_rng(devices=[]), torch.enable_grad():
            torch.set_rng_state(state)
            grads = torch.autograd.grad(loss(work, batch), weights, allow_unused=True)
            state = torch.get_rng_state()
        reached = [r or g is not None for r, g in zip(reached, grads)]
        seen += 1
        yield {t.name: (torch.zeros_like(w) if g is None else g).detach() for t, w, g in zip(targets, weights, grads)}
    if seen == 0:
        raise ValueError("data= yielded no batches")
    missing = [t.name for t, r in zip(targets, reached) if not r]
    if missing:
        raise ValueError(f"no gradient reaches {missing}: the loss does not use them. Exclude them (exclude={missing}) "
                         f"or check loss_fn")


def accumulate_gradients(model: nn.Module, layers: list, data: Any, **kw: Any) -> Scores:
    """g = (1/B) Σ_b ∂L_b/∂w over the first `num_batches` batches: the gradient of the mean loss on that data.

    The signed gradients are averaged, |·| is taken afterwards by the criteria (|mean g|, not mean |g|), so per-batch
    noise cancels out. Keyword arguments: those of `per_batch_gradients` (loss_fn, num_batches, seed).
    """
    totals, seen = {}, 0
    for grads in per_batch_gradients(model, layers, data, **kw):
        totals = {n: totals[n] + g if n in totals else g for n, g in grads.items()}
        seen += 1
    return {n: t / seen for n, t in totals.items()}
