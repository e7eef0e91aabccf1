"""Per-layer sparsity tables and layer-collapse detection for masked (or simply zero-filled) models.

`layer_sparsity` lists every weight matrix of a model (every parameter with two or more dimensions: Linear, Conv,
attention and recurrent weights, embeddings too), pruned or not, so an overall sparsity is over the whole model.
`detect_layer_collapse` decides "disconnected" only when the output really no longer depends on the input: by graph
reachability on a plain nn.Sequential chain, by two forward passes on different inputs otherwise.
Introduced in 01_what_is_pruning (layer collapse in 05_local_vs_global)
"""
from __future__ import annotations

import html
import warnings
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import torch
from torch import nn

from course.inputs import call, eval_mode, example_input, model_device, to_device
from course.pruning.masks import masked_parameters
from course.pruning.targets import Prunable, prunable_weights, weight_matrices

__all__ = ["LayerRow", "SparsityTable", "layer_sparsity", "masked_sparsity", "LayerCollapseWarning", "LayerUnits",
           "CollapseReport", "depends_on_input", "detect_layer_collapse"]


class LayerRow(NamedTuple):
    """One weight matrix's count: sparsity = zeros / weights; `masked` = it carries a course mask (it was pruned)."""
    name: str
    shape: tuple[int, ...]
    weights: int
    zeros: int
    sparsity: float
    masked: bool = False


class SparsityTable:
    """Per-layer sparsity of every weight matrix plus the overall figure. Index by position or key ("fc1")."""

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
            raise KeyError(f"no weight matrix {key!r}; weight matrices: {self.names}")
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

    def _unmasked(self) -> bool:
        """Whether some rows carry a mask and others do not (then a 'pruned' column says which)."""
        return len({r.masked for r in self.rows}) > 1

    def __repr__(self) -> str:
        width = max([12, *(len(r.name) + 1 for r in self.rows)])
        extra = self._unmasked()
        lines = [f"{'layer':<{width}} {'shape':<18} {'weights':>9} {'zeros':>9} {'sparsity':>9}"
                 + ("  pruned" if extra else "")]
        for r in [*self.rows, self.overall]:
            shape = "x".join(map(str, r.shape))
            flag = ("  yes" if r.masked else "  no" if r.name != "overall" else "") if extra else ""
            lines.append(f"{r.name:<{width}} {shape:<18} {r.weights:>9,} {r.zeros:>9,} {r.sparsity:>9.2%}{flag}")
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        extra = self._unmasked()
        head = "".join(f"<th>{h}</th>" for h in ("layer", "shape", "weights", "zeros", "sparsity")
                       + (("pruned",) if extra else ()))
        body = "".join(
            f"<tr><td>{html.escape(r.name)}</td><td>{'x'.join(map(str, r.shape))}</td><td>{r.weights:,}</td>"
            f"<td>{r.zeros:,}</td><td>{r.sparsity:.2%}</td>"
            + (f"<td>{'yes' if r.masked else 'no' if r.name != 'overall' else ''}</td>" if extra else "") + "</tr>"
            for r in [*self.rows, self.overall])
        return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def layer_sparsity(model: nn.Module) -> SparsityTable:
    """Sparsity = (#weights equal to 0) / #weights for every weight matrix (pruned or not, tied ones once), and
    overall = Σ zeros / Σ weights over all of them."""
    rows = []
    for t in weight_matrices(model):
        w = t.weight.detach()
        zeros = int((w == 0).sum())
        rows.append(LayerRow(t.name, tuple(w.shape), w.numel(), zeros, zeros / w.numel(), t.mask is not None))
    return SparsityTable(rows)


def masked_sparsity(model: nn.Module) -> float:
    """Fraction of pruned weights over the parameters that carry a mask (over every weight matrix if none does)."""
    masks = [mask for _, _, _, mask in masked_parameters(model)]
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
    """What `detect_layer_collapse` found. Truthy when a layer collapsed or the network is disconnected.

    `checked`: how "disconnected" was decided: "graph" (reachability through a plain chain), "forward" (two forward
    passes on different inputs), or "no" (not decided: pass example_inputs=).
    """
    collapsed: list[str]
    disconnected: bool
    cut_at: str | None = None
    layers: list[LayerUnits] = field(default_factory=list)
    checked: str = "graph"

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
        elif self.checked == "forward":
            parts.append("the output still depends on the input (another path, such as a residual, carries it)")
        elif self.checked == "no":
            parts.append("whether the output still depends on the input was not tested: pass example_inputs=")
        return "layer collapse: " + "; ".join(parts)


def _connections(w: torch.Tensor) -> torch.Tensor:
    """(out, in) bool: does output unit i use input unit j through any nonzero weight (any kernel position)."""
    nz = w.detach() != 0                                                     # (out, in, *kernel)
    return nz.flatten(2).any(-1) if nz.dim() > 2 else nz


def _collapsible(model: nn.Module) -> list[Prunable]:
    """The weights a collapse can empty: every prunable weight and every masked one."""
    prunable = {t.name for t in prunable_weights(model)}
    return [t for t in weight_matrices(model) if t.name in prunable or t.mask is not None]


def _plain_chain(model: nn.Module, targets: list[Prunable]) -> bool:
    """An nn.Sequential whose weights are the `weight` of its own Linear/Conv1d/Conv2d children: a pure chain."""
    children = dict(model.named_children()) if isinstance(model, nn.Sequential) else {}
    return bool(children) and all(t.attr == "weight" and children.get(t.module_name) is t.module
                                  and isinstance(t.module, (nn.Linear, nn.Conv1d, nn.Conv2d)) for t in targets)


def _chain_cut(targets: list[Prunable]) -> str | None:
    """The first layer past which no unit is reachable from the input: reach_out[i] = any_j(W[i, j] != 0 and
    reach_in[j]), passed layer to layer (a Flatten maps channel c to its block of inputs). None if a path remains."""
    reach: torch.Tensor | None = None
    for name, t in targets:
        conn = _connections(t.weight)                                         # (out, in)
        n_in = conn.shape[1]
        if reach is None or getattr(t.module, "groups", 1) != 1:
            r_in = torch.ones(n_in, dtype=torch.bool, device=conn.device)
        elif reach.numel() == n_in:
            r_in = reach
        elif n_in % reach.numel() == 0:                                      # Flatten after a conv: channel-major
            r_in = reach.repeat_interleave(n_in // reach.numel())
        else:
            r_in = torch.ones(n_in, dtype=torch.bool, device=conn.device)
        reach = (conn & r_in[None, :]).any(1)                                 # (out,)
        if not reach.any():
            return name
    return None


def _redraw(obj: Any, gen: torch.Generator) -> Any:
    """`obj` with every floating-point tensor replaced by fresh N(0, 1) draws of the same shape."""
    if isinstance(obj, torch.Tensor):
        return torch.randn(obj.shape, generator=gen).to(obj) if obj.is_floating_point() else obj
    if isinstance(obj, dict):
        return {k: _redraw(v, gen) for k, v in obj.items()}
    if isinstance(obj, (tuple, list)) and not hasattr(obj, "_fields"):
        return type(obj)(_redraw(v, gen) for v in obj)
    return obj


def _leaves(obj: Any) -> list[torch.Tensor]:
    if isinstance(obj, torch.Tensor):
        return [obj]
    values = obj.values() if isinstance(obj, dict) else obj if isinstance(obj, (tuple, list)) else ()
    return [t for v in values for t in _leaves(v)]


@torch.no_grad()
def depends_on_input(model: nn.Module, inputs: Any) -> bool | None:
    """Whether the output changes when the input does: a forward on `inputs`, then one with every float input
    redrawn and N(0, 1) noise added to every embedding's output (token ids stay valid). None: nothing to vary."""
    gen = torch.Generator().manual_seed(12345)
    other = _redraw(inputs, gen)
    embeddings = [m for m in model.modules() if isinstance(m, (nn.Embedding, nn.EmbeddingBag))]
    if not embeddings and all(a is b for a, b in zip(_leaves(inputs), _leaves(other))):
        return None

    def noise(module: nn.Module, args: Any, out: torch.Tensor) -> torch.Tensor:
        return out + torch.randn(out.shape, generator=gen).to(out)

    with eval_mode(model):
        first = _leaves(call(model, inputs))
        handles = [m.register_forward_hook(noise) for m in embeddings]
        try:
            second = _leaves(call(model, other))
        finally:
            for h in handles:
                h.remove()
    return not all(torch.equal(a, b) for a, b in zip(first, second))


def detect_layer_collapse(model: nn.Module, example_inputs: Any = None, *, warn: bool = True) -> CollapseReport:
    """Find weights that are all zero, count dead units, and decide whether the output still depends on the input.

    collapsed = prunable weights with every entry 0. disconnected: on a plain nn.Sequential chain of Linear/Conv
    layers, no unit stays reachable from the input through nonzero weights (`_chain_cut`; biases are no path: a
    dead unit still emits its bias, but it ignores the input). Any other model (residual adds, attention, recurrent
    layers): two eval-mode forward passes, on `example_inputs` (default: a random batch of `model.in_shape`) and on
    different inputs, give bitwise the same output (`depends_on_input`); without inputs it is not decided.
    """
    targets = _collapsible(model)
    collapsed, units = [], []
    for t in targets:
        conn = _connections(t.weight)                                         # (out, in)
        units.append(LayerUnits(t.name, int((~conn.any(1)).sum()), conn.shape[0],
                                int((~conn.any(0)).sum()), conn.shape[1]))
        if not conn.any():
            collapsed.append(t.name)
    if _plain_chain(model, targets):
        cut_at = _chain_cut(targets)
        report = CollapseReport(collapsed, bool(collapsed) or cut_at is not None, cut_at, units, "graph")
    else:
        inputs = example_inputs
        if inputs is None and getattr(model, "in_shape", None) is not None:
            inputs = example_input(model, batch_size=4)
        depends = None if inputs is None else depends_on_input(model, to_device(inputs, model_device(model)))
        report = CollapseReport(collapsed, depends is False, None, units, "no" if depends is None else "forward")
    if warn and report:
        warnings.warn(str(report), LayerCollapseWarning, stacklevel=2)
    return report
