"""Structured pruning by chain surgery: selection, the shrunk model against its masked twin, validation."""
from __future__ import annotations

import copy
import math

import pytest
import torch
from torch import nn

from course.models import build_model
from course.pruning.masks import MASK, apply_masks
from course.pruning.structured import mask_structured, prune_structured, structured_masks, unit_scores
from course.pruning.surgery import UnsupportedModelError, chain_links, remove_units, zero_units

SHAPES = {"lenet300": (1, 28, 28), "lenet5": (1, 28, 28), "vgg": (3, 32, 32)}


def make(name: str, seed: int = 0) -> nn.Module:
    """A model in eval mode whose BN running statistics are far from the (0, 1) defaults."""
    torch.manual_seed(seed)
    model = build_model(name, SHAPES[name])
    model.train()
    with torch.no_grad():
        for _ in range(3):
            model(torch.randn(16, *SHAPES[name]) * 2.0 + 0.7)
    return model.eval()


def batch(name: str, n: int = 8, seed: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(n, *SHAPES[name], generator=gen), torch.randint(0, 10, (n,), generator=gen)


def units(model: nn.Module) -> dict[str, int]:
    return {link.layer: link.units for link in chain_links(model)}


def snapshot(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in model.state_dict().items()}


# --- the chain walk ------------------------------------------------------------------------------------------

def test_chain_links_know_the_flatten_boundary_and_the_batchnorms():
    vgg = {link.layer: link for link in chain_links(make("vgg"))}
    assert list(vgg) == ["conv1", "conv2", "conv3", "conv4", "conv5", "conv6", "fc1"]   # fc2 is the classifier
    assert vgg["conv6"].norms == ("bn6",) and vgg["conv6"].consumer == "fc1" and vgg["conv6"].block == 4
    assert vgg["fc1"].norms == () and vgg["fc1"].block == 1
    lenet5 = {link.layer: link for link in chain_links(make("lenet5"))}
    assert lenet5["conv2"].block == 25 and lenet5["conv2"].consumer == "fc1"      # 16 channels x 5 x 5


def test_residual_model_raises_a_clear_error_pointing_to_torch_pruning():
    resnet = build_model("resnet", (3, 32, 32))
    with pytest.raises(UnsupportedModelError, match="prune_with_torch_pruning"):
        prune_structured(resnet, 0.5)
    with pytest.raises(ValueError, match="TinyResNet"):        # UnsupportedModelError is a ValueError
        structured_masks(resnet, 0.5)


@pytest.mark.parametrize("model", [
    nn.Sequential(nn.Conv2d(1, 4, 3), nn.Linear(26, 10)),                            # no Flatten
    nn.Sequential(nn.Conv2d(4, 4, 3, groups=2), nn.Flatten(), nn.Linear(4, 10)),     # grouped conv
    nn.Sequential(nn.Linear(8, 8), nn.Sigmoid(), nn.Linear(8, 2)),                   # f(0) != 0
    nn.Sequential(nn.Conv2d(1, 4, 3), nn.Flatten(0), nn.Linear(4, 2)),                # odd Flatten
])
def test_unsupported_chains_raise(model):
    with pytest.raises(UnsupportedModelError, match="prune_with_torch_pruning"):
        prune_structured(model, 0.5)


# --- the shrunk model equals its masked twin -----------------------------------------------------------------

@pytest.mark.parametrize("name", ["lenet300", "lenet5", "vgg"])
@pytest.mark.parametrize("scope", ["local", "global"])
@pytest.mark.parametrize("ratio", [0.0, 0.25, 0.5, 0.9])
def test_surgery_equals_masked_twin(name, scope, ratio):
    model = make(name)
    keep = structured_masks(model, ratio, scope=scope)
    small, twin = remove_units(model, keep), zero_units(model, keep)
    x = torch.randn(16, *SHAPES[name])
    assert torch.allclose(small(x), twin(x), atol=1e-5)
    assert {n: u for n, u in units(small).items()} == {n: int(k.sum()) for n, k in keep.items()}
    if ratio > 0:
        assert not torch.allclose(model(x), twin(x), atol=1e-3)        # the pruning did change the function


@pytest.mark.parametrize("name", ["lenet5", "vgg"])
@pytest.mark.parametrize("criterion", ["l2", "random", "taylor"])
def test_prune_structured_equals_mask_structured_for_every_criterion(name, criterion):
    model, data = make(name), batch(name)
    kw = dict(criterion=criterion, data=data, scope="global")
    small, twin = prune_structured(model, 0.4, **kw), mask_structured(model, 0.4, **kw)
    x = torch.randn(8, *SHAPES[name])
    assert torch.allclose(small(x), twin(x), atol=1e-5)


def test_masked_twin_zeros_as_many_weights_as_surgery_removes():
    model = make("vgg")
    keep = structured_masks(model, 0.5)
    small, twin = remove_units(model, keep), zero_units(model, keep)
    weights = lambda m: sum(l.weight.numel() for l in m.modules() if isinstance(l, (nn.Linear, nn.Conv2d)))
    masked_out = sum(int((~l.prune_mask).sum()) for l in twin.modules() if hasattr(l, MASK))
    assert masked_out == weights(model) - weights(small) > 0
    for name, k in keep.items():
        bn = getattr(twin, name.replace("conv", "bn"), None)
        if bn is not None:
            assert bn.weight[~k].abs().sum() == 0 and bn.bias[~k].abs().sum() == 0


# --- what is selected and how it is cut ----------------------------------------------------------------------

def test_surgery_copies_the_right_rows_columns_and_flatten_blocks():
    model = make("vgg")
    small = prune_structured(model, 0.5)
    l1 = model.conv6.weight.abs().sum(dim=(1, 2, 3))
    kept = torch.sort(torch.topk(l1, 32).indices).values                        # the 32 largest-L1 filters
    assert torch.equal(small.conv6.weight, model.conv6.weight[kept][:, torch.sort(torch.topk(
        model.conv5.weight.abs().sum(dim=(1, 2, 3)), 32).indices).values])
    for attr in ("weight", "bias", "running_mean", "running_var"):
        assert torch.equal(getattr(small.bn6, attr), getattr(model.bn6, attr)[kept])
    cols = (kept[:, None] * 4 + torch.arange(4)).flatten()                      # channel c -> inputs 4c..4c+3
    fc1_rows = torch.sort(torch.topk(model.fc1.weight.abs().sum(1), 64).indices).values
    assert torch.equal(small.fc1.weight, model.fc1.weight[fc1_rows][:, cols])
    assert small.fc1.in_features == 128 and small.conv6.out_channels == 32 and small.bn6.num_features == 32


@pytest.mark.parametrize("ratio", [0.1, 0.3, 0.5, 0.75])
def test_local_scope_removes_round_ratio_units_per_layer(ratio):
    model = make("vgg")
    small = prune_structured(model, ratio)
    for name, u in units(model).items():
        assert units(small)[name] == u - round(ratio * u)
    assert small.fc2.out_features == 10


@pytest.mark.parametrize("scope", ["local", "global"])
def test_final_layer_is_kept_and_every_layer_keeps_a_unit(scope):
    model = make("lenet5")
    small = prune_structured(model, 0.99, scope=scope)
    assert small.fc3.out_features == 10
    assert all(u >= 1 for u in units(small).values())
    assert small(torch.randn(2, 1, 28, 28)).shape == (2, 10)


def test_global_scope_removes_round_ratio_of_all_units():
    model = make("vgg")
    keep = structured_masks(model, 0.3, scope="global")
    total = sum(units(model).values())
    assert sum(int((~k).sum()) for k in keep.values()) == round(0.3 * total)
    assert len({int(k.sum()) * 1.0 / len(k) for k in keep.values()}) > 1        # layers lose different shares


def test_global_scope_is_blind_to_a_layers_scale():
    """Scaling a conv followed by BN leaves the function unchanged; mean-normalised global ranking agrees."""
    model = make("vgg")
    scaled = copy.deepcopy(model)
    with torch.no_grad():
        scaled.conv3.weight.mul_(100.0)
    plain, big = structured_masks(model, 0.5, scope="global"), structured_masks(scaled, 0.5, scope="global")
    assert all(torch.equal(plain[n], big[n]) for n in plain)
    assert int(plain["conv3"].sum()) < 32                   # conv3 does lose units, just not all or none


def test_round_to_makes_kept_counts_multiples():
    small = prune_structured(make("vgg"), 0.3, round_to=8)
    assert all(u % 8 == 0 for u in units(small).values())
    assert units(small)["conv1"] == 8            # 16 - round(4.8) = 11 -> 8


def test_exclude_keeps_a_layers_units_but_its_inputs_shrink():
    model = make("vgg")
    small = prune_structured(model, 0.5, exclude=["conv2"])
    assert small.conv2.out_channels == 16 and small.conv2.in_channels == 8 and small.conv3.in_channels == 16


def test_unstructured_masks_travel_with_the_surgery():
    model = make("lenet5")
    gen = torch.Generator().manual_seed(0)
    masks = {n: torch.rand(m.weight.shape, generator=gen) > 0.5 for n, m in model.named_modules()
             if isinstance(m, (nn.Linear, nn.Conv2d))}
    small = prune_structured(apply_masks(model, masks), 0.5)
    for m in small.modules():
        if isinstance(m, (nn.Linear, nn.Conv2d)):
            assert m.prune_mask.shape == m.weight.shape and torch.all(m.weight[~m.prune_mask] == 0)


def test_pruned_model_trains():
    model = make("vgg").train()
    small = prune_structured(model, 0.5)
    x, y = batch("vgg")
    loss = nn.functional.cross_entropy(small(x), y)
    loss.backward()
    assert math.isfinite(loss.item()) and small.conv1.weight.grad.shape == small.conv1.weight.shape


# --- scores --------------------------------------------------------------------------------------------------

def test_l1_l2_random_scores_follow_their_formulas():
    model = make("lenet5")
    l1, l2 = unit_scores(model, "l1"), unit_scores(model, "l2")
    assert torch.allclose(l1["conv2"], model.conv2.weight.abs().sum(dim=(1, 2, 3)))
    assert torch.allclose(l2["fc1"], model.fc1.weight.pow(2).sum(1).sqrt())
    assert "fc3" not in l1                                                        # the classifier is never scored
    r0, r0b, r1 = (unit_scores(model, "random", seed=s)["fc1"] for s in (0, 0, 1))
    assert torch.equal(r0, r0b) and not torch.equal(r0, r1)


def test_taylor_abs_mean_score_is_abs_sum_of_weight_times_gradient_over_the_unit():
    model, (x, y) = make("vgg"), batch("vgg")
    scores = unit_scores(model, "taylor_abs_mean", (x, y))
    ref = copy.deepcopy(model).train()
    nn.functional.cross_entropy(ref(x), y).backward()
    contrib = (ref.conv6.weight * ref.conv6.weight.grad).sum(dim=(1, 2, 3))
    contrib = contrib + ref.bn6.weight * ref.bn6.weight.grad + ref.bn6.bias * ref.bn6.bias.grad
    assert torch.allclose(scores["conv6"], contrib.abs().detach(), rtol=1e-4, atol=1e-8)
    fc1 = (ref.fc1.weight * ref.fc1.weight.grad).sum(1) + ref.fc1.bias * ref.fc1.bias.grad
    assert torch.allclose(scores["fc1"], fc1.abs().detach(), rtol=1e-4, atol=1e-8)


def test_taylor_averages_over_batches_of_a_loader():
    model = make("lenet300")
    b1, b2 = batch("lenet300", seed=1), batch("lenet300", seed=2)
    both = unit_scores(model, "taylor", [b1, b2], num_batches=2)["fc2"]
    one = [unit_scores(model, "taylor", b)["fc2"] for b in (b1, b2)]
    assert torch.allclose(both, (one[0] + one[1]) / 2, rtol=1e-5)
    assert torch.allclose(unit_scores(model, "taylor", [b1, b2, b2], num_batches=1)["fc2"], one[0])


# --- never mutate, validate ----------------------------------------------------------------------------------

@pytest.mark.parametrize("criterion", ["l1", "l2", "random", "taylor"])
def test_input_model_is_never_mutated(criterion):
    model = make("vgg").train()
    before = snapshot(model)
    data = batch("vgg")
    for fn in (prune_structured, mask_structured):
        for scope in ("local", "global"):
            fn(model, 0.5, criterion=criterion, scope=scope, data=data)
    after = model.state_dict()
    assert before.keys() == after.keys() and all(torch.equal(before[k], after[k]) for k in before)
    assert model.training and all(p.grad is None for p in model.parameters())


def test_inplace_shrinks_the_given_model():
    model = make("vgg")
    expected = prune_structured(model, 0.5)
    same = prune_structured(model, 0.5, inplace=True)
    assert same is model and model.conv1.out_channels == 8
    x = torch.randn(4, 3, 32, 32)
    assert torch.equal(model(x), expected(x))


@pytest.mark.parametrize("ratio", [-0.1, 1.0, 1.5, float("nan"), float("inf")])
def test_bad_ratio_value(ratio):
    with pytest.raises(ValueError, match=r"\[0, 1\)"):
        prune_structured(make("lenet300"), ratio)


@pytest.mark.parametrize("ratio", ["0.5", None, True, [0.5]])
def test_bad_ratio_type(ratio):
    with pytest.raises(TypeError, match=r"\[0, 1\)"):
        prune_structured(make("lenet300"), ratio)


def test_bad_choices_and_missing_data():
    model = make("lenet300")
    with pytest.raises(ValueError, match="l1.*l2.*random.*taylor"):
        prune_structured(model, 0.5, criterion="l3")
    with pytest.raises(ValueError, match="local.*global"):
        prune_structured(model, 0.5, scope="world")
    with pytest.raises(ValueError, match="needs data"):
        prune_structured(model, 0.5, criterion="taylor")
    with pytest.raises(ValueError, match="round_to"):
        prune_structured(model, 0.5, round_to=0)
    with pytest.raises(ValueError, match="fc9"):
        prune_structured(model, 0.5, exclude=["fc9"])


def test_no_prunable_layers():
    with pytest.raises(ValueError, match="no prunable layers"):
        prune_structured(nn.Sequential(nn.Flatten(), nn.Linear(784, 10)), 0.5)
    with pytest.raises(ValueError, match="no prunable layers"):
        prune_structured(make("lenet300"), 0.5, exclude=["fc1", "fc2"])


def test_bad_unit_masks():
    model = make("lenet300")
    with pytest.raises(ValueError, match="keeps no unit"):
        remove_units(model, {"fc1": torch.zeros(300, dtype=torch.bool)})
    with pytest.raises(ValueError, match="prunable layers"):
        remove_units(model, {"fc3": torch.ones(10, dtype=torch.bool)})
