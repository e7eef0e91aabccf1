"""Per-layer sparsity tables and layer-collapse detection for masked (or simply zero-filled) models.

Introduced in 01_what_is_pruning (layer collapse in 05_local_vs_global)
"""
from __future__ import annotations

import html
import warnings
from dataclasses import dataclass, field
from typing import NamedTuple

import torch
from torch import nn

from course.pruning.masks import MASK, prunable_layers

__all__ = ["LayerRow", "SparsityTable", "layer_sparsity", "masked_sparsity", "LayerCollapseWarning", "LayerUnits",
           "CollapseReport", "detect_layer_collapse"]


class LayerRow(NamedTuple):
    """One layer's count: sparsity = zeros / weights."""
    name: str
    shape: tuple[int, ...]
    weights: int
    zeros: int
    sparsity: float


class SparsityTable:
    """Per-layer sparsity of Linear/Conv2d weights plus the overall figure. Index by position or layer name."""

    def __init__(self, rows: list[LayerRow]):
        self.rows = list(rows)
        weights = sum(r.weights for r in rows)
        zeros = sum(r.zeros for r in rows)
        self.overall = LayerRow("overall", (), weights, zeros, zeros / weights if weights else 0.0)

    def __len__(self) -> int:
        return len(self.rows)

    def __iter__(self):
        return iter(self.rows)

    def __getitem__(self, key: int | str) -> LayerRow:
        if isinstance(key, str):
            for row in self.rows:
                if row.name == key:
                    return row
            raise KeyError(f"no prunable layer {key!r}; layers: {self.names}")
        return self.rows[key]

    @property
    def names(self) -> list[str]:
        return [r.name for r in self.rows]

    @property
    def sparsities(self) -> list[float]:
        return [r.sparsity for r in self.rows]

    def to_dict(self) -> dict[str, float]:
        """{layer name: sparsity}, overall excluded."""
        return {r.name: r.sparsity for r in self.rows}

    def plot(self, ax=None, **bar_kw):
        """Bar chart of per-layer sparsity with the overall figure as a dashed line; returns the axes."""
        import matplotlib.pyplot as plt

        if ax is None:  # a fresh figure: never draw over whatever figure happens to be current
            _, ax = plt.subplots(figsize=(6, 3))
        ax.bar(self.names, self.sparsities, **bar_kw)
        ax.axhline(self.overall.sparsity, ls="--", c="k", lw=1, label=f"overall {self.overall.sparsity:.1%}")
        ax.set(ylim=(0, 1), ylabel="sparsity")
        ax.legend()
        return ax

    def __repr__(self) -> str:
        lines = [f"{'layer':<12} {'shape':<18} {'weights':>9} {'zeros':>9} {'sparsity':>9}"]
        for r in [*self.rows, self.overall]:
            shape = "x".join(map(str, r.shape))
            lines.append(f"{r.name:<12} {shape:<18} {r.weights:>9,} {r.zeros:>9,} {r.sparsity:>9.2%}")
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        head = "".join(f"<th>{h}</th>" for h in ("layer", "shape", "weights", "zeros", "sparsity"))
        body = "".join(
            f"<tr><td>{html.escape(r.name)}</td><td>{'x'.join(map(str, r.shape))}</td><td>{r.weights:,}</td>"
            f"<td>{r.zeros:,}</td><td>{r.sparsity:.2%}</td></tr>" for r in [*self.rows, self.overall])
        return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def layer_sparsity(model: nn.Module) -> SparsityTable:
    """Sparsity = (#weights equal to 0) / #weights for every Linear/Conv2d weight, and overall.
    """
    rows = []
    for name, m in prunable_layers(model):
        n = m.weight.numel()
        zeros = int((m.weight.detach() == 0).sum())
        rows.append(LayerRow(name, tuple(m.weight.shape), n, zeros, zeros / n))
    return SparsityTable(rows)


def masked_sparsity(model: nn.Module) -> float:
    """Fraction of pruned weights over the layers that carry a mask (all Linear/Conv2d zeros if none does)."""
    masks = [m for m in (getattr(mod, MASK, None) for mod in model.modules()) if m is not None]
    if not masks:
        return layer_sparsity(model).overall.sparsity
    return sum(int((~m).sum()) for m in masks) / sum(m.numel() for m in masks)


class LayerCollapseWarning(UserWarning):
    """Pruning removed a whole layer (or cut every path from input to output)."""


class LayerUnits(NamedTuple):
    """Dead units of one layer: an output unit is dead when its whole row is 0, an input when its column is."""
    name: str
    dead_outputs: int
    outputs: int
    dead_inputs: int
    inputs: int


@dataclass
class CollapseReport:
    """What `detect_layer_collapse` found. Truthy when a layer collapsed or the network is disconnected."""
    collapsed: list[str]
    disconnected: bool
    cut_at: str | None = None
    layers: list[LayerUnits] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.collapsed) or self.disconnected

    def __str__(self) -> str:
        if not self:
            return "no layer collapse: every layer keeps weights and a path from input to output remains"
        parts = []
        if self.collapsed:
            parts.append(f"layers {self.collapsed} have every weight pruned")
        if self.cut_at is not None:
            parts.append(f"no path from the input survives past layer {self.cut_at!r}")
        if self.disconnected:
            parts.append("the output no longer depends on the input (disconnected)")
        return "layer collapse: " + "; ".join(parts)


def _connections(w: torch.Tensor) -> torch.Tensor:
    """(out, in) bool: does output unit i use input unit j through any nonzero weight (any kernel position)."""
    nz = w.detach() != 0                                                     # (out, in, *kernel)
    return nz.flatten(2).any(-1) if nz.dim() > 2 else nz


def detect_layer_collapse(model: nn.Module, *, warn: bool = True) -> CollapseReport:
    """Find layers whose weights are all zero, count dead units, and decide whether input still reaches output.

    disconnected = some layer is all zeros, or (for an nn.Sequential chain) no unit stays reachable from the input:
    reach_out[i] = any_j(W[i, j] != 0 and reach_in[j]), passed layer to layer (a Flatten maps channel c to its
    block of inputs). Biases do not count as a path: a dead unit still emits its bias, but it ignores the input.
    """
    layers = prunable_layers(model)
    collapsed, units = [], []
    reach: torch.Tensor | None = None
    cut_at = None
    for name, m in layers:
        conn = _connections(m.weight)                                         # (out, in)
        units.append(LayerUnits(name, int((~conn.any(1)).sum()), conn.shape[0],
                                int((~conn.any(0)).sum()), conn.shape[1]))
        if not conn.any():
            collapsed.append(name)
        if not isinstance(model, nn.Sequential):
            continue
        n_in = conn.shape[1]
        if reach is None or getattr(m, "groups", 1) != 1:
            r_in = torch.ones(n_in, dtype=torch.bool, device=conn.device)
        elif reach.numel() == n_in:
            r_in = reach
        elif n_in % reach.numel() == 0:                                      # Flatten after a conv: channel-major
            r_in = reach.repeat_interleave(n_in // reach.numel())
        else:
            r_in = torch.ones(n_in, dtype=torch.bool, device=conn.device)
        reach = (conn & r_in[None, :]).any(1)                                 # (out,)
        if cut_at is None and not reach.any():
            cut_at = name
    report = CollapseReport(collapsed, bool(collapsed) or cut_at is not None, cut_at, units)
    if warn and report:
        warnings.warn(str(report), LayerCollapseWarning, stacklevel=2)
    return report
