"""What pruning buys, measured: accuracy, parameters, bytes on disk, FLOPs and latency, with torch's own tools.

`report` puts them side by side in one report card. The size of a model is defined once, by `stored_size`: the
smallest file among the storage forms that give back that model's weights exactly (`course.export.lossless_forms`:
dense, CSR and bitmask + fp32 for any model; fp16, int8 or a codebook for a model whose weights lie on that grid),
in raw bytes, exactly what `save_pruned(model, path, form)` writes. The report card, the trade-offs, the widgets and
notebooks 07-09 all use it.
Latency comes from `course.timing`, the one timer.
Introduced in 00_setup_and_baselines
"""
from __future__ import annotations

import copy
from collections.abc import Callable, Iterable

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from course import arguments
from course.export import FORMATS, exact_for, lossless_forms, to_bytes
from course.files import xz_bytes
from course.inputs import batches, eval_mode, example_input, model_device
from course.pruning.masks import prunable_layers
from course.table import Table
from course.timing import fastest_rounds, latency

__all__ = ["evaluate", "ParamCount", "count_params", "size_bytes", "stored_size", "size_table", "FlopCount",
           "count_flops", "ReportCard", "report"]


@torch.no_grad()
def evaluate(model: nn.Module, loader: Iterable, device: str | torch.device | None = None) -> float:
    """Top-1 accuracy = correct / N over `loader` (or one (X, y) pair), in eval mode; the model's modes and device
    are left as they were. `device=None` evaluates where the model is; another device evaluates a copy moved there.
    """
    if device is not None and torch.device(device) != model_device(model):
        model = copy.deepcopy(model).to(device)
    dev = model_device(model)
    correct = total = 0
    with eval_mode(model):
        for x, y in batches(loader):                          # x: (N, C, H, W), y: (N,)
            x, y = x.to(dev), y.to(dev)
            correct += int((model(x).argmax(dim=1) == y).sum())
            total += y.numel()
    if total == 0:
        raise ValueError("the loader yielded no samples; cannot compute an accuracy")
    return correct / total


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
    """Bytes of `model` stored in form `fmt` (see `course.export.FORMATS`): len(torch.save bytes), or len(xz(them)).

    The bytes are exactly what `course.export.save_pruned(model, path, fmt, compress=compressed)` writes, so this is
    the file's size. xz: LZMA2 at preset 9 + extreme (deterministic).
    """
    data = to_bytes(model, fmt)
    return len(xz_bytes(data)) if compressed else len(data)


def stored_size(model: nn.Module) -> tuple[str, int]:
    """THE size of a model: (form, bytes) of its smallest lossless file, min over `lossless_forms(model)` of
    `size_bytes(model, form)`.

    Lossless for this model: the form gives back its weights exactly (dense, csr, bitmask_fp32 always; bitmask_fp16,
    bitmask_int8, bitmask_codebook when its weights lie on their grid, e.g. after `quantize`). Raw bytes, not
    compressed: exactly what `save_pruned(model, path, form)` writes. Ties go to the earlier form.
    """
    size, _, form = min((size_bytes(model, f), i, f) for i, f in enumerate(lossless_forms(model)))
    return form, size


def size_table(model: nn.Module) -> Table:
    """Every storage form's size in bytes, raw and xz'd, with ratio = dense raw bytes / this form's bytes.

    "exact" says whether the form gives back this model's weights exactly (`course.export.exact_for`); a form that
    cannot hold the model at all (a codebook for weights that are not shared) shows no bytes.
    """
    rows = []
    dense = size_bytes(model, "dense")
    for fmt in FORMATS:
        try:
            data = to_bytes(model, fmt)
        except ValueError:                                  # bitmask_codebook of a model that is not weight-shared
            rows.append((fmt, False, None, None, None, None))
            continue
        xz = len(xz_bytes(data))
        rows.append((fmt, exact_for(model, fmt), len(data), xz, dense / len(data), dense / xz))
    return Table(["format", "exact", "bytes", "xz bytes", "ratio", "xz ratio"], rows, title="Storage size",
                 formats={"bytes": "bytes", "xz bytes": "bytes", "ratio": ".2f", "xz ratio": ".2f"},
                 note="ratio = dense bytes / bytes; exact = gives back this model's weights exactly; a model's size "
                      "(stored_size) is the smallest exact form, raw; xz is the entropy-coding stage on top")


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
    x = example_input(model, input_shape, batch_size)
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


class ReportCard(Table):
    """One row per model; `.rows_by_name[name]` gives a row as a dict."""

    @property
    def rows_by_name(self) -> dict[str, dict]:
        return {row["model"]: row for row in self}


def report(models: dict[str, nn.Module], *, reference: str | None = None, loader=None, input_shape=None,
           batch_size: int = 1, threads: int | None = None, min_run_time: float = 0.5, rounds: int = 1,
           progress: bool = True, timer: Callable = latency) -> ReportCard:
    """A report card: accuracy, params, size, FLOPs, latency per model, and ratios against `reference`.

    stored = `stored_size` (the smallest lossless file, raw bytes); size x = ref stored / stored;
    FLOPs x = ref effective FLOPs / effective FLOPs; speedup = ref median latency / median latency.
    `reference` defaults to the first model. Accuracy needs `loader` (else it is left blank).

    Latency is each model's fastest of `rounds` rounds (`course.timing.fastest_rounds`, timed with `timer`): every
    round times a fresh copy of every model in turn, so background load and memory placement do not decide a close
    comparison at batch 1.
    """
    from tqdm.auto import tqdm

    if not isinstance(models, dict) or not models:
        raise TypeError("models must be a non-empty dict name -> nn.Module")
    reference = next(iter(models)) if reference is None else reference
    if reference not in models:
        raise ValueError(f"reference {reference!r} is not one of the models {list(models)}")
    rounds = arguments.integer(rounds, "rounds", low=1)
    bar = tqdm(total=len(models) * (1 + rounds), desc="report card", disable=not progress, leave=False)
    measured = {}
    for name, model in models.items():
        acc = None
        if loader is not None:
            acc = evaluate(model, loader)
        params = count_params(model)
        form, stored = stored_size(model)
        flops = count_flops(model, input_shape, batch_size=batch_size)
        measured[name] = [acc, params, size_bytes(model, "dense"), (stored, form), flops, None]
        bar.update(1)
    fastest = fastest_rounds(models, [batch_size], rounds, timer=timer, bar=bar, input_shape=input_shape,
                             threads=threads, min_run_time=min_run_time)
    for name in models:
        measured[name][5] = fastest[name, batch_size]
    bar.close()
    ref = measured[reference]
    rows = []
    for name, (acc, params, dense, (stored, form), flops, lat) in measured.items():
        rows.append((name, acc, params.total, params.nonzero, dense, stored, form, flops.dense,
                     flops.effective, lat.median_ms, lat.iqr_ms, ref[3][0] / stored,
                     ref[4].effective / flops.effective, ref[5].median_ms / lat.median_ms))
    columns = ["model", "accuracy", "params", "nonzero", "dense size", "stored", "stored form",
               "FLOPs", "eff. FLOPs", "latency ms", "IQR ms", "size ×", "FLOPs ×", "speedup ×"]
    formats = {"accuracy": ".2%", "dense size": "bytes", "stored": "bytes", "FLOPs": "count",
               "eff. FLOPs": "count", "latency ms": ".3f", "IQR ms": ".3f", "size ×": ".2f", "FLOPs ×": ".2f",
               "speedup ×": ".2f"}
    threads = torch.get_num_threads() if threads is None else threads
    note = (f"ratios against {reference!r}; latency: batch {batch_size}, {threads} thread(s), this machine; "
            f"stored = the smallest lossless file (stored_size)")
    return ReportCard(columns, rows, title="Report card", formats=formats, note=note)
