"""Checks for 07 · Metrics and trade-offs: picking the most accurate configuration under a budget, and extracting
the Pareto front of accuracy against size.

Reference solutions: the notebook's own, between `### BEGIN SOLUTION` and `### END SOLUTION` in
notebooks/src/07_metrics_tradeoffs.py; tests/notebook_solutions.py runs them against these checks.
"""
from __future__ import annotations

from course.checks._core import call, check, describe, fail

__all__ = ["check_pick_under_budget", "check_pareto_front"]

# Made-up operating points (not measurements), deliberately unsorted, with the traps: a tie in accuracy
# (u50 beats dense: as accurate and smaller), a tie in size (u95 beats s75), and two identical points (s90, twin).
_POINTS = (
    {"name": "s50", "accuracy": 0.897, "size_bytes": 270_000},
    {"name": "dense", "accuracy": 0.912, "size_bytes": 1_066_440},
    {"name": "u98", "accuracy": 0.790, "size_bytes": 45_000},
    {"name": "u90", "accuracy": 0.905, "size_bytes": 160_000},
    {"name": "s75", "accuracy": 0.871, "size_bytes": 120_000},
    {"name": "u50", "accuracy": 0.912, "size_bytes": 540_000},
    {"name": "s90", "accuracy": 0.802, "size_bytes": 40_000},
    {"name": "u95", "accuracy": 0.880, "size_bytes": 120_000},
)
_TWIN = {"name": "twin", "accuracy": 0.802, "size_bytes": 40_000}


def _beats(a: dict, b: dict) -> bool:
    """a dominates b: no larger, no less accurate, strictly better in one."""
    return (a["size_bytes"] <= b["size_bytes"] and a["accuracy"] >= b["accuracy"]
            and (a["size_bytes"] < b["size_bytes"] or a["accuracy"] > b["accuracy"]))


def _front(points) -> list[str]:
    kept = [p for p in points if not any(_beats(q, p) for q in points if q is not p)]
    return [p["name"] for p in sorted(kept, key=lambda p: (p["size_bytes"], -p["accuracy"]))]


def _same_front(got: list, want: list[str], points) -> bool:
    """Same names as `want`, each once, sizes non-decreasing; identical points (equal sizes) in any order."""
    if sorted(map(str, got)) != sorted(want) or not all(isinstance(g, str) for g in got):
        return False
    size = {p["name"]: p["size_bytes"] for p in points}
    return all(size[a] <= size[b] for a, b in zip(got, got[1:]))


def _strict_front(points) -> set[str]:
    """The usual slip: 'dominated' only when strictly smaller AND strictly more accurate."""
    return {p["name"] for p in points if not any(q["size_bytes"] < p["size_bytes"] and q["accuracy"] > p["accuracy"]
                                                 for q in points)}


def _reversed_front(points) -> set[str]:
    """Another slip: treating a larger file as better (maximising size)."""
    return {p["name"] for p in points if not any(
        q["size_bytes"] >= p["size_bytes"] and q["accuracy"] >= p["accuracy"]
        and (q["size_bytes"] > p["size_bytes"] or q["accuracy"] > p["accuracy"]) for q in points)}


def _describe_point(p: dict) -> str:
    return f"{p['name']!r} ({p['accuracy']:.1%}, {p['size_bytes']:,} B)"


@check("Pareto front")
def check_pareto_front(fn) -> str:
    """fn(points) -> names of the points no other point dominates (≤ size and ≥ accuracy, better in one), by size."""
    cases = [("the 8 points", list(_POINTS)), ("the 8 points plus 'twin', an exact copy of 's90'", [*_POINTS, _TWIN]),
             ("the same 9 points, 'twin' first", [_TWIN, *_POINTS]), ("one point", [_POINTS[0]])]
    for label, points in cases:
        points = [dict(p) for p in points]
        case = f"{getattr(fn, '__name__', 'fn')}({label})"
        got = call(fn, points, names=("points",), case=case)
        want = _front(points)
        if isinstance(got, (list, tuple)) and _same_front(list(got), want, points):
            continue
        if not isinstance(got, (list, tuple)):
            fail(f"Return a list of names (str), smallest first; you returned {describe(got)}. Case: {case}.")
        if got and all(isinstance(g, dict) for g in got):
            fail(f"Return the points' names (`p['name']`), not the dicts. Case: {case}.")
        by_name = {p["name"]: p for p in points}
        unknown = [g for g in got if g not in by_name]
        if unknown:
            fail(f"{unknown[0]!r} is not the name of any point; names are {sorted(by_name)}. Case: {case}.")
        if len(set(got)) != len(got):
            fail(f"Your list names a point more than once ({list(got)}); list each point of the front once. "
                 f"Case: {case}.")
        if set(got) == set(want):
            sizes = [by_name[g]["size_bytes"] for g in got]
            if sizes == sorted(sizes, reverse=True):
                fail(f"The right points, largest first. The exercise asks smallest size first (then the front reads "
                     f"left to right on a plot): reverse your list, or sort by size ascending. Case: {case}.")
            fail(f"The right points, not sorted by size: sort the front by size, smallest first (points of equal "
                 f"size in any order), e.g. {want}. Case: {case}.")
        if set(got) == _strict_front(points):
            extra = next(by_name[g] for g in got if g not in want)
            beater = next(q for q in points if _beats(q, extra))
            fail(f"You keep {_describe_point(extra)}, but {_describe_point(beater)} dominates it: at least as good "
                 f"on both axes and strictly better on one. A tie on one axis still counts as 'at least as good'.")
        if set(got) == _reversed_front(points):
            fail("Your front prefers larger files. Size is a cost: a point is better when it is *smaller* (and more "
                 "accurate), so q dominates p when q['size_bytes'] <= p['size_bytes'] and q['accuracy'] >= "
                 "p['accuracy'], strictly better in one.")
        missing = [by_name[w] for w in want if w not in got]
        extra = [by_name[g] for g in got if g not in want]
        if missing and any(p["name"] == "twin" for p in missing):
            fail("'twin' and 's90' are identical: neither is better on either axis, so neither dominates the other "
                 "and both stay on the front. Domination needs a strict improvement somewhere.")
        if extra:
            p = extra[0]
            beater = next(q for q in points if _beats(q, p))
            fail(f"{_describe_point(p)} is dominated by {_describe_point(beater)}: that one is no larger and at "
                 f"least as accurate. Keep only points nothing dominates. Case: {case}.")
        p = missing[0]
        fail(f"You left out {_describe_point(p)}, but no point is both no larger and at least as accurate (with one "
             f"of the two strictly better), so it is on the front. Case: {case}.")
    return ("Correct: exactly the non-dominated points, ties handled, smallest first. The library's twin is "
            "course.lessons.tradeoffs.pareto_front: compare with `show(pareto_front)`.")


_CONFIGS = (
    {"name": "structured-75", "accuracy": 0.871, "size_bytes": 120_000, "latency_ms": 0.62},
    {"name": "dense", "accuracy": 0.912, "size_bytes": 1_066_440, "latency_ms": 2.10},
    {"name": "structured-90", "accuracy": 0.802, "size_bytes": 40_000, "latency_ms": 0.30},
    {"name": "unstructured-90", "accuracy": 0.905, "size_bytes": 160_000, "latency_ms": 2.05},
    {"name": "structured-50", "accuracy": 0.897, "size_bytes": 270_000, "latency_ms": 1.10},
)
_LIMITS = (("max_size", "size_bytes", "≤"), ("max_latency", "latency_ms", "≤"), ("min_accuracy", "accuracy", "≥"))


def _fits(c: dict, limits: dict, strict: bool = False) -> bool:
    """Whether config `c` meets every limit that is not None (inclusive unless `strict`)."""
    for arg, key, op in _LIMITS:
        lim, value = limits[arg], c[key]
        if lim is None:
            continue
        if not (value <= lim if op == "≤" else value >= lim) or (strict and value == lim):
            return False
    return True


def _best(configs, limits: dict, strict: bool = False, falsy: bool = False) -> str | None:
    """The most accurate config within `limits`; `falsy=True` is the slip `if max_size and ...` (0 = no limit)."""
    if falsy:
        limits = {k: (v if v else None) for k, v in limits.items()}
    fitting = [c for c in configs if _fits(c, limits, strict)]
    return max(fitting, key=lambda c: c["accuracy"])["name"] if fitting else None


@check("pick under a budget")
def check_pick_under_budget(fn) -> str:
    """fn(configs, max_size=None, max_latency=None, min_accuracy=None) -> name of the most accurate config within every
    given limit (size_bytes ≤ max_size, latency_ms ≤ max_latency, accuracy ≥ min_accuracy; None = no limit), or None."""
    cases = [{}, {"max_size": 200_000}, {"max_latency": 1.10}, {"max_size": 300_000, "max_latency": 1.5},
             {"max_latency": 1.0, "min_accuracy": 0.9}, {"max_size": 10_000}, {"min_accuracy": 0.912},
             {"max_size": 0}, {"max_latency": 0, "min_accuracy": 0.0}]
    by_name = {c["name"]: c for c in _CONFIGS}
    for given in cases:
        limits = {"max_size": None, "max_latency": None, "min_accuracy": None, **given}
        configs = [dict(c) for c in _CONFIGS]
        shown = ", ".join(f"{k}={v!r}" for k, v in limits.items())
        case = f"{getattr(fn, '__name__', 'fn')}(the 5 configs, {shown})  [None means no limit]"
        got = call(fn, configs, names=("configs",), case=case, **limits)
        want = _best(_CONFIGS, limits)
        if got == want:
            continue
        if isinstance(got, dict):
            fail(f"Return the config's name (a str), e.g. `best['name']`, not the whole dict. Case: {case}.")
        if got is not None and not (isinstance(got, str) and got in by_name):
            if want is None:
                fail(f"No config meets this budget, so return None; you returned {got!r}. Case: {case}.")
            fail(f"{got!r} is not one of the config names {sorted(by_name)}; return a name or None. Case: {case}.")
        zero = [arg for arg, value in limits.items() if value is not None and not value]
        if zero and got == _best(_CONFIGS, limits, falsy=True):
            fail(f"{zero[0]}={limits[zero[0]]!r} is a limit, not 'no limit': `if {zero[0]}:` treats 0 like None. "
                 f"Test `{zero[0]} is None` (or `is not None`) instead. Case: {case}.")
        if got is not None:
            c = by_name[got]
            for arg, key, op in _LIMITS:
                if limits[arg] is not None and not _fits(c, {**dict.fromkeys(limits), arg: limits[arg]}):
                    fail(f"{got!r} breaks the budget: its {key} is {c[key]}, the limit is {arg} {op} {limits[arg]}. "
                         f"Case: {case}.")
        if got == _best(_CONFIGS, limits, strict=True):
            c = by_name[want]
            edge = next(f"{key} = {c[key]} equals {arg}" for arg, key, _ in _LIMITS if c[key] == limits[arg])
            fail(f"{want!r} is exactly at the limit ({edge}); a config meets a budget when it is at or within the "
                 f"limit (≤ for size and latency, ≥ for accuracy). Case: {case}.")
        if got is None:
            fail(f"{want!r} meets every limit, so the answer is not None. Case: {case}.")
        fail(f"{got!r} fits, but {want!r} fits too and is more accurate ({by_name[want]['accuracy']} vs "
             f"{by_name[got]['accuracy']}): pick the most accurate config within the budget. Case: {case}.")
    return ("Correct: the most accurate config within every given limit (inclusive), None when nothing fits. The "
            "library's twin is course.lessons.tradeoffs.pick: compare with `show(pick)`.")
