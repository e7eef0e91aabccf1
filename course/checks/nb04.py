"""Checks for 04 · What to prune: Spearman's rank correlation, written with torch (rank, then Pearson).

Reference solutions are in tests/test_checks_nb04.py, not in the library. The cases are made-up score vectors
without ties, each built so that the usual wrong answers give a different number than the right one.
"""
from __future__ import annotations

import torch

from course.checks._core import as_number, call, check, fail

__all__ = ["check_spearman"]


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
