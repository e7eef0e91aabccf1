"""Checks of 03 · Structured pruning: the FLOPs of a convolution, counted as torch.utils.flop_counter counts them.

The filter exercises of that notebook use `check_l1_filter_ranking` and `check_remove_filter` (exercises_surgery).
"""
from __future__ import annotations

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from course.checks._core import as_number, call, check, fail, isclose

__all__ = ["check_conv_flops"]


def _out(size: int, k: int, s: int, p: int, d: int) -> int:
    """Output length of a convolution: floor((size + 2p - d(k - 1) - 1) / s) + 1."""
    return (size + 2 * p - d * (k - 1) - 1) // s + 1


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
            (nn.Conv2d(3, 4, (3, 1), bias=False), (6, 7))]            # non-square kernel and image


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
