"""Persistent matplotlib figures for the explorers, updated in place (bar heights, set_data), then rendered to PNG.

The figures are `matplotlib.figure.Figure` objects, not pyplot figures, so the inline backend never shows or
closes them behind our back; a widget shows them as an `ipywidgets.Image` whose PNG bytes change per update.
Rendering blits: the static parts (axes, ticks, labels) are drawn once and kept as a pixel buffer; an update
restores that buffer and draws only the artists that move. Saving or showing the figure inline draws it all.
"""
from __future__ import annotations

import io

import numpy as np
import torch
from matplotlib.artist import Artist
from matplotlib.backends.backend_agg import FigureCanvasAgg
from PIL import Image
from matplotlib.figure import Figure

from course import arguments
from course.widgets.engine import EngineResult, PruningEngine

__all__ = ["SparsityFigure", "ScopeFigure", "ExplorerFigure", "Blitter", "mask_image"]

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


class ExplorerFigure(Figure):
    """A plain (non-pyplot) Figure that a notebook shows as a PNG even when pyplot was never imported."""

    def _repr_png_(self) -> bytes:
        buf = io.BytesIO()
        self.savefig(buf, format="png")
        return buf.getvalue()


class Blitter:
    """PNGs of a figure whose moving artists are redrawn over a cached background (matplotlib blitting)."""

    def __init__(self, fig: Figure):
        self.fig = fig
        self.canvas = FigureCanvasAgg(fig)
        self.artists: list[Artist] = []
        self.background = None

    def __repr__(self) -> str:
        return f"Blitter({len(self.artists)} moving artists, background {'cached' if self.background else 'stale'})"

    def set_artists(self, artists: list[Artist]) -> None:
        """The artists that change per update: left out of the background, redrawn on it each time."""
        self.artists = list(artists)
        self.background = None

    def png(self) -> bytes:
        """Restore the background (drawing it the first time), draw the moving artists, encode as PNG."""
        if self.background is None:
            # animated only while the background is drawn: a saved or inline-shown figure still draws them all
            # (Figure.draw leaves out animated figure-level artists even when saving)
            for a in self.artists:
                a.set_animated(True)
            try:
                self.canvas.draw()
            finally:
                for a in self.artists:
                    a.set_animated(False)
            self.background = self.canvas.copy_from_bbox(self.fig.bbox)
        else:
            self.canvas.restore_region(self.background)
        renderer = self.canvas.get_renderer()
        for a in self.artists:
            a.draw(renderer)
        w, h = self.canvas.get_width_height()
        buf = io.BytesIO()
        Image.frombuffer("RGBA", (w, h), self.canvas.buffer_rgba(), "raw", "RGBA", 0, 1).save(
            buf, format="PNG", compress_level=1)
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
        self.fig = ExplorerFigure(figsize=(11, 3.2), dpi=80)
        self.blit = Blitter(self.fig)
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
        self.layer = arguments.choice(layer, self.engine.layer_names, "layer")
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
        self.blit.set_artists([*self.bars, self.overall, self.kept, *self.lines, ax.get_legend(), self.ax_hist.title,
                               self.image, *self.ax_mask.spines.values(), self.title])

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
        """The figure as PNG bytes (what the widget's Image shows), blitted."""
        return self.blit.png()


class ScopeFigure:
    """Local and global scope side by side at one overall sparsity: per-layer bars, accuracy, collapse in red."""

    def __init__(self, engine: PruningEngine):
        self.engine = engine
        self.fig = ExplorerFigure(figsize=(11, 3.2), dpi=80)
        self.blit = Blitter(self.fig)
        self.axes = self.fig.subplots(1, 2, sharey=True)
        self.fig.subplots_adjust(left=0.06, right=0.98, bottom=0.2, top=0.82, wspace=0.08)
        self.artists = [_layer_bars(ax, engine.layer_names, KEPT) for ax in self.axes]
        self.notes = [ax.text(0.03, 0.9, "", transform=ax.transAxes, va="top", fontsize=9, color=COLLAPSED,
                              bbox={"facecolor": "white", "edgecolor": COLLAPSED, "alpha": 0.9}, visible=False)
                      for ax in self.axes]
        self.labels = [[ax.text(i, 0, "", ha="center", va="bottom", fontsize=7) for i in range(len(engine.layer_names))]
                       for ax in self.axes]
        self.axes[1].set_ylabel("")
        self.blit.set_artists([a for (bars, overall), note, labels in zip(self.artists, self.notes, self.labels)
                               for a in (*bars, overall, note, *labels)] + [ax.title for ax in self.axes])

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
            note.set_text(nums.collapse.replace("; ", ";\n"))
            note.set_visible(bool(nums.collapse))

    def png(self) -> bytes:
        """The figure as PNG bytes, blitted."""
        return self.blit.png()
