"""Per-layer sparsities from a sensitivity scan: the greedy allocation meets the budget exactly, cheapest layers first."""
from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from course.capstone import SensitivityScan
from course.pruning import layer_sparsity, prune_unstructured
from course.sensitivity import allocate_sparsity, overall_sparsity, prune_per_layer

RATIOS = [0.5, 0.9, 0.99]


def made_up_scan() -> SensitivityScan:
    """Not measurements: 'big' is cheap to prune, 'mid' costs more per weight, 'head' is small and fragile."""
    sizes = {"big": 8000, "mid": 1000, "head": 100}
    accuracy = {"big": {0.5: 0.95, 0.9: 0.94, 0.99: 0.80},
                "mid": {0.5: 0.94, 0.9: 0.90, 0.99: 0.50},
                "head": {0.5: 0.90, 0.9: 0.60, 0.99: 0.20}}
    return SensitivityScan("unstructured", "magnitude", 0.95, sizes, accuracy, RATIOS, 1000)


def test_allocation_meets_the_budget_exactly_and_spends_it_where_it_hurts_least():
    scan = made_up_scan()
    plan = allocate_sparsity(scan, 0.5)
    assert overall_sparsity(scan.sizes, plan) == pytest.approx(0.5)
    # big: 0 -> 0.5 costs 0 per weight, then 0.5 -> 0.9 costs 0.01 / 3200; nothing else is needed for 50% overall
    assert plan["mid"] == 0.0 and plan["head"] == 0.0
    assert plan["big"] == pytest.approx(0.5 * 9100 / 8000)


def test_allocation_order_follows_the_cost_per_weight():
    scan = made_up_scan()
    plan = allocate_sparsity(scan, 0.85)
    assert overall_sparsity(scan.sizes, plan) == pytest.approx(0.85)
    assert plan["big"] == pytest.approx(0.9)                 # big's step to 0.99 (0.14 / 720 weights) is dearer ...
    assert plan["mid"] > 0.5 and plan["head"] == 0.0         # ... than mid's 0.5 -> 0.9 (0.04 / 400)
    assert allocate_sparsity(scan, 0.0) == {"big": 0.0, "mid": 0.0, "head": 0.0}


def test_allocation_beyond_the_scan_says_how_far_it_can_go():
    with pytest.raises(ValueError, match="largest scanned sparsity"):
        allocate_sparsity(made_up_scan(), 0.995)
    with pytest.raises(ValueError, match=r"\[0, 1\)"):
        allocate_sparsity(made_up_scan(), 1.0)
    with pytest.raises(TypeError, match="SensitivityScan"):
        allocate_sparsity({"big": {0.5: 0.9}}, 0.5)


def net() -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(nn.Flatten(), nn.Linear(20, 16), nn.ReLU(), nn.Linear(16, 8), nn.ReLU(), nn.Linear(8, 3))


def test_prune_per_layer_gives_each_layer_its_own_sparsity_by_magnitude_without_touching_the_model():
    model = net()
    before = copy.deepcopy(model.state_dict())
    pruned = prune_per_layer(model, {"1": 0.75, "3": 0.5})
    table = layer_sparsity(pruned)
    assert table["1"].zeros == 240 and table["3"].zeros == 64 and table["5"].zeros == 0
    # within a layer it is exactly magnitude pruning of that layer alone
    alone = prune_unstructured(model, 0.75, exclude=["3", "5"])
    assert torch.equal(pruned[1].weight, alone[1].weight)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert prune_per_layer(model, {"1": 0.5}, inplace=True) is model


def test_prune_per_layer_scores_gradient_criteria_once_on_the_unpruned_model():
    model = net()
    data = [(torch.randn(32, 20), torch.randint(0, 3, (32,)))]
    pruned = prune_per_layer(model, {"1": 0.5, "3": 0.5}, criterion="taylor", data=data)
    ref = prune_unstructured(model, 0.5, criterion="taylor", data=data)        # local: every layer 50%, scored once
    assert torch.equal(pruned[1].prune_mask, ref[1].prune_mask)
    assert torch.equal(pruned[3].prune_mask, ref[3].prune_mask)
    with pytest.raises(ValueError, match="needs gradients"):
        prune_per_layer(model, {"1": 0.5}, criterion="taylor")


def test_prune_per_layer_rejects_bad_input():
    with pytest.raises(ValueError, match="unknown layers"):
        prune_per_layer(net(), {"fc9": 0.5})
    with pytest.raises(ValueError, match=r"\[0, 1\)"):
        prune_per_layer(net(), {"1": 1.5})
    with pytest.raises(ValueError, match="unknown criterion"):
        prune_per_layer(net(), {"1": 0.5}, criterion="size")
