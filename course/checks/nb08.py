"""Checks for 08 · Capstone: per-layer ratios from a sensitivity scan, and the speedup bound of a FLOP cut (Amdahl).

Reference solutions: the notebook's own, between `### BEGIN SOLUTION` and `### END SOLUTION` in
notebooks/src/08_capstone_cifar10.py; tests/notebook_solutions.py runs them against these checks.

The scans below are made up (not measurements); each is built so that the usual wrong answers give different ratios
than the right one.
"""
from __future__ import annotations

import math

from course.checks._core import as_number, call, check, describe, fail, isclose, pct

__all__ = ["check_pick_ratios", "check_speedup_bound"]

# layer -> {ratio: accuracy}. conv4's ratios are stored out of order on purpose; conv4 recovers at 75% (noise).
_SCAN = {
    "conv1": {0.25: 0.840, 0.5: 0.600, 0.75: 0.300},    # sensitive: fails already at 25%
    "conv2": {0.25: 0.899, 0.5: 0.881, 0.75: 0.800},    # drop 0.019 at 50%: in for 0.02 absolute, out for relative
    "conv3": {0.25: 0.900, 0.5: 0.870, 0.75: 0.860},
    "conv4": {0.75: 0.895, 0.25: 0.893, 0.5: 0.860},    # fails at 50%, "passes" again at 75%
    "fc1": {0.25: 0.900, 0.5: 0.900, 0.75: 0.892},
}
_CASES = ((0.900, 0.02), (0.900, 0.0), (0.900, 0.05))


def _pick(scan: dict, baseline: float, tol: float, *, stop: bool = True, relative: bool = False,
          smallest: bool = False, drop_layers: bool = False, strict: bool = False, unsorted: bool = False) -> dict:
    """The right answer (defaults) and the usual wrong ones (flags); `unsorted`: the ratios in stored order, the
    last one before the first failure kept."""
    out = {}
    for layer, accs in scan.items():
        passing = []
        for r in (accs if unsorted else sorted(accs)):
            d = baseline - accs[r]
            d = d / baseline if relative else d
            ok = d < tol - 1e-12 if strict else d <= tol + 1e-12
            if not ok and stop:
                break
            if ok:
                passing.append(r)
        if passing:
            out[layer] = passing[-1] if unsorted else min(passing) if smallest else max(passing)
        elif not drop_layers:
            out[layer] = 0.0
    return out


def _as_ratios(got, case: str) -> dict:
    if not isinstance(got, dict):
        fail(f"Return a dict layer -> ratio (e.g. {{'conv1': 0.0, 'conv2': 0.5}}); you returned {describe(got)}. "
             f"Case: {case}.")
    out = {}
    for layer, r in got.items():
        out[layer] = as_number(r, f"The ratio of {layer!r}")
    return out


@check("per-layer ratios from a scan")
def check_pick_ratios(fn) -> str:
    """fn(scan {layer: {ratio: accuracy}}, baseline, tolerance) -> {layer: largest r such that EVERY scanned ratio
    <= r has baseline - accuracy <= tolerance}, 0.0 for a layer that fails already at its smallest ratio."""
    for baseline, tol in _CASES:
        scan = {layer: dict(accs) for layer, accs in _SCAN.items()}
        case = (f"{getattr(fn, '__name__', 'fn')}(a made-up scan of 5 layers at ratios 25/50/75%, "
                f"baseline={baseline}, tolerance={tol})")
        got = _as_ratios(call(fn, scan, baseline, tol, names=("scan", "baseline", "tolerance"), case=case), case)
        want = _pick(_SCAN, baseline, tol)
        if got == want:
            continue
        missing = sorted(set(want) - set(got))
        if missing and got == _pick(_SCAN, baseline, tol, drop_layers=True):
            fail(f"Your dict has no entry for {missing}: a layer that fails already at its smallest ratio gets 0.0 "
                 f"(do not prune it), so that every layer has a ratio. Case: {case}.")
        if set(got) != set(want):
            fail(f"Return one ratio for every layer of the scan {sorted(want)}; your keys are {sorted(got)}. "
                 f"Case: {case}.")
        scanned = {r for accs in _SCAN.values() for r in accs} | {0.0}
        odd = {k: v for k, v in got.items() if v not in scanned}
        if odd:
            layer, value = next(iter(odd.items()))
            fail(f"For {layer!r} you returned {value:g}, which is not one of the scanned ratios (0.25, 0.5, 0.75) "
                 f"or 0.0. Return the ratio itself, not its accuracy or its drop. Case: {case}.")
        if got == _pick(_SCAN, baseline, tol, stop=False):
            fail(f"conv4 drops by {pct(baseline - _SCAN['conv4'][0.5])} at 50% (over the tolerance {pct(tol)}) and "
                 f"only 'recovers' at 75% by chance (noise on a small calibration batch). Go through the ratios in "
                 f"increasing order and stop at the first one that breaks the tolerance: you returned "
                 f"conv4 -> {got['conv4']:g}, expected {want['conv4']:g}. Case: {case}.")
        if got == _pick(_SCAN, baseline, tol, unsorted=True):
            fail(f"The ratios of a layer may come in any order: conv4's are stored as {list(_SCAN['conv4'])}. "
                 f"Walk through them in increasing order, `for r in sorted(accs)`, and stop at the first one that "
                 f"breaks the tolerance: you returned conv4 -> {got['conv4']:g}, expected {want['conv4']:g}. "
                 f"Case: {case}.")
        if got == _pick(_SCAN, baseline, tol, relative=True):
            fail(f"You compared the relative drop (baseline − accuracy) / baseline with the tolerance. The "
                 f"tolerance is in accuracy points: baseline − accuracy ≤ {tol} (conv2 drops "
                 f"{baseline - _SCAN['conv2'][0.5]:.3f} at 50%, which is within {tol}). Case: {case}.")
        if got == _pick(_SCAN, baseline, tol, smallest=True):
            fail(f"You returned the smallest ratio that passes; the exercise asks for the LARGEST ratio each layer "
                 f"tolerates (the most pruning within the budget). Case: {case}.")
        if got == {k: max(v) for k, v in _SCAN.items()}:
            fail(f"Every layer got its largest scanned ratio, even conv1, which loses "
                 f"{pct(baseline - _SCAN['conv1'][0.25])} at 25%. Compare the DROP (baseline − accuracy) with the "
                 f"tolerance, not the accuracy itself; both are fractions ({tol} = {100 * tol:g} points), so do not "
                 f"scale one of them by 100. Case: {case}.")
        if got == _pick(_SCAN, baseline, tol, strict=True):
            fail(f"Within the tolerance means drop ≤ tolerance, not <: at tolerance {tol}, a ratio that costs no "
                 f"accuracy at all (conv3 and fc1 at 25%) must pass. Case: {case}.")
        wrong = next(k for k in want if got[k] != want[k])
        steps = ", ".join(f"{r:g}: drop {baseline - a:+.3f}" for r, a in sorted(_SCAN[wrong].items()))
        fail(f"For {wrong!r} you returned {got[wrong]:g}, expected {want[wrong]:g} (its scan: {steps}; tolerance "
             f"{tol}). Case: {case}.")
    return ("Correct: per layer, the largest ratio such that every ratio up to it stays within the tolerance, "
            "0.0 for a layer too sensitive to prune at all; ratios in any order, noise does not fool it.")


def _amdahl(k: float, p: float) -> float:
    return 1.0 / ((1.0 - p) + p / k)


@check("speedup bound (Amdahl)")
def check_speedup_bound(fn) -> str:
    """fn(flop_ratio k, fraction p) -> 1 / ((1 - p) + p / k): the speedup when a fraction p of the run time
    shrinks k-fold (k = dense FLOPs / pruned FLOPs of those layers) and the rest does not shrink at all."""
    # the first two cases tell every known mistake apart; the rest cover the edges (p = 1, k = 1, p = 0)
    cases = ((4.0, 0.8), (10.0, 0.5), (4.0, 1.0), (3.0, 0.9), (1.0, 0.7), (2.0, 0.0), (100.0, 0.95))
    for k, p in cases:
        case = f"{getattr(fn, '__name__', 'fn')}(flop_ratio={k}, fraction={p})"
        got = as_number(call(fn, k, p, names=("flop_ratio", "fraction"), case=case), "The speedup bound")
        want = _amdahl(k, p)
        if isclose(got, want):
            continue
        known = [
            (k, "that is the FLOP ratio itself, which holds only if ALL of the time shrinks (p = 1). Only the "
                "fraction p shrinks k-fold; the other 1 − p of the time stays"),
            ((1 - p) + p / k, "that is the pruned run time as a fraction of the dense one; the speedup is its "
                              "inverse, 1 / ((1 − p) + p / k)"),
            ((1 - p) + p * k, "you averaged the speedups (p·k + (1 − p)); Amdahl adds the TIMES: the pruned part "
                              "takes p / k, the rest 1 − p, and the speedup is 1 / (sum)"),
            (1 / ((1 - p) + p * k), "you multiplied the pruned part's time by k; it becomes k times SHORTER (p / k), "
                                    "since k = dense FLOPs / pruned FLOPs > 1"),
            (k / p if p else math.inf, "you forgot the part that does not shrink: the time is (1 − p) + p / k, "
                                       "not p / k"),
            (p * k, "the time that does not shrink, 1 − p, limits the speedup: 1 / ((1 − p) + p / k)"),
        ]
        for value, why in known:
            if isclose(got, value):
                fail(f"For k = {k:g} and p = {p:g} you returned {got:.4g}: {why}. Expected {want:.4g}. Case: {case}.")
        fail(f"For k = {k:g} and p = {p:g} you returned {got:.4g}; expected 1 / ((1 − {p:g}) + {p:g} / {k:g}) = "
             f"{want:.4g}. Case: {case}.")
    return (f"Correct: 1 / ((1 − p) + p / k). Even a 100× FLOP cut gives at most {_amdahl(100.0, 0.95):.1f}× when 5% "
            f"of the time (BatchNorm, ReLU, pooling, Python overhead) does not shrink.")
