"""Checks for 02 · Unstructured pruning: the bytes of a bitmask + fp16 file and of a torch CSR tensor.

Reference solutions: the notebook's own, between `### BEGIN SOLUTION` and `### END SOLUTION` in
notebooks/src/02_unstructured.py; tests/notebook_solutions.py runs them against these checks.
"""
from __future__ import annotations

import math
import warnings

import torch

from course.checks._core import as_number, call, check, fail, isclose

__all__ = ["check_bitmask_fp16_bytes", "check_csr_bytes"]


def _torch_csr_bytes(weight: torch.Tensor) -> int:
    """What torch allocates for `weight.to_sparse_csr()`: crow_indices + col_indices + values, in bytes."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*[Ss]parse CSR tensor support is in beta.*")
        t = weight.to_sparse_csr()
    return sum(x.numel() * x.element_size() for x in (t.crow_indices(), t.col_indices(), t.values()))


def _cases() -> list[torch.Tensor]:
    """2-D fp32 weights: wide, tall (rows != cols catches rows/cols mix-ups), all zero, fully dense."""
    g = torch.Generator().manual_seed(8)
    wide = torch.randn(3, 7, generator=g)
    wide.view(-1)[torch.randperm(21, generator=g)[:15]] = 0.0          # 3 rows, nnz = 6
    tall = torch.randn(10, 4, generator=g)
    tall.view(-1)[torch.randperm(40, generator=g)[:31]] = 0.0          # 10 rows, nnz = 9
    return [wide, tall, torch.zeros(2, 5), torch.randn(4, 6, generator=g)]


@check("bytes of a CSR tensor")
def check_csr_bytes(fn) -> str:
    """fn(weight (rows, cols) fp32) -> bytes of `weight.to_sparse_csr()`: (rows + 1)·8 + nnz·8 + nnz·4
    (int64 row pointers, int64 column indices, fp32 values)."""
    for w in _cases():
        rows, cols = w.shape
        n, nnz = w.numel(), int((w != 0).sum())
        want = _torch_csr_bytes(w)
        if want != (rows + 1) * 8 + 12 * nnz:                           # the formula the feedback explains
            raise AssertionError(f"torch's CSR layout changed: {want} bytes for {tuple(w.shape)}, nnz {nnz}")
        got = as_number(call(fn, w, names=("weight",)), "The byte count")
        if got == want:
            continue
        where = f"For a weight of shape ({rows}, {cols}) with {nnz} nonzeros"
        expected = f"Expected {want} = ({rows}+1)·8 + {nnz}·8 + {nnz}·4."
        known = [
            ((rows + 1) * 4 + 8 * nnz, "you counted 4-byte (int32) indices. `to_sparse_csr` stores int64 indices, "
                                       "8 bytes each (the course's own CSR file casts them to int32 to save space)"),
            (rows * 8 + 12 * nnz, "the row-pointer array has rows + 1 entries (it starts at 0 and ends at nnz)"),
            ((cols + 1) * 8 + 12 * nnz, "CSR compresses rows: one row pointer per row, plus one. You used the number "
                                        "of columns"),
            ((rows + 1) * 8 + 24 * nnz, "you counted each nonzero twice: `weight.nonzero().numel()` is nnz × 2 for a "
                                        "2-D tensor (it returns (row, col) pairs). Use `(weight != 0).sum()`"),
            (20 * nnz, "that is COO (a row and a column index per nonzero, 8 + 8 + 4 bytes). CSR replaces the row "
                       "indices by rows + 1 row pointers"),
            ((rows + 1) * 8 + 12 * n, "you counted every entry, zeros included; CSR stores only the nonzeros"),
            (12 * nnz, "you forgot the row pointers: (rows + 1) int64 values"),
            ((rows + 1) * 8 + 8 * nnz, "you forgot the values: 4 bytes (fp32) per nonzero"),
            ((rows + 1) * 8 + 4 * nnz, "you forgot the column indices: one int64 (8 bytes) per nonzero"),
            (4 * n, "that is the dense size (4 bytes per entry); count what CSR stores instead"),
        ]
        for value, why in known:
            if isclose(got, value):
                fail(f"{where}, you answered {got:g} bytes: {why}. {expected}")
        if not got.is_integer():
            fail(f"{where}, you answered {got:g}: a byte count is a whole number. {expected}")
        fail(f"{where}, you answered {got:g} bytes. {expected}")
    return ("Correct: (rows + 1)·8 bytes of row pointers + 8 bytes of column index and 4 bytes of value per nonzero, "
            "exactly what torch allocates; an all-zero matrix still pays for its row pointers.")


@check("bitmask + fp16 bytes")
def check_bitmask_fp16_bytes(fn) -> str:
    """fn(weight) -> ceil(n / 8) + 2·nnz: one bit per position (packed, rounded up to whole bytes) + 2 bytes per nonzero."""
    g = torch.Generator().manual_seed(2)
    w1 = torch.randn(3, 7, generator=g)
    w1.view(-1)[torch.randperm(21, generator=g)[:14]] = 0.0            # n = 21, nnz = 7
    w2 = torch.randn(4, 2, 3, 3, generator=g)
    w2.view(-1)[torch.randperm(72, generator=g)[:52]] = 0.0            # n = 72, nnz = 20
    for w in (w1, w2, torch.zeros(2, 5), torch.randn(8, generator=g)):
        n, nnz = w.numel(), int((w != 0).sum())
        got = as_number(call(fn, w, names=("weight",)), "The byte count")
        want = math.ceil(n / 8) + 2 * nnz
        if got == want:
            continue
        where = f"For a weight of shape {tuple(w.shape)} with {n} entries, {nnz} of them nonzero"
        known = {
            n / 8 + 2 * nnz: "a partial byte still takes a whole byte: round the bitmask up, ceil(n / 8)",
            n // 8 + 2 * nnz: "a partial byte still takes a whole byte: round the bitmask up, ceil(n / 8), not n // 8",
            n + 2 * nnz: "you counted one byte per mask bit; 8 mask bits pack into one byte, ceil(n / 8)",
            math.ceil(n / 8) + 4 * nnz: "that is 4 bytes per nonzero value (fp32); fp16 takes 2 bytes. (If you counted "
                                        "nonzeros with `weight.nonzero().numel()`, note it counts nnz × ndim.)",
            math.ceil(n / 8) + 2 * n: "you stored every value; store only the nonzero ones (2·nnz bytes)",
            math.ceil(nnz / 8) + 2 * nnz: "the bitmask has one bit for every position, zero or not: ceil(n / 8), not ceil(nnz / 8)",
            2 * nnz: "you forgot the bitmask itself (ceil(n / 8) bytes)",
            math.ceil(n / 8): "you forgot the values (2 bytes per nonzero)",
        }
        for value, why in known.items():
            if isclose(got, value):
                fail(f"{where}, you answered {got:g} bytes: {why}. Expected {want} = ceil({n}/8) + 2·{nnz}.")
        if not got.is_integer():
            fail(f"{where}, you answered {got:g}: a byte count is a whole number. Expected {want} = ceil({n}/8) + 2·{nnz}.")
        fail(f"{where}, you answered {got:g} bytes; expected {want} = ceil({n}/8) + 2·{nnz}.")
    return "Correct: ceil(n / 8) bytes of bitmask + 2 bytes per nonzero value, including the all-zero case."
