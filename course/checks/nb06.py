"""Checks for 06 · When to prune: the cubic sparsity schedule of Zhu & Gupta, and the per-step targets of an
iterative schedule with a constant prune rate.

Reference solutions: the notebook's own, between `### BEGIN SOLUTION` and `### END SOLUTION` in
notebooks/src/06_when_to_prune.py; tests/notebook_solutions.py runs them against these checks.
"""
from __future__ import annotations

import torch

from course.checks._core import as_number, call, check, describe, fail, isclose

__all__ = ["check_cubic_schedule", "check_iterative_targets"]


def _targets(final_sparsity: float, steps: int) -> list[float]:
    """The right answer: p = 1 − (1 − s_f)^(1/K), s_k = 1 − (1 − p)^k for k = 1..K."""
    p = 1.0 - (1.0 - final_sparsity) ** (1.0 / steps)
    return [1.0 - (1.0 - p) ** k for k in range(1, steps + 1)]


def _as_list(value, what: str) -> list[float]:
    """A list/tuple/1-D tensor/array of numbers as a list of floats; anything else fails with a message."""
    if isinstance(value, torch.Tensor):
        if value.dim() != 1:
            fail(f"{what} should be a flat list of numbers, but your function returned {describe(value)}.")
        value = value.tolist()
    elif type(value).__module__ == "numpy" and hasattr(value, "tolist"):
        value = value.tolist()
    if not isinstance(value, (list, tuple)):
        fail(f"{what} should be a list of K numbers (one target per pruning step), but your function returned "
             f"{describe(value)}.")
    return [as_number(v, "Each target") for v in value]


def _close(a: list[float], b: list[float]) -> bool:
    return len(a) == len(b) and all(isclose(x, y) for x, y in zip(a, b))


@check("iterative targets with a constant prune rate")
def check_iterative_targets(fn) -> str:
    """fn(final_sparsity, steps) -> [s_1, ..., s_K]: p = 1 − (1 − s_f)^(1/K), s_k = 1 − (1 − p)^k."""
    for s_f, k in ((0.875, 3), (0.98, 4), (0.9, 2), (0.5, 1)):
        case = f"{getattr(fn, '__name__', 'fn')}(final_sparsity={s_f}, steps={k})"
        got = _as_list(call(fn, s_f, k, names=("final_sparsity", "steps"), case=case), "The targets")
        want = _targets(s_f, k)
        if _close(got, want):
            continue
        p = 1.0 - (1.0 - s_f) ** (1.0 / k)
        if len(got) == k + 1 and _close(got[1:], want):
            fail(f"Return the K = {k} targets s_1..s_K, without the starting point s_0 = 0 (you returned {len(got)} "
                 f"values). Case: {case}.")
        if len(got) == k and _close(got, [0.0] + want[:-1]):
            fail(f"Your list starts at s_0 = 0 and stops one step short of final_sparsity: `range(steps)` counts "
                 f"k = 0..K − 1. Use k = 1..K, `range(1, steps + 1)`, so the last target is {s_f}. Case: {case}.")
        if len(got) != k:
            fail(f"Return one target per pruning step: {k} values for steps={k}; you returned {len(got)}. "
                 f"Case: {case}.")
        if _close(got, [1.0 - v for v in want]):
            fail("Your values fall from 1 towards 1 − final_sparsity: those are densities (fraction kept). "
                 "Return sparsities s_k = 1 − (1 − p)^k (fraction removed).")
        if _close(got, [p] * k):
            fail(f"You returned the prune rate p = {p:.4g} of every step. Return the cumulative sparsity after each "
                 f"step: step k prunes p of the weights still left, so s_k = 1 − (1 − p)^k. Case: {case}.")
        if _close(got, [s_f * i / k for i in range(1, k + 1)]):
            fail("Your targets grow linearly (s_f·k/K). A constant prune rate removes the same fraction p of the "
                 "*surviving* weights at every step, so the targets grow geometrically: s_k = 1 − (1 − p)^k with "
                 "p = 1 − (1 − s_f)^(1/K).")
        if k > 1 and _close(got, [1.0 - (1.0 - s_f / k) ** i for i in range(1, k + 1)]):
            fail(f"With p = s_f/K your last target is {got[-1]:.4g}, not final_sparsity = {s_f}: K steps that each "
                 f"keep (1 − p) leave (1 − p)^K of the weights. Solve (1 − p)^K = 1 − s_f: p = 1 − (1 − s_f)^(1/K).")
        if k > 1 and _close(got, [1.0 - (1.0 - s_f ** (1.0 / k)) ** i for i in range(1, k + 1)]):
            fail("You took the K-th root of the sparsity. It is the *density* that multiplies: (1 − p)^K = 1 − s_f, "
                 "so p = 1 − (1 − s_f)^(1/K).")
        if not isclose(got[-1], s_f):
            fail(f"The last target must be final_sparsity = {s_f}; yours is {got[-1]:.6g}. Case: {case}.")
        if any(b < a for a, b in zip(got, got[1:])):
            fail(f"Your targets go down somewhere ({[round(v, 4) for v in got]}); sparsity only grows from step to "
                 f"step. Case: {case}.")
        i = next(i for i in range(k) if not isclose(got[i], want[i]))
        fail(f"Step {i + 1} of {k} (final_sparsity={s_f}): expected s_{i + 1} = 1 − (1 − p)^{i + 1} = {want[i]:.6g} "
             f"with p = {p:.4g}; yours is {got[i]:.6g}.")
    return ("Correct: p = 1 − (1 − s_f)^(1/K), and s_k = 1 − (1 − p)^k reaches final_sparsity exactly at step K "
            "(what course.pruning.schedules.step_sparsities(..., 'geometric') returns).")


@check("cubic sparsity schedule")
def check_cubic_schedule(fn) -> str:
    """fn(step, final_sparsity, begin, end) -> s_f·(1 − (1 − p)³), p = clamp((step − begin)/(end − begin), 0, 1)."""
    for s_f, begin, end, steps in ((0.8, 100, 1100, (0, 100, 350, 600, 850, 1100, 1500)),
                                   (0.5, 0, 10, tuple(range(13)))):
        def p(t: int) -> float:
            return min(max((t - begin) / (end - begin), 0.0), 1.0)

        got = [as_number(call(fn, t, s_f, begin, end, names=("step", "final_sparsity", "begin", "end")),
                         "The sparsity") for t in steps]
        want = [s_f * (1 - (1 - p(t)) ** 3) for t in steps]
        if all(isclose(a, b) for a, b in zip(got, want)):
            continue
        inside = [i for i, t in enumerate(steps) if begin < t < end]
        shapes = [([1 - v for v in want], "Your schedule returns the density (1 − sparsity): it starts at 1 "
                                          "and falls; sparsity starts at 0 and rises to final_sparsity."),
                  ([s_f * p(t) for t in steps], "Your schedule is linear in the step. Zhu & Gupta's is cubic: "
                                                "s_f·(1 − (1 − p)³), fast at first, slow near the end."),
                  ([s_f * p(t) ** 3 for t in steps], "Your schedule starts slow and ends fast (s_f·p³). Zhu & Gupta "
                                                     "prune fast early, while many weights are redundant, then slow "
                                                     "down: s_f·(1 − (1 − p)³)."),
                  ([s_f * (1 - (1 - min(max((t - begin) / (end - begin + 1), 0.0), 1.0)) ** 3) for t in steps],
                   "Your progress is (step − begin)/(end − begin + 1). Divide by (end − begin), so that the "
                   "schedule reaches final_sparsity exactly at step == end.")]
        for values, why in shapes:
            if all(isclose(got[i], values[i]) for i in inside):
                fail(why)
        at = dict(zip(steps, got))
        if not isclose(at[end], s_f):
            fail(f"At step == end ({end}) the schedule must reach final_sparsity = {s_f} exactly; yours gives "
                 f"{at[end]:.6g}. Divide by (end − begin).")
        if not isclose(at[steps[0]], 0.0):
            fail(f"Before `begin` nothing is pruned yet: at step {steps[0]} (begin={begin}) return 0.0, "
                 f"yours gives {at[steps[0]]:.6g}. Clamp the progress p to [0, 1].")
        if not isclose(at[steps[-1]], s_f):
            fail(f"After `end`, hold final_sparsity: at step {steps[-1]} (end={end}) return {s_f}, yours gives "
                 f"{at[steps[-1]]:.6g}. Clamp the progress p to [0, 1].")
        i = next(i for i in range(len(steps)) if not isclose(got[i], want[i]))
        fail(f"At step {steps[i]} (begin={begin}, end={end}, final_sparsity={s_f}) expected {want[i]:.6g} = "
             f"s_f·(1 − (1 − p)³) with p = {p(steps[i]):.4g}; yours gives {got[i]:.6g}.")
    return "Correct: 0 before begin, s_f·(1 − (1 − p)³) in between, final_sparsity from end on (Zhu & Gupta 2017)."


# Made-up configurations for the budget check (not measurements). Deliberately not sorted by accuracy.
