"""Target (a): LeNet-300-100 at >= 95% sparsity within 0.5 pp of its dense baseline, with <= 120 s of fine-tuning.

Every method prunes with global magnitude scores and fine-tunes with `course.train` / the schedules of
`course.pruning`; the clock runs from the first pruning step to the end of the last optimizer step. The number of
epochs is planned from a short calibration (a few timed steps on a throw-away copy) so the run fits the budget;
the measured wall time is what the target is judged on.
"""
from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from course import evaluate, finetuner, gradual_pruning, train
from course.pruning import iterative_pruning, prune_unstructured
from course.pruning.stats import masked_sparsity
from course.table import Table
from course.training import make_optimizer, masked_step

BUDGET_S = 120.0
TOLERANCE_PP = 0.5
COLUMNS = ["dataset", "method", "epochs", "sparsity", "dense acc", "pruned acc", "Δ pp", "fine-tune s", "cut short",
           "status"]


@dataclass(frozen=True)
class Method:
    """A pruning + fine-tuning recipe; `run(model, loader, sparsity, epochs)` returns the pruned, trained model."""

    name: str
    describe: str
    run: Callable[[nn.Module, object, float, int], nn.Module]


def _oneshot(model, loader, sparsity, epochs, *, optimizer="sgd", lr=0.01):
    pruned = prune_unstructured(model, sparsity, criterion="magnitude", scope="global")
    train(pruned, loader, epochs=epochs, lr=lr, optimizer=optimizer, momentum=0.9, schedule="cosine", progress=False)
    return pruned


def _iterative(model, loader, sparsity, epochs, *, steps=3, lr=0.01):
    each = max(1, epochs // steps)
    tune = finetuner(loader, epochs=each, lr=lr, momentum=0.9, schedule="cosine", progress=False)
    pruned, _ = iterative_pruning(model, sparsity, steps=steps, finetune=tune, criterion="magnitude", scope="global")
    return pruned


def _gradual(model, loader, sparsity, epochs, *, lr=0.05, weight_decay=1e-4, prune_share=0.5):
    """Zhu & Gupta cubic schedule over the first `prune_share` of the epochs (constant lr), then cosine fine-tuning."""
    grow = max(1, round(prune_share * epochs))
    pruned, _ = gradual_pruning(model, sparsity, loader, epochs=grow, lr=lr, momentum=0.9, weight_decay=weight_decay,
                                criterion="magnitude", scope="global", end_step=grow * len(loader), progress=False)
    if epochs > grow:
        train(pruned, loader, epochs=epochs - grow, lr=lr, momentum=0.9, weight_decay=weight_decay,
              schedule="cosine", progress=False)
    return pruned


METHODS: dict[str, Method] = {
    "gradual": Method("gradual", "gradual cubic pruning (Zhu & Gupta 2017) during the first half of the epochs at "
                      "SGD lr 0.05 (momentum 0.9, weight decay 1e-4, as the baseline recipe), then the second half "
                      "with cosine-decayed lr", _gradual),
    "one-shot": Method("one-shot", "one-shot global magnitude, then SGD (momentum 0.9) with cosine lr from 0.01",
                       _oneshot),
    "one-shot-adam": Method("one-shot-adam", "one-shot global magnitude, then Adam with cosine lr from 1e-3",
                            lambda m, l, s, e: _oneshot(m, l, s, e, optimizer="adam", lr=1e-3)),
    "iterative": Method("iterative", "3 prune → fine-tune rounds (geometric targets), each 1/3 of the epochs with "
                        "SGD cosine lr from 0.01", _iterative),
}


class Deadline:
    """`loader`, but a pass stops early once `time.perf_counter()` reaches `end`: a hard wall-clock budget.

    The planned epochs normally finish well before `end`; this only guards against the machine slowing down.
    `len()` stays the planned length, so lr schedules are planned for the full run.
    """

    def __init__(self, loader, end: float):
        self.loader, self.end, self.cut = loader, end, False

    def __len__(self) -> int:
        return len(self.loader)

    def __iter__(self):
        for batch in self.loader:
            if time.perf_counter() >= self.end:
                self.cut = True
                return
            yield batch


def seconds_per_epoch(model: nn.Module, loader, steps: int = 30) -> float:
    """Estimated seconds per training epoch: time `steps` masked SGD steps (the step `course.train` takes) on a copy,
    scale to len(loader) steps."""
    net = copy.deepcopy(model).train()
    opt = make_optimizer(net, "sgd", lr=1e-3, momentum=0.9)
    it = iter(loader)
    start, done = time.perf_counter(), 0
    for _ in range(steps):
        try:
            x, y = next(it)
        except StopIteration:
            break
        masked_step(net, opt, F.cross_entropy, x, y)
        done += 1
    return (time.perf_counter() - start) / max(done, 1) * len(loader)


def plan_epochs(epoch_s: float, *, budget_s: float = BUDGET_S, safety: float = 0.6, max_epochs: int = 30) -> int:
    """The most epochs that fit safety × budget at `epoch_s` per epoch (pruning and masking add a little), capped."""
    return max(1, min(max_epochs, math.floor(safety * budget_s / max(epoch_s, 1e-9))))


def run_target(dataset: str, model: nn.Module, train_loader, test_loader, *, methods: list[str], sparsity: float = 0.95,
               budget_s: float = BUDGET_S, max_epochs: int = 30, dense_acc: float | None = None
               ) -> tuple[Table, dict[str, nn.Module]]:
    """One row per method: accuracy after pruning to `sparsity` and fine-tuning, the wall time, PASS/MISS.

    Returns (table, {method: pruned model}).
    """
    unknown = set(methods) - set(METHODS)
    if unknown:
        raise ValueError(f"unknown methods {sorted(unknown)}; choose from {sorted(METHODS)}")
    dense_acc = evaluate(model, test_loader) if dense_acc is None else dense_acc
    epochs = plan_epochs(seconds_per_epoch(model, train_loader), budget_s=budget_s, max_epochs=max_epochs)
    rows, models = [], {}
    for name in methods:
        torch.manual_seed(0)
        if getattr(train_loader, "generator", None) is not None:
            train_loader.generator.manual_seed(0)
        start = time.perf_counter()
        guarded = Deadline(train_loader, start + budget_s - 2.0)
        pruned = METHODS[name].run(model, guarded, sparsity, epochs)
        seconds = time.perf_counter() - start
        acc = evaluate(pruned, test_loader)
        models[name] = pruned
        delta = 100 * (acc - dense_acc)
        ok = masked_sparsity(pruned) >= sparsity - 1e-6 and delta >= -TOLERANCE_PP - 1e-9 and seconds <= budget_s
        rows.append((dataset, name, epochs, masked_sparsity(pruned), dense_acc, acc, delta, seconds,
                     guarded.cut, "PASS" if ok else "MISS"))
    table = Table(COLUMNS, rows, title="(a) LeNet-300-100 at ≥ 95% sparsity vs its dense baseline",
                  formats={"sparsity": ".2%", "dense acc": ".2%", "pruned acc": ".2%", "Δ pp": "+.2f",
                           "fine-tune s": ".1f"},
                  note=f"PASS: sparsity ≥ {sparsity:.0%}, Δ ≥ −{TOLERANCE_PP} pp and fine-tuning ≤ {budget_s:.0f} s "
                       "(wall clock, this shared CPU; 'cut short' = the budget ran out before the planned epochs, "
                       "training stopped there). All methods: global magnitude scores. "
                       + " ".join(f"{m}: {METHODS[m].describe}." for m in methods))
    return table, models
