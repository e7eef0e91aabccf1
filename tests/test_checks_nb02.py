"""Checks of 02 · Unstructured pruning: the solutions pass, stubs get "Not done yet", typical mistakes get named."""
from __future__ import annotations

import warnings

import pytest
import torch

from course.checks import CheckResult, check_bitmask_fp16_bytes, check_csr_bytes
from notebook_solutions import solutions


def assert_fails(result: CheckResult, *fragments: str) -> None:
    assert isinstance(result, CheckResult) and not result.passed, result.message
    for fragment in fragments:
        assert fragment in result.message, f"{fragment!r} not in {result.message!r}"


# --- the notebook's solutions, read from notebooks/src/ (no copies to drift) ------------------------------

_NB02 = solutions('02_unstructured')                 # the notebook's own solutions (notebooks/src/)
bitmask_fp16_bytes = _NB02.bitmask_fp16_bytes
csr_bytes = _NB02.csr_bytes


def nnz(w):
    return int((w != 0).sum())


# --- 02.1 bitmask + fp16 -------------------------------------------------------------------------------------

def test_bitmask_fp16_solution_passes():
    result = check_bitmask_fp16_bytes(bitmask_fp16_bytes)
    assert result.passed, result.message


# --- 02.2 CSR bytes ------------------------------------------------------------------------------------------

def test_csr_solution_passes_and_matches_what_torch_allocates():
    result = check_csr_bytes(csr_bytes)
    assert result.passed, result.message
    w = torch.randn(7, 5)
    w[w.abs() < 1.0] = 0.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t = w.to_sparse_csr()
    real = sum(x.numel() * x.element_size() for x in (t.crow_indices(), t.col_indices(), t.values()))
    assert csr_bytes(w) == real


def test_csr_solution_returning_a_tensor_passes():
    result = check_csr_bytes(lambda w: torch.tensor(csr_bytes(w)))
    assert result.passed, result.message


def test_csr_stub_is_not_done_yet():
    def stub(weight):
        raise NotImplementedError("Exercise 02.2: bytes of a CSR tensor")

    assert_fails(check_csr_bytes(stub), "Not done yet", "Exercise 02.2 (bytes of a CSR tensor)")


@pytest.mark.parametrize("wrong, fragment", [
    (lambda w: (w.shape[0] + 1) * 4 + 8 * nnz(w), "int64"),
    (lambda w: w.shape[0] * 8 + 12 * nnz(w), "rows + 1 entries"),
    (lambda w: (w.shape[1] + 1) * 8 + 12 * nnz(w), "number of columns"),
    (lambda w: (w.shape[0] + 1) * 8 + 12 * w.nonzero().numel(), "nonzero().numel()"),
    (lambda w: 20 * nnz(w), "COO"),
    (lambda w: (w.shape[0] + 1) * 8 + 12 * w.numel(), "zeros included"),
    (lambda w: 12 * nnz(w), "forgot the row pointers"),
    (lambda w: (w.shape[0] + 1) * 8 + 8 * nnz(w), "forgot the values"),
    (lambda w: (w.shape[0] + 1) * 8 + 4 * nnz(w), "forgot the column indices"),
    (lambda w: 4 * w.numel(), "dense size"),
    (lambda w: csr_bytes(w) + 0.5, "whole number"),
    (lambda w: csr_bytes(w) + 3, "Expected"),
])
def test_csr_typical_mistakes_get_specific_feedback(wrong, fragment):
    assert_fails(check_csr_bytes(wrong), fragment, "Expected")


def test_csr_mistake_only_on_an_all_zero_matrix_is_caught():
    # right whenever there is a nonzero, but returns 0 for an empty matrix (forgets its row pointers)
    assert_fails(check_csr_bytes(lambda w: csr_bytes(w) if nnz(w) else 0), "(2, 5)", "Expected 24")


def test_csr_exception_and_mutation_are_reported():
    assert_fails(check_csr_bytes(lambda w: w.shape[2]), "IndexError")

    def zeroes_input(w):
        w.zero_()
        return 24

    assert_fails(check_csr_bytes(zeroes_input), "changed its input `weight` in place")


def test_csr_non_number_is_explained():
    assert_fails(check_csr_bytes(lambda w: "104 bytes"), "should be a number")
