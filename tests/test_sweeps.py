"""course.sweeps: prune-and-evaluate on a copy, accuracy curves per seed, and the end of "free" pruning."""
from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from torch import nn

from course import build_model, evaluate, prune_unstructured
from course.lessons.sweeps import PruneResult, largest_sparsity_within, prune_and_evaluate, sparsity_curve


@pytest.fixture
def model_and_data():
    torch.manual_seed(0)
    model = build_model("lenet300")
    X = torch.randn(64, 1, 28, 28)
    y = model(X).argmax(1)                     # labels the dense model gets right: dense accuracy is exactly 1
    return model, [(X[:32], y[:32]), (X[32:], y[32:])]


def test_prune_and_evaluate_counts_exactly_and_leaves_the_model_alone(model_and_data):
    model, data = model_and_data
    before = copy.deepcopy(model.state_dict())
    r = prune_and_evaluate(model, 0.9, data)
    assert isinstance(r, PruneResult)
    kept = sum(n - round(0.9 * n) for n in (784 * 300, 300 * 100, 100 * 10))
    assert (r.nonzero, r.total) == (kept, 266_200)
    assert r.sparsity == pytest.approx(1 - kept / 266_200)
    assert r.accuracy == evaluate(prune_unstructured(model, 0.9), data)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert "26,620 of 266,200" in repr(r)


def test_prune_and_evaluate_at_zero_sparsity_is_the_dense_model(model_and_data):
    model, data = model_and_data
    r = prune_and_evaluate(model, 0.0, data)
    assert r.sparsity == 0.0 and r.accuracy == 1.0


def test_sparsity_curve_has_one_row_per_seed_and_random_seeds_differ(model_and_data):
    model, data = model_and_data
    mag = sparsity_curve(model, [0.0, 0.5, 0.95], data, progress=False)
    rnd = sparsity_curve(model, [0.0, 0.5, 0.95], data, criterion="random", seeds=[0, 1, 2], progress=False)
    assert mag.shape == (1, 3) and rnd.shape == (3, 3)
    assert mag[0, 0] == 1.0 and np.all(rnd[:, 0] == 1.0)
    assert mag[0, 1] == evaluate(prune_unstructured(model, 0.5), data)
    assert rnd[1, 2] == evaluate(prune_unstructured(model, 0.95, criterion="random", seed=1), data)
    assert len({tuple(row) for row in rnd[:, 1:]}) > 1          # different seeds prune different weights


def test_sparsity_curve_rejects_bad_input(model_and_data):
    model, data = model_and_data
    with pytest.raises(ValueError, match=r"\[0, 1\)"):
        sparsity_curve(model, [0.5, 1.0], data, progress=False)
    with pytest.raises(ValueError, match="at least one"):
        sparsity_curve(model, [0.5], data, seeds=[], progress=False)
    with pytest.raises(ValueError, match="unknown criterion|criterion"):
        sparsity_curve(model, [0.5], data, criterion="size", progress=False)


@pytest.mark.parametrize("accs, tol, want", [
    ([0.90, 0.90, 0.895, 0.88, 0.89], 0.01, 0.5),          # stops at the first drop, ignores the recovery
    ([0.90, 0.90, 0.895, 0.88, 0.89], 0.02, 0.9),
    ([0.90, 0.85, 0.895, 0.88, 0.89], 0.01, 0.0),
])
def test_largest_sparsity_within(accs, tol, want):
    assert largest_sparsity_within([0.0, 0.3, 0.5, 0.7, 0.9], accs, 0.90, tol) == want


def test_largest_sparsity_within_counts_an_exact_tolerance_as_within():
    assert largest_sparsity_within([0.0, 0.5, 0.8], [0.75, 0.625, 0.3], 0.75, 0.125) == 0.5
    assert largest_sparsity_within(np.array([0.5]), np.array([0.2]), 0.9, 0.01) == 0.0
