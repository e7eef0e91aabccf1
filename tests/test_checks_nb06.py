"""check_iterative_targets (06_when_to_prune): the solution passes, a stub is 'not done yet', usual slips named."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from course.checks import CheckResult, check_iterative_targets
from course.pruning.schedules import step_sparsities


def iterative_targets(final_sparsity, steps):
    p = 1 - (1 - final_sparsity) ** (1 / steps)
    return [1 - (1 - p) ** k for k in range(1, steps + 1)]


def stub(final_sparsity, steps):
    # YOUR CODE HERE
    raise NotImplementedError("Exercise 06.2: targets of an iterative schedule")


def rate(s, k):
    return 1 - (1 - s) ** (1 / k)


def assert_fails(result: CheckResult, fragment: str) -> None:
    assert isinstance(result, CheckResult) and not result.passed, result.message
    assert fragment in result.message, result.message


@pytest.mark.parametrize("solution", [
    iterative_targets,
    lambda s, k: step_sparsities(s, k, "geometric"),                                  # the library agrees
    lambda s, k: torch.tensor(iterative_targets(s, k), dtype=torch.float64),          # tensors are fine
    lambda s, k: tuple(np.array(iterative_targets(s, k))),                            # numpy scalars too
])
def test_the_solution_passes(solution):
    result = check_iterative_targets(solution)
    assert result.passed, result.message
    assert "1 − (1 − p)^k" in result.message


def test_a_stub_is_not_done_yet():
    assert_fails(check_iterative_targets(stub), "Not done yet: replace the NotImplementedError in Exercise 06.2 "
                                                "(targets of an iterative schedule)")


@pytest.mark.parametrize("wrong, fragment", [
    (lambda s, k: [0.0] + iterative_targets(s, k), "without the starting point s_0 = 0"),
    (lambda s, k: iterative_targets(s, k)[:-1], "3 values for steps=3; you returned 2"),
    (lambda s, k: [1 - v for v in iterative_targets(s, k)], "those are densities"),
    (lambda s, k: [rate(s, k)] * k, "You returned the prune rate p = 0.5 of every step"),
    (lambda s, k: [s * i / k for i in range(1, k + 1)], "Your targets grow linearly"),
    (lambda s, k: [1 - (1 - s / k) ** i for i in range(1, k + 1)], "With p = s_f/K your last target is 0.6446, not final_sparsity = 0.875"),
    (lambda s, k: [1 - (1 - s ** (1 / k)) ** i for i in range(1, k + 1)], "the K-th root of the sparsity"),
    (lambda s, k: iterative_targets(s, k)[:-1] + [0.9], "The last target must be final_sparsity = 0.875"),
    (lambda s, k: sorted(iterative_targets(s, k), reverse=True)[:-1] + [s], "go down somewhere"),
    (lambda s, k: [v + 1e-3 for v in iterative_targets(s, k)[:-1]] + [s], "Step 1 of 3 (final_sparsity=0.875)"),
    (lambda s, k: {i: v for i, v in enumerate(iterative_targets(s, k))}, "should be a list of K numbers"),
    (lambda s, k: torch.tensor([iterative_targets(s, k)]), "should be a flat list of numbers"),
    (lambda s, k: [1 / 0], "Your code raised ZeroDivisionError"),
])
def test_typical_mistakes_get_specific_feedback(wrong, fragment):
    assert_fails(check_iterative_targets(wrong), fragment)


def test_a_result_instead_of_the_function():
    assert_fails(check_iterative_targets(iterative_targets(0.9, 3)), "Pass your function itself")
