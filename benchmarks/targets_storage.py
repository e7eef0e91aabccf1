"""Target (c): the 95%-sparse LeNet-300-100 saves to a file >= 20x smaller than the dense state_dict and loads back
to identical outputs.

Every storage form of notebook 02 (`course.export.FORMATS` without the quantized forms of target (e)) is written
with `save_pruned`, optionally xz-compressed (`compress=True`), read back with `load_pruned` and compared with the
model it stores. A lossless fp32 form cannot reach 20x at 95% sparsity: the
kept values alone take 4 bytes × 5% = 1/20 of the dense weights. So the target form stores fp16 values: the model
is first rounded to fp16 (its accuracy is reported), and the file then holds that model exactly.
"""
from __future__ import annotations

import copy
import io
import tempfile
from pathlib import Path

import torch
from torch import nn

from course.export import FORMATS, load_pruned, save_pruned
from course.quantized_forms import QUANTIZED_FORMATS
from course.files import atomic_write_bytes
from course.pruning.masks import MASK
from course.table import Table
from course import evaluate

RATIO_TARGET = 20.0
COLUMNS = ["form", "xz", "stores", "bytes", "ratio", "max |Δ logit|", "identical", "status"]


def round_fp16(model: nn.Module) -> nn.Module:
    """A copy whose Linear/Conv2d weights are rounded to the nearest fp16 value (stored back as fp32)."""
    out = copy.deepcopy(model)
    with torch.no_grad():
        for m in out.modules():
            if isinstance(m, (nn.Linear, nn.Conv2d)):
                m.weight.copy_(m.weight.half().float())
                if hasattr(m, MASK):
                    m.weight.mul_(getattr(m, MASK))
    return out


def dense_file_bytes(model: nn.Module, folder: Path) -> int:
    """Length of `torch.save(model.state_dict())` written to a file in `folder` (the dense reference)."""
    buf = io.BytesIO()
    torch.save({k: v for k, v in model.state_dict().items() if not k.endswith(MASK)}, buf)
    return atomic_write_bytes(folder / "dense_state_dict.pt", buf.getvalue()).stat().st_size


def save_and_load(model: nn.Module, template: nn.Module, folder: Path, fmt: str, xz: bool,
                  original: nn.Module | None = None) -> tuple[int, nn.Module]:
    """Write `model` with `save_pruned` (xz-compressed when `xz`; `original`: the dense model, which the torch_prune
    form keeps), read it back with `load_pruned`."""
    path = save_pruned(model, folder / f"model_{fmt}.pt{'.xz' if xz else ''}", fmt, compress=xz, original=original)
    return path.stat().st_size, load_pruned(path, template)


@torch.no_grad()
def _max_diff(a: nn.Module, b: nn.Module, x: torch.Tensor) -> tuple[float, bool]:
    ya, yb = a.eval()(x), b.eval()(x)
    return float((ya - yb).abs().max()), bool(torch.equal(ya, yb))


def storage_table(dense: nn.Module, pruned: nn.Module, template: nn.Module, x: torch.Tensor, *, test_loader=None,
                  folder: Path | None = None) -> tuple[Table, dict]:
    """One row per (form, xz): file bytes, ratio = dense state_dict bytes / bytes, and whether loading into a
    fresh `template` gives outputs identical to the model the file stores (the fp32 pruned model; its fp16
    rounding for bitmask_fp16)."""
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) if folder is None else folder
        dense_bytes = dense_file_bytes(dense, folder)
        rounded = round_fp16(pruned)
        rows = []
        for fmt in (f for f in FORMATS if f not in QUANTIZED_FORMATS):
            stored = rounded if fmt == "bitmask_fp16" else pruned
            for xz in (False, True):
                size, loaded = save_and_load(stored, template, folder, fmt, xz, original=dense)
                diff, same = _max_diff(stored, loaded, x)
                ratio = dense_bytes / size
                ok = same and ratio >= RATIO_TARGET
                rows.append((fmt, xz, "fp16-rounded" if stored is rounded else "fp32 pruned", size, ratio, diff, same,
                             "PASS" if ok else "MISS"))
    extra = {"dense_bytes": dense_bytes}
    if test_loader is not None:
        extra["acc_fp32"], extra["acc_fp16"] = evaluate(pruned, test_loader), evaluate(rounded, test_loader)
    note = (f"ratio = dense state_dict file ({dense_bytes:,} bytes) / this file. identical: torch.equal of the logits "
            f"of {len(x)} test images, loaded vs stored model. PASS: identical and ratio ≥ {RATIO_TARGET:.0f}.")
    if "acc_fp32" in extra:
        note += (f" Test accuracy of the pruned model: {extra['acc_fp32']:.2%} in fp32, {extra['acc_fp16']:.2%} "
                 "with its weights rounded to fp16.")
    return Table(COLUMNS, rows, title="(c) LeNet-300-100 at 95% sparsity: file size and round trip",
                 formats={"bytes": "count", "ratio": ".1f", "max |Δ logit|": ".2e"}, note=note), extra
