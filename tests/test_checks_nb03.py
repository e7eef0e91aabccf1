"""Checks of 03 · Structured pruning: the solutions pass, stubs get "Not done yet", typical mistakes get named."""
from __future__ import annotations

import pytest
import torch

from course.checks import CheckResult, check_conv_flops, check_l1_filter_ranking, check_remove_filter
from notebook_solutions import solutions


def assert_fails(result: CheckResult, *fragments: str) -> None:
    assert isinstance(result, CheckResult) and not result.passed, result.message
    for fragment in fragments:
        assert fragment in result.message, f"{fragment!r} not in {result.message!r}"


# --- the notebook's solutions, read from notebooks/src/ (no copies to drift) ------------------------------

_NB03 = solutions('03_structured')                 # the notebook's own solutions (notebooks/src/)
l1_filter_ranking = _NB03.l1_filter_ranking
remove_filter = _NB03.remove_filter
conv_flops = _NB03.conv_flops


def _out(size, k, s=1, p=0):
    return (size + 2 * p - k) // s + 1


# --- 03.1 and 03.2 (core checks, on the notebook's solutions) -----------------------------------------------

def test_filter_solutions_pass():
    assert check_l1_filter_ranking(l1_filter_ranking).passed
    result = check_remove_filter(remove_filter)
    assert result.passed, result.message


# --- 03.3 conv FLOPs -----------------------------------------------------------------------------------------

def test_conv_flops_solution_passes_and_a_tensor_answer_is_accepted():
    assert check_conv_flops(conv_flops).passed
    result = check_conv_flops(lambda c, hw: torch.tensor(conv_flops(c, hw)))
    assert result.passed, result.message


def test_conv_flops_stub_is_not_done_yet():
    def stub(conv, in_hw):
        raise NotImplementedError("Exercise 03.3: FLOPs of a convolution")

    assert_fails(check_conv_flops(stub), "Not done yet", "Exercise 03.3 (FLOPs of a convolution)")


def _k(c):
    return c.kernel_size[0] * c.kernel_size[1]


@pytest.mark.parametrize("wrong, fragment", [
    (lambda c, hw: conv_flops(c, hw) // 2, "multiply-accumulates"),
    (lambda c, hw: conv_flops(c, hw) + c.out_channels * conv_flops(c, hw) // (2 * c.in_channels * _k(c)
                                                                              * c.out_channels), "bias adds"),
    (lambda c, hw: 2 * c.in_channels * _k(c) * c.out_channels * hw[0] * hw[1], "input size"),
    (lambda c, hw: conv_flops(c, hw) // c.in_channels, "C_in"),
    (lambda c, hw: conv_flops(c, hw) // c.out_channels, "C_out"),
    (lambda c, hw: 2 * c.in_channels * _k(c) * c.out_channels
     * _out(hw[0], c.kernel_size[0], 1, c.padding[0]) * _out(hw[1], c.kernel_size[1], 1, c.padding[1]), "stride"),
    (lambda c, hw: 2 * c.in_channels * _k(c) * c.out_channels
     * _out(hw[0], c.kernel_size[0], c.stride[0]) * _out(hw[1], c.kernel_size[1], c.stride[1]), "padding"),
    (lambda c, hw: 2 * c.in_channels * c.kernel_size[0] ** 2 * c.out_channels
     * (conv_flops(c, hw) // (2 * c.in_channels * _k(c) * c.out_channels)), "kernel_size[0] · kernel_size[1]"),
    (lambda c, hw: conv_flops(c, hw) + 7, "expected"),
])
def test_conv_flops_typical_mistakes_get_specific_feedback(wrong, fragment):
    assert_fails(check_conv_flops(wrong), fragment)


def test_conv_flops_reports_an_exception_with_the_case():
    assert_fails(check_conv_flops(lambda c, hw: c.kernel_size[2]), "IndexError", "in_hw=(")
