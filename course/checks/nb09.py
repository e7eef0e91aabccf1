"""Checks for 09 · Beyond pruning: a 2:4 mask for a weight matrix, and the bytes of a k-means weight-shared layer.

Reference solutions: the notebook's own, between `### BEGIN SOLUTION` and `### END SOLUTION` in
notebooks/src/09_beyond_pruning.py; tests/notebook_solutions.py runs them against these checks.
"""
from __future__ import annotations

import math

import torch

from course.checks._core import as_number, call, check, describe, fail, isclose
from course.pruning.nm import nm_mask

__all__ = ["check_nm_mask", "check_codebook_bytes"]


def _weights() -> list[tuple[torch.Tensor, str]]:
    """Weights whose usual wrong 2:4 masks all differ from the right one (distinct magnitudes: no ties)."""
    g = torch.Generator().manual_seed(9)

    def distinct(rows: int, cols: int) -> torch.Tensor:
        mags = (torch.randperm(rows * cols, generator=g).float() + 1) / (rows * cols)     # all different
        signs = torch.where(torch.rand(rows * cols, generator=g) < 0.5, -1.0, 1.0)
        return (mags * signs).reshape(rows, cols)

    return [(distinct(3, 8), "a (3, 8) weight"), (distinct(8, 4), "an (8, 4) weight (one group per row)"),
            (distinct(5, 16), "a (5, 16) weight")]


def _wrong_masks(w: torch.Tensor) -> dict[str, torch.Tensor]:
    """The usual mistakes, as masks, with the feedback each deserves."""
    out, cols = w.shape
    groups = w.abs().reshape(out, cols // 4, 4)
    smallest = torch.zeros_like(groups, dtype=torch.bool).scatter_(-1, groups.topk(2, -1, largest=False).indices, True)
    signed = nm_mask(w, 2, 4)
    strided = nm_mask(w.abs().reshape(out, 4, cols // 4).transpose(1, 2).reshape(out, cols), 2, 4)
    strided = strided.reshape(out, cols // 4, 4).transpose(1, 2).reshape(out, cols)
    flat = w.abs().flatten()
    unstructured = torch.zeros_like(flat, dtype=torch.bool)
    unstructured[flat.topk(flat.numel() // 2).indices] = True
    wrong = {
        "you kept the 2 SMALLEST magnitudes of each group; keep the 2 largest (topk with largest=True)":
            smallest.reshape(out, cols),
        "you ranked the signed values, so large negative weights were dropped; rank by |w| (weight.abs())": signed,
        "you kept the largest half of the whole matrix (unstructured 50%); 2:4 keeps 2 in EVERY group of 4":
            unstructured.reshape(out, cols),
        "your groups are every 4th input (weight.reshape(rows, 4, -1)); a group is 4 CONSECUTIVE inputs: "
        "weight.abs().reshape(rows, -1, 4)": strided,
    }
    if out % 4 == 0:
        wrong["your groups run down the columns (along the output dimension); group 4 consecutive inputs of each "
              "row, along dim 1"] = nm_mask(w.abs().t(), 2, 4).t()
    return wrong


@check("a 2:4 mask")
def check_nm_mask(fn) -> str:
    """fn(weight (rows, cols), cols a multiple of 4) -> bool mask, True on the 2 largest |w| of every 4 consecutive
    entries of each row."""
    for w, label in _weights():
        got = call(fn, w, names=("weight",))
        right = nm_mask(w.abs(), 2, 4)
        if not isinstance(got, torch.Tensor):
            fail(f"For {label} your function returned {describe(got)}; return a tensor shaped like the weight.")
        if got.shape != w.shape:
            fail(f"For {label} your mask has shape {tuple(got.shape)}; it must have the weight's shape "
                 f"{tuple(w.shape)} (reshape back after grouping).")
        if got.dtype != torch.bool:
            if not ((got == 0) | (got == 1)).all():
                fail(f"For {label} your mask holds values other than 0 and 1 ({describe(got)}); return True where a "
                     f"weight is kept and False where it is pruned.")
            got = got.bool()
        if torch.equal(got, right):
            continue
        for why, mask in _wrong_masks(w).items():
            if torch.equal(got, mask):
                fail(f"For {label}: {why}.")
        per_group = got.reshape(w.shape[0], -1, 4).sum(-1)
        if not (per_group == 2).all():
            fail(f"For {label} some groups of 4 keep {int(per_group.min())} to {int(per_group.max())} weights; "
                 f"every group must keep exactly 2.")
        fail(f"For {label} your mask keeps 2 of every 4, but not the 2 largest |w| of each group: e.g. row 0 keeps "
             f"{torch.nonzero(got[0]).flatten().tolist()}, expected {torch.nonzero(right[0]).flatten().tolist()}.")
    return ("Correct: 2 of every 4 consecutive inputs, the 2 largest |w|. Compare with course.show(nm_mask): the "
            "library also groups convolution weights along their input channels.")


@check("bytes of a weight-shared layer")
def check_codebook_bytes(fn) -> str:
    """fn(kept, clusters) -> ceil(kept · b / 8) + 4 · clusters, b = max(1, ceil(log2 clusters)): the packed b-bit
    indices of the kept weights plus the fp32 codebook."""
    for kept, k in ((3779, 16), (1000, 5), (7, 256), (10, 1), (13, 3)):
        got = as_number(call(fn, kept, k, names=("kept", "clusters")), "The byte count")
        b = max(1, math.ceil(math.log2(k)))
        want = math.ceil(kept * b / 8) + 4 * k
        if isclose(got, want):
            continue
        where = f"For {kept} kept weights sharing {k} value{'s' if k != 1 else ''}"
        expected = f"Expected {want} = ceil({kept}·{b} / 8) + 4·{k}."
        known = [
            (math.ceil(kept * math.ceil(math.log2(k)) / 8) + 4 * k if k == 1 else None,
             "one shared value still needs 1 bit per index (log2(1) = 0 bits cannot be stored): use max(1, ...)"),
            (kept * math.log2(k) / 8 + 4 * k if k > 1 else None,
             "an index takes a whole number of bits: ceil(log2 clusters), not log2 clusters"),
            (kept * b + 4 * k, "you counted the index bits but not in bytes: divide by 8"),
            (kept * b / 8 + 4 * k, "a partial byte still takes a whole byte: round the index bytes up"),
            (math.ceil(kept * b / 8), "you forgot the codebook itself: 4 bytes (fp32) per shared value"),
            (math.ceil(kept * b / 8) + 32 * k, "the codebook holds 4 BYTES per value (32 bits), not 32"),
            (math.ceil(kept * b / 8) + 2 * k, "the codebook is stored in fp32: 4 bytes per value, not 2"),
            (math.ceil(kept * k / 8) + 4 * k, "an index needs log2(clusters) bits, not one bit per cluster"),
            (4 * kept + 4 * k, "you stored each index in 4 bytes; it needs only ceil(log2 clusters) bits"),
            (kept + 4 * k, "you stored each index in a whole byte; pack them into ceil(log2 clusters) bits each"),
            (4 * kept, "that is the fp32 size of the kept weights, without sharing"),
        ]
        for value, why in known:
            if value is not None and not isclose(value, want) and isclose(got, value):
                fail(f"{where}, you answered {got:g} bytes: {why}. {expected}")
        fail(f"{where}, you answered {got:g} bytes. {expected}")
    return ("Correct: ceil(kept · ceil(log2 clusters) / 8) bytes of packed indices + 4 bytes per centroid: exactly "
            "the values of a 'bitmask_codebook' file (the positions are its bitmask, n / 8 bytes).")
