"""A picture of a dependency group: the layers of a residual network, with those that shrink together highlighted.

    group = dependency_groups(model, x, "block1.conv2")       # course.pruning: what else loses a channel
    draw_dependency_group(model, group)                        # the network as boxes; the group in colour

The layout reads the model's children in order: `nn.Sequential` stems and heads, `BasicBlock`s (main path
conv1 -> bn1 -> conv2 -> bn2 on top, the shortcut below, meeting at a "+" node) and single layers. Only
Conv2d, BatchNorm2d and Linear layers are drawn. Introduced in 03_structured.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from matplotlib.axes import Axes
from torch import nn

from course.models import BasicBlock
from course.pruning.torch_pruning_interop import DependencyGroup

__all__ = ["Layout", "residual_layout", "draw_dependency_group", "COLORS"]

DRAWN = (nn.Conv2d, nn.BatchNorm2d, nn.Linear)
#: Fill colour per kind of group member; layers outside the group are light grey.
COLORS = {"output": "#c44e52", "BN": "#dd8452", "input": "#4c72b0", "other": "#eeeeee"}
_SKIPPED = (nn.ReLU, nn.Identity, nn.MaxPool2d, nn.AdaptiveAvgPool2d, nn.AvgPool2d, nn.Flatten, nn.Dropout)


@dataclass
class Layout:
    """Node positions (x = step along the data flow, y = 0 main path, -1 shortcut), data-flow edges, block spans."""

    nodes: dict[str, tuple[float, float]] = field(default_factory=dict)
    edges: list[tuple[str, str]] = field(default_factory=list)
    spans: list[tuple[str, float, float]] = field(default_factory=list)   # (block name, first x, last x)

    def add(self, name: str, x: float, y: float, source: str | None) -> str:
        self.nodes[name] = (x, y)
        if source is not None:
            self.edges.append((source, name))
        return name


def _drawn(module: nn.Module, prefix: str) -> list[str]:
    """Names of the drawable layers inside `module` (a leaf or a Sequential of leaves), in order."""
    if isinstance(module, DRAWN):
        return [prefix]
    if isinstance(module, nn.Sequential):
        out = []
        for name, child in module.named_children():
            out += _drawn(child, f"{prefix}.{name}")
        return out
    if isinstance(module, _SKIPPED):
        return []
    raise TypeError(f"cannot draw {prefix!r}: a {type(module).__name__}; the diagram handles nn.Sequential chains of "
                    f"Conv2d/BatchNorm2d/Linear (+ ReLU, pooling, Flatten) and BasicBlocks")


def residual_layout(model: nn.Module) -> Layout:
    """Lay out a TinyResNet-like model: its children are Sequentials, BasicBlocks or single layers."""
    if not isinstance(model, nn.Module):
        raise TypeError(f"expected an nn.Module, got {type(model).__name__}")
    lay, x, last = Layout(), 0.0, None
    for name, child in model.named_children():
        if isinstance(child, BasicBlock):
            start = x
            head = last
            for part in ("conv1", "bn1", "conv2", "bn2"):
                last = lay.add(f"{name}.{part}", x, 0.0, last)
                x += 1
            side = _drawn(child.shortcut, f"{name}.shortcut")
            below, sx = head, start + 2                                  # the shortcut runs under conv2, bn2
            for layer in side:
                below = lay.add(layer, sx, -1.0, below)
                sx += 1
            plus = lay.add(f"{name}.add", x, 0.0, last)
            if below is not None:
                lay.edges.append((below, plus))
            lay.spans.append((name, start, x))
            last, x = plus, x + 1
        else:
            layers = _drawn(child, name)
            if layers:
                start = x
                for layer in layers:
                    last = lay.add(layer, x, 0.0, last)
                    x += 1
                lay.spans.append((name, start, x - 1))
    if not lay.nodes:
        raise TypeError(f"{type(model).__name__} has no Conv2d/BatchNorm2d/Linear children to draw")
    return lay


def _kind(what: str) -> str:
    """'output channel' -> 'output', 'BN entry' -> 'BN', 'input channel'/'input feature' -> 'input'."""
    return "output" if what.startswith("output") else "BN" if what.startswith("BN") else "input"


def _short(name: str, module: nn.Module | None) -> str:
    """A box label: 'block1.conv2' -> 'conv2'; numbered layers by type: 'stem.0' -> 'conv', '.shortcut.1' -> 'sc bn'."""
    parts = name.split(".")
    if not parts[-1].isdigit():
        return parts[-1]
    kind = {nn.Conv2d: "conv", nn.BatchNorm2d: "bn", nn.Linear: "fc"}.get(type(module), parts[-1])
    return f"sc {kind}" if "shortcut" in parts else kind


def draw_dependency_group(model: nn.Module, group: DependencyGroup, ax: Axes | None = None) -> Axes:
    """Draw `model` as boxes along its data flow and colour the members of `group` by what they lose
    (red: output channel, orange: BN entry, blue: input channel/feature); the root layer gets a thick border."""
    lay = residual_layout(model)
    kinds = {name: _kind(what) for name, what, _ in group.members}
    missing = sorted(set(kinds) - set(lay.nodes))
    if missing:
        raise ValueError(f"group members {missing} are not layers of this model's diagram; nodes: {list(lay.nodes)}")
    if ax is None:
        import matplotlib.pyplot as plt

        _, ax = plt.subplots(figsize=(max(6.0, 0.62 * len({x for x, _ in lay.nodes.values()})), 2.4))
    for a, b in lay.edges:
        (xa, ya), (xb, yb) = lay.nodes[a], lay.nodes[b]
        style = ("angle3,angleA=0,angleB=90" if ya != yb          # into or out of the shortcut row
                 else "arc3,rad=0.45" if abs(xb - xa) > 1 else "arc3,rad=0")   # an identity shortcut arcs below
        ax.annotate("", xy=(xb, yb), xytext=(xa, ya),
                    arrowprops={"arrowstyle": "-|>", "color": "#777777", "lw": 0.8, "shrinkA": 11, "shrinkB": 11,
                                "connectionstyle": style})
    modules = dict(model.named_modules())
    for name, (x, y) in lay.nodes.items():
        is_add = name.endswith(".add")
        color = COLORS[kinds[name]] if name in kinds else COLORS["other"]
        ax.text(x, y, "+" if is_add else _short(name, modules.get(name)), ha="center", va="center", fontsize=7,
                color="white" if name in kinds else "black", gid=name,
                bbox={"boxstyle": "circle" if is_add else "round,pad=0.3", "fc": color,
                      "ec": "black", "lw": 2.0 if name == group.layer else 0.6})
    for label, x0, x1 in lay.spans:
        ax.text((x0 + x1) / 2, 0.75, label, ha="center", va="bottom", fontsize=8, weight="bold")
        ax.plot([x0 - 0.4, x1 + 0.4], [0.62, 0.62], color="#999999", lw=0.8)
    for kind, text in (("output", "output channel"), ("BN", "BN entry"), ("input", "input channel")):
        ax.scatter([], [], marker="s", s=60, color=COLORS[kind], label=text)
    ax.legend(loc="lower right", fontsize=7, frameon=False, ncol=3, bbox_to_anchor=(1.0, -0.32))
    xs = [x for x, _ in lay.nodes.values()]
    ax.set(xlim=(min(xs) - 0.7, max(xs) + 0.7), ylim=(-1.6, 1.2),
           title=f"removing one output channel of {group.layer}: {len(group.members)} layers shrink together")
    ax.title.set_fontsize(9)
    ax.axis("off")
    return ax
