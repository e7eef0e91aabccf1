"""Checks for 03 · Structured pruning: ranking filters by L1 norm, removing one filter by surgery, and the FLOPs
of a convolution, counted as torch.utils.flop_counter counts them.

Reference solutions: the notebook's own, between `### BEGIN SOLUTION` and `### END SOLUTION` in
notebooks/src/03_structured.py; tests/notebook_solutions.py runs them against these checks.
"""
from __future__ import annotations

import math

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from course.checks._core import as_number, call, check, describe, fail, isclose

__all__ = ["check_l1_filter_ranking", "check_remove_filter", "check_conv_flops"]


def _out(size: int, k: int, s: int, p: int, d: int) -> int:
    """Output length of a convolution: floor((size + 2p - d(k - 1) - 1) / s) + 1."""
    return (size + 2 * p - d * (k - 1) - 1) // s + 1


def _out_unrounded(size: int, k: int, s: int, p: int, d: int) -> float:
    """The usual slip: true division, (size + 2p - d(k - 1) - 1) / s + 1, not floored."""
    return (size + 2 * p - d * (k - 1) - 1) / s + 1


def _counted(conv: nn.Conv2d, hw: tuple[int, int]) -> int:
    """FLOPs that torch's FlopCounterMode records for conv on one (C_in, H, W) image."""
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        conv(torch.zeros(1, conv.in_channels, *hw))
    return counter.get_total_flops()


def _cases() -> list[tuple[nn.Conv2d, tuple[int, int]]]:
    torch.manual_seed(9)
    return [(nn.Conv2d(3, 8, 3, padding=1), (8, 8)),                 # "same" padding: H_out = H
            (nn.Conv2d(4, 6, 5), (12, 12)),                           # no padding: 12 -> 8
            (nn.Conv2d(2, 5, 3, stride=2, padding=1), (9, 9)),        # stride 2: 9 -> 5
            (nn.Conv2d(3, 4, (3, 1), bias=False), (6, 7)),            # non-square kernel and image
            (nn.Conv2d(3, 4, 3, stride=2), (8, 10)),                   # uneven stride: 8 -> 3 (not 3.5), 10 -> 4
            (nn.Conv2d(2, 3, 3, padding=2, dilation=2), (7, 7))]       # dilation 2: a 3x3 kernel spans 5x5


@check("FLOPs of a convolution")
def check_conv_flops(fn) -> str:
    """fn(conv, in_hw) -> FLOPs of conv on one image of size in_hw = (H, W):
    2·C_in·k_h·k_w·C_out·H_out·W_out, H_out = floor((H + 2p - d(k_h - 1) - 1) / s) + 1 (groups = 1; the bias add
    is not counted)."""
    for conv, (h, w) in _cases():
        (kh, kw), (sh, sw), (ph, pw), (dh, dw) = conv.kernel_size, conv.stride, conv.padding, conv.dilation
        c_in, c_out = conv.in_channels, conv.out_channels
        ho, wo = _out(h, kh, sh, ph, dh), _out(w, kw, sw, pw, dw)
        want = 2 * c_in * kh * kw * c_out * ho * wo
        if want != _counted(conv, (h, w)):
            raise AssertionError(f"torch's conv FLOP count changed for {conv}")
        case = f"conv_flops({conv}, in_hw=({h}, {w}))"
        got = as_number(call(fn, conv, (h, w), names=("conv", "in_hw"), case=case), "The FLOP count")
        if got == want:
            continue
        known = [
            (want / 2, "that is the number of multiply-accumulates (MACs); torch's counter, like the course, counts "
                       "2 FLOPs per MAC (one multiply, one add)"),
            (want + c_out * ho * wo, "torch's FLOP counter does not count the bias adds; leave them out"),
            (want + c_out * ho * wo * 2, "torch's FLOP counter does not count the bias adds; leave them out"),
            (2 * c_in * kh * kw * c_out * h * w, "you used the input size; each output position costs one kernel's "
                                                 f"worth of MACs, and the output is {ho}×{wo}, not {h}×{w}"),
            (2 * kh * kw * c_out * ho * wo, "each output value sums over all C_in input channels: multiply by C_in"),
            (2 * c_in * kh * kw * ho * wo, "each of the C_out filters is applied at every position: multiply by C_out"),
            (2 * c_in * kh * kw * c_out * _out(h, kh, 1, ph, dh) * _out(w, kw, 1, pw, dw),
             f"you left out the stride: H_out = floor((H + 2p - k) / s) + 1 = {ho} here"),
            (2 * c_in * kh * kw * c_out * _out(h, kh, sh, 0, dh) * _out(w, kw, sw, 0, dw),
             f"you left out the padding: H_out = floor((H + 2p - k) / s) + 1 = {ho} here"),
            (2 * c_in * kh * kw * c_out * _out(h, kh, sh, ph, 1) * _out(w, kw, sw, pw, 1),
             f"you left out the dilation: a kernel with dilation d spans d·(k − 1) + 1 pixels, so H_out = "
             f"floor((H + 2p − d·(k − 1) − 1) / s) + 1 = {ho} here"),
            (2 * c_in * kh * kw * c_out * _out_unrounded(h, kh, sh, ph, dh) * _out_unrounded(w, kw, sw, pw, dw),
             f"you divided with `/`. A kernel position that would hang over the edge produces no output, so round "
             f"down with `//`: H_out = (H + 2p − d·(k − 1) − 1) // s + 1 = {ho} here, W_out = {wo}"),
            (2 * c_in * kh * kw * c_out * math.ceil(_out_unrounded(h, kh, sh, ph, dh))
             * math.ceil(_out_unrounded(w, kw, sw, pw, dw)),
             f"you rounded up. A kernel position that would hang over the edge produces no output, so round down "
             f"with `//`: H_out = {ho} here, W_out = {wo}"),
            (2 * c_in * kh * kh * c_out * ho * wo, f"the kernel is {kh}×{kw}: use kernel_size[0] · kernel_size[1]"),
            (2 * c_in * kh * kw * c_out * ho * ho, f"the output is {ho}×{wo}: use H_out · W_out, not H_out²"),
        ]
        for value, why in known:
            if isclose(got, value):
                fail(f"For {case} you answered {got:g}: {why}. "
                     f"Expected {want:,} = 2·{c_in}·{kh}·{kw}·{c_out}·{ho}·{wo}.")
        fail(f"For {case} you answered {got:g}; expected {want:,} = 2·C_in·k_h·k_w·C_out·H_out·W_out "
             f"= 2·{c_in}·{kh}·{kw}·{c_out}·{ho}·{wo}.")
    return ("Correct: 2·C_in·k_h·k_w·C_out·H_out·W_out, exactly torch's count. Removing a fraction r of the "
            "filters of two consecutive convs shrinks the second one's C_in and C_out, so its FLOPs fall to (1 - r)².")


def _spiky_and_flat() -> torch.Tensor:
    """A (6, 3, 2, 2) conv weight whose L1, L2, max and signed-sum rankings all differ."""
    g = torch.Generator().manual_seed(4)
    rows = []
    for level, spike in ((0.30, None), (0.05, 2.0), (0.20, None), (0.10, 1.5), (0.50, None), (0.02, 1.0)):
        mag = torch.full((12,), level)
        if spike is not None:
            mag[5] = spike
        rows.append(mag * torch.where(torch.rand(12, generator=g) < 0.5, -1.0, 1.0))
    return torch.stack(rows).view(6, 3, 2, 2)


def _as_indices(out, n: int) -> list[int]:
    """The learner's ranking as a list of ints; fails with a message for norms, wrong lengths or non-permutations."""
    if isinstance(out, torch.Tensor):
        if out.is_floating_point():
            fail(f"You returned float values ({describe(out)}), probably the sorted norms. Return the filter "
                 f"indices (`argsort`, or the `.indices` of `sort`).")
        out = out.flatten().tolist()
    try:
        idx = [int(i) for i in out]
    except (TypeError, ValueError):
        fail(f"Return the filter indices as a tensor or list of ints; you returned {describe(out)}.")
    if any(isinstance(i, float) and not float(i).is_integer() for i in out):
        fail("You returned float values, probably the sorted norms. Return the filter indices (`argsort`).")
    if len(idx) != n:
        fail(f"You returned {len(idx)} indices, the conv has {n} filters (output channels, dim 0). Sum |w| over "
             f"dims 1, 2, 3 (input channels and kernel) to get one L1 norm per filter.")
    if sorted(idx) != list(range(n)):
        fail(f"Your ranking {idx} is not a permutation of 0..{n - 1}: every filter appears exactly once.")
    return idx


@check("L1 filter ranking")
def check_l1_filter_ranking(fn) -> str:
    """fn(conv_weight (out, in, kh, kw)) -> filter indices sorted by ascending L1 norm Σ|w| over (in, kh, kw)."""
    g = torch.Generator().manual_seed(5)
    for w in (_spiky_and_flat(), torch.randn(16, 8, 3, 3, generator=g)):
        got = _as_indices(call(fn, w, names=("conv_weight",)), w.shape[0])
        l1 = w.abs().sum(dim=(1, 2, 3))
        want = l1.argsort().tolist()
        if got == want:
            continue
        known = [(want[::-1], "Your ranking is in descending order. The exercise asks ascending: the first index "
                              "is the least important filter, the one to remove first."),
                 (w.pow(2).sum(dim=(1, 2, 3)).argsort().tolist(), "This is the ranking by L2 norm (sum of w²). "
                                                                   "The exercise asks L1: Σ|w|."),
                 (w.sum(dim=(1, 2, 3)).argsort().tolist(), "You summed the signed weights. L1 sums magnitudes: Σ|w|."),
                 (w.abs().amax(dim=(1, 2, 3)).argsort().tolist(), "You ranked by the largest |w| of each filter. "
                                                                  "L1 sums all of them: Σ|w|.")]
        for ranking, why in known:
            if got == ranking:
                fail(why)
        fail(f"Expected {want} (L1 norms ascending: {[round(v, 3) for v in l1[want].tolist()]}); you returned {got}.")
    return "Correct: filters ranked by ascending L1 norm Σ|w| over (in, kh, kw), the pruning order of Li et al. 2017."


def _modules(bias: bool) -> tuple[nn.Conv2d, nn.BatchNorm2d, nn.Conv2d]:
    """conv(3 -> 5, 3x3, pad 1) -> BN(5) -> conv(5 -> 4), with BN statistics that are not the defaults."""
    torch.manual_seed(6)
    conv, bn, nxt = nn.Conv2d(3, 5, 3, padding=1, bias=bias), nn.BatchNorm2d(5), nn.Conv2d(5, 4, 3, padding=1)
    with torch.no_grad():
        for t in (bn.weight, bn.bias, bn.running_mean):
            t.copy_(torch.randn(5))
        bn.running_var.copy_(torch.rand(5) + 0.5)
    return conv, bn, nxt


_GEOMETRY = ("kernel_size", "stride", "padding", "dilation", "groups")


def _same_values(name: str, new: torch.Tensor | None, want: torch.Tensor, full: int, idx: int, what: str) -> None:
    """Fail with a message naming tensor `name` when `new` is not `want` (the original without entry `idx`)."""
    if new is None:
        fail(f"Your new {what} has no `{name}`; keep it, without entry {idx}.")
    if new.shape[0] == full:
        fail(f"Your new {what} still has {full} entries in `{name}`; drop entry {idx} (keep `{name}[keep]`).")
    if new.shape != want.shape or not torch.allclose(new.detach(), want):
        fail(f"Your new {what}'s `{name}` does not hold the original values without entry {idx} "
             f"(shape {tuple(new.shape)}, expected {tuple(want.shape)}): copy `old.{name}[keep]`.")


@check("remove a filter")
def check_remove_filter(fn) -> str:
    """fn(conv, bn, next_conv, idx) -> new (conv, bn, next_conv): filter idx gone from conv (weight, bias),
    from every BN tensor (weight, bias, running_mean, running_var) and from next_conv's input channels."""
    for bias, idx in ((True, 2), (True, 0), (True, 4), (False, 1)):
        conv, bn, nxt = _modules(bias)
        case = (f"{getattr(fn, '__name__', 'fn')}(Conv2d(3, 5, 3, padding=1, bias={bias}), BatchNorm2d(5), "
                f"Conv2d(5, 4, 3, padding=1), idx={idx})")
        out = call(fn, conv, bn, nxt, idx, names=("conv", "bn", "next_conv", "idx"), case=case)
        if not (isinstance(out, (tuple, list)) and len(out) == 3 and all(isinstance(m, nn.Module) for m in out)):
            fail(f"Return the three new modules as a tuple `(conv, bn, next_conv)`; you returned {describe(out)}.")
        c, b, n = out
        keep = [i for i in range(5) if i != idx]
        if not isinstance(c, nn.Conv2d) or not isinstance(b, nn.BatchNorm2d) or not isinstance(n, nn.Conv2d):
            fail(f"Return (Conv2d, BatchNorm2d, Conv2d) in that order; you returned "
                 f"({type(c).__name__}, {type(b).__name__}, {type(n).__name__}).")
        # the pruned conv
        if c.weight.shape[0] == 5:
            fail(f"Your new conv still has 5 filters; remove filter {idx}: keep `conv.weight[keep]` (dim 0). Case: {case}.")
        for j in set(range(5)) - {idx}:
            if torch.equal(c.weight.detach(), conv.weight[[i for i in range(5) if i != j]].detach()):
                fail(f"You removed filter {j}, not filter {idx} (off by one?). Case: {case}.")
        _same_values("weight", c.weight, conv.weight[keep].detach(), 5, idx, "conv")
        if c.out_channels != 4:
            fail(f"Your new conv's weight has 4 filters but `out_channels` says {c.out_channels}: build a new "
                 f"`nn.Conv2d(in, out - 1, ...)` instead of only replacing `.weight`.")
        if bias:
            _same_values("bias", c.bias, conv.bias[keep].detach(), 5, idx, "conv")
        elif c.bias is not None:
            fail("The original conv has no bias (bias=False, as before a BatchNorm) but yours has one, with random "
                 "values: pass `bias=conv.bias is not None` when you build the new conv.")
        for attr in _GEOMETRY:
            if getattr(c, attr) != getattr(conv, attr):
                fail(f"Your new conv has {attr}={getattr(c, attr)}, the original {getattr(conv, attr)}: copy "
                     f"{', '.join(_GEOMETRY)}.")
        # the BatchNorm that follows it
        if b.num_features == 5 and b.weight is not None and b.weight.shape[0] == 5:
            fail(f"Your BatchNorm still has 5 channels. It normalises the conv's outputs, so remove channel {idx} "
                 f"from its weight, bias, running_mean and running_var too.")
        for name in ("weight", "bias"):
            _same_values(name, getattr(b, name), getattr(bn, name)[keep].detach(), 5, idx, "BatchNorm")
        if b.running_mean is not None and torch.equal(b.running_mean, torch.zeros(4)) \
                and b.running_var is not None and torch.equal(b.running_var, torch.ones(4)):
            fail("Your BatchNorm has fresh running statistics (mean 0, var 1): copy `running_mean[keep]` and "
                 "`running_var[keep]` from the old one, or its eval-mode outputs change.")
        for name in ("running_mean", "running_var"):
            _same_values(name, getattr(b, name), getattr(bn, name)[keep], 5, idx, "BatchNorm")
        if b.num_features != 4 or b.eps != bn.eps:
            fail(f"Your BatchNorm has num_features={b.num_features}, eps={b.eps}; expected 4 and {bn.eps}.")
        # the next conv loses an input channel, not a filter
        if n.weight.shape[0] == 3 and n.weight.shape[1] == 5:
            fail(f"You removed output filter {idx} of the next conv. Its *input* channel {idx} must go "
                 f"(`next_conv.weight[:, keep]`, dim 1); its filters stay.")
        if n.weight.shape[1] == 5:
            fail(f"Your next conv still expects 5 input channels; remove input channel {idx}: "
                 f"`next_conv.weight[:, keep]` (dim 1).")
        if n.weight.shape != (4, 4, 3, 3) or not torch.allclose(n.weight.detach(), nxt.weight[:, keep].detach()):
            fail(f"Your next conv's weight should be `next_conv.weight[:, keep]`, shape (4, 4, 3, 3); yours has "
                 f"shape {tuple(n.weight.shape)} or other values.")
        if n.in_channels != 4:
            fail(f"Your next conv's weight has 4 input channels but `in_channels` says {n.in_channels}: build a new "
                 f"`nn.Conv2d(in - 1, out, ...)`.")
        if n.bias is None or not torch.allclose(n.bias.detach(), nxt.bias.detach()):
            fail("The next conv keeps all its filters, so keep its whole bias unchanged.")
        for attr in _GEOMETRY:
            if getattr(n, attr) != getattr(nxt, attr):
                fail(f"Your next conv has {attr}={getattr(n, attr)}, the original {getattr(nxt, attr)}.")
        # and the network computes what the old one computed with that filter switched off
        x = torch.randn(2, 3, 8, 8, generator=torch.Generator().manual_seed(7))
        with torch.no_grad():
            zeroed = nn.Conv2d(5, 4, 3, padding=1)
            zeroed.load_state_dict(nxt.state_dict())
            zeroed.weight[:, idx] = 0.0
            want = zeroed(torch.relu(bn.eval()(conv(x))))
            got = n.eval()(torch.relu(b.eval()(c.eval()(x))))
        if not torch.allclose(got, want, atol=1e-5):
            fail("Each tensor looks right but the three new modules do not compute what the old ones compute with "
                 "that filter switched off (eval mode). Check BatchNorm's affine/momentum settings.")
    return ("Correct: the filter is gone from the conv (and its bias), from every BatchNorm tensor, and from the next "
            "conv's input channels; in eval mode the network computes exactly what the old one did without it.")
