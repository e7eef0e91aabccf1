"""Checks for 04 · What to prune: the first-order Taylor score, and Spearman's rank correlation written with torch
(rank, then Pearson).

Reference solutions: the notebook's own, between `### BEGIN SOLUTION` and `### END SOLUTION` in
notebooks/src/04_criteria.py; tests/notebook_solutions.py runs them against these checks.

The cases are made-up score vectors without ties, each built so that the usual wrong answers give a different number
than the right one.
"""
from __future__ import annotations

import torch

from course.checks._core import as_number, call, check, describe, fail

__all__ = ["check_taylor_score", "check_spearman"]


def _pearson(a: torch.Tensor, b: torch.Tensor) -> float:
    a, b = a.double() - a.double().mean(), b.double() - b.double().mean()
    return float((a * b).sum() / (a.square().sum() * b.square().sum()).sqrt())


def _cosine(a: torch.Tensor, b: torch.Tensor) -> float:
    a, b = a.double(), b.double()
    return float((a * b).sum() / (a.square().sum() * b.square().sum()).sqrt())


def _ranks(x: torch.Tensor) -> torch.Tensor:
    """Ranks 0..n-1 (no ties in the check data): the position each value would take after sorting."""
    return x.argsort().argsort().double()


def _cases() -> list[tuple[str, torch.Tensor, torch.Tensor]]:
    g = torch.Generator().manual_seed(4)
    a = torch.randn(30, generator=g)
    noisy = a + 0.8 * torch.randn(30, generator=g)
    c = torch.rand(25, generator=g)
    return [("30 scores vs a noisy copy", a, noisy),
            ("25 scores vs exp(scores), a monotone transform", c, c.exp() ** 3),
            ("30 scores vs -scores³, the reversed order", a, -a ** 3),
            ("25 scores vs 25 unrelated scores", c, torch.rand(25, generator=g))]


@check("Spearman rank correlation")
def check_spearman(fn) -> str:
    """fn(a, b) -> Spearman's ρ = Pearson correlation of the ranks of a and of b (1-D tensors, no ties)."""
    for what, a, b in _cases():
        case = f"{getattr(fn, '__name__', 'fn')}(a, b) with {what}"
        got = as_number(call(fn, a, b, names=("a", "b"), case=case), "ρ")
        ra, rb, n = _ranks(a), _ranks(b), a.numel()
        want = _pearson(ra, rb)
        if abs(got - want) < 1e-6:
            continue
        known = [
            (_pearson(a, b), "This is Pearson's correlation of the raw values. Spearman ranks first: replace each "
                             "value by its rank (0 for the smallest), then take Pearson of the two rank vectors."),
            (_pearson(a.argsort().double(), b.argsort().double()),
             "`x.argsort()` gives the indices that sort x, not the ranks. The rank of each value is "
             "`x.argsort().argsort()` (where each element lands after sorting)."),
            (_pearson(ra, b), "You ranked `a` but not `b`: rank both inputs, then correlate the ranks."),
            (_pearson(a, rb), "You ranked `b` but not `a`: rank both inputs, then correlate the ranks."),
            (_cosine(ra, rb), "You took the cosine of the rank vectors without subtracting their means. Pearson "
                              "centres each vector first: (r − r̄)·(s − s̄) / (‖r − r̄‖ ‖s − s̄‖)."),
            (abs(want), "ρ keeps its sign: a reversed order gives −1, not +1. Don't take the absolute value."),
            (1 - want, "You returned 1 − ρ (a distance). Return the correlation itself."),
            (want * (n - 1) / n, "Off by a factor (n − 1)/n: the covariance divides by n but the standard "
                                 "deviations by n − 1 (`torch.std` does). Use the same divisor in both, or none."),
            (want * n / (n - 1), "Off by a factor n/(n − 1): the covariance divides by n − 1 but the standard "
                                 "deviations by n (`unbiased=False`). Use the same divisor in both, or none."),
            (float((ra - rb).square().sum()), "That is Σd², the sum of squared rank differences. ρ = "
                                              "1 − 6·Σd² / (n(n² − 1)), or Pearson of the ranks."),
        ]
        for value, why in known:
            if abs(got - value) < 1e-6:
                fail(f"{why} Case: {case}: expected ρ = {want:.4f}, got {got:.4f}.")
        fail(f"Expected ρ = {want:.4f}, got {got:.4f} for {what}. Rank both vectors "
             f"(`x.argsort().argsort()`), centre each rank vector, then divide their dot product by the product "
             f"of their norms.")
    return ("Correct: Pearson of the ranks. It is +1 for any increasing transform (exp, cube), −1 for a reversed "
            "order and near 0 for unrelated scores; all that pruning needs from a criterion is the order.")


@check("Taylor score")
def check_taylor_score(fn) -> str:
    """fn(weight, grad) -> |w · g| elementwise: the first-order estimate of the loss change when w is set to 0."""
    g = torch.Generator().manual_seed(3)
    for shape in ((5, 4), (3, 2, 3, 3)):
        w, grad = torch.randn(shape, generator=g), torch.randn(shape, generator=g)
        out = call(fn, w, grad, names=("weight", "grad"))
        if not isinstance(out, torch.Tensor) or out.shape != w.shape:
            fail(f"Return one score per weight, a tensor of shape {tuple(w.shape)}; you returned {describe(out)}."
                 + (" Don't sum or average: ranking happens later." if isinstance(out, torch.Tensor) else ""))
        out = out.detach().float()
        want = (w * grad).abs()
        if torch.allclose(out, want):
            continue
        known = [
            (w * grad, "Your scores are w·g and can be negative. Take |w·g|: a large loss change counts whatever its sign."),
            ((w * grad) ** 2, "You squared the product. The exercise asks |w·g| (the same ranking, different values)."),
            (w.abs() * grad, "Take the absolute value of the product, |w·g|, not of the weight alone."),
            (w * grad.abs(), "Take the absolute value of the product, |w·g|, not of the gradient alone."),
            (w.abs(), "Your score ignores the gradient: that is the magnitude criterion. Taylor multiplies by g."),
            (grad.abs(), "Your score ignores the weight: Taylor is |w·g|, the loss change when w is set to 0."),
        ]
        for value, why in known:
            if torch.allclose(out, value):
                fail(why)
        i = int((out - want).abs().flatten().argmax())
        fail(f"At flat index {i}: weight {w.flatten()[i].item():.4f}, grad {grad.flatten()[i].item():.4f}, expected "
             f"|w·g| = {want.flatten()[i].item():.4f}, got {out.flatten()[i].item():.4f}.")
    return ("Correct: |w·g| for every weight, the first-order estimate of the loss change (taylor_signed_mean in "
            "the library; Molchanov et al. square it batch by batch).")
