"""Calibration: what a layer sees. Forward hooks turn each layer's inputs on a few batches into the matrix X.

Post-training pruning (Wanda, SparseGPT) needs no labels and no gradients, only the inputs each layer receives on a
calibration set. X has one row per sample and token: a Linear's inputs (..., in) become (N·T, in); a Conv2d's
become its unfolded patches (`F.unfold`), (N·H'·W', C·kh·kw), so that y = W.flatten(1) x per position, exactly as
for a Linear. From X come the statistics: ‖X_j‖₂ per input feature (Wanda) and H = 2XᵀX/n (SparseGPT).
Introduced in 10_transformers
"""
from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from course.inputs import batches, eval_mode

__all__ = ["calibration_inputs", "check_layer", "layer_inputs", "forward_order", "InputStats", "collect_stats"]


def calibration_inputs(data: Any, num_batches: int | None = None) -> list[torch.Tensor]:
    """The inputs X of up to `num_batches` batches: a tensor X itself, or the X of an (X, y) pair / loader / batches."""
    if isinstance(data, torch.Tensor):                                 # labels are never needed, so X alone will do
        return [data]
    out = [x for x, _ in batches(data, limit=num_batches)]
    if not out:
        raise ValueError("data yielded no batches; pass a tensor X, an (X, y) pair or a DataLoader")
    return out


def check_layer(name: str, module: nn.Module) -> None:
    """Refuse, by name, a layer whose inputs cannot be written as X with y = W.flatten(1) x."""
    if isinstance(module, nn.Linear):
        return
    if isinstance(module, nn.Conv2d):
        if module.groups != 1:
            raise ValueError(f"layer {name!r} is a grouped or depthwise Conv2d (groups={module.groups}); calibration "
                             "statistics support groups=1 only. Leave it out with exclude=[...].")
        if module.padding_mode != "zeros" or isinstance(module.padding, str):
            raise ValueError(f"layer {name!r} uses padding={module.padding!r}, padding_mode={module.padding_mode!r}; "
                             "calibration statistics support integer zero padding only. Leave it out with exclude=[...].")
        return
    raise TypeError(f"layer {name!r} is a {type(module).__name__}; calibration statistics support nn.Linear and "
                    "nn.Conv2d. Leave it out with exclude=[...].")


def layer_inputs(module: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """The layer's input as X (samples, fan_in): Linear (..., in) -> (prod(...), in); Conv2d -> unfolded patches."""
    if isinstance(module, nn.Linear):
        return x.reshape(-1, x.shape[-1])                              # (N·T, in)
    cols = F.unfold(x, module.kernel_size, module.dilation, module.padding, module.stride)   # (N, C·kh·kw, L)
    return cols.transpose(1, 2).reshape(-1, cols.shape[1])             # (N·L, C·kh·kw)


@torch.no_grad()
def forward_order(model: nn.Module, names: list[str], x: torch.Tensor) -> list[str]:
    """`names` sorted by when each layer first runs in model(x) (module order can differ from the data flow)."""
    modules, seen = dict(model.named_modules()), []
    hooks = [modules[n].register_forward_hook(lambda m, i, o, n=n: seen.append(n) if n not in seen else None)
             for n in names]
    try:
        with eval_mode(model):
            model(x)
    finally:
        for h in hooks:
            h.remove()
    unused = [n for n in names if n not in seen]
    if unused:
        raise ValueError(f"layers {unused} never ran in a forward pass on the calibration data; leave them out with "
                         "exclude=[...]")
    return seen


class InputStats:
    """Running statistics of a layer's inputs X (n, d): the count n, Σ_i x_ij² per feature and, if asked, XᵀX."""

    def __init__(self, module: nn.Module, gram: bool = False):
        d = module.weight.flatten(1).shape[1]
        self.module, self.n = module, 0
        self.sq = torch.zeros(d, dtype=torch.float64)
        self.xtx = torch.zeros(d, d, dtype=torch.float64) if gram else None

    def add(self, x: torch.Tensor) -> None:
        """Fold in one batch of the layer's inputs (accumulated in float64 on the CPU)."""
        X = layer_inputs(self.module, x).detach().double().cpu()         # (n, d)
        self.n += X.shape[0]
        self.sq += (X * X).sum(dim=0)
        if self.xtx is not None:
            self.xtx += X.T @ X

    @property
    def norms(self) -> torch.Tensor:
        """‖X_j‖₂ = sqrt(Σ_i x_ij²) per input feature j over every calibration sample and token: (d,), float32."""
        return self.sq.sqrt().float()

    @property
    def hessian(self) -> torch.Tensor:
        """H = 2XᵀX/n, the Hessian of the layer's reconstruction error ‖WX − ŴX‖²/n w.r.t. a row of Ŵ: (d, d), float64."""
        if self.xtx is None:
            raise ValueError("these statistics were collected without gram=True, so they hold no XᵀX")
        return 2 * self.xtx / max(self.n, 1)

    def __repr__(self) -> str:
        return f"InputStats(features={len(self.sq)}, samples={self.n}, gram={self.xtx is not None})"


@torch.no_grad()
def collect_stats(model: nn.Module, names: list[str], inputs: list[torch.Tensor], *, gram: bool = False
                  ) -> dict[str, InputStats]:
    """Run `model` (eval mode, no grad) over the calibration `inputs` with hooks on `names`: {name: InputStats}."""
    modules = dict(model.named_modules())
    stats = {n: InputStats(modules[n], gram) for n in names}
    hooks = [modules[n].register_forward_hook(lambda m, i, o, n=n: stats[n].add(i[0])) for n in names]
    device = modules[names[0]].weight.device
    try:
        with eval_mode(model):
            for x in inputs:
                model(x.to(device))
    finally:
        for h in hooks:
            h.remove()
    return stats
