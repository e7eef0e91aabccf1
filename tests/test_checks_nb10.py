"""Checks of notebook 10: the solutions pass, a stub gets the friendly message, the usual mistakes get specific feedback."""
from __future__ import annotations

import pytest
import torch

from course.checks import CheckResult, check_obs_step, check_wanda_score
from course.pruning import obs_step


def assert_fails(result: CheckResult, *fragments: str) -> None:
    assert isinstance(result, CheckResult)
    assert not result.passed, f"expected a failure, got: {result.message}"
    for fragment in fragments:
        assert fragment in result.message, f"{fragment!r} not in {result.message!r}"


# --- Exercise 10.1: the Wanda score -------------------------------------------------------------------------------

def wanda_score(W, X):
    return W.abs() * X.norm(dim=0)


def via_loop(W, X):
    """Another correct way: sqrt of the sum of squares, feature by feature."""
    norms = torch.stack([X[:, j].pow(2).sum().sqrt() for j in range(X.shape[1])])
    return W.abs() * norms[None, :]


def via_library(W, X):
    """The engine's own criterion on a Linear carrying W, calibrated on X."""
    from torch import nn
    from course.pruning import wanda_scores
    lin = nn.Linear(W.shape[1], W.shape[0])
    with torch.no_grad():
        lin.weight.copy_(W)
    return wanda_scores(lin, [("", lin)], data=X)[""]


@pytest.mark.parametrize("solution", [wanda_score, via_loop, via_library])
def test_wanda_score_passes_three_correct_solutions(solution):
    result = check_wanda_score(solution)
    assert result.passed, result.message
    assert "magnitude alone ignores X" in result.message


@pytest.mark.parametrize("wrong, fragment", [
    (lambda W, X: W * X.norm(dim=0), "Use |W_ij|"),
    (lambda W, X: W.abs() * X.square().sum(0), "squared norm"),
    (lambda W, X: W.abs() * X.abs().mean(0), "mean |x_j|"),
    (lambda W, X: W.abs() * X.std(0), "standard deviation"),
    (lambda W, X: W.abs() * X.norm(dim=1), "size"),                  # the norm over features: a shape error, reported
    (lambda W, X: W.abs().T * X.norm(dim=0)[:, None] if W.shape[0] != W.shape[1] else W, "shape"),
    (lambda W, X: W.abs(), "Expected S = |W| · ‖X_j‖₂"),
    (lambda W, X: (W.abs() * X.norm(dim=0)).tolist(), "Return a tensor"),
    (lambda W, X: W.abs_() * X.norm(dim=0), "changed its input `W` in place"),
])
def test_wanda_score_catches_typical_mistakes(wrong, fragment):
    assert_fails(check_wanda_score(wrong), fragment)


def test_wanda_score_stub_gets_the_friendly_message():
    def stub(W, X):
        raise NotImplementedError("Exercise 10.1: the Wanda score")
    assert_fails(check_wanda_score(stub), "Not done yet", "Exercise 10.1 (the Wanda score)")


# --- Exercise 10.2: one OBS step ----------------------------------------------------------------------------------

def obs_prune(w, H_inv, j):
    delta = -(w[j] / H_inv[j, j]) * H_inv[j]
    w_new = w + delta
    w_new[j] = 0.0
    return w_new, float(w[j] ** 2 / H_inv[j, j])


@pytest.mark.parametrize("solution", [obs_prune, obs_step])
def test_obs_step_passes_the_solution_and_the_library(solution):
    result = check_obs_step(solution)
    assert result.passed, result.message
    assert "compensation" in result.message


def _zero_only(w, H_inv, j):
    w = w.clone()
    w[j] = 0
    return w, float(w[j] ** 2 / H_inv[j, j])


def _wrong_sign(w, H_inv, j):
    return w + w[j] / H_inv[j, j] * H_inv[j], float(w[j] ** 2 / H_inv[j, j])


def _uses_h(w, H_inv, j):
    H = torch.linalg.inv(H_inv)
    new = w - w[j] / H[j, j] * H[j]
    new[j] = 0
    return new, float(w[j] ** 2 / H_inv[j, j])


def _saliency_times(w, H_inv, j):
    return obs_prune(w, H_inv, j)[0], float(w[j] ** 2 * H_inv[j, j])


def _in_place(w, H_inv, j):
    w -= w[j] / H_inv[j, j] * H_inv[j]
    return w, 0.0


@pytest.mark.parametrize("wrong, fragment", [
    (_zero_only, "magnitude pruning"),
    (_wrong_sign, "Wrong sign"),
    (_uses_h, "You used H where the step needs its inverse"),
    (_saliency_times, "multiplied by [H⁻¹]_jj"),
    (lambda w, H_inv, j: obs_prune(w, H_inv, j)[0], "Return a pair"),
    (_in_place, "changed its input `w` in place"),
])
def test_obs_step_catches_typical_mistakes(wrong, fragment):
    assert_fails(check_obs_step(wrong), fragment)


def test_obs_step_stub_gets_the_friendly_message():
    def stub(w, H_inv, j):
        raise NotImplementedError("Exercise 10.2: one OBS step")
    assert_fails(check_obs_step(stub), "Not done yet", "Exercise 10.2 (one OBS step)")
