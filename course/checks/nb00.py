"""Checks for 00 · Setup and baselines: parameter counts and dense bytes by formula.

Reference solutions: the notebook's own, between `### BEGIN SOLUTION` and `### END SOLUTION` in
notebooks/src/00_setup_and_baselines.py; tests/notebook_solutions.py runs them against these checks.
"""
from __future__ import annotations

import torch
from torch import nn

from course.checks._core import as_number, call, check, fail, isclose

__all__ = ["check_linear_params", "check_dense_bytes"]

#: LeNet-300-100's three Linear layers, (in_features, out_features).
_LENET300 = ((784, 300), (300, 100), (100, 10))


@check("parameters of a Linear layer")
def check_linear_params(fn) -> str:
    """fn(in_features, out_features) -> out·in + out: one weight per (output, input) pair plus one bias per output."""
    for n_in, n_out in (*_LENET300, (3, 5), (1, 1)):
        case = f"{getattr(fn, '__name__', 'fn')}(in_features={n_in}, out_features={n_out})"
        got = as_number(call(fn, n_in, n_out, names=("in_features", "out_features"), case=case),
                        "The parameter count")
        want = n_out * n_in + n_out
        if isclose(got, want):
            continue
        known = [
            (n_in * n_out, "you counted the weights only; each output neuron also has one bias"),
            (n_in * n_out + n_in, "a Linear layer has one bias per OUTPUT neuron, not per input"),
            ((n_in + 1) * (n_out + 1), "there is no bias on the input side: out·in weights + out biases"),
            (n_in + n_out, "every output is connected to every input, so there are in·out weights, not in + out"),
            (n_in + n_out + n_out, "every output is connected to every input, so there are in·out weights"),
        ]
        for value, why in known:
            if isclose(got, value):
                fail(f"For {case} you answered {got:g}: {why}. Expected {want:,} = {n_out}·{n_in} + {n_out}.")
        fail(f"For {case} you answered {got:g}; expected {want:,} = out·in + out = {n_out}·{n_in} + {n_out}.")
    total = sum(o * i + o for i, o in _LENET300)
    parts = " + ".join(f"{o * i + o:,}" for i, o in _LENET300)
    return f"Correct: out·in + out. For LeNet-300-100: {parts} = {total:,} parameters, what count_params reports."


def _frozen_head() -> nn.Module:
    """Linear(6, 4) -> ReLU -> Linear(4, 3) with the first layer frozen, as when fine-tuning only a new head."""
    model = nn.Sequential(nn.Linear(6, 4), nn.ReLU(), nn.Linear(4, 3))
    model[0].requires_grad_(False)
    return model


@check("dense bytes of a layer")
def check_dense_bytes(fn) -> str:
    """fn(module) -> 4 · (number of parameters): every float32 parameter, weights and biases, at 4 bytes each."""
    torch.manual_seed(0)
    cases = [
        (nn.Linear(784, 300), "nn.Linear(784, 300)"),
        (nn.Conv2d(16, 32, 3, bias=False), "nn.Conv2d(16, 32, 3, bias=False)"),
        (nn.Sequential(nn.Linear(10, 4), nn.ReLU(), nn.Linear(4, 2)), "nn.Sequential(Linear(10, 4), ReLU, Linear(4, 2))"),
        (nn.Sequential(nn.Conv2d(1, 4, 3, bias=False), nn.BatchNorm2d(4)), "nn.Sequential(Conv2d(1, 4, 3, bias=False), BatchNorm2d(4))"),
        (_frozen_head(), "nn.Sequential(Linear(6, 4), ReLU, Linear(4, 3)) with the first Linear frozen "
                         "(requires_grad=False)"),
    ]
    for module, label in cases:
        got = as_number(call(fn, module, names=("module",), case=f"{getattr(fn, '__name__', 'fn')}({label})"),
                        "The byte count")
        n = sum(p.numel() for p in module.parameters())
        want = 4 * n
        if isclose(got, want):
            continue
        weights = sum(m.weight.numel() for m in module.modules() if isinstance(m, (nn.Linear, nn.Conv2d)))
        state = sum(t.numel() * t.element_size() for t in module.state_dict().values())
        entries = sum(t.numel() for t in module.state_dict().values())
        trainable = sum(p.numel() for p in module.parameters() if p.requires_grad)
        known = [
            (n, "that is the number of parameters; each float32 parameter takes 4 bytes"),
            (8 * n, "that counts 8 bytes per parameter (float64); PyTorch's parameters are float32, 4 bytes each"),
            (2 * n, "that counts 2 bytes per parameter (float16); PyTorch's parameters are float32, 4 bytes each"),
            (32 * n, "that is bits, not bytes: a float32 is 32 bits = 4 bytes"),
            (4 * weights, "you left out the biases (or the BatchNorm scale and shift); count every parameter"),
            (state, "you counted the buffers too (BatchNorm's running mean and variance, and its int64 batch "
                    "counter); they are saved in the file, but they are not parameters"),
            (4 * entries, "you counted the buffers too, at 4 bytes each (BatchNorm's running mean and variance, and "
                          "its batch counter, an int64); the file holds them, but they are not parameters: use "
                          "module.parameters(), not state_dict() or buffers()"),
            (4 * trainable, "you counted only the trainable parameters. A frozen parameter (requires_grad=False) "
                            "is still a parameter and still takes 4 bytes in the file; count every parameter"),
        ]
        for value, why in known:
            if value != want and isclose(got, value):
                fail(f"For {label} you answered {got:g} bytes: {why}. Expected {want:,} = 4 · {n:,} parameters.")
        fail(f"For {label} you answered {got:g} bytes; expected {want:,} = 4 bytes · {n:,} parameters.")
    return ("Correct: 4 bytes per float32 parameter. A saved file is a little larger (names, shapes, BatchNorm "
            "buffers, the zip container): compare with size_bytes(model, 'dense').")
