"""Checks for 06 · When to prune: the masked training step, the cubic sparsity schedule of Zhu & Gupta, and the
per-step targets of an iterative schedule with a constant prune rate.

Reference solutions: the notebook's own, between `### BEGIN SOLUTION` and `### END SOLUTION` in
notebooks/src/06_when_to_prune.py; tests/notebook_solutions.py runs them against these checks.
"""
from __future__ import annotations

import copy

import torch
from torch import nn

from course.checks._core import _Raised, as_number, call, check, describe, fail, isclose

__all__ = ["check_masked_step", "check_cubic_schedule", "check_iterative_targets"]


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


# --- the masked training step -----------------------------------------------------------------------------------

def _net() -> tuple[nn.Module, dict[str, torch.Tensor], torch.Tensor, torch.Tensor]:
    """A seeded 6-8-3 MLP, masks keyed by parameter name (half of each weight matrix, biases unmasked), one batch."""
    g = torch.Generator().manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 8), nn.ReLU(), nn.Linear(8, 3))
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.5)
    masks = {name: torch.rand(p.shape, generator=g) < 0.5 for name, p in model.named_parameters()
             if name.endswith("weight")}
    x = torch.randn(16, 6, generator=g)                                            # (16, 6)
    return model, masks, x, x[:, :3].argmax(1)                                     # y (16,)


def _prune(model: nn.Module, masks: dict[str, torch.Tensor]) -> None:
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name in masks:
                p.mul_(masks[name])


def _reference(model: nn.Module, opt: torch.optim.Optimizer, masks: dict[str, torch.Tensor], x, y, *,
               zero_grad: bool = True) -> float:
    """The right step: zero_grad, forward, loss, backward, g <- g·m, step, w <- w·m (without zero_grad: a slip)."""
    if zero_grad:
        opt.zero_grad()
    loss = nn.functional.cross_entropy(model(x), y)
    loss.backward()
    params = dict(model.named_parameters())
    with torch.no_grad():
        for name, mask in masks.items():
            params[name].grad.mul_(mask)
        opt.step()
        for name, mask in masks.items():
            params[name].mul_(mask)
    return loss.item()


def _setup(optimizer: str, warm: bool):
    """(model, optimizer, masks, x, y) and a reference copy; `warm`: dense steps first, so momentum exists at pruning."""
    model, masks, x, y = _net()
    make = (lambda m: torch.optim.SGD(m.parameters(), lr=0.1, momentum=0.9)) if optimizer == "sgd" else \
        (lambda m: torch.optim.Adam(m.parameters(), lr=0.01))
    opt = make(model)
    if warm:                                  # train dense first: the optimizer's state covers every weight
        for _ in range(3):
            opt.zero_grad()
            nn.functional.cross_entropy(model(x), y).backward()
            opt.step()
    _prune(model, masks)
    ref = copy.deepcopy(model)
    ref_opt = make(ref)
    ref_opt.load_state_dict(copy.deepcopy(opt.state_dict()))     # its own buffers: load_state_dict shares tensors
    return model, opt, masks, x, y, ref, ref_opt


def _step(fn, model, opt, masks, x, y, case: str):
    """Call the learner's step (it must change model and optimizer: `call` would call that an in-place change)."""
    frozen = {k: v.clone() for k, v in masks.items()}
    try:
        out = call(lambda: fn(model, opt, masks, x, y), case=case)
    except _Raised as raised:
        if isinstance(raised.exc, (AttributeError, TypeError)) and "NoneType" in str(raised.exc):
            fail("Your step read a gradient that is None: `param.grad` is None until `loss.backward()` fills it "
                 "(and `optimizer.zero_grad()` sets it back to None). Mask the gradients *after* "
                 f"loss.backward() and before optimizer.step(). ({type(raised.exc).__name__}: {raised.exc})")
        raise
    if list(masks) != list(frozen) or any(masks[k].dtype != torch.bool or not torch.equal(masks[k], frozen[k])
                                          for k in frozen):
        fail("Your step changed `masks`. Read the masks, never write them: they say which weights exist "
             "(a bool mask multiplies a float tensor as 0/1 as it is).")
    return out


def _pruned_max(model: nn.Module, masks: dict[str, torch.Tensor]) -> float:
    params = dict(model.named_parameters())
    return max(float(params[n].detach()[~m].abs().max()) if (~m).any() else 0.0 for n, m in masks.items())


def _momentum_on_pruned(opt: torch.optim.Optimizer, model: nn.Module, masks: dict[str, torch.Tensor]) -> float:
    params = dict(model.named_parameters())
    buffers = [(opt.state.get(params[n], {}).get("momentum_buffer"), m) for n, m in masks.items()]
    return max((float(b[~m].abs().max()) for b, m in buffers if b is not None and (~m).any()), default=0.0)


@check("the masked training step")
def check_masked_step(fn) -> str:
    """fn(model, optimizer, masks, x, y) -> loss: zero_grad, backward, g <- g·m, optimizer.step(), w <- w·m."""
    # 1. a fresh SGD optimizer: the pruned weights' gradients must be masked before the step
    model, opt, masks, x, y, ref, ref_opt = _setup("sgd", warm=False)
    case = "masked_train_step(model, SGD(momentum=0.9) fresh, masks, x, y)"
    loss = _step(fn, model, opt, masks, x, y, case)
    want = _reference(ref, ref_opt, masks, x, y)
    if loss is None:
        fail("Return the loss of the batch (computed before the step) as a number: `return loss.item()`.")
    got = as_number(loss.detach() if isinstance(loss, torch.Tensor) else loss, "The returned loss")
    if not isclose(got, want):
        fail(f"The returned loss is {got:.6g}; the cross-entropy of the batch before the step is {want:.6g}. "
             f"Return `loss.item()` of `F.cross_entropy(model(x), y)` computed before `optimizer.step()`.")
    moved = _pruned_max(model, masks)
    if moved > 0:
        fail(f"A pruned weight moved: after one step it is {moved:.3g}, not 0. Its gradient reached the optimizer "
             f"unmasked, and nothing put the weight back. Mask the gradients after loss.backward() (g <- g·m) and "
             f"re-apply the mask to the weights after optimizer.step() (w <- w·m).")
    if _momentum_on_pruned(opt, model, masks) > 0:
        fail("Your pruned weights end at zero, but the optimizer's momentum buffer holds velocity for them: the "
             "gradient reached optimizer.step() unmasked (masking before loss.backward() masks nothing: backward "
             "writes the full gradient afterwards). Mask `param.grad` after loss.backward(), before "
             "optimizer.step(); otherwise momentum and Adam's moments build up on weights that do not exist.")
    params, ref_params = dict(model.named_parameters()), dict(ref.named_parameters())
    if any(not torch.allclose(params[n], ref_params[n], atol=1e-6) for n in params):
        fail("After one step your kept weights (or biases) differ from one optimizer step on the masked gradient. "
             "Use the optimizer you are given (`optimizer.step()`), the cross-entropy loss, and mask only the "
             "parameters named in `masks`.")
    # 2. a second step: gradients must not pile up across calls
    _step(fn, model, opt, masks, x, y, case + ", called twice")
    _reference(ref, ref_opt, masks, x, y)
    if any(not torch.allclose(params[n], ref_params[n], atol=1e-6) for n in params):
        piled, piled_opt = _setup("sgd", warm=False)[:2]                  # the same two steps without zero_grad
        _reference(piled, piled_opt, masks, x, y)
        _reference(piled, piled_opt, masks, x, y, zero_grad=False)
        if all(torch.allclose(params[n], q, atol=1e-6) for n, q in piled.named_parameters()):
            fail("The first step is right but the second is not: gradients add up across calls unless you clear "
                 "them. Call optimizer.zero_grad() before loss.backward().")
        fail("The first step is right but the second differs from a second optimizer step. Use the optimizer you "
             "are given (`optimizer.step()`: its momentum matters from the second step on).")
    # 3. momentum built up on the dense network before pruning: only re-masking after the step stops regrowth
    for optimizer in ("sgd", "adam"):
        model, opt, masks, x, y, ref, ref_opt = _setup(optimizer, warm=True)
        name = "SGD(momentum=0.9)" if optimizer == "sgd" else "Adam"
        _step(fn, model, opt, masks, x, y, f"masked_train_step(model, {name} after 3 dense steps, masks, x, y)")
        _reference(ref, ref_opt, masks, x, y)
        moved = _pruned_max(model, masks)
        if moved > 0:
            fail(f"Momentum regrowth: with an optimizer ({name}) that trained the dense network before pruning, a "
                 f"pruned weight is {moved:.3g} after your step. Its momentum (Adam: its moments) still carries the "
                 f"velocity from before pruning, and a masked gradient does not clear it. Re-apply the mask to the "
                 f"weights *after* optimizer.step() (w <- w·m), as MIT 6.5940 Lab 1's pruner does.")
        params, ref_params = dict(model.named_parameters()), dict(ref.named_parameters())
        if any(not torch.allclose(params[n], ref_params[n], atol=1e-6) for n in params):
            fail(f"With {name} after dense training your kept weights differ from one masked optimizer step. Keep "
                 f"the optimizer and its state as given: call optimizer.step() once, without re-creating it.")
    return ("Correct: gradients masked after backward (no momentum builds up on pruned weights), one optimizer "
            "step, and the mask re-applied after it (momentum from before pruning cannot regrow them).")
