"""What pruning buys, measured: parameters, bytes on disk, FLOPs and latency, with torch's own tools.

`report` puts them side by side in one report card.
Introduced in 00_setup_and_baselines
"""
from __future__ import annotations

import copy
import numbers
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn
from torch.utils import benchmark
from torch.utils.flop_counter import FlopCounterMode

from course.export import FORMATS, gzip_bytes, to_bytes
from course.pruning.masks import prunable_layers
from course.table import Table
from course.train import eval_mode, evaluate

__all__ = ["ParamCount", "count_params", "size_bytes", "size_table", "FlopCount", "count_flops",
           "LatencyResult", "latency", "ReportCard", "report"]


class ParamCount(Table):
    """Parameters per layer: total, nonzero and density = nonzero / total; `.total`, `.nonzero` overall."""

    def __init__(self, rows: list[tuple[str, int, int]]):
        self.total = sum(r[1] for r in rows)
        self.nonzero = sum(r[2] for r in rows)
        self.layers = {r[0]: (r[1], r[2]) for r in rows}
        table_rows = [(n, t, z, z / t if t else 1.0) for n, t, z in rows]
        table_rows.append(("total", self.total, self.nonzero, self.density))
        super().__init__(["layer", "total", "nonzero", "density"], table_rows,
                         title="Parameters", formats={"density": ".1%"})

    @property
    def density(self) -> float:
        """nonzero / total."""
        return self.nonzero / self.total if self.total else 1.0

    @property
    def sparsity(self) -> float:
        """1 - nonzero / total."""
        return 1.0 - self.density


def count_params(model: nn.Module) -> ParamCount:
    """Count parameters per layer (total = numel, nonzero = count of w != 0); buffers such as masks are not counted."""
    rows = []
    for name, module in model.named_modules():
        params = list(module.parameters(recurse=False))
        if params:
            rows.append((name or type(model).__name__, sum(p.numel() for p in params),
                         sum(int((p != 0).sum()) for p in params)))
    return ParamCount(rows)


def size_bytes(model: nn.Module, fmt: str = "dense", *, compressed: bool = False) -> int:
    """Bytes of `model` stored in form `fmt` (see `course.export.FORMATS`): len(torch.save bytes), or len(gzip(them)).

    The bytes are exactly what `course.export.save_pruned(model, path, fmt)` writes, so this is the file's size.
    gzip uses level 9 and mtime=0 (deterministic).
    """
    data = to_bytes(model, fmt)
    return len(gzip_bytes(data)) if compressed else len(data)


def size_table(model: nn.Module) -> Table:
    """Every storage form's size in bytes, raw and gzip'd, with ratio = dense raw bytes / this form's bytes."""
    rows = []
    dense = size_bytes(model, "dense")
    for fmt in FORMATS:
        data = to_bytes(model, fmt)
        gz = len(gzip_bytes(data))
        rows.append((fmt, len(data), gz, dense / len(data), dense / gz))
    return Table(["format", "bytes", "gzip bytes", "ratio", "gzip ratio"], rows, title="Storage size",
                 formats={"bytes": "bytes", "gzip bytes": "bytes", "ratio": ".2f", "gzip ratio": ".2f"},
                 note="ratio = dense bytes / bytes; bitmask_fp16 is lossy (values rounded to fp16)")


def _input(model: nn.Module, input_shape, batch_size: int) -> torch.Tensor:
    """A random input (batch_size, *input_shape) on the model's device; input_shape defaults to `model.in_shape`."""
    if input_shape is None:
        input_shape = getattr(model, "in_shape", None)
        if input_shape is None:
            raise ValueError("input_shape is required (e.g. (1, 28, 28)) for a model without `.in_shape`")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    first = next(iter(model.parameters()), None) if isinstance(model, nn.Module) else None
    dev = first.device if first is not None else torch.device("cpu")
    return torch.randn(batch_size, *input_shape, generator=torch.Generator().manual_seed(0)).to(dev)


class FlopCount(Table):
    """FLOPs per layer; `.dense`, `.effective` (FLOPs) and `.macs`, `.effective_macs` (= FLOPs / 2)."""

    def __init__(self, rows: list[tuple[str, int, float, float]], batch_size: int):
        self.dense = sum(r[1] for r in rows)
        self.effective = sum(r[3] for r in rows)
        self.batch_size = batch_size
        self.layers = {r[0]: {"dense": r[1], "density": r[2], "effective": r[3]} for r in rows}
        super().__init__(["layer", "dense FLOPs", "density", "effective FLOPs"],
                         rows + [("total", self.dense, self.effective / self.dense if self.dense else 1.0,
                                  self.effective)],
                         title=f"FLOPs per forward pass (batch {batch_size})",
                         formats={"dense FLOPs": "count", "density": ".1%", "effective FLOPs": "count"},
                         note="1 FLOP = one multiply or one add; 1 MAC = 2 FLOPs")

    @property
    def macs(self) -> int:
        """Dense multiply-accumulates = dense FLOPs / 2."""
        return self.dense // 2

    @property
    def effective_macs(self) -> float:
        """MACs that touch a nonzero weight = effective FLOPs / 2."""
        return self.effective / 2


def count_flops(model: nn.Module, input_shape=None, *, batch_size: int = 1) -> FlopCount:
    """FLOPs of one forward pass via `torch.utils.flop_counter.FlopCounterMode` (1 MAC = 2 FLOPs).

    FlopCounterMode counts matmuls and convolutions (Linear: 2·in·out per sample; Conv2d: 2·C_in·k_h·k_w
    per output element); elementwise ops (bias, ReLU, BatchNorm, pooling) count 0. Effective FLOPs of a
    prunable layer = its dense FLOPs x its weight density (nonzero / numel); other ops are unchanged.
    """
    x = _input(model, input_shape, batch_size)
    counter = FlopCounterMode(display=False)
    with eval_mode(model), torch.no_grad(), counter:
        model(x)
    counts = counter.get_flop_counts()
    root = type(model).__name__
    rows, layer_total = [], 0
    for name, module in prunable_layers(model):
        dense = int(sum(counts.get(f"{root}.{name}", {}).values()))
        w = module.weight
        density = float((w != 0).sum()) / w.numel()
        rows.append((name, dense, density, dense * density))
        layer_total += dense
    other = counter.get_total_flops() - layer_total
    if other:
        rows.append(("other ops", other, 1.0, float(other)))
    return FlopCount(rows, batch_size)


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
            input_shape=None, threads: int | None = None, min_run_time: float = 0.5) -> LatencyResult:
    """Time `model(x)` for x of shape (batch_size, *input_shape) with `torch.utils.benchmark.Timer`.

    Uses `blocked_autorange(min_run_time)` with a fixed thread count (default `torch.get_num_threads()`),
    in eval mode under `torch.inference_mode()`; the model's train/eval flags are restored afterwards.
    """
    if not callable(model):
        raise TypeError(f"model must be an nn.Module or a callable taking one tensor, got {type(model).__name__}")
    threads = torch.get_num_threads() if threads is None else int(threads)
    if threads < 1:
        raise ValueError(f"threads must be >= 1, got {threads}")
    x = _input(model, input_shape, batch_size)

    def forward() -> None:
        with torch.inference_mode():
            model(x)

    with eval_mode(model):
        forward()                                             # warm-up (allocations, lazy init)
        timer = benchmark.Timer(stmt="forward()", globals={"forward": forward}, num_threads=threads)
        m = timer.blocked_autorange(min_run_time=min_run_time)
    return LatencyResult(median_ms=m.median * 1e3, iqr_ms=m.iqr * 1e3, batch_size=batch_size,
                         threads=threads, runs=len(m.times))



def check_rounds(rounds) -> int:
    """`rounds` as an int >= 1, or ValueError naming the valid range."""
    if isinstance(rounds, bool) or not isinstance(rounds, numbers.Integral) or rounds < 1:
        raise ValueError(f"rounds must be an integer >= 1, got {rounds!r}")
    return int(rounds)


def _fresh_copy(model):
    """A deep copy of an nn.Module (new memory), or the model itself when it cannot be copied (CSR tensors)."""
    if not isinstance(model, nn.Module):
        return model
    try:
        return copy.deepcopy(model)
    except (RuntimeError, NotImplementedError):     # sparse CSR storage, or a non-leaf weight of torch prune
        return model


def fastest_rounds(models: dict, batch_sizes, rounds: int, *, bar=None, **timing) -> dict:
    """{(name, batch): LatencyResult}: each model's fastest of `rounds` rounds of `latency(...)`.

    Every round times a fresh copy of every model (those that can be deep-copied), one after the other. Interleaving
    exposes the models to the same background load; fresh copies get new memory placement (two copies of one model
    can differ in speed through cache and TLB effects alone). The fastest round is the least disturbed one:
    interference only adds time. `timing` goes to `latency` (input_shape, threads, min_run_time).
    """
    best: dict = {}
    for _ in range(check_rounds(rounds)):
        for name, model in models.items():
            fresh = _fresh_copy(model)
            for b in batch_sizes:
                result = latency(fresh, b, **timing)
                if (name, b) not in best or result.median_ms < best[name, b].median_ms:
                    best[name, b] = result
                if bar is not None:
                    bar.update(1)
    return best


class ReportCard(Table):
    """One row per model; `.rows_by_name[name]` gives a row as a dict."""

    @property
    def rows_by_name(self) -> dict[str, dict]:
        return {row["model"]: row for row in self}


#: Lossless storage forms that `report` picks the smallest of (bitmask_fp16 changes the weights, so it is left out).
LOSSLESS = ("dense", "csr", "bitmask_fp32")


def report(models: dict[str, nn.Module], *, reference: str | None = None, loader=None, input_shape=None,
           batch_size: int = 1, threads: int | None = None, min_run_time: float = 0.5, rounds: int = 1,
           progress: bool = True) -> ReportCard:
    """A report card: accuracy, params, size, FLOPs, latency per model, and ratios against `reference`.

    stored = min over lossless forms (dense, csr, bitmask_fp32) of gzip'd bytes; size x = ref stored / stored;
    FLOPs x = ref effective FLOPs / effective FLOPs; speedup = ref median latency / median latency.
    `reference` defaults to the first model. Accuracy needs `loader` (else it is left blank).

    Latency is each model's fastest of `rounds` rounds (`fastest_rounds`): every round times a fresh copy of every
    model in turn, so background load and memory placement do not decide a close comparison at batch 1.
    """
    from tqdm.auto import tqdm

    if not isinstance(models, dict) or not models:
        raise TypeError("models must be a non-empty dict name -> nn.Module")
    reference = next(iter(models)) if reference is None else reference
    if reference not in models:
        raise ValueError(f"reference {reference!r} is not one of the models {list(models)}")
    rounds = check_rounds(rounds)
    bar = tqdm(total=len(models) * (1 + rounds), desc="report card", disable=not progress, leave=False)
    measured = {}
    for name, model in models.items():
        acc = None
        if loader is not None:
            acc = evaluate(model, loader)
        params = count_params(model)
        stored = min((size_bytes(model, f, compressed=True), f) for f in LOSSLESS)
        flops = count_flops(model, input_shape, batch_size=batch_size)
        measured[name] = [acc, params, size_bytes(model, "dense"), stored, flops, None]
        bar.update(1)
    fastest = fastest_rounds(models, [batch_size], rounds, bar=bar, input_shape=input_shape, threads=threads,
                             min_run_time=min_run_time)
    for name in models:
        measured[name][5] = fastest[name, batch_size]
    bar.close()
    ref = measured[reference]
    rows = []
    for name, (acc, params, dense, (stored, form), flops, lat) in measured.items():
        rows.append((name, acc, params.total, params.nonzero, dense, stored, form, flops.dense,
                     flops.effective, lat.median_ms, lat.iqr_ms, ref[3][0] / stored,
                     ref[4].effective / flops.effective, ref[5].median_ms / lat.median_ms))
    columns = ["model", "accuracy", "params", "nonzero", "dense size", "stored (gzip)", "stored form",
               "FLOPs", "eff. FLOPs", "latency ms", "IQR ms", "size ×", "FLOPs ×", "speedup ×"]
    formats = {"accuracy": ".2%", "dense size": "bytes", "stored (gzip)": "bytes", "FLOPs": "count",
               "eff. FLOPs": "count", "latency ms": ".3f", "IQR ms": ".3f", "size ×": ".2f", "FLOPs ×": ".2f",
               "speedup ×": ".2f"}
    threads = torch.get_num_threads() if threads is None else threads
    note = (f"ratios against {reference!r}; latency: batch {batch_size}, {threads} thread(s), this machine; "
            f"stored = smallest lossless form, gzip'd")
    return ReportCard(columns, rows, title="Report card", formats=formats, note=note)
