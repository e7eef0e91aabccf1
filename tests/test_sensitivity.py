"""Sensitivity: one-layer-at-a-time scans (torch as the oracle), the per-layer allocation of a budget, pruning to it."""
from __future__ import annotations

import copy

import matplotlib
import pytest
import torch
from torch import nn
from torch.nn.utils import prune as torch_prune

matplotlib.use("Agg")

from course import SensitivityScan, evaluate, sensitivity_scan  # noqa: E402
from course.pruning import layer_sparsity, prune_unstructured  # noqa: E402
from course.lessons.sensitivity import allocate_sparsity, overall_sparsity, prune_per_layer  # noqa: E402

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


# --- sensitivity_scan ---------------------------------------------------------------------------------------------

def _net_and_data():
    """A bias-free conv chain (so zeroing a filter == removing it) and a fixed synthetic batch (unit test only)."""
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(1, 6, 3, padding=1, bias=False), nn.ReLU(), nn.MaxPool2d(2),
                        nn.Conv2d(6, 8, 3, padding=1, bias=False), nn.ReLU(), nn.AdaptiveAvgPool2d(2),
                        nn.Flatten(), nn.Linear(32, 12, bias=False), nn.ReLU(), nn.Linear(12, 4, bias=False))
    x = torch.randn(700, 1, 8, 8)
    with torch.no_grad():
        y = net(x + 0.3 * torch.randn_like(x)).argmax(1)       # labels the net gets mostly right
    return net, (x, y)


def _oracle(net, data, layer: str, ratio: float, structured: bool) -> float:
    """Accuracy with `layer` pruned by torch.nn.utils.prune (L1 filters / smallest |w|)."""
    import copy

    twin = copy.deepcopy(net)
    module = dict(twin.named_modules())[layer]
    if structured:
        torch_prune.ln_structured(module, "weight", amount=round(ratio * module.weight.shape[0]), n=1, dim=0)
    else:
        torch_prune.l1_unstructured(module, "weight", amount=round(ratio * module.weight.numel()))
    return evaluate(twin, [data])


@pytest.mark.parametrize("kind", ["structured", "unstructured"])
def test_scan_matches_torch_prune_one_layer_at_a_time(kind):
    net, data = _net_and_data()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    scan = sensitivity_scan(net, [0.5, 0.25], data, kind=kind, progress=False)
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())       # model untouched
    expected_layers = ["0", "3", "7"] if kind == "structured" else ["0", "3", "7", "9"]   # classifier: weights only
    assert scan.layers == expected_layers and scan.ratios == [0.25, 0.5] and scan.n_samples == 700
    assert scan.baseline == evaluate(net, [data])
    for layer in scan.layers:
        for r in scan.ratios:
            assert scan.accuracy[layer][r] == pytest.approx(_oracle(net, data, layer, r, kind == "structured"))
            assert scan.drop(layer, r) == pytest.approx(scan.baseline - scan.accuracy[layer][r])
    assert any(scan.drop(layer, 0.5) > 0 for layer in scan.layers)     # pruning half of a layer costs something


def test_scan_table_plot_and_lookups():
    net, data = _net_and_data()
    scan = sensitivity_scan(net, [0.5], data, kind="unstructured", layers=["3", "9"], progress=False)
    assert scan.column("weights") == [6 * 8 * 9, 12 * 4] and scan.columns[-1] == "50%"
    assert "one layer pruned" in str(scan) and "<table>" in scan._repr_html_()
    import matplotlib.pyplot as plt

    stray = plt.figure().gca()
    stray.plot([0, 1], [0, 1])                     # a figure some earlier code left current
    ax = scan.plot()
    assert ax is not stray and len(stray.get_lines()) == 1       # drawn on a fresh figure, not over the stray one
    assert len(ax.get_lines()) == 3 and ax.get_xlabel() == "% of weights zeroed"
    plt.close("all")
    with pytest.raises(KeyError, match="ratios: \\[0.5\\]"):
        scan.drop("3", 0.25)
    with pytest.raises(KeyError, match="layers: \\['3', '9'\\]"):
        scan.drop("0", 0.5)


@pytest.mark.parametrize("kwargs, error, match", [
    ({"ratios": [0.0, 0.5]}, ValueError, "in \\(0, 1\\)"),
    ({"ratios": [0.5, 0.5]}, ValueError, "distinct"),
    ({"ratios": []}, ValueError, "non-empty"),
    ({"kind": "channels"}, ValueError, "choose one of \\['structured', 'unstructured'\\]"),
    ({"layers": ["9"]}, ValueError, "choose from \\['0', '3', '7'\\]"),
])
def test_scan_rejects_bad_arguments(kwargs, error, match):
    net, data = _net_and_data()
    args = {"ratios": [0.5], "kind": "structured"} | kwargs
    with pytest.raises(error, match=match):
        sensitivity_scan(net, args.pop("ratios"), data, progress=False, **args)


def test_scan_rejects_a_one_shot_iterator():
    net, (x, y) = _net_and_data()
    with pytest.raises(TypeError, match="re-iterable"):
        sensitivity_scan(net, [0.5], iter([(x, y)]), progress=False)
