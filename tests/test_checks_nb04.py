"""Checks of notebook 04: the solution passes, a stub gets the friendly message, the usual mistakes get specific feedback."""
from __future__ import annotations

import pytest
import torch

from course.checks import CheckResult, check_spearman
from course.lessons.oracle import spearman as library_spearman


def assert_fails(result: CheckResult, *fragments: str) -> None:
    assert isinstance(result, CheckResult)
    assert not result.passed, f"expected a failure, got: {result.message}"
    for fragment in fragments:
        assert fragment in result.message, f"{fragment!r} not in {result.message!r}"


# --- Exercise 04.2: Spearman's rank correlation ---------------------------------------------------------------

def spearman(a, b):
    """Reference solution: rank both (argsort of argsort), then Pearson of the ranks."""
    ra, rb = a.argsort().argsort().double(), b.argsort().argsort().double()
    ra, rb = ra - ra.mean(), rb - rb.mean()
    return (ra * rb).sum() / (ra.norm() * rb.norm())


def pearson(a, b):
    a, b = a - a.mean(), b - b.mean()
    return float((a * b).sum() / (a.norm() * b.norm()))


def ranks(x):
    return x.argsort().argsort().float()


def test_spearman_passes_the_reference_the_library_and_the_textbook_formula():
    assert check_spearman(spearman).passed
    assert check_spearman(library_spearman).passed

    def textbook(a, b):
        n = a.numel()
        d = ranks(a) - ranks(b)
        return 1 - 6 * float((d ** 2).sum()) / (n * (n * n - 1))

    result = check_spearman(textbook)
    assert result.passed, result.message
    assert "−1 for a reversed order" in result.message


def test_spearman_stub_gets_the_friendly_message():
    def stub(a, b):
        raise NotImplementedError("Exercise 04.2: Spearman rank correlation")

    assert_fails(check_spearman(stub), "Not done yet", "Exercise 04.2 (Spearman rank correlation)")


@pytest.mark.parametrize("wrong, fragment", [
    (lambda a, b: pearson(a, b), "Pearson's correlation of the raw values"),
    (lambda a, b: pearson(a.argsort().float(), b.argsort().float()), "not the ranks"),
    (lambda a, b: pearson(ranks(a), b), "You ranked `a` but not `b`"),
    (lambda a, b: float((ranks(a) * ranks(b)).sum() / (ranks(a).norm() * ranks(b).norm())), "without subtracting"),
    (lambda a, b: abs(float(spearman(a, b))), "Don't take the absolute value"),
    (lambda a, b: 1 - float(spearman(a, b)), "1 − ρ"),
    (lambda a, b: float(((ranks(a) - ranks(b)) ** 2).sum()), "Σd²"),
    (lambda a, b: float(((ranks(a) - ranks(a).mean()) * (ranks(b) - ranks(b).mean())).mean()
                        / (ranks(a).std() * ranks(b).std())), "(n − 1)/n"),
    (lambda a, b: (ranks(a), ranks(b)), "should be a number"),
    (lambda a, b: float(spearman(a.mul_(2), b)), "changed its input `a` in place"),
    (lambda a, b: 0.5, "Expected ρ ="),
])
def test_spearman_catches_typical_mistakes(wrong, fragment):
    assert_fails(check_spearman(wrong), fragment)
