"""Schedules decide *when* to prune: once, in prune→fine-tune cycles, or gradually during training.

A `finetune(model)` callable trains `model` (in place, or returning the trained model); `course.training.finetuner`
builds one on the course's training loop, and any other loop works too. The engine never trains by itself: every
schedule here takes that callable, works on a copy, and re-applies the masks after each fine-tuning, so pruned
weights end exactly at zero whatever the optimizer did. `GradualPruning` is the per-step callback that
`course.training.gradual_pruning` hands to the training loop. The lottery ticket lives in `lottery.py`.
Introduced in 06_when_to_prune
"""
from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

from torch import nn
from tqdm.auto import tqdm

from course import arguments
from course.pruning.lottery import lottery_ticket, run_training
from course.pruning.stats import masked_sparsity
from course.pruning.unstructured import prune_unstructured

__all__ = ["cubic_sparsity", "step_sparsities", "one_shot", "iterative_pruning", "GradualPruning", "lottery_ticket"]

STEP_SCHEDULES = ("geometric", "linear")


def cubic_sparsity(step: int, *, final_sparsity: float, initial_sparsity: float = 0.0, begin_step: int = 0,
                   end_step: int, frequency: int = 1) -> float:
    """Zhu & Gupta (2017): s_t = s_f + (s_i − s_f)(1 − (t − t0)/(nΔt))³ for t0 ≤ t ≤ t0 + nΔt.

    t0 = begin_step, t0 + nΔt = end_step, Δt = frequency: t is rounded down to the last pruning step
    t0 + kΔt, so sparsity only changes every Δt steps. s_i before t0, s_f from end_step on.
    """
    s_f = arguments.sparsity(final_sparsity, "final_sparsity")
    s_i = arguments.sparsity(initial_sparsity, "initial_sparsity")
    t0 = arguments.integer(begin_step, "begin_step", low=0)
    t_end = arguments.integer(end_step, "end_step", low=1)
    dt = arguments.integer(frequency, "frequency", low=1)
    step = arguments.integer(step, "step", low=0)
    if s_i > s_f:
        raise ValueError(f"initial_sparsity ({s_i}) must be <= final_sparsity ({s_f})")
    if t_end <= t0:
        raise ValueError(f"end_step ({t_end}) must be > begin_step ({t0})")
    if step < t0:
        return s_i
    if step >= t_end:
        return s_f
    t = t0 + (step - t0) // dt * dt
    return s_f + (s_i - s_f) * (1.0 - (t - t0) / (t_end - t0)) ** 3


def step_sparsities(final_sparsity: float, steps: int, schedule: str = "geometric") -> list[float]:
    """Targets s_1..s_K: geometric s_k = 1 − (1 − s_f)^(k/K) (same fraction of survivors each step) or s_f·k/K."""
    s_f = arguments.sparsity(final_sparsity, "final_sparsity")
    steps = arguments.integer(steps, "steps", low=1)
    schedule = arguments.choice(schedule, STEP_SCHEDULES, "schedule")
    if schedule == "geometric":
        out = [1.0 - (1.0 - s_f) ** (k / steps) for k in range(1, steps + 1)]
    else:
        out = [s_f * k / steps for k in range(1, steps + 1)]
    out[-1] = s_f                                                             # exact despite float error
    return out


def one_shot(model: nn.Module, sparsity: float, finetune: Callable | None = None, **prune_kwargs: Any) -> nn.Module:
    """Prune once to `sparsity`, then fine-tune once (if `finetune` is given). Returns a new model."""
    finetune = arguments.function(finetune, "finetune", signature="finetune(model)", none=True)
    prune_kwargs.pop("inplace", None)
    pruned = prune_unstructured(model, sparsity, **prune_kwargs)
    return pruned if finetune is None else run_training(finetune, pruned)[0]


def iterative_pruning(model: nn.Module, final_sparsity: float, *, steps: int, finetune: Callable | None,
                      schedule: str = "geometric", evaluate: Callable[[nn.Module], float] | None = None,
                      progress: bool = True, **prune_kwargs: Any) -> tuple[nn.Module, list[dict]]:
    """Prune → fine-tune, `steps` times, to the targets of `step_sparsities` (Han et al. 2015); (model, history).

    history[k] = {"step", "target", "sparsity" (achieved, over the pruned layers), "pruned_metric" (evaluate(model)
    right after step k's prune, before its fine-tuning), "metric" (evaluate(model) after it)}, None without
    `evaluate`; row 0 is the starting model. `finetune=None` skips fine-tuning. `progress=False` hides the bar.
    """
    targets = step_sparsities(final_sparsity, steps, schedule)
    progress = arguments.boolean(progress, "progress")
    finetune = arguments.function(finetune, "finetune", signature="finetune(model)", none=True)
    prune_kwargs.pop("inplace", None)
    current = copy.deepcopy(model)
    history = [{"step": 0, "target": 0.0, "sparsity": masked_sparsity(current), "pruned_metric": None,
                "metric": evaluate(current) if evaluate else None}]
    for k, target in enumerate(tqdm(targets, desc="iterative pruning", leave=False, disable=not progress), start=1):
        current = prune_unstructured(current, target, inplace=True, **prune_kwargs)
        pruned_metric = evaluate(current) if evaluate else None                  # the damage of this prune alone
        if finetune is not None:
            current = run_training(finetune, current)[0]
        history.append({"step": k, "target": target, "sparsity": masked_sparsity(current),
                        "pruned_metric": pruned_metric, "metric": evaluate(current) if evaluate else None})
    return current, history


class GradualPruning:
    """A per-step callback: prune to `cubic_sparsity(t)` at t = begin_step, begin_step + frequency, ..., end_step.

        schedule = GradualPruning(0.9, end_step=300, frequency=30)
        schedule(model, step=t, epoch=e, loss=value)     # after optimizer step t; prunes when t is a pruning step
        schedule.history                                 # one row per pruning event

    Each pruning raises the sparsity of the model in place (`prune_unstructured(..., inplace=True, **prune_kwargs)`);
    a row is {"event": "prune", "step", "epoch", "target", "sparsity", "loss" (mean since the last pruning),
    "metric": evaluate(model) right after this prune, or None without `evaluate`}.
    """

    def __init__(self, final_sparsity: float, *, end_step: int, begin_step: int = 0, frequency: int = 1,
                 initial_sparsity: float = 0.0, evaluate: Callable[[nn.Module], float] | None = None,
                 **prune_kwargs: Any):
        self.schedule = dict(final_sparsity=final_sparsity, initial_sparsity=initial_sparsity, begin_step=begin_step,
                             end_step=end_step, frequency=frequency)
        cubic_sparsity(0, **self.schedule)                                     # validates every argument
        prune_kwargs.pop("inplace", None)
        self.evaluate = arguments.function(evaluate, "evaluate", signature="evaluate(model) -> float", none=True)
        self.prune_kwargs = prune_kwargs
        self.last_target = -1.0
        self.history: list[dict] = []
        self._losses: list[float] = []

    @property
    def target(self) -> float:
        """The sparsity the model was last pruned to (0.0 before the first pruning)."""
        return max(self.last_target, 0.0)

    def is_pruning_step(self, step: int) -> bool:
        """t0 <= t <= t_end and (t - t0) a multiple of the frequency, or t = t_end."""
        t0, t_end, dt = self.schedule["begin_step"], self.schedule["end_step"], self.schedule["frequency"]
        return t0 <= step <= t_end and ((step - t0) % dt == 0 or step == t_end)

    def __call__(self, model: nn.Module, *, step: int, epoch: int = 0, loss: float | None = None) -> bool:
        """Record `loss`; prune `model` in place if `step` is a pruning step and the target grew. True if it pruned."""
        if loss is not None:
            self._losses.append(loss)
        target = cubic_sparsity(step, **self.schedule)
        if not self.is_pruning_step(step) or target <= self.last_target:
            return False
        prune_unstructured(model, target, inplace=True, **self.prune_kwargs)
        self.last_target = target
        mean = sum(self._losses) / len(self._losses) if self._losses else None
        self.history.append({"event": "prune", "step": step, "epoch": epoch, "target": target,
                             "sparsity": masked_sparsity(model), "loss": mean,
                             "metric": self.evaluate(model) if self.evaluate else None})
        self._losses.clear()
        return True

    def __repr__(self) -> str:
        s = self.schedule
        return (f"GradualPruning({s['initial_sparsity']} -> {s['final_sparsity']} over steps {s['begin_step']}.."
                f"{s['end_step']} every {s['frequency']}, {len(self.history)} prunings so far)")
