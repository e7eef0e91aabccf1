"""Torch-Pruning interop: the course's chain surgery cross-checked against Torch-Pruning, and residual graphs."""
from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from course.models import build_model
from course.pruning.structured import prune_structured
from course.pruning.surgery import UnsupportedModelError
from course.pruning.torch_pruning_interop import dependency_groups, output_layers, prune_with_torch_pruning

SHAPES = {"lenet300": (1, 28, 28), "lenet5": (1, 28, 28), "vgg": (3, 32, 32), "resnet": (3, 32, 32)}


def make(name: str, seed: int = 0) -> nn.Module:
    """A model in eval mode with non-trivial BN running statistics."""
    torch.manual_seed(seed)
    model = build_model(name, SHAPES[name]).train()
    with torch.no_grad():
        for _ in range(2):
            model(torch.randn(8, *SHAPES[name]) * 2.0 + 0.5)
    return model.eval()


def example(name: str) -> torch.Tensor:
    return torch.randn(1, *SHAPES[name], generator=torch.Generator().manual_seed(3))


def macs(model: nn.Module, shape: tuple[int, ...]) -> int:
    """Multiply-accumulates of one forward pass on one input, from torch's FlopCounterMode (FLOPs / 2)."""
    was = model.training
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model.eval()(torch.zeros(1, *shape))
    model.train(was)
    return counter.get_total_flops() // 2


def params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def shapes(model: nn.Module) -> dict[str, tuple[int, ...]]:
    return {k: tuple(v.shape) for k, v in model.state_dict().items()}


# --- cross-check: course surgery vs Torch-Pruning on chains ---------------------------------------------------

@pytest.mark.parametrize("ratio", [0.25, 0.3, 0.5])
def test_vgg_course_surgery_matches_torch_pruning_counts(ratio):
    model = make("vgg")
    ours = prune_structured(model, ratio, criterion="l1", scope="local")
    theirs = prune_with_torch_pruning(model, ratio, example("vgg"), importance="l1")
    assert shapes(ours) == shapes(theirs)
    assert params(ours) == params(theirs) < params(model)
    assert macs(ours, SHAPES["vgg"]) == macs(theirs, SHAPES["vgg"]) < macs(model, SHAPES["vgg"])


@pytest.mark.parametrize("name", ["lenet300", "lenet5", "vgg"])
def test_same_filters_when_torch_pruning_scores_the_root_layer_alone(name):
    """With group_reduction="first" Torch-Pruning's L1 is Li et al.'s filter norm, so both pick the same units."""
    model = make(name)
    ours = prune_structured(model, 0.4)
    theirs = prune_with_torch_pruning(model, 0.4, example(name), group_reduction="first")
    for key, value in ours.state_dict().items():
        assert torch.equal(value, theirs.state_dict()[key]), key
    x = torch.randn(4, *SHAPES[name])
    assert torch.allclose(ours(x), theirs(x), atol=1e-6)


def test_group_mean_importance_can_choose_other_filters():
    """Torch-Pruning's default group L1 also counts BN gamma and the next layer's columns."""
    model = make("vgg")
    ours = prune_structured(model, 0.5)
    theirs = prune_with_torch_pruning(model, 0.5, example("vgg"))
    assert not all(torch.equal(v, theirs.state_dict()[k]) for k, v in ours.state_dict().items())


# --- residual graphs -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("importance", ["l1", "l2", "taylor", "random"])
@pytest.mark.parametrize("global_pruning", [False, True])
def test_resnet_is_pruned_physically_and_still_runs(importance, global_pruning):
    model = make("resnet")
    gen = torch.Generator().manual_seed(5)
    data = (torch.randn(8, 3, 32, 32, generator=gen), torch.randint(0, 10, (8,), generator=gen))
    small = prune_with_torch_pruning(model, 0.5, example("resnet"), importance=importance,
                                     global_pruning=global_pruning, data=data)
    assert params(small) < params(model)
    assert macs(small, SHAPES["resnet"]) < macs(model, SHAPES["resnet"])
    assert small(torch.randn(2, 3, 32, 32)).shape == (2, 10)
    assert small.fc.out_features == 10


def test_resnet_local_ratio_halves_every_group():
    model = make("resnet")
    small = prune_with_torch_pruning(model, 0.5, example("resnet"))
    assert [small.stem[0].out_channels, small.block2.conv2.out_channels, small.block3.conv1.out_channels] == [8, 16, 32]
    assert small.block1.conv2.out_channels == small.stem[0].out_channels   # the identity add keeps them equal
    assert small.block2.shortcut[0].out_channels == small.block2.conv2.out_channels


def test_prune_structured_refuses_the_resnet():
    with pytest.raises(UnsupportedModelError, match="prune_with_torch_pruning"):
        prune_structured(make("resnet"), 0.5)


def test_ignored_layers_keep_their_outputs():
    model = make("resnet")
    small = prune_with_torch_pruning(model, 0.5, example("resnet"), ignored_layers=["block3.conv1", model.block2.conv1])
    assert small.block3.conv1.out_channels == 64 and small.block2.conv1.out_channels == 32
    assert small.block3.conv2.out_channels == 32


def test_output_layer_is_found_by_tracing():
    assert output_layers(make("resnet"), example("resnet")) == ["fc"]
    assert output_layers(make("vgg"), example("vgg")) == ["fc2"]


def test_torch_pruning_never_mutates_the_input_and_keeps_bn_statistics():
    model = make("resnet").train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    data = (torch.randn(4, 3, 32, 32), torch.randint(0, 10, (4,)))
    unpruned = prune_with_torch_pruning(model, 0.0, example("resnet"), importance="taylor", data=data)
    pruned = prune_with_torch_pruning(model, 0.5, example("resnet"), importance="taylor", data=data)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert model.training and unpruned.training and pruned.training
    assert all(torch.equal(before[k], v) for k, v in unpruned.state_dict().items())   # taylor's forwards undone
    assert all(p.grad is None for p in pruned.parameters())


def test_interop_validation():
    model, x = make("vgg"), example("vgg")
    with pytest.raises(ValueError, match="l1.*l2.*taylor.*random"):
        prune_with_torch_pruning(model, 0.5, x, importance="fpgm")
    with pytest.raises(ValueError, match=r"\[0, 1\)"):
        prune_with_torch_pruning(model, 1.0, x)
    with pytest.raises(TypeError, match=r"\[0, 1\)"):
        prune_with_torch_pruning(model, "half", x)
    with pytest.raises(ValueError, match="needs data"):
        prune_with_torch_pruning(model, 0.5, x, importance="taylor")
    with pytest.raises(ValueError, match="conv9"):
        prune_with_torch_pruning(model, 0.5, x, ignored_layers=["conv9"])
    with pytest.raises(ValueError, match="mean.*first"):
        prune_with_torch_pruning(model, 0.5, x, group_reduction="max")


# --- dependency groups ---------------------------------------------------------------------------------------

def test_dependency_group_of_a_residual_block_output():
    group = dependency_groups(make("resnet"), example("resnet"), "block2.conv2")
    members = {(name, what) for name, what, _ in group.members}
    assert members == {
        ("block2.conv2", "output channel"), ("block2.bn2", "BN entry"),
        ("block2.shortcut.0", "output channel"), ("block2.shortcut.1", "BN entry"),
        ("block3.conv1", "input channel"), ("block3.shortcut.0", "input channel"),
    }
    assert group.members[0][0] == "block2.conv2"
    assert any("AddBackward" in a or "AddBackward" in b for a, b in group.edges)
    assert "block3.conv1" in str(group) and "block2.shortcut.0" in repr(group)


def test_dependency_group_crosses_the_flatten_boundary():
    group = dependency_groups(make("vgg"), example("vgg"), "conv6")
    assert group.members == [("conv6", "output channel", 1), ("bn6", "BN entry", 1), ("fc1", "input feature", 4)]
    assert "4 input features" in str(group)


def test_dependency_group_of_an_inner_conv_stays_inside_the_block():
    group = dependency_groups(make("resnet"), example("resnet"), "block3.conv1")
    assert [m[0] for m in group.members] == ["block3.conv1", "block3.bn1", "block3.conv2"]
    with pytest.raises(ValueError, match="block3.conv1"):
        dependency_groups(make("resnet"), example("resnet"), "block3.bn1")
