"""Checks for the core exercises: masks, thresholds, bytes, Taylor scores, the cubic schedule, budgets.

Each `check_<thing>(fn)` calls the learner's `fn` on small fixed cases, recognises the usual wrong answers
and says what is wrong. The filter exercises (L1 ranking, removing a filter) live in `exercises_surgery.py`
and are re-exported here. Reference solutions are in tests/test_checks.py, not in the library.
"""
from __future__ import annotations

import math

import torch

from course.checks._core import as_number, call, check, describe, fail, isclose, pct
from course.checks.exercises_surgery import check_l1_filter_ranking, check_remove_filter

__all__ = [
    "check_magnitude_mask", "check_global_threshold", "check_bitmask_fp16_bytes", "check_l1_filter_ranking",
    "check_remove_filter", "check_taylor_score", "check_cubic_schedule", "check_pick_under_budget",
]


def _keep_top(scores: torch.Tensor, m: int) -> torch.Tensor:
    """Bool mask keeping the `m` largest entries of `scores` (no ties in the check data)."""
    mask = torch.zeros(scores.numel(), dtype=torch.bool)
    mask[scores.flatten().argsort(descending=True)[:m]] = True
    return mask.view(scores.shape)


@check("magnitude mask")
def check_magnitude_mask(fn) -> str:
    """fn(weight, sparsity) -> bool mask shaped like weight, True = kept, pruning the round(sparsity·n) smallest |w|."""
    g = torch.Generator().manual_seed(0)
    cases = [(torch.randn(4, 5, generator=g), 0.3, ""),            # 20 weights, prune 6
             (torch.randn(8, 3, 3, 3, generator=g), 0.25, ""),     # a conv weight: 216 weights, prune 54
             (torch.randn(3, 4, generator=g), 0.0, " (sparsity 0.0: nothing may be pruned)")]
    for w, s, note in cases:
        case = f"{getattr(fn, '__name__', 'fn')}(weight of shape {tuple(w.shape)}, sparsity={s}){note}"
        mask = call(fn, w, s, names=("weight", "sparsity"), case=case)
        if not isinstance(mask, torch.Tensor):
            fail(f"Return a bool tensor shaped like the weight (True = kept); you returned {describe(mask)}.")
        if mask.shape != w.shape:
            fail(f"Your mask has shape {tuple(mask.shape)}, the weight {tuple(w.shape)}: return one entry per weight "
                 f"(reshape back with `.view(weight.shape)` if you flattened).")
        if mask.dtype != torch.bool:
            fail(f"Your mask has dtype {mask.dtype}; return a bool mask (`scores > t` is already bool, or use `.bool()`).")
        n, k = w.numel(), round(s * w.numel())
        right = _keep_top(w.abs(), n - k)
        if torch.equal(mask, right):
            continue
        kept = int(mask.sum())
        if torch.equal(~mask, right):
            fail(f"Your mask is True on the weights to prune. The course's convention is the opposite: True = kept, "
                 f"so that `weight * mask` zeroes the pruned weights.")
        if kept == k and torch.equal(mask, _keep_top(w.abs(), kept)):
            fail(f"Your mask keeps {pct(kept / n)} of the weights; the exercise asks to prune {pct(s)}, i.e. keep "
                 f"{pct(1 - s)}. Sparsity is the fraction removed (density = 1 - sparsity).")
        if torch.equal(mask, _keep_top(w, n - k)):
            neg = w.flatten()[(~mask).flatten()].min().item()
            fail(f"Your mask ranks the signed values, so it prunes large negative weights such as {neg:.3f}. "
                 f"Rank by magnitude |w| (`weight.abs()`).")
        if torch.equal(mask, _keep_top(w.abs(), kept)):
            extra = " Off by one at a threshold? Check `>` vs `>=`, and that `kthvalue(k)` is 1-based." \
                if abs((n - kept) - k) == 1 else ""
            fail(f"Your mask prunes {n - kept} of {n} weights ({pct((n - kept) / n)}); sparsity {s} means exactly "
                 f"{k}.{extra} Case: {case}.")
        fail(f"Your mask does not prune the smallest |w|: it keeps |w| = {w.abs()[mask].min().item():.3f} but prunes "
             f"|w| = {w.abs()[~mask].max().item():.3f}. Case: {case}." if 0 < kept < n else
             f"Your mask keeps {kept} of {n} weights; expected {n - k}. Case: {case}.")
    return "Correct: the mask keeps the largest |w|, prunes exactly round(sparsity·n) weights, for any shape."


def _thresholds_ok(values: torch.Tensor, t: float, s: float) -> bool:
    """Whether pruning `|w| <= t` or `|w| < t` removes floor or ceil of s·N of `values` (all already |w|)."""
    ks = {math.floor(s * values.numel()), math.ceil(s * values.numel())}
    return int((values <= t).sum()) in ks or int((values < t).sum()) in ks


@check("global threshold")
def check_global_threshold(fn) -> str:
    """fn(dict name -> weight, sparsity) -> t such that pruning every |w| <= t over ALL layers removes sparsity·N."""
    g = torch.Generator().manual_seed(1)
    layers = {"conv1": torch.randn(8, 1, 3, 3, generator=g),        # large weights, 72
              "fc1": 0.05 * torch.randn(32, 16, generator=g),       # small weights, 512
              "fc2": 0.3 * torch.randn(13, 32, generator=g)}        # medium weights, 416 -> N = 1000
    flat = torch.cat([w.flatten() for w in layers.values()])
    mags = flat.abs()
    share = {}
    for s in (0.6, 0.2):
        out = call(fn, layers, s, names=("weights", "sparsity"),
                   case=f"{getattr(fn, '__name__', 'fn')}(3 layers with 1000 weights in all, sparsity={s})")
        t = as_number(out, "The threshold")
        if _thresholds_ok(mags, t, s):
            share = share or {name: float((w.abs() <= t).float().mean()) for name, w in layers.items()}
            continue
        if _thresholds_ok(flat, t, s):
            fail(f"Your threshold ({t:.4g}) ranks the signed weights; rank the magnitudes |w| of all layers.")
        if _thresholds_ok(mags, t, 1 - s):
            fail(f"Your threshold prunes {pct(1 - s)} of all weights; the exercise asks to prune {pct(s)} "
                 f"(sparsity = fraction removed).")
        for name, w in layers.items():
            if _thresholds_ok(w.abs().flatten(), t, s):
                fail(f"Your threshold ({t:.4g}) is layer {name!r}'s own threshold. A global threshold ranks the "
                     f"weights of all layers together: concatenate every |w| first, then pick the value.")
        local = [w.abs().flatten().sort().values for w in layers.values()]
        lo = sum(v[max(round(s * v.numel()) - 1, 0)].item() for v in local) / len(local)
        hi = sum(v[min(round(s * v.numel()), v.numel() - 1)].item() for v in local) / len(local)
        if lo - 1e-6 <= t <= hi + 1e-6:
            fail(f"Your threshold ({t:.4g}) is the average of the per-layer thresholds. A global threshold ranks "
                 f"the weights of all layers together: concatenate every |w| first, then pick the value.")
        fail(f"Pruning every |w| <= {t:.4g} removes {pct(float((mags <= t).float().mean()))} of all weights; "
             f"the exercise asks {pct(s)} (sparsity={s}).")
    spread = ", ".join(f"{name} {pct(v)}" for name, v in share.items())
    return (f"Correct. At 60% global sparsity your threshold prunes {spread}: small-weight layers lose far more "
            f"than the average, which is how global pruning can empty a layer (notebook 05).")


@check("bitmask + fp16 bytes")
def check_bitmask_fp16_bytes(fn) -> str:
    """fn(weight) -> ceil(n / 8) + 2·nnz: one bit per position (packed, rounded up to whole bytes) + 2 bytes per nonzero."""
    g = torch.Generator().manual_seed(2)
    w1 = torch.randn(3, 7, generator=g)
    w1.view(-1)[torch.randperm(21, generator=g)[:14]] = 0.0            # n = 21, nnz = 7
    w2 = torch.randn(4, 2, 3, 3, generator=g)
    w2.view(-1)[torch.randperm(72, generator=g)[:52]] = 0.0            # n = 72, nnz = 20
    for w in (w1, w2, torch.zeros(2, 5), torch.randn(8, generator=g)):
        n, nnz = w.numel(), int((w != 0).sum())
        got = as_number(call(fn, w, names=("weight",)), "The byte count")
        want = math.ceil(n / 8) + 2 * nnz
        if got == want:
            continue
        where = f"For a weight of shape {tuple(w.shape)} with {n} entries, {nnz} of them nonzero"
        known = {
            n / 8 + 2 * nnz: "a partial byte still takes a whole byte: round the bitmask up, ceil(n / 8)",
            n // 8 + 2 * nnz: "a partial byte still takes a whole byte: round the bitmask up, ceil(n / 8), not n // 8",
            n + 2 * nnz: "you counted one byte per mask bit; 8 mask bits pack into one byte, ceil(n / 8)",
            math.ceil(n / 8) + 4 * nnz: "that is 4 bytes per nonzero value (fp32); fp16 takes 2 bytes. (If you counted "
                                        "nonzeros with `weight.nonzero().numel()`, note it counts nnz × ndim.)",
            math.ceil(n / 8) + 2 * n: "you stored every value; store only the nonzero ones (2·nnz bytes)",
            math.ceil(nnz / 8) + 2 * nnz: "the bitmask has one bit for every position, zero or not: ceil(n / 8), not ceil(nnz / 8)",
            2 * nnz: "you forgot the bitmask itself (ceil(n / 8) bytes)",
            math.ceil(n / 8): "you forgot the values (2 bytes per nonzero)",
        }
        for value, why in known.items():
            if isclose(got, value):
                fail(f"{where}, you answered {got:g} bytes: {why}. Expected {want} = ceil({n}/8) + 2·{nnz}.")
        if not got.is_integer():
            fail(f"{where}, you answered {got:g}: a byte count is a whole number. Expected {want} = ceil({n}/8) + 2·{nnz}.")
        fail(f"{where}, you answered {got:g} bytes; expected {want} = ceil({n}/8) + 2·{nnz}.")
    return "Correct: ceil(n / 8) bytes of bitmask + 2 bytes per nonzero value, including the all-zero case."


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
    return "Correct: |w·g| for every weight, the first-order Taylor estimate of the loss change (Molchanov et al.)."


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


def _best(configs, limits: dict, strict: bool = False) -> str | None:
    fitting = [c for c in configs if _fits(c, limits, strict)]
    return max(fitting, key=lambda c: c["accuracy"])["name"] if fitting else None


@check("pick under a budget")
def check_pick_under_budget(fn) -> str:
    """fn(configs, max_size=None, max_latency=None, min_accuracy=None) -> name of the most accurate config within every
    given limit (size_bytes ≤ max_size, latency_ms ≤ max_latency, accuracy ≥ min_accuracy; None = no limit), or None."""
    cases = [{}, {"max_size": 200_000}, {"max_latency": 1.10}, {"max_size": 300_000, "max_latency": 1.5},
             {"max_latency": 1.0, "min_accuracy": 0.9}, {"max_size": 10_000}, {"min_accuracy": 0.912}]
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
    return "Correct: the most accurate config within every given limit (inclusive), None when nothing fits."
