"""How long one explorer update takes: the callback a slider move triggers, timed end to end.

    .venv/bin/python benchmarks/bench_widgets.py [--models lenet300,lenet5] [--moves 20]

For each widget and setting, a fresh explorer is built, its criterion/scope/granularity are chosen (so scoring
happens before timing), one warm-up move is made, then `--moves` slider moves across sparsities 0.05..0.95 in a
seeded random order are each timed with time.perf_counter around `ui.slider.value = s` (which runs the observer:
prune, measure, redraw, render the PNG). Reported: median and IQR in ms. The first use of a gradient criterion
(one backward pass over the held-out batch) is timed separately. Results go to benchmarks/results/widgets.md.
Not a unit test: numbers depend on the machine and on what else runs on it (the load average is recorded).
"""
from __future__ import annotations

import argparse
import os
import platform
import random
import statistics
import sys
import time
from pathlib import Path

import torch

import course
from course.data import held_out_batch
from course.files import atomic_write_bytes
from course import train_or_load
from course.widgets import scope_explorer, sparsity_explorer

RESULTS = Path(__file__).resolve().parent / "results" / "widgets.md"
SHAPE = (1, 28, 28)
BATCH = 1000
# (widget, criterion, scope, granularity)
SETTINGS = [
    ("sparsity_explorer", "magnitude", "local", "weights"),
    ("sparsity_explorer", "magnitude", "global", "weights"),
    ("sparsity_explorer", "taylor", "global", "weights"),
    ("sparsity_explorer", "magnitude", "local", "units"),
    ("scope_explorer", "magnitude", "local+global", "weights"),
]


def quartiles(xs: list[float]) -> tuple[float, float, float]:
    """(q1, median, q3) with the 'inclusive' method."""
    q1, q2, q3 = statistics.quantiles(xs, n=4, method="inclusive")
    return q1, q2, q3


def build(widget: str, model, X, y, criterion: str, scope: str, granularity: str, threads: int | None):
    """A fresh explorer set to this criterion/scope/granularity (scores computed here, before any timing)."""
    if widget == "scope_explorer":
        ui = scope_explorer(model, X, y, input_shape=SHAPE)
        ui.view.engine.threads = threads
        ui.criterion.value = criterion
        return ui
    ui = sparsity_explorer(model, X, y, input_shape=SHAPE)
    ui.view.engine.threads = threads
    ui.granularity.value = granularity
    ui.criterion.value = criterion
    ui.scope.value = scope
    return ui


def time_moves(ui, moves: int, seed: int = 0) -> tuple[list[float], list[float]]:
    """(wall, CPU) seconds per slider move, `moves` distinct settings in 0.05..0.95 in a seeded random order.

    CPU = time.process_time (this process's CPU time, all threads): on a shared machine the wall time also
    counts the time other jobs held the CPU; with 1 thread, CPU time is about the wall time on an idle core.
    """
    values = [round(0.05 + 0.9 * i / (moves - 1), 3) for i in range(moves)]
    random.Random(seed).shuffle(values)
    ui.slider.value = 0.42                                     # warm-up move, not timed
    wall, cpu = [], []
    for v in values:
        t0, c0 = time.perf_counter(), time.process_time()
        ui.slider.value = v
        wall.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    return wall, cpu


def first_score_ms(model, X, y, criterion: str) -> float:
    """Time of the first move to a gradient criterion: one backward pass over the batch, then an update."""
    ui = sparsity_explorer(model, X, y, input_shape=SHAPE)
    t0 = time.perf_counter()
    ui.criterion.value = criterion
    return (time.perf_counter() - t0) * 1e3


def breakdown(model, X, y, moves: int) -> dict[str, float]:
    """Median ms of the parts of one update (magnitude, local, weights): engine, figure update, PNG render."""
    ui = sparsity_explorer(model, X, y, input_shape=SHAPE)
    view, parts = ui.view, {"engine.run": [], "figure.update": [], "png": []}
    for i in range(moves):
        s = 0.05 + 0.9 * i / (moves - 1)
        t0 = time.perf_counter()
        result = view.engine.run(s)
        t1 = time.perf_counter()
        view.figure.update(result)
        t2 = time.perf_counter()
        view.figure.png()
        t3 = time.perf_counter()
        for key, dt in zip(parts, (t1 - t0, t2 - t1, t3 - t2)):
            parts[key].append(dt)
    return {k: statistics.median(v) * 1e3 for k, v in parts.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="lenet300,lenet5", help="comma-separated model names (MNIST baselines)")
    parser.add_argument("--moves", type=int, default=20, help="timed slider moves per setting (>= 4)")
    args = parser.parse_args(argv)
    if args.moves < 4:
        parser.error("--moves must be at least 4 (quartiles need a few points)")
    info = course.setup(seed=0)
    X, y = held_out_batch("mnist", BATCH)
    process_threads = torch.get_num_threads()
    rows, extras = [], []
    for name in args.models.split(","):
        model, _ = train_or_load(name, "mnist", progress=True)
        for i, (widget, criterion, scope, granularity) in enumerate(SETTINGS):
            # the process thread count only for the first sparsity setting and the scope explorer
            for threads in (1, None) if i == 0 or widget == "scope_explorer" else (1,):
                ui = build(widget, model, X, y, criterion, "global" if scope == "local+global" else scope,
                           granularity, threads)
                wall, cpu = time_moves(ui, args.moves)
                q1, med, q3 = quartiles(wall)
                label = "1" if threads == 1 else f"{process_threads} (process)"
                row = (widget, name, criterion, scope, granularity, label, med * 1e3, (q3 - q1) * 1e3,
                       statistics.median(cpu) * 1e3)
                rows.append(row)
                print(f"{widget:18} {name:9} {criterion:9} {scope:12} {granularity:8} threads {label:12} "
                      f"median {row[6]:7.1f} ms  IQR {row[7]:6.1f} ms  CPU {row[8]:7.1f} ms", flush=True)
        parts = breakdown(model, X, y, args.moves)
        extras.append(f"- {name}, one update (magnitude, local, weights, 1 thread), median of {args.moves}: "
                      + ", ".join(f"{k} {v:.1f} ms" for k, v in parts.items()))
        for criterion in ("gradient", "taylor"):
            extras.append(f"- {name}, first switch to `{criterion}` (scores computed once, then one update): "
                          f"{first_score_ms(model, X, y, criterion):.0f} ms")
    load = " / ".join(f"{x:.1f}" for x in os.getloadavg())
    lines = [
        "# Explorer update times",
        "",
        "One update = the callback a slider move triggers (prune a working copy from cached scores, measure accuracy "
        f"on {BATCH:,} held-out MNIST images, size and FLOPs, redraw in place, render the PNG), timed end to end with "
        f"`time.perf_counter` over {args.moves} moves across sparsities 0.05-0.95 after one warm-up move.",
        "",
        "Reproduce: `.venv/bin/python benchmarks/bench_widgets.py` (options: `--models`, `--moves`).",
        "",
        f"Machine: {platform.machine()}, {os.cpu_count()} CPUs, torch {torch.__version__}, Python "
        f"{platform.python_version()}, process threads {process_threads}, load average during the run "
        f"{load} (1/5/15 min; other jobs shared the CPU). Date {time.strftime('%Y-%m-%d')}.",
        "",
        "| widget | model | criterion | scope | granularity | torch threads | median ms | IQR ms | median CPU ms |",
        "|---|---|---|---|---|---|---:|---:|---:|",
        *[f"| {w} | {m} | {c} | {s} | {g} | {t} | {med:.1f} | {iqr:.1f} | {cpu:.1f} |"
          for w, m, c, s, g, t, med, iqr, cpu in rows],
        "",
        "Median ms and IQR are wall-clock times (what the learner waits). Median CPU ms is this process's CPU time "
        "per update (`time.process_time`, all threads): with 1 thread it is about what an update takes on an idle "
        "core; the gap to the wall time is time other jobs held the CPU.",
        "",
        "Threads: the explorers run each update on 1 torch thread by default (`PruningEngine(threads=1)`); "
        f"the '{process_threads} (process)' rows use the notebook's setting from `course.setup`. On a busy "
        "2-core machine two OpenMP threads wait for each other, which is why the default is 1.",
        "",
        *extras,
        "",
    ]
    atomic_write_bytes(RESULTS, "\n".join(lines).encode())
    print(f"wrote {RESULTS} (setup: {info})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
