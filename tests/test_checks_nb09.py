"""Checks of 09 · Beyond pruning: the solutions pass, stubs get "Not done yet", typical mistakes get named."""
from __future__ import annotations

import math

import torch

from course.checks import CheckResult, check_codebook_bytes, check_nm_mask
from notebook_solutions import solutions

_NB09 = solutions("09_beyond_pruning")                # the notebook's own solutions (notebooks/src/)


def assert_fails(result: CheckResult, *fragments: str) -> None:
    assert isinstance(result, CheckResult) and not result.passed, result.message
    for fragment in fragments:
        assert fragment in result.message, f"{fragment!r} not in {result.message!r}"


# --- 09.1 a 2:4 mask --------------------------------------------------------------------------------------------

def test_nm_mask_solution_passes_and_matches_the_library():
    assert check_nm_mask(_NB09.nm_mask_2_4).passed
    from course import nm_mask
    w = torch.randn(6, 12)
    assert torch.equal(_NB09.nm_mask_2_4(w), nm_mask(w.abs(), 2, 4))


def test_nm_mask_stub_is_not_done_yet():
    def stub(weight):
        raise NotImplementedError("Exercise 09.1: a 2:4 mask")

    assert_fails(check_nm_mask(stub), "Not done yet", "Exercise 09.1 (a 2:4 mask)")


def _groups(weight):
    rows, cols = weight.shape
    return weight.reshape(rows, cols // 4, 4)


def _scatter(groups, idx):
    return torch.zeros_like(groups, dtype=torch.bool).scatter_(-1, idx, True)


def test_nm_mask_typical_mistakes_are_named():
    smallest = lambda w: _scatter(_groups(w.abs()), _groups(w.abs()).topk(2, -1, largest=False).indices).reshape(w.shape)  # noqa: E731
    signed = lambda w: _scatter(_groups(w), _groups(w).topk(2, -1).indices).reshape(w.shape)  # noqa: E731

    def half_of_matrix(w):
        flat = torch.zeros(w.numel(), dtype=torch.bool)
        flat[w.abs().flatten().topk(w.numel() // 2).indices] = True
        return flat.reshape(w.shape)

    def strided(w):
        rows, cols = w.shape
        g = w.abs().reshape(rows, 4, cols // 4)
        return torch.zeros_like(g, dtype=torch.bool).scatter_(1, g.topk(2, dim=1).indices, True).reshape(rows, cols)

    assert_fails(check_nm_mask(smallest), "SMALLEST")
    assert_fails(check_nm_mask(signed), "signed values", "weight.abs()")
    assert_fails(check_nm_mask(half_of_matrix), "unstructured 50%")
    assert_fails(check_nm_mask(strided), "every 4th input")
    assert_fails(check_nm_mask(lambda w: _NB09.nm_mask_2_4(w).float() * 2), "values other than 0 and 1")
    assert_fails(check_nm_mask(lambda w: _NB09.nm_mask_2_4(w).flatten()), "must have the weight's shape")
    assert_fails(check_nm_mask(lambda w: torch.ones_like(w, dtype=torch.bool)), "keep 4 to 4", "exactly 2")


def test_nm_mask_as_floats_passes_and_in_place_changes_are_named():
    assert check_nm_mask(lambda w: _NB09.nm_mask_2_4(w).float()).passed

    def sorts_in_place(w):
        mask = _NB09.nm_mask_2_4(w)
        w.abs_()
        return mask

    assert_fails(check_nm_mask(sorts_in_place), "changed its input `weight` in place")


def test_nm_mask_checks_the_column_mistake_on_a_matrix_whose_rows_group():
    def by_columns(w):
        rows, cols = w.shape
        if rows % 4:
            return _NB09.nm_mask_2_4(w)                 # right on the cases it cannot be wrong on
        t = w.abs().t()
        return _scatter(_groups(t), _groups(t).topk(2, -1).indices).reshape(t.shape).t()

    assert_fails(check_nm_mask(by_columns), "down the columns")


# --- 09.2 bytes of a weight-shared layer --------------------------------------------------------------------------

def test_codebook_bytes_solution_passes_and_matches_the_file():
    assert check_codebook_bytes(_NB09.codebook_bytes).passed
    from course import build_model, prune_unstructured, quantize, to_bytes
    import io
    torch.manual_seed(0)
    q = quantize(prune_unstructured(build_model("lenet300"), 0.9), 4, method="kmeans")
    entry = torch.load(io.BytesIO(to_bytes(q, "bitmask_codebook")), weights_only=True)["sparse"]["fc2"]
    kept = int(q.fc2.prune_mask.sum())
    assert entry["index"].numel() + 4 * entry["codebook"].numel() == _NB09.codebook_bytes(kept, entry["codebook"].numel())


def test_codebook_bytes_stub_is_not_done_yet():
    def stub(kept, clusters):
        raise NotImplementedError("Exercise 09.2: the bytes of a weight-shared layer")

    assert_fails(check_codebook_bytes(stub), "Not done yet", "Exercise 09.2")


def test_codebook_bytes_typical_mistakes_are_named():
    bits = lambda k: max(1, math.ceil(math.log2(k)))  # noqa: E731
    assert_fails(check_codebook_bytes(lambda n, k: n * math.log2(k) / 8 + 4 * k), "whole number of bits")
    assert_fails(check_codebook_bytes(lambda n, k: n * bits(k) + 4 * k), "divide by 8")
    assert_fails(check_codebook_bytes(lambda n, k: math.ceil(n * bits(k) / 8)), "forgot the codebook")
    assert_fails(check_codebook_bytes(lambda n, k: math.ceil(n * bits(k) / 8) + 32 * k), "4 BYTES per value")
    assert_fails(check_codebook_bytes(lambda n, k: n + 4 * k), "whole byte")
    assert_fails(check_codebook_bytes(lambda n, k: 4 * n), "without sharing")
    assert_fails(check_codebook_bytes(lambda n, k: math.ceil(n * math.ceil(math.log2(k)) / 8) + 4 * k), "max(1, ...)")
    assert_fails(check_codebook_bytes(lambda n, k: "lots"), "should be a number")
