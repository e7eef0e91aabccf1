"""Checks of notebook 08: the solutions pass, stubs get the friendly message, the usual mistakes get specific feedback."""
from __future__ import annotations

import pytest

from course.checks import CheckResult, check_pick_ratios, check_speedup_bound
from notebook_solutions import solutions


def assert_fails(result: CheckResult, *fragments: str) -> None:
    assert isinstance(result, CheckResult)
    assert not result.passed, f"expected a failure, got: {result.message}"
    for fragment in fragments:
        assert fragment in result.message, f"{fragment!r} not in {result.message!r}"


# --- Exercise 08.1: per-layer ratios from a sensitivity scan ------------------------------------------------------

_NB08 = solutions('08_capstone_cifar10')                 # the notebook's own solutions (notebooks/src/)
pick_ratios = _NB08.pick_ratios
speedup_bound = _NB08.speedup_bound


def _variant(*, stop=True, relative=False, smallest=False, keep_empty=True, strict=False, test=None):
    def fn(scan, baseline, tolerance):
        out = {}
        for layer, accs in scan.items():
            passing = []
            for r in sorted(accs):
                d = baseline - accs[r]
                d = d / baseline if relative else d
                ok = test(accs[r], tolerance) if test else (d < tolerance if strict else d <= tolerance)
                if not ok and stop:
                    break
                if ok:
                    passing.append(r)
            if passing:
                out[layer] = min(passing) if smallest else max(passing)
            elif keep_empty:
                out[layer] = 0.0
        return out
    return fn


def test_pick_ratios_passes_the_solution():
    result = check_pick_ratios(pick_ratios)
    assert result.passed, result.message
    assert "largest ratio" in result.message


def test_pick_ratios_stub_says_not_done_yet():
    def stub(scan, baseline, tolerance):
        raise NotImplementedError("Exercise 08.1: per-layer ratios from a sensitivity scan")
    assert_fails(check_pick_ratios(stub), "Not done yet", "Exercise 08.1")


@pytest.mark.parametrize("wrong, fragments", [
    (_variant(stop=False), ("conv4", "stop at the first one")),
    (_variant(relative=True), ("relative drop",)),
    (_variant(smallest=True), ("LARGEST",)),
    (_variant(keep_empty=False), ("no entry for ['conv1']", "0.0")),
    (_variant(strict=True), ("≤ tolerance, not <",)),
    (_variant(test=lambda acc, tol: acc >= tol), ("Compare the DROP",)),
    (_variant(test=lambda acc, tol: acc >= 0.9 - 100 * tol), ("scale one of them by 100",)),
    (lambda scan, b, t: [0.0] * len(scan), ("Return a dict",)),
    (lambda scan, b, t: {k: b - min(v.values()) for k, v in scan.items()}, ("not one of the scanned ratios",)),
    (lambda scan, b, t: {k: max(v, key=v.get) for k, v in scan.items()}, ("conv1",)),
])
def test_pick_ratios_names_the_usual_mistakes(wrong, fragments):
    assert_fails(check_pick_ratios(wrong), *fragments)


def test_pick_ratios_catches_a_solution_that_relies_on_dict_order():
    def in_given_order(scan, baseline, tolerance):
        out = {}
        for layer, accs in scan.items():
            best = 0.0
            for r, a in accs.items():           # conv4's ratios are not stored sorted
                if baseline - a > tolerance:
                    break
                best = r
            out[layer] = best
        return out
    assert_fails(check_pick_ratios(in_given_order), "conv4")


def test_pick_ratios_catches_a_solution_that_changes_the_scan():
    def destructive(scan, baseline, tolerance):
        for accs in scan.values():
            accs.pop(0.75, None)
        return pick_ratios(scan, baseline, tolerance)
    assert_fails(check_pick_ratios(destructive), "changed its input `scan` in place")


# --- Exercise 08.2: the speedup bound -----------------------------------------------------------------------------


def test_speedup_bound_passes_the_solution_and_a_tensor_answer():
    import torch

    assert check_speedup_bound(speedup_bound).passed
    assert check_speedup_bound(lambda k, p: torch.tensor(speedup_bound(k, p))).passed


def test_speedup_bound_stub_says_not_done_yet():
    def stub(flop_ratio, fraction):
        raise NotImplementedError("Exercise 08.2: the speedup bound")
    assert_fails(check_speedup_bound(stub), "Not done yet", "Exercise 08.2")


@pytest.mark.parametrize("wrong, fragment", [
    (lambda k, p: k, "FLOP ratio itself"),
    (lambda k, p: (1 - p) + p / k, "its inverse"),
    (lambda k, p: (1 - p) + p * k, "averaged the speedups"),
    (lambda k, p: 1 / ((1 - p) + p * k), "k times SHORTER"),
    (lambda k, p: k / p, "forgot the part that does not shrink"),
    (lambda k, p: 1 / ((1 - p) + p / k) + 0.5, "expected 1 / ((1 − "),
    (lambda k, p: "fast", "should be a number"),
])
def test_speedup_bound_names_the_usual_mistakes(wrong, fragment):
    assert_fails(check_speedup_bound(wrong), fragment)


def test_speedup_bound_reports_an_exception_in_the_learner_code():
    def buggy(flop_ratio, fraction):
        return 1.0 / ((1.0 - fraction) + fraction / (flop_ratio - 4.0))   # k = 4 divides by zero
    assert_fails(check_speedup_bound(buggy), "ZeroDivisionError", "flop_ratio=4.0")
