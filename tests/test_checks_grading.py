"""Grading mode: under COURSE_CHECKS=raise a check raises AssertionError with its feedback unless it passes, and a
pass leaves nothing nbgrader would read as an error (no stderr) or as partial credit (no return value).

nbgrader scores an autograded cell 0 when it raises or writes to stderr, full marks otherwise; the default mode's
red box raises nothing, so without this mode every wrong answer would score full marks.
"""
from __future__ import annotations

import sys
import warnings

import pytest
import torch

import course.checks as checks
from course.checks import CheckResult
from notebook_solutions import checked_solutions, solutions

CASES = checked_solutions()


def stub(*args, **kwargs):
    raise NotImplementedError()          # what nbgrader's release version puts in a solution cell


@pytest.mark.parametrize("stem, fn, check", CASES, ids=[c[2] for c in CASES])
def test_grading_mode_raises_on_a_stub_and_passes_the_solution(monkeypatch, capsys, stem, fn, check):
    run = getattr(checks, check)
    assert isinstance(run(stub), CheckResult) and not run(stub)          # default: the red box, nothing raised
    monkeypatch.setenv("COURSE_CHECKS", "raise")
    with pytest.raises(AssertionError, match="Not done yet"):
        run(stub)
    assert run(getattr(solutions(stem), fn)) is None                       # no result to read as partial credit
    out = capsys.readouterr()
    assert "✔ PASSED" in out.out and out.err == ""


def test_a_wrong_answer_raises_with_the_specific_feedback(monkeypatch):
    monkeypatch.setenv("COURSE_CHECKS", "raise")
    with pytest.raises(AssertionError, match="^cubic sparsity schedule: Your schedule is linear in the step"):
        checks.check_cubic_schedule(lambda step, s_f, begin, end: s_f * min(max((step - begin) / (end - begin), 0), 1))


def test_what_the_learners_code_writes_to_stderr_does_not_cost_the_grade(monkeypatch, capsys):
    def csr_bytes(weight):
        warnings.warn("Sparse CSR tensor support is in beta", UserWarning)    # torch's own warning, say
        print("debugging", file=sys.stderr)
        nnz = int((weight != 0).sum())
        return (weight.shape[0] + 1) * 8 + 12 * nnz

    def to_stderr(message, category, filename, lineno, file=None, line=None):
        # what Python does outside pytest (which records warnings instead): write to sys.stderr, looked up now
        sys.stderr.write(warnings.formatwarning(message, category, filename, lineno, line))

    monkeypatch.setenv("COURSE_CHECKS", "raise")
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        monkeypatch.setattr(warnings, "showwarning", to_stderr)
        assert checks.check_csr_bytes(csr_bytes) is None
    out = capsys.readouterr()
    assert out.err == "" and "debugging" in out.out and "in beta" in out.out and "✔ PASSED" in out.out


def test_the_mode_is_read_at_every_call(monkeypatch):
    wrong = lambda k, p: k                                                  # noqa: E731
    assert not checks.check_speedup_bound(wrong)
    monkeypatch.setenv("COURSE_CHECKS", "raise")
    with pytest.raises(AssertionError, match="FLOP ratio itself"):
        checks.check_speedup_bound(wrong)
    monkeypatch.setenv("COURSE_CHECKS", "show")
    assert not checks.check_speedup_bound(wrong)


def test_an_unknown_mode_is_a_clear_error(monkeypatch):
    monkeypatch.setenv("COURSE_CHECKS", "strict")
    with pytest.raises(ValueError, match="COURSE_CHECKS must be one of show, raise, got 'strict'"):
        checks.check_cubic_schedule(stub)


def test_a_check_never_moves_the_random_state_in_grading_mode(monkeypatch):
    monkeypatch.setenv("COURSE_CHECKS", "raise")
    torch.manual_seed(0)
    expected = torch.rand(3)
    torch.manual_seed(0)
    checks.check_magnitude_mask(solutions("01_what_is_pruning").magnitude_mask)
    assert torch.equal(torch.rand(3), expected)
