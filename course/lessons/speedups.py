"""Measured speedups of pruned models: CSR vs dense across sparsities, slim vs dense across unit ratios.

    t = csr_sweep(model, [0.0, 0.9, 0.99], [1, 256])        # dense, dense-with-zeros and CSR latency
    break_even(t.column("sparsity")[::2], t.column("csr ×")[::2])   # where CSR starts to win, batch 1
    s = slim_sweep(model, [0.25, 0.5], [256])                 # FLOP reduction vs measured speedup

Latency comes from `course.timing` (torch.utils.benchmark, interleaved best-of-rounds; threads default to torch's
current setting) and FLOPs from `course.metrics.count_flops` (torch.utils.flop_counter): every number is measured
on this machine.
The model is never changed.
Introduced in 02_unstructured (CSR) and 03_structured (slim models).
"""
from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
from torch import nn
from tqdm.auto import tqdm

from course import arguments
from course.metrics import count_flops, count_params
from course.pruning.sparse import to_sparse_csr
from course.pruning.structured import prune_structured
from course.pruning.unstructured import prune_unstructured
from course.table import Table
from course.timing import best_of_rounds, latency

__all__ = ["csr_sweep", "slim_sweep", "break_even"]


def _batch_sizes(batch_sizes: Sequence[int]) -> list[int]:
    """A non-empty list of ints >= 1 (e.g. [1, 64, 256])."""
    return arguments.each(batch_sizes, "batch_sizes", lambda b, _: arguments.integer(b, "batch size", low=1))


def _threads(threads: int | None) -> int:
    """The thread count a timing uses: `threads`, or torch's current setting (what `course.latency` uses)."""
    return torch.get_num_threads() if threads is None else int(threads)


def csr_sweep(model: nn.Module, sparsities: Sequence[float], batch_sizes: Sequence[int], *, input_shape=None,
              threads: int | None = None, min_run_time: float = 0.2, rounds: int = 1, progress: bool = True,
              timer: Callable = latency) -> Table:
    """Latency (ms) of `model` (dense), its local-magnitude-pruned copy (dense with zeros) and that copy as CSR
    (`to_sparse_csr`), one row per (sparsity, batch size); speedup × = dense ms / that form's ms.

    Each time is the best of `rounds` interleaved medians (`course.timing.best_of_rounds`, timed with `timer`).
    Only nn.Linear layers become CSR.
    """
    sparsities = arguments.each(sparsities, "sparsity", arguments.sparsity)
    batch_sizes = _batch_sizes(batch_sizes)
    rounds = arguments.integer(rounds, "rounds", low=1)
    models = {"dense": model}
    for s in sparsities:
        models["zeros", s] = prune_unstructured(model, s)          # dense weights, a fraction s of them zero
        models["csr", s] = to_sparse_csr(models["zeros", s])      # the same weights, stored as CSR
    bar = tqdm(total=rounds * len(models) * len(batch_sizes), desc="CSR vs dense latency",
               disable=not progress, leave=False)
    ms = best_of_rounds(models, batch_sizes, rounds, bar, timer=timer, input_shape=input_shape, threads=threads,
                        min_run_time=min_run_time)
    bar.close()
    rows = []
    for b in batch_sizes:
        for s in sorted(sparsities):
            d, z, c = ms["dense", b], ms[("zeros", s), b], ms[("csr", s), b]
            rows.append((s, b, d, z, c, d / z, d / c))
    rows.sort(key=lambda r: (r[1], r[0]))
    return Table(["sparsity", "batch", "dense ms", "zeros ms", "csr ms", "zeros ×", "csr ×"], rows,
                 title="Latency: dense vs dense-with-zeros vs CSR",
                 formats={"sparsity": ".0%", "dense ms": ".3f", "zeros ms": ".3f", "csr ms": ".3f",
                          "zeros ×": ".2f", "csr ×": ".2f"},
                 note=f"best of {rounds} interleaved medians (torch.utils.benchmark), {_threads(threads)} "
                      f"thread(s), this machine; × = dense ms / ms")


def slim_sweep(model: nn.Module, ratios: Sequence[float], batch_sizes: Sequence[int], *, input_shape=None,
               criterion: str = "l1", threads: int | None = None, min_run_time: float = 0.2, rounds: int = 1,
               progress: bool = True, timer: Callable = latency) -> Table:
    """For each unit ratio r: `prune_structured(model, r, criterion)`, its FLOPs × = dense FLOPs / slim FLOPs and,
    per batch size, speedup × = dense ms / slim ms. One row per (ratio, batch size).

    Each time is the best of `rounds` interleaved medians (`course.timing.best_of_rounds`, timed with `timer`).
    """
    ratios = arguments.each(ratios, "ratio", arguments.ratio)
    batch_sizes = _batch_sizes(batch_sizes)
    rounds = arguments.integer(rounds, "rounds", low=1)
    dense_flops = count_flops(model, input_shape).dense
    models = {"dense": model} | {r: prune_structured(model, r, criterion=criterion) for r in ratios}
    bar = tqdm(total=rounds * len(models) * len(batch_sizes), desc="slim vs dense latency",
               disable=not progress, leave=False)
    ms = best_of_rounds(models, batch_sizes, rounds, bar, timer=timer, input_shape=input_shape, threads=threads,
                        min_run_time=min_run_time)
    bar.close()
    rows = []
    for r in ratios:
        flops = count_flops(models[r], input_shape).dense
        params = count_params(models[r]).total
        for b in batch_sizes:
            rows.append((r, b, params, flops, dense_flops / flops, ms["dense", b], ms[r, b], ms["dense", b] / ms[r, b]))
    rows.sort(key=lambda row: (row[1], row[0]))
    return Table(["ratio", "batch", "params", "FLOPs", "FLOPs ×", "dense ms", "slim ms", "speedup ×"], rows,
                 title="Structured pruning: FLOP reduction vs measured speedup",
                 formats={"ratio": ".0%", "params": "count", "FLOPs": "count", "FLOPs ×": ".2f", "dense ms": ".3f",
                          "slim ms": ".3f", "speedup ×": ".2f"},
                 note=f"FLOPs per image (torch.utils.flop_counter); latency: best of {rounds} interleaved medians, "
                      f"{_threads(threads)} thread(s), this machine")


def break_even(sparsities: Sequence[float], speedups: Sequence[float]) -> float | None:
    """The sparsity from which on the speedup stays >= 1, with log(speedup) linear between measured points.

    Sorted by sparsity: the first sparsity if every speedup is >= 1; None if the last one is < 1; otherwise
    s_i + (s_j - s_i) * (0 - log u_i) / (log u_j - log u_i) between the last point i below 1 and the next j.
    """
    pts = sorted(zip((float(s) for s in sparsities), (float(u) for u in speedups)))
    if not pts or len(pts) != len(sparsities) or len(sparsities) != len(speedups):
        raise ValueError(f"give as many speedups as sparsities (at least one): got {len(sparsities)} sparsities "
                         f"and {len(speedups)} speedups")
    if any(not u > 0 or math.isinf(u) for _, u in pts):
        raise ValueError(f"speedups must be finite and > 0 (dense time / sparse time), got {[u for _, u in pts]}")
    below = [i for i, (_, u) in enumerate(pts) if u < 1.0]
    if not below:
        return pts[0][0]
    i = below[-1]
    if i == len(pts) - 1:
        return None
    (s_i, u_i), (s_j, u_j) = pts[i], pts[i + 1]
    return s_i + (s_j - s_i) * (-math.log(u_i)) / (math.log(u_j) - math.log(u_i))
