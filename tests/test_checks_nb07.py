"""check_pareto_front (07_metrics_tradeoffs): the solution passes, a stub is 'not done yet', usual slips named."""
from __future__ import annotations

import pytest

from course.checks import CheckResult, check_pareto_front
from course.lessons.tradeoffs import pareto_front


def front(points):
    def beats(q, p):
        return (q["size_bytes"] <= p["size_bytes"] and q["accuracy"] >= p["accuracy"]
                and (q["size_bytes"] < p["size_bytes"] or q["accuracy"] > p["accuracy"]))
    kept = [p for p in points if not any(beats(q, p) for q in points)]
    return [p["name"] for p in sorted(kept, key=lambda p: p["size_bytes"])]


def stub(points):
    # YOUR CODE HERE
    raise NotImplementedError("Exercise 07.1: the Pareto front")


def strict(points):
    kept = [p for p in points if not any(q["size_bytes"] < p["size_bytes"] and q["accuracy"] > p["accuracy"]
                                         for q in points)]
    return [p["name"] for p in sorted(kept, key=lambda p: p["size_bytes"])]


def drops_ties(points):
    kept = [p for p in points if not any(q is not p and q["size_bytes"] <= p["size_bytes"]
                                         and q["accuracy"] >= p["accuracy"] for q in points)]
    return [p["name"] for p in sorted(kept, key=lambda p: p["size_bytes"])]


def larger_is_better(points):
    return front([dict(p, size_bytes=-p["size_bytes"]) for p in points])


def sorts_in_place(points):
    points.sort(key=lambda p: p["size_bytes"])
    return front(points)


def assert_fails(result: CheckResult, fragment: str) -> None:
    assert isinstance(result, CheckResult) and not result.passed, result.message
    assert fragment in result.message, result.message


@pytest.mark.parametrize("solution", [front, lambda pts: [p["name"] for p in pareto_front(pts)],
                                      lambda pts: tuple(front(pts))])
def test_the_solution_passes(solution):
    result = check_pareto_front(solution)
    assert result.passed, result.message


def test_a_stub_is_not_done_yet():
    assert_fails(check_pareto_front(stub), "Not done yet: replace the NotImplementedError in Exercise 07.1 "
                                           "(the Pareto front)")


@pytest.mark.parametrize("wrong, fragment", [
    (strict, "You keep 's75' (87.1%, 120,000 B), but 'u95' (88.0%, 120,000 B) dominates it"),
    (drops_ties, "'twin' and 's90' are identical"),
    (larger_is_better, "Your front prefers larger files"),
    (lambda pts: front(pts)[::-1], "The right points, largest first"),
    (lambda pts: [p["name"] for p in sorted(pts, key=lambda p: p["size_bytes"])], "is dominated by"),
    (lambda pts: front(pts)[1:], "You left out 's90'"),
    (lambda pts: [p for p in pts if p["name"] in front(pts)], "not the dicts"),
    (lambda pts: set(front(pts)), "Return a list of names"),
    (lambda pts: front(pts) + front(pts)[:1], "more than once"),
    (lambda pts: [n.upper() for n in front(pts)], "is not the name of any point"),
    (sorts_in_place, "changed its input `points` in place"),
])
def test_typical_mistakes_get_specific_feedback(wrong, fragment):
    assert_fails(check_pareto_front(wrong), fragment)


def test_the_success_messages_name_the_twins_where_they_live():
    import importlib

    from course.checks import check_pick_under_budget

    def pick_names(configs, max_size=None, max_latency=None, min_accuracy=None):
        fit = [c for c in configs if (max_size is None or c["size_bytes"] <= max_size)
               and (max_latency is None or c["latency_ms"] <= max_latency)
               and (min_accuracy is None or c["accuracy"] >= min_accuracy)]
        return max(fit, key=lambda c: c["accuracy"])["name"] if fit else None

    for result, name in ((check_pareto_front(front), "pareto_front"), (check_pick_under_budget(pick_names), "pick")):
        assert result.passed and f"course.lessons.tradeoffs.{name}" in result.message
        assert f"show({name})" in result.message
        assert callable(getattr(importlib.import_module("course.lessons.tradeoffs"), name))
