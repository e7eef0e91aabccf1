"""Shared plumbing for the benchmark scripts: arguments, baselines, loaders, interleaved timing, result files.

Every script writes three files per result under benchmarks/results/ (or `--out`): NAME.md (the table as
markdown, with the machine, thread count and load average), NAME.json (the raw rows, for run_all.py's summary)
and NAME.png (a small plot). Files are written atomically, so a killed run never leaves half a result.
"""
from __future__ import annotations

import argparse
import ctypes
import ctypes.util
import datetime as dt
import io
import json
import math
import os
import platform
import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from course import config
from course.checkpoints import checkpoint_key, find_checkpoint, resolve_recipe, train_or_load
from course.data import locate, make_loaders
from course.files import atomic_write_bytes
from course.timing import LatencyResult, timed_rounds
from course.models import build_model
from course.table import Table, fmt_bytes, fmt_count
from course import train

RESULTS_DIR = Path(__file__).resolve().parent / "results"
QUICK_DIR = Path(tempfile.gettempdir()) / "course-bench-quick"
#: What a dataset is called in tables (MNIST here is the shipped real 10k subset unless full MNIST is on disk).
DATASET_LABELS = {"fashion-mnist": "Fashion-MNIST (full 60k/10k)", "mnist": "MNIST"}


# --------------------------------------------------------------------------- arguments and set-up
def parser(description: str) -> argparse.ArgumentParser:
    """The arguments every script takes: --quick, --threads, --out, --wait."""
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--quick", action="store_true",
                   help="smoke run: tiny data, few points, fresh briefly-trained models; writes to a temp folder")
    p.add_argument("--threads", type=int, default=1,
                   help="torch threads (default 1: on a shared 2-core machine 2 threads collapse under contention)")
    p.add_argument("--out", type=Path, default=None, help="results folder (default benchmarks/results/)")
    p.add_argument("--wait", type=float, default=1800.0,
                   help="seconds to wait for a shipped dense baseline that is still being trained")
    return p


def only(parser: argparse.ArgumentParser, value: str, known: Sequence[str]) -> list[str]:
    """The parts named in `--only` (a comma-separated subset of `known`); a parser error names the choices."""
    parts = [x.strip() for x in value.split(",") if x.strip()]
    if not parts or set(parts) - set(known):
        parser.error(f"--only takes a comma-separated subset of {list(known)}, got {value!r}")
    return parts


def steady_malloc() -> bool:
    """Ask glibc malloc to keep freed memory (no mmap below 32 MB, no trimming); True if it took effect.

    By default glibc serves large blocks (a batch-256 activation is 6-13 MB) with fresh mmap'd pages, and whether
    it does depends on what the process freed before: the same dense VGG forward measured 28 ms or 81 ms in one
    session, the difference being page faults. With this, every model reuses its buffers and timings measure
    the computation.
    """
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        return bool(libc.mallopt(-3, 32 << 20)) and bool(libc.mallopt(-1, 1 << 30))   # M_MMAP_THRESHOLD, M_TRIM_
    except (OSError, AttributeError):                                                 # not glibc
        return False


def setup(args: argparse.Namespace) -> Path:
    """Seed, fix the thread count, steady the allocator, and return the output folder (a temp one in quick mode)."""
    if args.threads < 1:
        raise ValueError(f"--threads must be >= 1, got {args.threads}")
    args.steady_malloc = steady_malloc()
    config.setup(seed=0, threads=args.threads)
    out = args.out if args.out is not None else (QUICK_DIR if args.quick else RESULTS_DIR)
    out.mkdir(parents=True, exist_ok=True)
    return out


def dataset_label(name: str) -> str:
    """A dataset's name with the variant actually on disk, e.g. 'MNIST-10k (real subset)'."""
    loc = locate(name)
    if name == "mnist" and loc is not None and loc.variant == "10k-subset":
        return "MNIST-10k (real subset, offline)"
    return DATASET_LABELS.get(name, name)


def loaders(name: str, *, quick: bool = False, batch_size: int = 128, seed: int = 0):
    """(train, test) loaders of the copy on disk: the whole dataset, or 1,000 / 500 images in quick mode."""
    sizes = {"train_size": 1000, "test_size": 500} if quick else {}
    if not quick:
        from course.data import load_dataset
        sizes = {f"{s}_size": len(load_dataset(name, s, download=False)) for s in ("train", "test")}
    return make_loaders(name, batch_size=batch_size, test_batch_size=2000, download=False, seed=seed, **sizes)


def baseline(model_name: str, dataset: str, *, seed: int = 0, wait: float = 0.0, quick_loader=None
             ) -> tuple[nn.Module, dict]:
    """The dense baseline (model in eval mode, info). Seed 0 is the shipped one: wait for it, never train it.

    Seeds > 0 are extra baselines (the shipped recipe with another seed) trained once by `train_or_load` into
    data/checkpoints/local/. `quick_loader` (smoke runs): a fresh model trained one epoch on it instead.
    """
    if quick_loader is not None:
        config.seed_everything(seed)
        model = build_model(model_name, tuple(quick_loader.dataset.images.shape[1:]))
        train(model, quick_loader, epochs=1, lr=0.05, momentum=0.9, progress=False, seed=seed)
        return model.eval(), {"source": "quick (1 epoch on a small subset)", "test_accuracy": None}
    recipe = resolve_recipe(model_name, {"seed": seed}, dataset)
    if seed == 0:
        key = checkpoint_key(model_name, dataset, locate(dataset).variant, recipe)
        deadline = time.monotonic() + wait
        while find_checkpoint(key, local=False) is None:
            if time.monotonic() > deadline:
                raise RuntimeError(f"the shipped baseline {key} is not in course/shipped/checkpoints/ yet; run "
                                   f"`make baselines` (or wait for it) and rerun")
            print(f"waiting for the shipped baseline {key} ...", flush=True)
            time.sleep(30)
    return train_or_load(model_name, dataset, recipe=None if seed == 0 else {"seed": seed}, progress=False)


# --------------------------------------------------------------------------- timing
def _summary(values: list[float]) -> dict[str, Any]:
    """Median of per-round values, their IQR, the number of rounds and the values themselves (ms)."""
    return {"median_ms": statistics.median(values), "iqr_ms": iqr(values), "rounds": len(values), "values": values}


def interleaved_latency(models: dict[str, nn.Module], batch_size: int, *, rounds: int = 9,
                        min_run_time: float = 0.2, threads: int | None = None) -> dict[str, dict[str, Any]]:
    """Time each model in turn with the course's one timer (`course.timing.timed_rounds`: a torch.utils.benchmark
    median per model per round, in ABBA order so that load drift hits every model alike), `rounds` rounds; per
    model the median of the per-round medians and their IQR (q75 - q25), in ms."""
    results = timed_rounds(models, [batch_size], rounds, alternate=True, fresh=False, threads=threads,
                           min_run_time=min_run_time)
    return {name: _summary([r.median_ms for r in results[name, batch_size]]) for name in models}


def _time_stmt(fn: Callable[[], Any], batch_size: int, *, threads: int = 1, min_run_time: float = 0.2) -> LatencyResult:
    """A `course.timing` timer for a callable without arguments (`batch_size` is only recorded)."""
    from torch.utils import benchmark

    timer = benchmark.Timer(stmt="fn()", globals={"fn": fn}, num_threads=threads)
    m = timer.blocked_autorange(min_run_time=min_run_time)
    return LatencyResult(m.median * 1e3, m.iqr * 1e3, batch_size, threads, len(m.times))


def interleaved_timer(stmts: dict[str, Callable[[], Any]], *, rounds: int = 9, min_run_time: float = 0.2,
                      threads: int = 1) -> dict[str, dict[str, Any]]:
    """Like `interleaved_latency` for arbitrary callables, each timed with `torch.utils.benchmark.Timer`."""
    for fn in stmts.values():
        fn()                                                      # warm-up
    results = timed_rounds(stmts, [1], rounds, timer=_time_stmt, alternate=True, fresh=False, threads=threads,
                           min_run_time=min_run_time)
    return {name: _summary([r.median_ms for r in results[name, 1]]) for name in stmts}


def paired_ratio(a: dict[str, Any], b: dict[str, Any]) -> float:
    """Median over rounds of a_i / b_i for two results of one interleaved run (robust to load that drifts
    between rounds, since both sides of a pair were timed moments apart)."""
    return statistics.median(x / y for x, y in zip(a["values"], b["values"]))


def iqr(values: Sequence[float]) -> float:
    """Interquartile range q75 - q25 (inclusive quantiles); 0 for fewer than two values."""
    if len(values) < 2:
        return 0.0
    q = statistics.quantiles(values, n=4, method="inclusive")
    return q[2] - q[0]


def mean_std(values: Sequence[float]) -> tuple[float, float]:
    """(mean, sample standard deviation); std is 0 for a single value."""
    values = list(values)
    return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else 0.0)


# --------------------------------------------------------------------------- results
def machine() -> dict[str, Any]:
    """Facts that qualify every timing: CPU count, threads, load average, torch version, date."""
    load = os.getloadavg() if hasattr(os, "getloadavg") else (math.nan,) * 3
    return {"cpus": os.cpu_count(), "threads": torch.get_num_threads(), "load_avg_1m": round(load[0], 2),
            "torch": torch.__version__, "python": platform.python_version(),
            "date": dt.datetime.now().strftime("%Y-%m-%d %H:%M")}


def cell(value: Any, spec: str | None = None) -> str:
    """One markdown cell: None -> '–', spec a format spec, 'bytes', 'count' or 'pp' (a fraction as points)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if spec == "bytes":
        return fmt_bytes(value)
    if spec == "count":
        return fmt_count(value)
    if spec:
        return format(value, spec)
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def markdown(table: Table, formats: dict[str, str] | None = None) -> str:
    """`table` as a GitHub markdown table (title in bold above, note in italics below)."""
    formats = {**table.formats, **(formats or {})}
    head = "| " + " | ".join(table.columns) + " |\n|" + "|".join("---" for _ in table.columns) + "|\n"
    body = "".join("| " + " | ".join(cell(v, formats.get(c)).replace("|", "\\|") for c, v in zip(table.columns, r))
                   + " |\n" for r in table.rows)
    title = f"**{table.title}**\n\n" if table.title else ""
    note = f"\n_{table.note}_\n" if table.note else ""
    return title + head + body + note


def _jsonable(value: Any) -> Any:
    if isinstance(value, float) and (math.isnan(value) or math.isinf(value)):
        return None
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    return value


def write_result(out: Path, name: str, title: str, sections: Sequence[str], tables: dict[str, Table], *,
                 meta: dict[str, Any], figure=None, summary: list[dict] | None = None) -> list[Path]:
    """Write NAME.md (title, machine line, markdown `sections`), NAME.json (tables' raw rows, meta, `summary`)
    and NAME.png (`figure`, 80 dpi); returns the paths written."""
    meta = {**machine(), **meta}
    line = (f"_Measured {meta['date']} on this machine: {meta['cpus']} CPUs, {meta['threads']} torch thread(s), "
            f"load average {meta.get('load_start', '?')} → {meta['load_avg_1m']} (1 min) while running; "
            f"torch {meta['torch']}; glibc malloc told to keep freed memory: {meta.get('steady_malloc', False)}. "
            f"Other work shared the CPU, so timings are noisy._")
    text = f"# {title}\n\n{line}\n\n" + "\n\n".join(s.strip() for s in sections) + "\n"
    paths = [atomic_write_bytes(out / f"{name}.md", text.encode())]
    payload = {"name": name, "title": title, "meta": meta, "summary": summary or [],
               "tables": {k: {"title": t.title, "columns": t.columns, "rows": [list(r) for r in t.rows],
                              "note": t.note} for k, t in tables.items()}}
    paths.append(atomic_write_bytes(out / f"{name}.json", json.dumps(_jsonable(payload), indent=1).encode()))
    if figure is not None:
        buf = io.BytesIO()
        figure.savefig(buf, format="png", dpi=80, bbox_inches="tight")
        paths.append(atomic_write_bytes(out / f"{name}.png", buf.getvalue()))
        import matplotlib.pyplot as plt
        plt.close(figure)
    return paths


def start_meta(args: argparse.Namespace) -> dict[str, Any]:
    """The meta dict a script starts with: quick flag, threads and the load average at the start."""
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else math.nan
    return {"quick": bool(args.quick), "load_start": round(load, 2), "started": time.time(),
            "steady_malloc": getattr(args, "steady_malloc", False)}


def finish_meta(meta: dict[str, Any]) -> dict[str, Any]:
    """Add the script's wall time (s) to `meta`."""
    return {**meta, "wall_s": round(time.time() - meta.pop("started"), 1)}
