"""The interactive explorers: ipywidgets controls around a view; every change calls the view's `update`.

Controls send one update per release (continuous_update=False). The figure is an `ipywidgets.Image` whose PNG
is re-rendered from the same persistent figure, so it changes in place in JupyterLab without ipympl. Errors
raised by an update are shown, as a traceback, in the explorer's own Output area.
"""
from __future__ import annotations

import html

import ipywidgets as widgets
import torch
from torch import nn

from course import arguments
from course.pruning.criteria import CRITERIA, UNIT_CRITERIA
from course.pruning.structured import SCOPES          # local and global: the scopes both granularities share
from course.widgets.engine import GRANULARITIES, PruningEngine, check_granularity
from course.widgets.views import ScopeView, SparsityView

__all__ = ["SparsityExplorer", "ScopeExplorer", "sparsity_explorer", "scope_explorer"]

GRANULARITY_LABELS = {"weights": "weights", "units": "neurons / channels"}
_WIDE = widgets.Layout(width="380px")


def _slider(value: float, description: str, step: float = 0.01) -> widgets.FloatSlider:
    """A sparsity slider from 0 to 1 - step that sends its value on release (continuous_update=False)."""
    digits = len(f"{step:g}".split(".")[-1])
    return widgets.FloatSlider(value=arguments.sparsity(value), min=0.0, max=1.0 - step, step=step,
                               description=description, continuous_update=False, readout_format=f".{digits}f",
                               layout=_WIDE)


def _image(fig) -> widgets.Image:
    """An Image widget as wide as the figure's PNG, so the browser shows it at its own resolution."""
    return widgets.Image(format="png", width=str(round(fig.get_figwidth() * fig.dpi)))


def _html(css: str) -> widgets.HTML:
    w = widgets.HTML()
    w.add_class(css)
    return w


class SparsityExplorer(widgets.VBox):
    """Sparsity slider, criterion / scope / granularity / layer menus, a readout line and the live figure."""

    def __init__(self, view: SparsityView, sparsity: float = 0.5, *, criterion: str = "magnitude",
                 scope: str = "local", granularity: str = "weights"):
        arguments.choice(scope, SCOPES, "scope")
        check_granularity(granularity, criterion)
        arguments.choice(criterion, CRITERIA if granularity == "weights" else UNIT_CRITERIA, "criterion")
        self.view = view
        self.slider = _slider(sparsity, "sparsity")
        self.criterion = widgets.Dropdown(options=list(UNIT_CRITERIA if granularity == "units" else CRITERIA),
                                          value=criterion, description="criterion")
        self.scope = widgets.Dropdown(options=list(SCOPES), value=scope, description="scope")
        self.granularity = widgets.Dropdown(options=[(GRANULARITY_LABELS[g], g) for g in GRANULARITIES],
                                            value=granularity, description="granularity")
        self.layer = widgets.Dropdown(options=view.engine.layer_names, value=view.figure.layer, description="layer")
        self.readout, self.details = _html("course-readout"), _html("course-details")
        self.image = _image(view.figure.fig)
        self.errors = widgets.Output()
        self.numbers = None
        self._syncing = False
        controls = widgets.HBox([widgets.VBox([self.slider, self.layer]),
                                 widgets.VBox([self.criterion, self.scope, self.granularity])])
        super().__init__([controls, self.readout, self.details, self.image, self.errors])
        self.add_class("course-sparsity-explorer")
        for w in (self.slider, self.criterion, self.scope, self.granularity, self.layer):
            w.observe(self._on_change, names="value")
        self._sync_granularity()
        self.update()

    def __repr__(self) -> str:
        return f"SparsityExplorer({self.numbers.readout() if self.numbers else 'not run'})"

    def _on_change(self, change) -> None:
        if self._syncing:
            return
        with self.errors:                                  # in a kernel, a traceback lands in the explorer's output
            if change["owner"] is self.granularity:
                self._sync_granularity()
            if change["owner"] is self.layer:
                self.view.figure.set_layer(self.layer.value)
            self.update()

    def _sync_granularity(self) -> None:
        """Units: only criteria that score whole units, and the slider is the ratio of units removed."""
        self._syncing = True
        try:
            units = self.granularity.value == "units"
            self.criterion.options = list(UNIT_CRITERIA) if units else list(CRITERIA)
            if self.criterion.value not in self.criterion.options:
                self.criterion.value = "magnitude"
            self.slider.description = "ratio" if units else "sparsity"
        finally:
            self._syncing = False

    def update(self):
        """Apply the current control values: prune, measure, redraw (the slider's callback)."""
        self.numbers = self.view.update(self.slider.value, self.criterion.value, self.scope.value,
                                        self.granularity.value)
        self.image.value = self.view.figure.png()
        collapse = f'<br><b style="color:#c44e52">{html.escape(self.numbers.collapse)}</b>' if self.numbers.collapse else ""
        self.details.value = html.escape(self.numbers.details()) + collapse
        self.readout.value = html.escape(self.numbers.readout())    # last: a new readout means all is drawn
        return self.numbers


class ScopeExplorer(widgets.VBox):
    """One sparsity slider and a criterion menu; local and global scope side by side, collapse flagged."""

    def __init__(self, view: ScopeView, sparsity: float = 0.9):
        self.view = view
        self.slider = _slider(sparsity, "sparsity", step=0.001)          # layer collapse needs 0.99 and beyond
        self.criterion = widgets.Dropdown(options=list(CRITERIA), value="magnitude", description="criterion")
        self.readout, self.collapse = _html("course-readout"), _html("course-collapse")
        self.image = _image(view.figure.fig)
        self.errors = widgets.Output()
        self.comparison = None
        super().__init__([widgets.HBox([self.slider, self.criterion]), self.readout, self.collapse, self.image,
                          self.errors])
        self.add_class("course-scope-explorer")
        for w in (self.slider, self.criterion):
            w.observe(self._on_change, names="value")
        self.update()

    def __repr__(self) -> str:
        return f"ScopeExplorer({self.comparison.readout() if self.comparison else 'not run'})"

    def _on_change(self, change) -> None:
        with self.errors:
            self.update()

    def update(self):
        """Apply the current control values to both scopes and redraw."""
        self.comparison = self.view.update(self.slider.value, self.criterion.value)
        self.image.value = self.view.figure.png()
        notes = [f"{n.scope}: {n.collapse}" for n in (self.comparison.local, self.comparison.global_) if n.collapse]
        self.collapse.value = "".join(f'<b style="color:#c44e52">{html.escape(t)}</b><br>' for t in notes)
        self.readout.value = html.escape(self.comparison.readout())     # last: a new readout means all is drawn
        return self.comparison


def sparsity_explorer(model: nn.Module, X: torch.Tensor, y: torch.Tensor, *, input_shape, layer: str | None = None,
                      sparsity: float = 0.5, criterion: str = "magnitude", scope: str = "local",
                      granularity: str = "weights",
                      score_data: tuple[torch.Tensor, torch.Tensor] | None = None) -> SparsityExplorer:
    """Interactive pruning of a copy of `model`: accuracy on (X, y), bytes, effective FLOPs, per-layer sparsity,
    a weight histogram with the threshold and one layer's mask, all live. `model` is never changed.
    `sparsity`, `criterion`, `scope` and `granularity` are the controls' starting values.

    Plain twin: `explore_sparsity`. Introduced in 01_what_is_pruning.
    """
    return SparsityExplorer(SparsityView(PruningEngine(model, X, y, input_shape=input_shape, score_data=score_data),
                                         layer), sparsity, criterion=criterion, scope=scope, granularity=granularity)


def scope_explorer(model: nn.Module, X: torch.Tensor, y: torch.Tensor, *, input_shape, sparsity: float = 0.9,
                   score_data: tuple[torch.Tensor, torch.Tensor] | None = None) -> ScopeExplorer:
    """Local vs global scope at one overall sparsity, side by side, with layer collapse flagged. `model` is
    never changed. Plain twin: `compare_scopes`. Introduced in 05_local_vs_global.
    """
    return ScopeExplorer(ScopeView(PruningEngine(model, X, y, input_shape=input_shape, score_data=score_data)),
                         sparsity)
