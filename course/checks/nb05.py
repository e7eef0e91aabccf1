"""Checks for 05 · Local vs global scope: one global magnitude threshold, and whether any path from input to output
survives a chain of pruning masks.

Reference solutions: the notebook's own, between `### BEGIN SOLUTION` and `### END SOLUTION` in
notebooks/src/05_local_vs_global.py; tests/notebook_solutions.py runs them against these checks.

The masks below are made up (not measurements); each case is built so that a usual wrong answer (checking only that
every layer keeps a weight, reading a mask as (in, out), asking every output to be reachable) gives the wrong
verdict.
"""
from __future__ import annotations

import numpy as np
import torch

from course.checks._core import as_number, call, check, describe, fail, pct

__all__ = ["check_global_threshold", "check_chain_connected"]


def _connected(masks: list[torch.Tensor], every_output: bool = False) -> bool:
    """reach_0 = all inputs; reach_{l+1}[i] = any_j(M_l[i, j] and reach_l[j]); connected iff any(reach_L)."""
    reach = torch.ones(masks[0].shape[1], dtype=torch.bool)
    for m in masks:
        reach = (m & reach[None, :]).any(1)                                 # (out,)
    return bool(reach.all() if every_output else reach.any())


def _transposed(masks: list[torch.Tensor]) -> bool | None:
    """The verdict if each mask were read as (in, out); None when the shapes don't chain that way."""
    reach = torch.ones(masks[0].shape[0], dtype=torch.bool)
    for m in masks:
        if m.shape[0] != reach.numel():
            return None
        reach = (m & reach[:, None]).any(0)
    return bool(reach.any())


def _mask(shape: tuple[int, int], kept: list[tuple[int, int]]) -> torch.Tensor:
    m = torch.zeros(shape, dtype=torch.bool)
    for i, j in kept:
        m[i, j] = True
    return m


def _cases() -> list[tuple[str, list[torch.Tensor]]]:
    g = torch.Generator().manual_seed(5)
    dense = [torch.ones(4, 6, dtype=torch.bool), torch.ones(3, 4, dtype=torch.bool), torch.ones(2, 3, dtype=torch.bool)]
    sparse_path = [_mask((4, 6), [(2, 5)]), _mask((3, 4), [(0, 2)]), _mask((2, 3), [(1, 0)])]
    misaligned = [_mask((4, 6), [(0, 1), (0, 3)]), _mask((3, 4), [(2, 1), (1, 3)]), _mask((2, 3), [(0, 2), (1, 2)])]
    empty_layer = [torch.rand(4, 6, generator=g) > 0.3, torch.zeros(3, 4, dtype=torch.bool),
                   torch.rand(2, 3, generator=g) > 0.3]
    dead_end = [_mask((4, 4), [(0, 0), (1, 1)]), _mask((4, 4), [(2, 0), (3, 3)]), _mask((4, 4), [(1, 3)])]
    one_output = [torch.ones(4, 6, dtype=torch.bool), torch.ones(3, 4, dtype=torch.bool), _mask((2, 3), [(0, 1)])]
    square_flip = [_mask((3, 3), [(0, 1)]), _mask((3, 3), [(2, 0)])]
    return [("three dense layers (4x6, 3x4, 2x3)", dense),
            ("one weight per layer that lines up into a single path", sparse_path),
            ("every layer keeps weights, but the survivors do not line up", misaligned),
            ("the middle layer has every weight pruned", empty_layer),
            ("a unit is reached but its outgoing weights are pruned; other units have outgoing weights but are "
             "never reached", dead_end),
            ("only one of the two output units keeps an input", one_output),
            ("square masks where reading them as (in, out) gives the opposite verdict", square_flip)]


def _as_bool(value):
    """A one-element torch tensor, numpy bool or one-element bool array as a Python bool; anything else unchanged."""
    if isinstance(value, torch.Tensor) and value.numel() == 1:
        return bool(value)
    if isinstance(value, (np.bool_, np.ndarray)) and np.asarray(value).dtype == np.bool_ and np.asarray(value).size == 1:
        return bool(value)
    return value


@check("is the chain still connected?")
def check_chain_connected(fn) -> str:
    """fn(masks) -> True iff some input reaches some output through kept weights; masks[l] is bool (out, in)."""
    for what, masks in _cases():
        case = f"{getattr(fn, '__name__', 'fn')}(masks) with {what}"
        got = call(fn, [m.clone() for m in masks], names=("masks",), case=case)
        got = _as_bool(got)
        if not isinstance(got, bool):
            fail(f"Return True or False (a Python bool, numpy bool or one-element bool tensor); you returned "
                 f"{describe(got)}. "
                 f"Case: {case}.")
        want = _connected(masks)
        if got == want:
            continue
        if got and all(bool(m.any()) for m in masks):
            fail(f"Your function says connected, but no input reaches the output in this case ({what}). "
                 f"Checking that every "
                 f"layer keeps a weight is not enough; propagate which units are reachable, layer by layer: "
                 f"reach = (mask & reach[None, :]).any(1).")
        if got == _transposed(masks):
            fail(f"Read each mask as (out, in), like a Linear weight: row i is output unit i, column j input unit j. "
                 f"Your verdict matches reading them as (in, out). Case: {what}.")
        if got == _connected(masks, every_output=True):
            fail("One path is enough: the output depends on the input when ANY output unit is reachable, "
                 f"not only when all of them are (return reach.any(), not reach.all()). Case: {what}.")
        fail(f"Your function says {'connected' if got else 'not connected'}, but the answer is {want} ({what}). "
             f"A unit is reachable when it keeps a weight from a reachable unit of the layer before; start with "
             f"every input reachable.")
    return ("Correct: you propagated reachable units layer by layer. Every layer can keep weights and the chain "
            "can still be cut, when the survivors of consecutive layers do not line up.")


def _pruned(values: torch.Tensor, t: float) -> int:
    """How many of `values` pruning every value <= t removes."""
    return int((values <= t).sum())


def _thresholds_ok(values: torch.Tensor, t: float, s: float) -> bool:
    """Whether pruning every value <= t removes exactly k = round(s·N) of `values`."""
    return _pruned(values, t) == round(s * values.numel())


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
        k, removed = round(s * mags.numel()), _pruned(mags, t)
        if removed == k + 1:
            fail(f"Pruning every |w| <= {t:.4g} removes {removed} weights, one more than round(sparsity·N) = {k}: "
                 f"your threshold is the ({k + 1})-th smallest magnitude. kthvalue is 1-based: kthvalue(k) is the "
                 f"k-th smallest (sorted[k − 1] counting from 0).")
        if removed == k - 1:
            fail(f"Pruning every |w| <= {t:.4g} removes {removed} weights, one fewer than round(sparsity·N) = {k}: "
                 f"your threshold is the ({k - 1})-th smallest magnitude; return the k-th, kthvalue(k).")
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
