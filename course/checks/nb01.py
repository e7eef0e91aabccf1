"""Checks for 01 · What is pruning: a magnitude mask, the achieved sparsity of a model, and where "free" pruning
ends on a curve.

Reference solutions: the notebook's own, between `### BEGIN SOLUTION` and `### END SOLUTION` in
notebooks/src/01_what_is_pruning.py; tests/notebook_solutions.py runs them against these checks.
"""
from __future__ import annotations

import math

import torch
from torch import nn

from course.checks._core import as_number, call, check, describe, fail, isclose, pct
from course.pruning.masks import apply_masks, remove_masks

__all__ = ["check_magnitude_mask", "check_achieved_sparsity", "check_largest_sparsity_within"]


def _prune_first(module: nn.Module, k: int) -> torch.Tensor:
    """A keep-mask for `module.weight` that prunes k pseudo-random positions (seeded)."""
    n = module.weight.numel()
    mask = torch.ones(n, dtype=torch.bool)
    mask[torch.randperm(n, generator=torch.Generator().manual_seed(k))[:k]] = False
    return mask.view(module.weight.shape)


def _models() -> list[tuple[nn.Module, str]]:
    """Small pruned models whose usual wrong answers all differ from the right one."""
    torch.manual_seed(0)
    mlp = nn.Sequential(nn.Linear(20, 10), nn.ReLU(), nn.Linear(10, 5))              # 200 + 50 weights
    mlp = apply_masks(mlp, {"0": _prune_first(mlp[0], 160), "2": _prune_first(mlp[2], 15)})   # 80% and 30%
    cnn = nn.Sequential(nn.Conv2d(1, 4, 3, bias=False), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(),
                        nn.Linear(4 * 6 * 6, 3))                                      # 36 + 432 weights
    cnn = apply_masks(cnn, {"0": _prune_first(cnn[0], 18), "4": _prune_first(cnn[4], 324)})  # 50% and 75%
    plain = remove_masks(apply_masks(nn.Sequential(nn.Linear(8, 6), nn.ReLU(), nn.Linear(6, 4)),
                                     {"0": _prune_first(nn.Linear(8, 6), 30)}))       # zeros, no masks
    return [(mlp, "an MLP, its layers 80% and 30% pruned (masks attached)"),
            (cnn, "a Conv2d + BatchNorm2d + Linear model, 50% and 75% pruned (masks attached)"),
            (plain, "a model pruned and then made permanent with remove_masks (zeros in the weights, no masks)"),
            (nn.Sequential(nn.Linear(5, 3)), "an unpruned nn.Linear(5, 3)")]


def _counts(model: nn.Module) -> dict[str, float]:
    """The right answer and the usual wrong ones, for one model."""
    layers = [m for m in model.modules() if isinstance(m, (nn.Linear, nn.Conv2d))]
    zeros = [int((m.weight == 0).sum()) for m in layers]
    sizes = [m.weight.numel() for m in layers]
    params = list(model.parameters())
    named_weights = [p for name, p in model.named_parameters() if name.endswith("weight")]
    masks = [getattr(m, "prune_mask") for m in layers if hasattr(m, "prune_mask")]
    right = sum(zeros) / sum(sizes)
    return {
        "right": right,
        "density": 1 - right,
        "percent": 100 * right,
        "all_params": sum(int((p == 0).sum()) for p in params) / sum(p.numel() for p in params),
        "named_weights": sum(int((p == 0).sum()) for p in named_weights) / sum(p.numel() for p in named_weights),
        "layer_mean": sum(z / n for z, n in zip(zeros, sizes)) / len(sizes),
        "masks_only": (sum(int((~m).sum()) for m in masks) / sum(m.numel() for m in masks)) if masks else 0.0,
    }


@check("achieved sparsity")
def check_achieved_sparsity(fn) -> str:
    """fn(model) -> zeros / weights over every Linear and Conv2d weight tensor (biases and BatchNorm excluded)."""
    why = {
        "density": "that is the density (the fraction KEPT); sparsity = 1 − density is the fraction that is zero",
        "percent": "return a fraction in [0, 1], not a percentage",
        "all_params": "you counted every parameter, biases included; sparsity counts the Linear/Conv2d weights "
                      "(biases are never pruned, so they dilute the figure)",
        "named_weights": "you counted every parameter called 'weight', and BatchNorm's scale is one; count only "
                         "nn.Linear and nn.Conv2d weights (use isinstance, or course.prunable_layers)",
        "layer_mean": "you averaged the per-layer sparsities; a big layer holds more weights than a small one, so "
                      "add up the zeros and the weights over all layers first, then divide",
        "masks_only": "you counted the masks' False entries; count the zeros in the weights themselves, which works "
                      "also after remove_masks has dropped the masks",
    }
    for model, label in _models():
        case = f"{getattr(fn, '__name__', 'fn')}({label})"
        got = as_number(call(fn, model, names=("model",), case=case), "The sparsity")
        counts = _counts(model)
        if isclose(got, counts["right"]):
            continue
        for key, message in why.items():
            if not isclose(counts[key], counts["right"]) and isclose(got, counts[key]):
                fail(f"For {label} you answered {got:.4g}: {message}. Expected {counts['right']:.4g}.")
        fail(f"For {label} you answered {got:.4g}; expected {counts['right']:.4g} "
             f"(= zeros / weights over the Linear and Conv2d weights).")
    return ("Correct: zeros / weights over the Linear and Conv2d weights, with or without masks attached. "
            "course.layer_sparsity(model).overall.sparsity gives the same figure.")


def _answer(s: list[float], a: list[float], ref: float, tol: float, mode: str = "right"):
    """The right answer (`mode="right"`) or one of the usual wrong ones."""
    if mode == "relative":
        ok = [x >= ref * (1 - tol) - 1e-12 for x in a]
    elif mode == "strict":
        ok = [x > ref - tol + 1e-12 for x in a]
    elif mode == "tol_as_pp":
        ok = [x >= ref - tol / 100 - 1e-12 for x in a]
    elif mode == "tol_times_100":
        ok = [x >= ref - tol * 100 - 1e-12 for x in a]
    else:
        ok = [x >= ref - tol - 1e-12 for x in a]
    if mode == "anywhere":
        within = [si for si, o in zip(s, ok) if o]
        return max(within) if within else 0.0
    if mode == "first_failing":
        return next((si for si, o in zip(s, ok) if not o), None)
    best, index = 0.0, None
    for i, (si, o) in enumerate(zip(s, ok)):
        if not o:
            break
        best, index = si, i
    if mode == "index":
        return index
    if mode == "accuracy":
        return None if index is None else a[index]
    return best


_WRONG = {
    "anywhere": "you took the largest sparsity whose point is within tolerance anywhere on the curve. A sparser "
                "point can come back within tolerance by chance (the test set is finite); free pruning ends at the "
                "FIRST point that drops more than tol, so stop there",
    "strict": "a point exactly tol below the reference is still within tolerance: use >= (or <= for the drop)",
    "relative": "you used a relative tolerance, reference·(1 − tol). tol is in percentage points: an absolute "
                "difference of accuracies, reference − tol",
    "tol_as_pp": "tol is a fraction like the accuracies (0.01 = 1 percentage point); you divided it by 100 again",
    "tol_times_100": "tol is a fraction like the accuracies (0.01 = 1 percentage point); don't multiply it by 100",
    "first_failing": "that is the first sparsity that drops more than tol; return the last one that does not",
    "index": "return the sparsity itself, not its position in the list",
    "accuracy": "return the sparsity, not the accuracy at that sparsity",
}


@check("largest sparsity within a tolerance")
def check_largest_sparsity_within(fn) -> str:
    """fn(sparsities, accuracies, reference, tol) -> largest s with every point up to s at accuracy >= reference - tol."""
    cases = [
        ([0.0, 0.2, 0.4, 0.6, 0.8, 0.9, 0.95], [0.90, 0.90, 0.899, 0.897, 0.885, 0.80, 0.50], 0.90, 0.01),
        ([0.0, 0.2, 0.4, 0.6, 0.8, 0.9, 0.95], [0.90, 0.90, 0.899, 0.897, 0.885, 0.80, 0.50], 0.90, 0.002),
        ([0.0, 0.5, 0.7, 0.8, 0.9], [0.80, 0.795, 0.78, 0.792, 0.50], 0.80, 0.01),
        ([0.0, 0.5, 0.7, 0.9], [0.90, 0.895, 0.8905, 0.60], 0.90, 0.01),
        ([0.0, 0.5, 0.8], [0.75, 0.625, 0.30], 0.75, 0.125),
        ([0.5, 0.9], [0.70, 0.60], 0.90, 0.01),
    ]
    for s, a, ref, tol in cases:
        case = (f"{getattr(fn, '__name__', 'fn')}(sparsities={s}, accuracies={a}, reference={ref}, tol={tol})")
        out = call(fn, list(s), list(a), ref, tol, names=("sparsities", "accuracies", "reference", "tol"), case=case)
        want = _answer(s, a, ref, tol)
        if out is None:
            fail(f"Your function returned None for {case}. When no point is within tolerance, return 0.0: pruning "
                 f"nothing is always free." if want == 0.0 else f"Your function returned None for {case}; "
                 f"expected {want}.")
        got = as_number(out, "The sparsity")
        if isclose(got, want):
            continue
        if want == 0.0 and isclose(got, s[0]):
            fail(f"For {case} you answered {got:g}, but even that first point is more than tol below the reference. "
                 f"When no point is within tolerance, return 0.0: pruning nothing is always free.")
        for mode, message in _WRONG.items():
            alt = _answer(s, a, ref, tol, mode)
            if alt is not None and not isclose(alt, want) and isclose(got, alt):
                fail(f"For {case} you answered {got:g}: {message}. Expected {want}.")
        drop = ", ".join(f"{si:g}: {pct(ref - ai)}" for si, ai in zip(s, a))
        fail(f"For {case} you answered {got:g}; expected {want}. The drops below the reference are {drop}; "
             f"tol = {pct(tol)}.")
    return ("Correct: the last sparsity before the first drop of more than tol, 0.0 if none qualifies. "
            "course.sweeps.largest_sparsity_within computes the same.")


def _keep_top(scores: torch.Tensor, m: int) -> torch.Tensor:
    """Bool mask keeping the `m` largest entries of `scores` (no ties in the check data)."""
    mask = torch.zeros(scores.numel(), dtype=torch.bool)
    mask[scores.flatten().argsort(descending=True)[:m]] = True
    return mask.view(scores.shape)


def _count_feedback(w: torch.Tensor, s: float, pruned: int, k: int, case: str) -> str:
    """Why a mask that prunes the smallest |w| prunes `pruned` weights instead of k = round(s·n)."""
    n = w.numel()
    head = f"Your mask prunes the {pruned} smallest of {n} weights; sparsity {s} means exactly round({s}·{n}) = {k}."
    if pruned == int(s * n) != k:
        return (f"{head} You truncated s·n = {s * n:g} with int(); round it to the nearest whole weight, "
                f"round(s·n) = {k}. Case: {case}.")
    q = torch.quantile(w.abs().flatten().double(), s).item()
    why = []
    if pruned == math.ceil(s * n) != k:
        why.append(f"You rounded s·n = {s * n:g} up; round it to the nearest whole weight instead.")
    if pruned in (int((w.abs() <= q).sum()), int((w.abs() < q).sum())) and pruned != k:
        why.append("torch.quantile interpolates between neighbouring values at position s·(n − 1), so the count it "
                   "prunes is not always round(s·n).")
    if why:
        return (f"{head} {' Or: '.join(why)} Take k = round(sparsity · n), the threshold kthvalue(k) (1-based: "
                f"the k-th smallest |w|), keep |w| > threshold, and keep everything when k = 0. Case: {case}.")
    if pruned == k - 1:
        return (f"{head} One too few: the weight at the threshold must go too. With threshold = kthvalue(k) "
                f"(the k-th smallest |w|), keep |w| > threshold, not >=. Case: {case}.")
    if pruned == k + 1:
        return (f"{head} One too many: kthvalue is 1-based, so kthvalue(k) is the k-th smallest |w| "
                f"(kthvalue(k + 1), or sorted[k] counting from 0, is one further). Case: {case}.")
    return f"{head} Case: {case}."


@check("magnitude mask")
def check_magnitude_mask(fn) -> str:
    """fn(weight, sparsity) -> bool mask shaped like weight, True = kept, pruning the round(sparsity·n) smallest |w|."""
    g = torch.Generator().manual_seed(0)
    cases = [(torch.randn(4, 5, generator=g), 0.3, ""),            # 20 weights, prune 6
             (torch.randn(8, 3, 3, 3, generator=g), 0.25, ""),     # a conv weight: 216 weights, prune 54
             (torch.randn(3, 4, generator=g), 0.0, " (sparsity 0.0: nothing may be pruned)"),
             (torch.randn(4, 5, generator=g), 0.33, " (0.33·20 = 6.6 rounds to 7)"),        # int() would give 6
             (torch.randn(3, 4, generator=g), 0.1, " (0.1·12 = 1.2 rounds to 1)"),          # quantile prunes 2
             (torch.randn(2, 3, generator=g), 1.0, " (sparsity 1.0: every weight is pruned)")]
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
            fail(_count_feedback(w, s, n - kept, k, case))
        fail(f"Your mask does not prune the smallest |w|: it keeps |w| = {w.abs()[mask].min().item():.3f} but prunes "
             f"|w| = {w.abs()[~mask].max().item():.3f}. Case: {case}." if 0 < kept < n else
             f"Your mask keeps {kept} of {n} weights; expected {n - k}. Case: {case}.")
    return "Correct: the mask keeps the largest |w|, prunes exactly round(sparsity·n) weights, for any shape."
