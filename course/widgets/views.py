"""Views (engine + persistent figure) and the plain twins of the widgets: same code path, no widgets needed.

`explore_sparsity` and `compare_scopes` build a view and call its `update` once; the widgets call the very same
`update` on every control change. So a twin's numbers are exactly what the widget's readout shows.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from matplotlib.figure import Figure
from torch import nn

from course import arguments
from course.widgets.engine import ExplorerNumbers, PruningEngine
from course.widgets.figures import ScopeFigure, SparsityFigure

__all__ = ["ScopeComparison", "SparsityView", "ScopeView", "explore_sparsity", "compare_scopes", "default_layer"]


def default_layer(engine: PruningEngine, layer: str | None) -> str:
    """`layer` if it is a prunable layer; None -> the prunable layer with the most weights."""
    if layer is None:
        return max(engine.layers, key=lambda nm: nm[1].weight.numel())[0]
    return arguments.choice(layer, engine.layer_names, "layer")


@dataclass(frozen=True)
class ScopeComparison:
    """Local and global scope at the same overall sparsity."""

    local: ExplorerNumbers
    global_: ExplorerNumbers

    def readout(self) -> str:
        """'sparsity 90.0%: local accuracy 96.1%, global accuracy 97.4%' (+ the scopes that collapsed)."""
        text = (f"sparsity {self.local.sparsity:.1%}: local accuracy {self.local.accuracy:.1%}, "
                f"global accuracy {self.global_.accuracy:.1%}")
        collapsed = [n.scope for n in (self.local, self.global_) if n.collapse]
        return text + (f"; layer collapse under {' and '.join(collapsed)}" if collapsed else "")


class SparsityView:
    """An engine and a `SparsityFigure`; `update` prunes, measures and redraws in place."""

    def __init__(self, engine: PruningEngine, layer: str | None = None):
        self.engine = engine
        self.figure = SparsityFigure(engine, default_layer(engine, layer))
        self.result = None

    def __repr__(self) -> str:
        return f"SparsityView({self.engine!r}, {self.figure!r})"

    def update(self, setting: float, criterion: str = "magnitude", scope: str = "local",
               granularity: str = "weights") -> ExplorerNumbers:
        """Run the engine at this setting and move the figure to it; returns the numbers."""
        self.result = self.engine.run(setting, criterion, scope, granularity)
        self.figure.update(self.result)
        return self.result.numbers


class ScopeView:
    """An engine and a `ScopeFigure`; `update` prunes under both scopes at one sparsity and redraws."""

    def __init__(self, engine: PruningEngine):
        self.engine = engine
        self.figure = ScopeFigure(engine)

    def __repr__(self) -> str:
        return f"ScopeView({self.engine!r})"

    def update(self, sparsity: float, criterion: str = "magnitude") -> ScopeComparison:
        """Prune at `sparsity` with scope "local" and with scope "global"; returns both sets of numbers."""
        local = self.engine.run(sparsity, criterion, "local", "weights")
        global_ = self.engine.run(sparsity, criterion, "global", "weights")
        self.figure.update(local, global_)
        return ScopeComparison(local.numbers, global_.numbers)


def explore_sparsity(model: nn.Module, X: torch.Tensor, y: torch.Tensor, sparsity: float,
                     criterion: str = "magnitude", scope: str = "local", granularity: str = "weights", *,
                     input_shape, layer: str | None = None,
                     score_data: tuple[torch.Tensor, torch.Tensor] | None = None) -> tuple[ExplorerNumbers, Figure]:
    """The sparsity explorer without widgets: prune a copy at `sparsity` and measure it on (X, y).

    `sparsity` is the fraction of weights zeroed (granularity "weights") or the ratio of units removed
    (granularity "units"). Gradient criteria are scored on `score_data` (default: (X, y) itself, which flatters
    them slightly; pass a training batch to avoid that). `model` is never changed. Introduced in 01_what_is_pruning.
    """
    view = SparsityView(PruningEngine(model, X, y, input_shape=input_shape, score_data=score_data), layer)
    return view.update(sparsity, criterion, scope, granularity), view.figure.fig


def compare_scopes(model: nn.Module, X: torch.Tensor, y: torch.Tensor, sparsity: float,
                   criterion: str = "magnitude", *, input_shape,
                   score_data: tuple[torch.Tensor, torch.Tensor] | None = None) -> tuple[ScopeComparison, Figure]:
    """The local-vs-global explorer without widgets: both scopes at one overall `sparsity`, measured on (X, y).

    Local gives every layer the same sparsity; global ranks all weights under one threshold, so layer sparsities
    differ and a layer can collapse (see `detect_layer_collapse`). `model` is never changed.
    Introduced in 05_local_vs_global.
    """
    view = ScopeView(PruningEngine(model, X, y, input_shape=input_shape, score_data=score_data))
    return view.update(sparsity, criterion), view.figure.fig
