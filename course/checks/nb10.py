"""Checks for 10 · Pruning transformers: the Wanda score of one layer, and one Optimal Brain Surgeon step.

Reference solutions: the notebook's own, between `### BEGIN SOLUTION` and `### END SOLUTION` in
notebooks/src/10_transformers.py; tests/notebook_solutions.py runs them against these checks.

The weights, inputs and Hessians below are made up (not measurements); each case is built so that the usual wrong
answers (signed weights, squared or mean norms, the norm over the wrong axis, zeroing without compensating, the
wrong sign, dividing by the Hessian instead of its inverse) give a different answer from the right one.
"""
from __future__ import annotations

import torch

from course.checks._core import as_number, call, check, describe, fail

__all__ = ["check_wanda_score", "check_obs_step"]


def _close(a: torch.Tensor, b: torch.Tensor) -> bool:
    return a.shape == b.shape and bool(torch.allclose(a.double(), b.double(), rtol=1e-4, atol=1e-6))


def _wanda_cases() -> list[tuple[str, torch.Tensor, torch.Tensor]]:
    g = torch.Generator().manual_seed(10)
    X = torch.randn(40, 6, generator=g)
    X[:, 2] *= 15                                                      # one outlier feature
    X[:, 4] += 3                                                       # one feature with a large mean
    return [("W of shape (3, 6), X of 40 tokens × 6 features (feature 2 is an outlier)",
             torch.randn(3, 6, generator=g), X),
            ("W of shape (5, 4), X of 7 tokens × 4 features", torch.randn(5, 4, generator=g),
             torch.randn(7, 4, generator=g))]


@check("the Wanda score of one layer")
def check_wanda_score(fn) -> str:
    """fn(W, X) -> S with S_ij = |W_ij| · ‖X_j‖₂; W (out, in), X (tokens, in): the norm of feature j over all tokens."""
    for what, W, X in _wanda_cases():
        case = f"{getattr(fn, '__name__', 'fn')}(W, X) with {what}"
        got = call(fn, W, X, names=("W", "X"), case=case)
        if not isinstance(got, torch.Tensor):
            fail(f"Return a tensor shaped like W {tuple(W.shape)}; you returned {describe(got)}. Case: {case}.")
        want = W.abs() * X.norm(dim=0)
        if _close(got, want):
            continue
        if got.shape != W.shape:
            fail(f"The score has one entry per weight, shape {tuple(W.shape)} like W; you returned {describe(got)}. "
                 f"‖X_j‖₂ is a norm over the tokens (dim 0 of X), one value per input feature j, which then "
                 f"broadcasts along each row of W: W.abs() * X.norm(dim=0).")
        known = [
            (W * X.norm(dim=0), "Use |W_ij|: a large negative weight matters as much as a large positive one."),
            (W.abs() * X.square().sum(0), "You used the squared norm Σ x_j²; Wanda uses ‖X_j‖₂ = sqrt(Σ x_j²). "
                                          "The ranking within a row changes, because |W| is not squared."),
            (W.abs() * X.abs().mean(0), "You used the mean |x_j|; Wanda uses the L2 norm ‖X_j‖₂ = sqrt(Σ_t x_tj²)."),
            (W.abs() * X.mean(0), "You used the mean of x_j (signed); Wanda uses the L2 norm ‖X_j‖₂ over tokens."),
            (W.abs() * X.mean(0).abs(), "You used |mean x_j|; Wanda uses the L2 norm ‖X_j‖₂ over the tokens."),
            (W.abs() * X.std(0), "You used the standard deviation of x_j; Wanda uses the "
                                 "L2 norm ‖X_j‖₂, which keeps the mean in it."),
        ]
        for value, why in known:
            if _close(got, value):
                fail(f"{why} Case: {case}.")
        fail(f"Expected S = |W| · ‖X_j‖₂ (e.g. S[0, 0] = {want[0, 0]:.4f}), got S[0, 0] = "
             f"{float(got.flatten()[0]):.4f} for {what}.")
    W, X = _wanda_cases()[0][1:]
    S = W.abs() * X.norm(dim=0)
    kept = int((S[:, 2] >= S.median(dim=1, keepdim=True).values[:, 0]).sum())
    return (f"Correct: |W_ij| · ‖X_j‖₂. In the first case feature 2 is 15× larger than the others, so its weights "
            f"survive in {kept} of 3 rows at 50% per-row sparsity, small as they may be; magnitude alone ignores X.")


def _obs_cases() -> list[tuple[str, torch.Tensor, torch.Tensor, int]]:
    g = torch.Generator().manual_seed(11)
    X = torch.randn(50, 5, generator=g, dtype=torch.float64) @ torch.randn(5, 5, generator=g, dtype=torch.float64)
    H = 2 * X.T @ X / 50                                               # correlated inputs: the compensation matters
    w = torch.randn(5, generator=g, dtype=torch.float64)
    X2 = torch.randn(30, 4, generator=g, dtype=torch.float64) + 0.5 * torch.randn(30, 1, generator=g, dtype=torch.float64)
    H2 = 2 * X2.T @ X2 / 30
    return [("a row of 5 weights, correlated inputs, removing weight 3", w, torch.linalg.inv(H), 3),
            ("a row of 4 weights, removing weight 0", torch.randn(4, generator=g, dtype=torch.float64),
             torch.linalg.inv(H2), 0)]


@check("one OBS step")
def check_obs_step(fn) -> str:
    """fn(w, H_inv, j) -> (w_new, saliency): w_new = w − (w_j / [H⁻¹]_jj) · H⁻¹[j, :], saliency w_j² / [H⁻¹]_jj."""
    for what, w, Hinv, j in _obs_cases():
        case = f"{getattr(fn, '__name__', 'fn')}(w, H_inv, j={j}) with {what}"
        out = call(fn, w, Hinv, j, names=("w", "H_inv", "j"), case=case)
        if not (isinstance(out, (tuple, list)) and len(out) == 2 and isinstance(out[0], torch.Tensor)):
            fail(f"Return a pair (w_new, saliency): the updated weight row and the saliency number; you returned "
                 f"{describe(out)}. Case: {case}.")
        got, saliency = out[0].detach(), as_number(out[1], "The saliency")
        want = w - w[j] / Hinv[j, j] * Hinv[j]
        if got.shape != w.shape:
            fail(f"w_new must be shaped like w {tuple(w.shape)}; you returned {describe(got)}. Case: {case}.")
        if abs(float(got[j])) > 1e-6:
            if _close(got, w + w[j] / Hinv[j, j] * Hinv[j]):
                fail(f"Wrong sign: w_new[j] came out as 2·w_j. The step is δ = −(w_j / [H⁻¹]_jj) · H⁻¹[j, :], so "
                     f"that w_new[j] = w_j − w_j = 0. Case: {case}.")
            fail(f"After the step the pruned weight must be exactly 0, but w_new[{j}] = {float(got[j]):.4g}. "
                 f"Case: {case}.")
        if not _close(got, want):
            zeroed = w.clone()
            zeroed[j] = 0
            H = torch.linalg.inv(Hinv)
            known = [
                (zeroed, "You zeroed w_j but left the other weights as they were: that is magnitude pruning. OBS "
                         "moves them too, by δ = −(w_j / [H⁻¹]_jj) · H⁻¹[j, :], to compensate."),
                (w - w[j] / H[j, j] * H[j], "You used H where the step needs its inverse: δ = −(w_j / [H⁻¹]_jj) · "
                                            "H⁻¹[j, :]. You are given H_inv already."),
                (w - w[j] / Hinv[j, j] ** 2 * Hinv[j], "Divide by [H⁻¹]_jj once, not squared."),
            ]
            for value, why in known:
                fixed = value.clone()
                fixed[j] = 0
                if _close(got, fixed):
                    fail(f"{why} Case: {case}.")
            fail(f"w_new is not the OBS update (expected w_new[{(j + 1) % len(w)}] = {float(want[(j + 1) % len(w)]):.4f}, "
                 f"got {float(got[(j + 1) % len(w)]):.4f}). δ = −(w_j / [H⁻¹]_jj) · H⁻¹[j, :]. Case: {case}.")
        s_want = float(w[j] ** 2 / Hinv[j, j])
        if abs(saliency - s_want) > 1e-6 * max(1.0, s_want):
            for value, why in [(float(w[j] ** 2 * Hinv[j, j]), "multiplied by [H⁻¹]_jj; divide by it"),
                               (float(w[j] ** 2), "left out [H⁻¹]_jj: the saliency is w_j² / [H⁻¹]_jj"),
                               (float(w[j] ** 2 / Hinv[j, j] / 2), "halved it: ε = w_j² / [H⁻¹]_jj is 2× the error "
                                                                    "½ δᵀHδ, as the paper writes it")]:
                if abs(saliency - value) <= 1e-6 * max(1.0, abs(value)):
                    fail(f"The weight update is right, but the saliency is not: you {why}. Case: {case}.")
            fail(f"The weight update is right, but the saliency should be w_j² / [H⁻¹]_jj = {s_want:.4f}; you "
                 f"returned {saliency:.4f}. Case: {case}.")
    what, w, Hinv, j = _obs_cases()[0]
    H = torch.linalg.inv(Hinv)
    new = w - w[j] / Hinv[j, j] * Hinv[j]
    zeroed = w.clone()
    zeroed[j] = 0
    err = lambda v: float((v - w) @ H @ (v - w)) / 2
    return (f"Correct. In the first case zeroing w_3 alone costs ½δᵀHδ = {err(zeroed):.3f}; with the OBS "
            f"compensation it costs {err(new):.3f} (= saliency / 2): the other weights take over what w_3 did. "
            f"SparseGPT does this for every row of a layer at once.")
