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
from typing import Any

import torch
from torch import nn

from course import arguments
from course.export import FORMATS, exact_for, lossless_forms, to_bytes
from course.files import xz_bytes
from course.flops import FlopCount, count_flops
from course.inputs import batches, eval_mode, leading_size, model_device
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


def size_bytes(model: nn.Module, fmt: str = "dense", *, compressed: bool = False,
               original: nn.Module | None = None) -> int:
    """Bytes of `model` stored in form `fmt` (see `course.export.FORMATS`): len(torch.save bytes), or len(xz(them)).

    The bytes are exactly what `course.export.save_pruned(model, path, fmt, compress=compressed)` writes, so this is
    the file's size. xz: LZMA2 at preset 9 + extreme (deterministic). `original` (the dense model `model` was pruned
    from) is needed by the torch_prune form only, which keeps the original values of the pruned weights.
    """
    data = to_bytes(model, fmt, original=original)
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


def size_table(model: nn.Module, *, original: nn.Module | None = None) -> Table:
    """Every storage form's size in bytes, raw and xz'd, with ratio = dense raw bytes / this form's bytes.

    "exact" says whether the form gives back this model's weights exactly (`course.export.exact_for`); a form that
    cannot hold the model at all (a codebook for weights that are not shared), or torch_prune without `original`
    (the dense model `model` was pruned from, whose values torch prune keeps), shows no bytes, and the note says why.
    """
    rows, missing = [], []
    dense = size_bytes(model, "dense")
    for fmt in FORMATS:
        try:
            data = to_bytes(model, fmt, original=original)
        except ValueError:                                  # a codebook of unshared weights; torch_prune without original
            rows.append((fmt, False, None, None, None, None))
            missing.append(fmt)
            continue
        xz = len(xz_bytes(data))
        rows.append((fmt, exact_for(model, fmt), len(data), xz, dense / len(data), dense / xz))
    return Table(["format", "exact", "bytes", "xz bytes", "ratio", "xz ratio"], rows, title="Storage size",
                 formats={"bytes": "bytes", "xz bytes": "bytes", "ratio": ".2f", "xz ratio": ".2f"},
                 note="ratio = dense bytes / bytes; exact = gives back this model's weights exactly; a model's size "
                      "(stored_size) is the smallest exact form, raw; xz is the entropy-coding stage on top"
                      + ("; no torch_prune bytes: it keeps the original values of the pruned weights, pass "
                         "original=<the dense model this one was pruned from>" if "torch_prune" in missing else ""))


class ReportCard(Table):
    """One row per model; `.rows_by_name[name]` gives a row as a dict."""

    @property
    def rows_by_name(self) -> dict[str, dict]:
        return {row["model"]: row for row in self}


def report(models: dict[str, nn.Module], *, reference: str | None = None, loader=None, input_shape=None,
           batch_size: int = 1, threads: int | None = None, min_run_time: float = 0.5, rounds: int = 1,
           progress: bool = True, timer: Callable = latency, example_inputs: Any = None) -> ReportCard:
    """A report card: accuracy, params, size, FLOPs, latency per model, and ratios against `reference`.

    FLOPs and latency run the models on `example_inputs` (a tensor, tuple or dict, as the models take them: token
    ids too) or on a seeded random batch (batch_size, *input_shape) (`input_shape` defaults to `model.in_shape`).
    Latency times each model as deployed: a copy with the mask hooks removed (`course.timing.latency`).

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
        flops = count_flops(model, input_shape, example_inputs=example_inputs, batch_size=batch_size)
        measured[name] = [acc, params, size_bytes(model, "dense"), (stored, form), flops, None]
        bar.update(1)
    timing = {"example_inputs": example_inputs} if example_inputs is not None else {"input_shape": input_shape}
    batch_size = leading_size(example_inputs) if example_inputs is not None else batch_size
    fastest = fastest_rounds(models, [batch_size], rounds, timer=timer, bar=bar, threads=threads,
                             min_run_time=min_run_time, **timing)
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
