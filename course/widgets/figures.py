"""Persistent matplotlib figures for the explorers, updated in place (bar heights, set_data), then rendered to PNG.

The figures are `matplotlib.figure.Figure` objects, not pyplot figures, so the inline backend never shows or
closes them behind our back; a widget shows them as an `ipywidgets.Image` whose PNG bytes change per update.
"""
from __future__ import annotations

import io

import numpy as np
import torch
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from course.widgets.engine import EngineResult, PruningEngine

__all__ = ["SparsityFigure", "ScopeFigure", "mask_image"]

KEPT, PRUNED, COLLAPSED = "#4c72b0", "#dd8452", "#c44e52"
BINS = 60
MAX_SIDE = 200


def mask_image(mask: torch.Tensor, max_side: int = MAX_SIDE) -> np.ndarray:
    """A weight mask as a 2-D image of kept fractions: Linear (out, in), Conv2d (out, in*kh*kw), block-averaged
    so neither side exceeds `max_side` pixels (a gray pixel = a block with some weights pruned)."""
    img = mask.reshape(mask.shape[0], -1).float().cpu()[None, None]           # (1, 1, out, fan_in)
    h, w = img.shape[-2:]
    if h > max_side or w > max_side:
        img = torch.nn.functional.adaptive_avg_pool2d(img, (min(h, max_side), min(w, max_side)))
    return img[0, 0].numpy()


def _png(fig: Figure) -> bytes:
    """PNG bytes of `fig` at its own dpi."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


def _layer_bars(ax, names: list[str], color: str):
    """Zero-height bars, one per layer, on a fixed 0..1 axis; returns (bars, overall line)."""
    bars = ax.bar(range(len(names)), np.zeros(len(names)), color=color)
    ax.set_xticks(range(len(names)), names, rotation=30 if len(names) > 4 else 0, fontsize=8)
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("sparsity")
    overall = ax.axhline(0, ls="--", c="k", lw=1)
    return bars, overall


class SparsityFigure:
    """Per-layer sparsity bars | weight histogram of one layer, kept vs pruned, with the threshold | its mask."""

    def __init__(self, engine: PruningEngine, layer: str):
        self.engine = engine
        self.fig = Figure(figsize=(11, 3.2), dpi=80)
        FigureCanvasAgg(self.fig)
        self.ax_bars, self.ax_hist, self.ax_mask = self.fig.subplots(1, 3, gridspec_kw={"width_ratios": [1.1, 1, 1]})
        self.fig.subplots_adjust(left=0.06, right=0.98, bottom=0.2, top=0.8, wspace=0.3)
        self.bars, self.overall = _layer_bars(self.ax_bars, engine.layer_names, KEPT)
        self.ax_bars.set_title("sparsity per layer", fontsize=10)
        self.title = self.fig.suptitle("", fontsize=10)
        self.set_layer(layer)

    def __repr__(self) -> str:
        return f"SparsityFigure(layer={self.layer!r})"

    def set_layer(self, layer: str) -> None:
        """Show `layer` in the histogram and mask panels (rebuilds those two panels' artists)."""
        if layer not in self.engine.layer_names:
            raise ValueError(f"unknown layer {layer!r}; choose one of {self.engine.layer_names}")
        self.layer = layer
        w = dict(self.engine.layers)[layer].weight.detach().flatten().cpu().numpy()   # (n,)
        self.weights = w
        self.edges = np.linspace(w.min(), w.max(), BINS + 1)
        total, _ = np.histogram(w, self.edges)
        ax = self.ax_hist
        ax.cla()
        ax.stairs(total, self.edges, fill=True, color=PRUNED, label="pruned")      # all weights; kept drawn over
        self.kept = ax.stairs(total, self.edges, fill=True, color=KEPT, label="kept")
        self.lines = [ax.axvline(0, c="k", lw=1, ls=":", visible=False) for _ in range(2)]
        ax.set_ylim(0, total.max() * 1.05)
        ax.set_xlabel("weight value")
        ax.legend(fontsize=8, loc="upper right")
        self.ax_mask.cla()
        shape = dict(self.engine.layers)[layer].weight.shape
        fan_in = int(np.prod(shape[1:]))
        self.image = self.ax_mask.imshow(mask_image(torch.ones(shape, dtype=torch.bool)), cmap="gray", vmin=0, vmax=1,
                                         aspect="auto", interpolation="nearest", extent=(0, fan_in, shape[0], 0))
        self.ax_mask.set_xlabel("inputs" + (" x kernel" if len(shape) > 2 else ""))
        self.ax_mask.set_ylabel("outputs")
        self.ax_mask.set_title(f"{layer} mask {tuple(shape)}, black = pruned", fontsize=10)

    def update(self, result: EngineResult) -> None:
        """Move every artist to `result` in place; nothing is re-created."""
        nums = result.numbers
        for bar, name in zip(self.bars, self.engine.layer_names):
            bar.set_height(nums.layer_sparsity[name])
            bar.set_color(COLLAPSED if name in nums.collapsed else KEPT)
        self.overall.set_ydata([nums.sparsity, nums.sparsity])
        mask = result.masks[self.layer]
        kept, _ = np.histogram(self.weights[mask.flatten().cpu().numpy()], self.edges)
        self.kept.set_data(kept, self.edges)
        t = result.thresholds.get(self.layer)
        show = nums.criterion == "magnitude" and t is not None          # only |w| thresholds live on this axis
        for line, x in zip(self.lines, (-t if show else 0, t if show else 0)):
            line.set_xdata([x, x])
            line.set_visible(show)
        what = {"weights": f"{nums.criterion}, {nums.scope}", "units": f"units by {nums.criterion}, {nums.scope}"}
        thr = f", |w| threshold {t:.3g}" if show else ""
        self.ax_hist.set_title(f"{self.layer} weights ({what[nums.granularity]}{thr})", fontsize=10)
        self.image.set_data(mask_image(mask))
        self.title.set_text(nums.readout() + (f"  [{nums.collapse}]" if nums.collapse else ""))

    def png(self) -> bytes:
        """The figure as PNG bytes (what the widget's Image shows)."""
        return _png(self.fig)


class ScopeFigure:
    """Local and global scope side by side at one overall sparsity: per-layer bars, accuracy, collapse in red."""

    def __init__(self, engine: PruningEngine):
        self.engine = engine
        self.fig = Figure(figsize=(11, 3.2), dpi=80)
        FigureCanvasAgg(self.fig)
        self.axes = self.fig.subplots(1, 2, sharey=True)
        self.fig.subplots_adjust(left=0.06, right=0.98, bottom=0.2, top=0.82, wspace=0.08)
        self.artists = [_layer_bars(ax, engine.layer_names, KEPT) for ax in self.axes]
        self.notes = [ax.text(0.02, 0.95, "", transform=ax.transAxes, va="top", fontsize=9, color=COLLAPSED)
                      for ax in self.axes]
        self.labels = [[ax.text(i, 0, "", ha="center", va="bottom", fontsize=7) for i in range(len(engine.layer_names))]
                       for ax in self.axes]
        self.axes[1].set_ylabel("")

    def __repr__(self) -> str:
        return f"ScopeFigure(layers={self.engine.layer_names})"

    def update(self, local: EngineResult, global_: EngineResult) -> None:
        """Move both panels to the new results in place."""
        for ax, (bars, overall), note, labels, res in zip(self.axes, self.artists, self.notes, self.labels,
                                                          (local, global_)):
            nums = res.numbers
            for bar, label, name in zip(bars, labels, self.engine.layer_names):
                s = nums.layer_sparsity[name]
                bar.set_height(s)
                bar.set_color(COLLAPSED if name in nums.collapsed else KEPT)
                label.set_position((bar.get_x() + bar.get_width() / 2, s))
                label.set_text(f"{s:.1%}")
            overall.set_ydata([nums.sparsity, nums.sparsity])
            ax.set_title(f"{nums.scope}: sparsity {nums.sparsity:.1%}, accuracy {nums.accuracy:.1%}", fontsize=10)
            note.set_text(nums.collapse.replace("; ", ";\n") if nums.collapse else "")

    def png(self) -> bytes:
        """The figure as PNG bytes."""
        return _png(self.fig)
