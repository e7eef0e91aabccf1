"""The one timer: the latency of a forward pass, and interleaved rounds that compare several models fairly.

    latency(model, 64, input_shape=(1, 28, 28))                   # median and IQR of model(x), torch.utils.benchmark
    fastest_rounds({"dense": a, "pruned": b}, [1, 64], rounds=3)  # each model's fastest of 3 interleaved rounds

`timed_rounds` is the loop everything else builds on (`report`, the speedup sweeps, the trade-offs, the widgets,
the benchmarks): every round times a fresh copy of every model, one after the other. Interleaving exposes the models
to the same background load; fresh copies get new memory placement (two copies of one model can differ in speed
through cache and TLB effects alone). The fastest round is the least disturbed one: interference only adds time.
Introduced in 00_setup_and_baselines (report card latency); compared fairly in 02_unstructured and 03_structured
"""
from __future__ import annotations

import copy
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torch.utils import benchmark

from course import arguments
from course.inputs import call, eval_mode, example_inputs as make_inputs, leading_size
from course.pruning.masks import has_masks, remove_masks

__all__ = ["LatencyResult", "latency", "timed_rounds", "fastest_rounds", "best_of_rounds"]


@dataclass(frozen=True)
class LatencyResult:
    """Median and interquartile range of one forward pass, in milliseconds."""

    median_ms: float
    iqr_ms: float
    batch_size: int
    threads: int
    runs: int

    def __repr__(self) -> str:
        return (f"{self.median_ms:.3f} ms ± {self.iqr_ms:.3f} (IQR) per batch of {self.batch_size}, "
                f"{self.threads} thread(s), {self.runs} measurements")


def latency(model: nn.Module | Callable[[torch.Tensor], torch.Tensor], batch_size: int = 1, *,
            input_shape: Sequence[int] | None = None, threads: int | None = None,
            min_run_time: float = 0.5, example_inputs: Any = None) -> LatencyResult:
    """Time `model(x)` for x of shape (batch_size, *input_shape), or `model(example_inputs)` (a tensor, tuple or dict,
    as the model takes them; its batch size is their first dimension), with `torch.utils.benchmark.Timer`.

    Uses `blocked_autorange(min_run_time)` with a fixed thread count (default `torch.get_num_threads()`),
    in eval mode under `torch.inference_mode()`; the model's train/eval flags are restored afterwards. A model that
    carries course masks is timed as deployed: a copy with the masks and their hooks removed (the zeros stay), so
    the hooks' few µs per layer do not pose as a cost of pruning.
    """
    arguments.function(model, "model", signature="(an nn.Module, or a function of one tensor)")
    threads = arguments.integer(torch.get_num_threads() if threads is None else threads, "threads", low=1)
    x = make_inputs(model, input_shape, example_inputs, batch_size)
    batch_size = leading_size(x) if example_inputs is not None else batch_size
    if isinstance(model, nn.Module) and has_masks(model):
        model = remove_masks(model)

    def forward() -> None:
        with torch.inference_mode():
            call(model, x)

    with eval_mode(model):
        forward()                                             # warm-up (allocations, lazy init)
        timer = benchmark.Timer(stmt="forward()", globals={"forward": forward}, num_threads=threads)
        m = timer.blocked_autorange(min_run_time=min_run_time)
    return LatencyResult(median_ms=m.median * 1e3, iqr_ms=m.iqr * 1e3, batch_size=batch_size,
                         threads=threads, runs=len(m.times))


def _fresh_copy(model: Any) -> Any:
    """A deep copy of an nn.Module (new memory), or the model itself when it cannot be copied (CSR tensors)."""
    if not isinstance(model, nn.Module):
        return model
    try:
        return copy.deepcopy(model)
    except (RuntimeError, NotImplementedError):     # sparse CSR storage, or a non-leaf weight of torch prune
        return model


def timed_rounds(models: Mapping[str, Any], batch_sizes: Sequence[int], rounds: int, *, timer: Callable = latency,
                 alternate: bool = False, fresh: bool = True, bar: Any = None,
                 **timing: Any) -> dict[tuple[str, int], list[LatencyResult]]:
    """{(name, batch): [one LatencyResult per round]}: `rounds` rounds, each timing every model at every batch size.

    `timer(model, batch_size, **timing)` returns a LatencyResult (default `latency`; `timing` = input_shape,
    threads, min_run_time). `fresh`: time a fresh deep copy each round. `alternate`: reverse the order of the
    models every other round (ABBA), so load that drifts within a round hits every model alike.
    """
    rounds = arguments.integer(rounds, "rounds", low=1)
    batch_sizes = arguments.each(batch_sizes, "batch_sizes", lambda b, n: arguments.integer(b, "batch size", low=1))
    names = list(models)
    out: dict[tuple[str, int], list[LatencyResult]] = {(n, b): [] for n in names for b in batch_sizes}
    for r in range(rounds):
        for name in reversed(names) if alternate and r % 2 else names:
            model = _fresh_copy(models[name]) if fresh else models[name]
            for b in batch_sizes:
                out[name, b].append(timer(model, b, **timing))
                if bar is not None:
                    bar.update(1)
    return out


def fastest_rounds(models: Mapping[str, Any], batch_sizes: Sequence[int], rounds: int, *, timer: Callable = latency,
                   bar: Any = None, **timing: Any) -> dict[tuple[str, int], LatencyResult]:
    """{(name, batch): LatencyResult}: each model's fastest of `rounds` interleaved rounds (see `timed_rounds`)."""
    results = timed_rounds(models, batch_sizes, rounds, timer=timer, bar=bar, **timing)
    return {key: min(values, key=lambda r: r.median_ms) for key, values in results.items()}


def best_of_rounds(models: Mapping[str, Any], batch_sizes: Sequence[int], rounds: int, bar: Any = None, *,
                   timer: Callable = latency, **timing: Any) -> dict[tuple[str, int], float]:
    """{(name, batch): ms}: each model's fastest median over `rounds` interleaved rounds of fresh copies."""
    return {key: r.median_ms for key, r in fastest_rounds(models, batch_sizes, rounds, timer=timer, bar=bar,
                                                           **timing).items()}
