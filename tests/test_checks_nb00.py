"""Checks of 00 · Setup and baselines: the solutions pass, stubs get "Not done yet", typical mistakes get named."""
from __future__ import annotations

import pytest
from torch import nn

from course import build_model, count_params
from course.checks import CheckResult, check_dense_bytes, check_linear_params
from notebook_solutions import solutions


def stub(*args, **kwargs):
    raise NotImplementedError("Exercise 00.1: parameters of a Linear layer")


def assert_fails(result: CheckResult, *fragments: str) -> None:
    assert isinstance(result, CheckResult) and not result.passed, result.message
    for fragment in fragments:
        assert fragment in result.message, f"{fragment!r} not in {result.message!r}"


# --- the notebook's solutions, read from notebooks/src/ (no copies to drift) ------------------------------

_NB00 = solutions('00_setup_and_baselines')                 # the notebook's own solutions (notebooks/src/)
linear_params = _NB00.linear_params
dense_bytes = _NB00.dense_bytes


# --- 00.1 --------------------------------------------------------------------------------------------------

def test_linear_params_solution_passes_and_matches_count_params():
    result = check_linear_params(linear_params)
    assert result.passed, result.message
    assert "266,610" in result.message
    total = sum(linear_params(i, o) for i, o in ((784, 300), (300, 100), (100, 10)))
    assert total == count_params(build_model("lenet300")).total


def test_linear_params_stub_is_not_done_yet():
    assert_fails(check_linear_params(stub), "Not done yet", "Exercise 00.1")


@pytest.mark.parametrize("wrong, fragment", [
    (lambda i, o: i * o, "one bias"),
    (lambda i, o: i * o + i, "per OUTPUT neuron"),
    (lambda i, o: (i + 1) * (o + 1), "no bias on the input side"),
    (lambda i, o: i + o, "in·out weights"),
    (lambda i, o: i * o + o + 1, "expected 235,500"),
])
def test_linear_params_names_the_mistake(wrong, fragment):
    assert_fails(check_linear_params(wrong), fragment)


def test_linear_params_reports_a_crash_without_traceback():
    result = check_linear_params(lambda i, o: i.numel())
    assert_fails(result, "Your code raised AttributeError")
    assert "Traceback" not in result.message


# --- 00.2 --------------------------------------------------------------------------------------------------

def test_dense_bytes_solution_passes():
    result = check_dense_bytes(dense_bytes)
    assert result.passed, result.message
    assert check_dense_bytes(lambda m: 4 * sum(p.numel() for p in m.parameters())).passed


def test_dense_bytes_stub_is_not_done_yet():
    assert_fails(check_dense_bytes(stub), "Not done yet")


def _weights_only(module):
    return 4 * sum(m.weight.numel() for m in module.modules() if isinstance(m, (nn.Linear, nn.Conv2d)))


@pytest.mark.parametrize("wrong, fragment", [
    (lambda m: sum(p.numel() for p in m.parameters()), "each float32 parameter takes 4 bytes"),
    (lambda m: 8 * sum(p.numel() for p in m.parameters()), "float64"),
    (lambda m: 32 * sum(p.numel() for p in m.parameters()), "bits, not bytes"),
    (_weights_only, "left out the biases"),
    (lambda m: sum(t.numel() * t.element_size() for t in m.state_dict().values()), "buffers"),
])
def test_dense_bytes_names_the_mistake(wrong, fragment):
    assert_fails(check_dense_bytes(wrong), fragment, "Expected")


def test_dense_bytes_flags_a_function_that_changes_the_model():
    def zeroing(module):
        for p in module.parameters():
            p.data.zero_()
        return dense_bytes(module)

    assert_fails(check_dense_bytes(zeroing), "changed its input `module` in place")
