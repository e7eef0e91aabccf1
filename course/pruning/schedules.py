"""Schedules decide *when* to prune: once, in prune→fine-tune cycles, gradually during training, or lottery-style.

A `finetune(model)` callable trains `model` (in place, or returning the trained model). `finetuner(loader, ...)`
builds one on top of `course.train.train`. Every schedule works on a copy and re-applies the masks after each
fine-tuning, so pruned weights end exactly at zero whatever the optimizer did.
"""
from __future__ import annotations

import copy
import numbers
from collections.abc import Callable
from typing import Any

import torch
from torch import nn
from tqdm.auto import tqdm

from course.pruning.lottery import lottery_ticket, masked_sparsity, run_training
from course.pruning.masks import enforce_masks, reapply_masks
from course.pruning.unstructured import check_sparsity, prune_unstructured

__all__ = ["cubic_sparsity", "one_shot", "iterative_pruning", "gradual_pruning", "lottery_ticket", "finetuner",
           "step_sparsities"]


def _check_int(value: Any, name: str, low: int) -> int:
    """`value` as an int >= low, else TypeError/ValueError naming the range."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an int >= {low}, got {type(value).__name__} {value!r}")
    if value < low:
        raise ValueError(f"{name} must be an int >= {low}, got {value}")
    return int(value)


def cubic_sparsity(step: int, *, final_sparsity: float, initial_sparsity: float = 0.0, begin_step: int = 0,
                   end_step: int, frequency: int = 1) -> float:
    """Zhu & Gupta (2017): s_t = s_f + (s_i − s_f)(1 − (t − t0)/(nΔt))³ for t0 ≤ t ≤ t0 + nΔt.

    t0 = begin_step, t0 + nΔt = end_step, Δt = frequency: t is rounded down to the last pruning step
    t0 + kΔt, so sparsity only changes every Δt steps. s_i before t0, s_f from end_step on.
    """
    s_f = check_sparsity(final_sparsity, "final_sparsity")
    s_i = check_sparsity(initial_sparsity, "initial_sparsity")
    if s_i > s_f:
        raise ValueError(f"initial_sparsity ({s_i}) must be <= final_sparsity ({s_f})")
    t0 = _check_int(begin_step, "begin_step", 0)
    t_end = _check_int(end_step, "end_step", 1)
    dt = _check_int(frequency, "frequency", 1)
    if t_end <= t0:
        raise ValueError(f"end_step ({t_end}) must be > begin_step ({t0})")
    step = _check_int(step, "step", 0)
    if step < t0:
        return s_i
    if step >= t_end:
        return s_f
    t = t0 + (step - t0) // dt * dt
    return s_f + (s_i - s_f) * (1.0 - (t - t0) / (t_end - t0)) ** 3


def step_sparsities(final_sparsity: float, steps: int, schedule: str = "geometric") -> list[float]:
    """Targets s_1..s_K: geometric s_k = 1 − (1 − s_f)^(k/K) (same fraction of survivors each step) or s_f·k/K."""
    s_f = check_sparsity(final_sparsity, "final_sparsity")
    steps = _check_int(steps, "steps", 1)
    if schedule == "geometric":
        out = [1.0 - (1.0 - s_f) ** (k / steps) for k in range(1, steps + 1)]
    elif schedule == "linear":
        out = [s_f * k / steps for k in range(1, steps + 1)]
    else:
        raise ValueError(f"unknown schedule {schedule!r}; choose one of ['geometric', 'linear']")
    out[-1] = s_f                                                             # exact despite float error
    return out


def finetuner(loader, *, epochs: int = 1, lr: float = 0.01, **train_kwargs: Any) -> Callable[[nn.Module], Any]:
    """A `finetune(model)` callable that runs `course.train.train(model, loader, epochs=..., lr=..., ...)`."""
    def finetune(model: nn.Module) -> Any:
        from course.train import train                                       # lazy: train imports pruning

        return train(model, loader, epochs=epochs, lr=lr, **train_kwargs)
    return finetune


def one_shot(model: nn.Module, sparsity: float, finetune: Callable | None = None, **prune_kwargs: Any) -> nn.Module:
    """Prune once to `sparsity`, then fine-tune once (if `finetune` is given). Returns a new model."""
    prune_kwargs.pop("inplace", None)
    pruned = prune_unstructured(model, sparsity, **prune_kwargs)
    return pruned if finetune is None else run_training(finetune, pruned)[0]


def iterative_pruning(model: nn.Module, final_sparsity: float, *, steps: int, finetune: Callable | None,
                      schedule: str = "geometric", evaluate: Callable[[nn.Module], float] | None = None,
                      **prune_kwargs: Any) -> tuple[nn.Module, list[dict]]:
    """Prune → fine-tune, `steps` times, to the targets of `step_sparsities` (Han et al. 2015); (model, history).

    history[k] = {"step", "target", "sparsity" (achieved, over the pruned layers), "metric" (evaluate(model) or None)};
    row 0 is the starting model. `finetune=None` skips fine-tuning.
    """
    targets = step_sparsities(final_sparsity, steps, schedule)
    if finetune is not None and not callable(finetune):
        raise TypeError(f"finetune must be a callable finetune(model) or None, got {type(finetune).__name__}")
    prune_kwargs.pop("inplace", None)
    current = copy.deepcopy(model)
    history = [{"step": 0, "target": 0.0, "sparsity": masked_sparsity(current),
                "metric": evaluate(current) if evaluate else None}]
    for k, target in enumerate(tqdm(targets, desc="iterative pruning", leave=False), start=1):
        current = prune_unstructured(current, target, inplace=True, **prune_kwargs)
        if finetune is not None:
            current = run_training(finetune, current)[0]
        history.append({"step": k, "target": target, "sparsity": masked_sparsity(current),
                        "metric": evaluate(current) if evaluate else None})
    return current, history


def _make_optimizer(name: str, params, lr: float, momentum: float, weight_decay: float) -> torch.optim.Optimizer:
    """SGD (with momentum) or Adam."""
    if name == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=momentum, weight_decay=weight_decay)
    if name == "adam":
        return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay)
    raise ValueError(f"unknown optimizer {name!r}; choose one of ['sgd', 'adam']")


def gradual_pruning(model: nn.Module, final_sparsity: float, train_loader, *, epochs: int, lr: float = 0.01,
                    optimizer: str = "sgd", momentum: float = 0.9, weight_decay: float = 0.0,
                    initial_sparsity: float = 0.0, begin_step: int = 0, end_step: int | None = None,
                    frequency: int | None = None, loss_fn: Callable | None = None,
                    evaluate: Callable[[nn.Module], float] | None = None, progress: bool = True,
                    **prune_kwargs: Any) -> tuple[nn.Module, list[dict]]:
    """Train `epochs` epochs while pruning every `frequency` optimizer steps to `cubic_sparsity(t)` (Zhu & Gupta 2017).

    Defaults: end_step = 75% of all steps (the rest fine-tunes at s_f), frequency = 1/10 of the pruning window.
    Masks are re-applied after every optimizer step. Returns (model, history): one row per pruning event
    ("event": "prune") and per epoch end ("event": "epoch", with "metric" = evaluate(model) when given).
    """
    s_f = check_sparsity(final_sparsity, "final_sparsity")
    epochs = _check_int(epochs, "epochs", 1)
    total = epochs * len(train_loader)
    if total < 1:
        raise ValueError("train_loader yields no batches")
    end_step = max(begin_step + 1, round(0.75 * total)) if end_step is None else end_step
    end_step = _check_int(end_step, "end_step", 1)
    if end_step > total:
        raise ValueError(f"end_step ({end_step}) must be <= the number of optimizer steps ({total})")
    frequency = max(1, (end_step - begin_step) // 10) if frequency is None else frequency
    schedule = dict(final_sparsity=s_f, initial_sparsity=initial_sparsity, begin_step=begin_step,
                    end_step=end_step, frequency=frequency)
    cubic_sparsity(0, **schedule)                                              # validates the schedule
    prune_kwargs.pop("inplace", None)
    prune_kwargs.setdefault("data", train_loader)
    loss_fn = nn.CrossEntropyLoss() if loss_fn is None else loss_fn
    net = copy.deepcopy(model).train()
    dev = next(net.parameters()).device
    opt = _make_optimizer(optimizer, net.parameters(), lr, momentum, weight_decay)
    hook = enforce_masks(opt, net)
    history: list[dict] = []
    last_target, since, t = -1.0, [], 0                                      # since: losses since last prune

    def maybe_prune(epoch: int) -> None:
        nonlocal last_target
        is_event = begin_step <= t <= end_step and ((t - begin_step) % frequency == 0 or t == end_step)
        target = cubic_sparsity(t, **schedule)
        if is_event and target > last_target:
            prune_unstructured(net, target, inplace=True, **prune_kwargs)
            last_target = target
            history.append({"event": "prune", "step": t, "epoch": epoch, "target": target,
                            "sparsity": masked_sparsity(net), "loss": sum(since) / len(since) if since else None,
                            "metric": None})
            since.clear()

    bar = tqdm(total=total, desc="gradual pruning", disable=not progress, leave=False)
    try:
        maybe_prune(0)
        for epoch in range(1, epochs + 1):
            epoch_losses = []
            for X, y in train_loader:
                net.train()
                opt.zero_grad(set_to_none=True)
                loss = loss_fn(net(X.to(dev)), y.to(dev))
                loss.backward()
                opt.step()                                                    # hook re-applies the masks
                t += 1
                value = loss.item()
                since.append(value)
                epoch_losses.append(value)
                bar.update(1)
                bar.set_postfix(loss=f"{value:.3f}", sparsity=f"{max(last_target, 0):.2f}", refresh=False)
                maybe_prune(epoch)
            history.append({"event": "epoch", "step": t, "epoch": epoch, "target": max(last_target, 0.0),
                            "sparsity": masked_sparsity(net), "loss": sum(epoch_losses) / len(epoch_losses),
                            "metric": evaluate(net) if evaluate else None})
    finally:
        hook.remove()
        bar.close()
    reapply_masks(net)
    net.train(model.training)
    net.zero_grad(set_to_none=True)
    return net, history

