"""course.diagrams: the layout follows the data flow, and the drawing colours exactly the group's members."""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.colors as mcolors  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402

from course import build_model, dependency_groups  # noqa: E402
from course.lessons.diagrams import COLORS, draw_dependency_group, residual_layout  # noqa: E402
from course.pruning.torch_pruning_interop import DependencyGroup  # noqa: E402

DRAWN = (nn.Conv2d, nn.BatchNorm2d, nn.Linear)


@pytest.fixture(scope="module")
def resnet():
    torch.manual_seed(0)
    return build_model("resnet", (1, 28, 28))


def test_layout_has_every_layer_and_the_residual_edges(resnet):
    lay = residual_layout(resnet)
    layers = {n for n, m in resnet.named_modules() if isinstance(m, DRAWN)}
    assert set(lay.nodes) == layers | {"block1.add", "block2.add", "block3.add"}
    edges = set(lay.edges)
    assert ("stem.1", "block1.add") in edges                  # identity shortcut: block input straight to the add
    assert ("block1.add", "block2.shortcut.0") in edges        # projection shortcut starts at the block input
    assert ("block2.shortcut.1", "block2.add") in edges and ("block2.bn2", "block2.add") in edges
    assert lay.nodes["block2.shortcut.0"][1] == -1.0 and lay.nodes["block2.conv1"][1] == 0.0
    xs = [lay.nodes[n][0] for n in ("stem.0", "block1.conv1", "block1.add", "block2.conv1", "fc")]
    assert xs == sorted(xs)                                     # left to right along the data flow
    assert [s[0] for s in lay.spans] == ["stem", "block1", "block2", "block3", "fc"]


def test_chain_models_are_laid_out_in_order():
    lay = residual_layout(build_model("vgg", (1, 28, 28)))
    assert list(lay.nodes)[:3] == ["conv1", "bn1", "conv2"] and list(lay.nodes)[-1] == "fc2"
    assert all(y == 0.0 for _, y in lay.nodes.values())


def _box_colors(ax) -> dict[str, tuple]:
    return {t.get_gid(): t.get_bbox_patch().get_facecolor() for t in ax.texts if t.get_gid()}


def test_drawing_colours_exactly_the_members(resnet):
    group = dependency_groups(resnet, torch.randn(2, 1, 28, 28), "block1.conv2")
    fig, ax = plt.subplots()
    draw_dependency_group(resnet, group, ax)
    colors = _box_colors(ax)
    kinds = {"output channel": "output", "BN entry": "BN", "input channel": "input"}
    members = {name: kinds[what] for name, what, _ in group.members}
    assert members["stem.0"] == "output" and members["block2.shortcut.0"] == "input"
    for name, color in colors.items():
        want = COLORS[members[name]] if name in members else COLORS["other"]
        assert mcolors.same_color(color, want), name
    root = next(t for t in ax.texts if t.get_gid() == "block1.conv2")
    assert root.get_bbox_patch().get_linewidth() == 2.0
    assert "7 layers" in ax.get_title()
    plt.close(fig)


def test_bad_inputs(resnet):
    with pytest.raises(TypeError, match="LSTM"):
        residual_layout(nn.Sequential(nn.Linear(4, 4), nn.LSTM(4, 4)))
    with pytest.raises(TypeError, match="nn.Module"):
        residual_layout("resnet")
    alien = DependencyGroup("conv9", [("conv9", "output channel", 1)], [])
    with pytest.raises(ValueError, match="conv9"):
        draw_dependency_group(resnet, alien)
