"""The lottery ticket procedure (Frankle & Carbin 2019): iterative magnitude pruning with weight rewinding.

Like every schedule, it takes a `train_fn(model)` callable and never imports a training loop.
Introduced in 06_when_to_prune
"""
from __future__ import annotations

import copy
import numbers
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from course import arguments
from course.pruning.masks import apply_masks, get_masks, reapply_masks
from course.pruning.stats import masked_sparsity
from course.pruning.unstructured import prune_unstructured

__all__ = ["lottery_ticket", "LotteryTicket", "run_training"]


def run_training(train_fn: Callable, model: nn.Module, *args: Any) -> tuple[nn.Module, Any]:
    """Call `train_fn(model, *args)`; use its returned model if it returns one (or a tuple starting with one).

    Returns (trained model with masks re-applied, whatever else train_fn returned).
    """
    result = train_fn(model, *args)
    info = result
    if isinstance(result, nn.Module):
        model, info = result, None
    elif isinstance(result, tuple) and result and isinstance(result[0], nn.Module):
        model, info = result[0], (result[1] if len(result) == 2 else result[1:])
    reapply_masks(model)
    return model, info


def _metric(evaluate: Callable | None, model: nn.Module, info: Any) -> float | None:
    """evaluate(model) when given, else train_fn's return value when it is a number."""
    if evaluate is not None:
        return float(evaluate(model))
    return float(info) if isinstance(info, numbers.Real) and not isinstance(info, bool) else None


@dataclass
class LotteryTicket:
    """Result of `lottery_ticket`: the ticket (rewound weights ⊙ final mask), its trained version, the control."""
    ticket: nn.Module
    trained: nn.Module
    masks: dict[str, torch.Tensor]
    history: list[dict] = field(default_factory=list)
    control: nn.Module | None = None

    def __repr__(self) -> str:
        last = self.history[-1] if self.history else {}
        return (f"LotteryTicket(rounds={len(self.history) - 1}, sparsity={last.get('sparsity', 0):.3f}, "
                f"metric={last.get('metric')}, control_metric={last.get('control_metric')})")


def _reinitialise(model: nn.Module, seed: int) -> nn.Module:
    """A copy with every `reset_parameters()` layer freshly initialised from its default distribution (seeded)."""
    fresh = copy.deepcopy(model)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for m in fresh.modules():
            if hasattr(m, "reset_parameters"):
                m.reset_parameters()
    return fresh


def lottery_ticket(model_init: nn.Module, train_fn: Callable, *, rounds: int, prune_rate_per_round: float = 0.2,
                   rewind: str | int = "init", reinit_control: bool = False,
                   evaluate: Callable[[nn.Module], float] | None = None, seed: int = 0,
                   **prune_kwargs: Any) -> LotteryTicket:
    """Iterative magnitude pruning with rewinding: train, prune p of the survivors, reset them to θ_rewind, repeat.

    After round r the sparsity is 1 − (1 − p)^r. `train_fn(model)` trains in place (or returns the trained model)
    for the full budget. rewind="init" resets survivors to θ_0 (Frankle & Carbin 2019); rewind=k resets them to
    θ_k, the weights after `train_fn(model, k)` trains the dense θ_0 for k steps or epochs (train_fn's unit;
    Frankle et al. 2020). reinit_control=True also trains the final mask on a fresh random initialisation.
    history[r] = {"round", "sparsity", "metric"} for the network trained in round r (round 0 = dense).
    """
    rounds = arguments.integer(rounds, "rounds", low=1)
    p = arguments.number(prune_rate_per_round, "prune_rate_per_round", low=0.0, high=1.0, low_open=True,
                         high_open=True, meaning="fraction of the survivors pruned each round")
    if rewind != "init":
        rewind = arguments.integer(rewind, "rewind", low=0, meaning="or 'init': steps/epochs of dense training")
    train_fn = arguments.function(train_fn, "train_fn", signature="train_fn(model)")
    prune_kwargs.pop("inplace", None)
    theta0 = copy.deepcopy(model_init)
    theta_rw = theta0 if rewind == "init" or rewind == 0 else run_training(train_fn, copy.deepcopy(theta0), rewind)[0]

    trained, info = run_training(train_fn, copy.deepcopy(theta0))
    history = [{"round": 0, "sparsity": masked_sparsity(trained), "metric": _metric(evaluate, trained, info)}]
    masks: dict[str, torch.Tensor] = get_masks(theta0)
    ticket = theta0
    for r in range(1, int(rounds) + 1):
        target = 1.0 - (1.0 - float(p)) ** r
        masks = get_masks(prune_unstructured(trained, target, **prune_kwargs))
        ticket = apply_masks(theta_rw, masks)                                   # survivors back to θ_rewind
        trained, info = run_training(train_fn, copy.deepcopy(ticket))
        history.append({"round": r, "sparsity": masked_sparsity(trained), "metric": _metric(evaluate, trained, info)})
    control = None
    if reinit_control:
        control, info = run_training(train_fn, apply_masks(_reinitialise(theta0, seed + 1), masks))
        history[-1]["control_metric"] = _metric(evaluate, control, info)
    return LotteryTicket(ticket=ticket, trained=trained, masks=masks, history=history, control=control)
