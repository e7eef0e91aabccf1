"""Unstructured pruning: exact sparsity, scopes, torch oracle, idempotence, validation, collapse, fine-tuning."""
from __future__ import annotations

import copy
import math
import warnings

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn
from torch.nn.utils import prune as torch_prune

from course.pruning.criteria import CRITERIA
from course.pruning.masks import MASK, apply_masks, get_masks
from course.pruning.stats import LayerCollapseWarning, detect_layer_collapse, layer_sparsity
from course.pruning.unstructured import prune_unstructured

FEW = settings(max_examples=25, deadline=None)


def mlp(seed: int = 0) -> nn.Sequential:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(12, 9), nn.ReLU(), nn.Linear(9, 7), nn.ReLU(), nn.Linear(7, 3))


def cnn(seed: int = 0) -> nn.Sequential:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.AdaptiveAvgPool2d(2), nn.Flatten(),
                         nn.Linear(16, 5))


def batches(n: int = 3, seed: int = 0, in_shape=(1, 6, 6), classes: int = 5):
    g = torch.Generator().manual_seed(seed)
    return [(torch.randn(8, *in_shape, generator=g), torch.randint(0, classes, (8,), generator=g)) for _ in range(n)]


def layer_zeros(model: nn.Module) -> dict[str, int]:
    return {r.name: r.zeros for r in layer_sparsity(model)}


def snapshot(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in model.state_dict().items()}


# ---------------------------------------------------------------- exact sparsity (property tests)

@FEW
@given(sparsity=st.floats(0.0, 0.99), seed=st.integers(0, 1000))
def test_local_is_exact_per_layer(sparsity, seed):
    model = mlp(seed)
    pruned = prune_unstructured(model, sparsity, scope="local")
    for row in layer_sparsity(pruned):
        assert row.zeros == round(sparsity * row.weights)
        assert abs(row.zeros - sparsity * row.weights) <= 1


@FEW
@given(sparsity=st.floats(0.0, 0.99), seed=st.integers(0, 1000))
def test_global_is_exact_overall(sparsity, seed):
    pruned = prune_unstructured(cnn(seed), sparsity, scope="global")
    total = layer_sparsity(pruned).overall
    assert total.zeros == round(sparsity * total.weights)


@FEW
@given(s1=st.floats(0.0, 0.95), s2=st.floats(0.0, 0.95), scope=st.sampled_from(["local", "global"]))
def test_magnitude_masks_are_nested(s1, s2, scope):
    lo, hi = sorted((s1, s2))
    model = mlp(3)
    m_lo = get_masks(prune_unstructured(model, lo, scope=scope))
    m_hi = get_masks(prune_unstructured(model, hi, scope=scope))
    for name in m_lo:
        assert not (m_hi[name] & ~m_lo[name]).any(), "a weight kept at higher sparsity was pruned at lower"


@FEW
@given(sparsity=st.floats(0.0, 0.99), criterion=st.sampled_from(["magnitude", "random"]))
def test_global_on_one_layer_equals_local(sparsity, criterion):
    torch.manual_seed(1)
    model = nn.Sequential(nn.Linear(10, 6))
    a = prune_unstructured(model, sparsity, scope="global", criterion=criterion)
    b = prune_unstructured(model, sparsity, scope="local", criterion=criterion)
    assert torch.equal(a[0].prune_mask, b[0].prune_mask)


@FEW
@given(sparsity=st.floats(0.0, 0.99), scope=st.sampled_from(["local", "global"]),
       criterion=st.sampled_from(["magnitude", "random", "taylor"]))
def test_pruning_twice_is_idempotent(sparsity, scope, criterion):
    data = batches(1, in_shape=(12,), classes=3)
    once = prune_unstructured(mlp(2), sparsity, scope=scope, criterion=criterion, data=data)
    twice = prune_unstructured(once, sparsity, scope=scope, criterion=criterion, data=data)
    for (k, a), (_, b) in zip(once.state_dict().items(), twice.state_dict().items()):
        assert torch.equal(a, b), k


@FEW
@given(seed=st.integers(0, 10_000), sparsity=st.floats(0.1, 0.9))
def test_seeded_random_criterion_is_reproducible(seed, sparsity):
    model = mlp(0)
    a = get_masks(prune_unstructured(model, sparsity, criterion="random", seed=seed))
    b = get_masks(prune_unstructured(model, sparsity, criterion="random", seed=seed))
    c = get_masks(prune_unstructured(model, sparsity, criterion="random", seed=seed + 1))
    assert all(torch.equal(a[n], b[n]) for n in a)
    assert any(not torch.equal(a[n], c[n]) for n in a)


# ---------------------------------------------------------------- torch.nn.utils.prune as the oracle

@pytest.mark.parametrize("sparsity", [0.0, 0.1, 0.37, 0.5, 0.8, 0.95, 0.999])
def test_local_magnitude_matches_torch_l1_unstructured(sparsity):
    model = cnn(4)
    ours = get_masks(prune_unstructured(model, sparsity, scope="local"))
    for name, module in [("0", model[0]), ("5", model[5])]:
        ref = torch_prune.l1_unstructured(copy.deepcopy(module), "weight", sparsity)
        assert torch.equal(ours[name], ref.weight_mask.bool()), name


@pytest.mark.parametrize("sparsity", [0.0, 0.2, 0.5, 0.9, 0.99])
def test_global_magnitude_matches_torch_global_unstructured(sparsity):
    model = cnn(5)
    ours = get_masks(prune_unstructured(model, sparsity, scope="global"))
    ref = cnn(5)
    torch_prune.global_unstructured([(ref[0], "weight"), (ref[5], "weight")], torch_prune.L1Unstructured,
                                    amount=sparsity)
    assert torch.equal(ours["0"], ref[0].weight_mask.bool())
    assert torch.equal(ours["5"], ref[5].weight_mask.bool())


# ---------------------------------------------------------------- never mutate the input

@pytest.mark.parametrize("criterion", sorted(CRITERIA))
@pytest.mark.parametrize("scope", ["local", "global"])
def test_input_model_is_never_mutated(criterion, scope):
    model = cnn(6).train()                        # train mode: BatchNorm statistics would move if we ran it
    before = snapshot(model)
    out = prune_unstructured(model, 0.6, criterion=criterion, scope=scope, data=batches(2))
    assert out is not model
    assert model.training
    assert not any(hasattr(m, MASK) for m in model.modules())
    assert all(p.grad is None for p in model.parameters())
    after = model.state_dict()
    assert before.keys() == after.keys()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert layer_sparsity(out).overall.zeros > 0


def test_inplace_prunes_the_given_model():
    model = mlp(0)
    out = prune_unstructured(model, 0.5, inplace=True)
    assert out is model and hasattr(model[0], MASK)
    assert layer_sparsity(model)[0].zeros == round(0.5 * 12 * 9)


def test_biases_and_batchnorm_are_not_pruned():
    model = cnn(0)
    out = prune_unstructured(model, 0.9, scope="global")
    assert torch.equal(out[0].bias, model[0].bias) and torch.equal(out[5].bias, model[5].bias)
    assert torch.equal(out[1].weight, model[1].weight)
    assert not hasattr(out[1], MASK)
    assert {n for n, m in out.named_modules() if hasattr(m, MASK)} == {"0", "5"}


# ---------------------------------------------------------------- options

def test_exclude_leaves_layers_dense_and_counts_only_the_rest():
    out = prune_unstructured(mlp(0), 0.5, scope="global", exclude=["4"])
    table = layer_sparsity(out)
    assert table["4"].zeros == 0 and not hasattr(out[4], MASK)
    assert table["0"].zeros + table["2"].zeros == round(0.5 * (108 + 63))
    assert layer_sparsity(prune_unstructured(mlp(0), 0.5, exclude="4"))["4"].zeros == 0   # one name as a str


def test_min_density_caps_layers_and_redistributes_the_budget():
    model = mlp(0)
    with torch.no_grad():
        model[2].weight.mul_(1e-3)                # global magnitude would empty this layer first
    free = layer_sparsity(prune_unstructured(model, 0.7, scope="global"))
    assert free["2"].zeros == 63
    capped = layer_sparsity(prune_unstructured(model, 0.7, scope="global", min_density=0.2))
    assert capped.overall.zeros == round(0.7 * capped.overall.weights)          # target still exact
    for row in capped:
        assert row.weights - row.zeros >= math.ceil(0.2 * row.weights)
    assert capped["2"].weights - capped["2"].zeros == math.ceil(0.2 * 63)      # the cap binds


def test_min_density_warns_when_the_target_is_unreachable():
    with pytest.warns(UserWarning, match="not reachable"):
        out = prune_unstructured(mlp(0), 0.9, scope="global", min_density=0.5)
    for row in layer_sparsity(out):
        assert row.weights - row.zeros == math.ceil(0.5 * row.weights)


def test_already_pruned_weights_stay_pruned_and_sparsity_never_drops():
    first = prune_unstructured(mlp(0), 0.6, criterion="random", seed=1)
    second = prune_unstructured(first, 0.3)                                     # ask for less: keep the mask
    third = prune_unstructured(first, 0.8)
    for name, mask in get_masks(first).items():
        assert torch.equal(get_masks(second)[name], mask)
        assert not (get_masks(third)[name] & ~mask).any()
    assert all(r.zeros == round(0.8 * r.weights) for r in layer_sparsity(third))


# ---------------------------------------------------------------- validation

@pytest.mark.parametrize("bad, exc", [(1.0, ValueError), (-0.1, ValueError), (1.5, ValueError),
                                      (float("nan"), ValueError), (True, TypeError), ("0.5", TypeError),
                                      (None, TypeError)])
def test_bad_sparsity_names_the_valid_range(bad, exc):
    with pytest.raises(exc, match=r"\[0, 1\)"):
        prune_unstructured(mlp(), bad)


def test_unknown_criterion_and_scope_list_the_choices():
    with pytest.raises(ValueError, match="magnitude.*random|random.*magnitude"):
        prune_unstructured(mlp(), 0.5, criterion="l1")
    with pytest.raises(ValueError, match="'local', 'global'"):
        prune_unstructured(mlp(), 0.5, scope="layer")


def test_model_without_prunable_layers_is_refused():
    with pytest.raises(ValueError, match="no prunable layers"):
        prune_unstructured(nn.Sequential(nn.ReLU(), nn.BatchNorm1d(3)), 0.5)
    with pytest.raises(ValueError, match="no prunable layers"):
        prune_unstructured(nn.Sequential(nn.Linear(2, 2)), 0.5, exclude=["0"])


@pytest.mark.parametrize("criterion", ["gradient", "taylor", "snip"])
def test_gradient_criteria_ask_for_data(criterion):
    with pytest.raises(ValueError, match="data="):
        prune_unstructured(mlp(), 0.5, criterion=criterion)


def test_unknown_exclude_name_is_refused():
    with pytest.raises(ValueError, match="fc9"):
        prune_unstructured(mlp(), 0.5, exclude=["fc9"])


@pytest.mark.parametrize("bad", [-0.1, 1.5, float("nan"), "x"])
def test_bad_min_density_is_refused(bad):
    with pytest.raises((ValueError, TypeError), match=r"\[0, 1\]"):
        prune_unstructured(mlp(), 0.5, scope="global", min_density=bad)


# ---------------------------------------------------------------- layer collapse

def collapsible_mlp(seed: int = 2) -> nn.Sequential:
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(32, 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 10))
    with torch.no_grad():
        model[2].weight.mul_(0.05)               # a layer of small weights, as after weight decay
    return model


def test_global_extreme_sparsity_collapses_a_layer_and_is_reported():
    pruned = prune_unstructured(collapsible_mlp(), 0.995, scope="global")
    assert layer_sparsity(pruned)["2"].sparsity == 1.0
    with pytest.warns(LayerCollapseWarning, match="every weight pruned"):
        report = detect_layer_collapse(pruned)
    assert "2" in report.collapsed and report.disconnected and report
    units = {u.name: u for u in report.layers}
    assert units["2"].dead_outputs == 64 and units["2"].dead_inputs == 64
    x = torch.randn(5, 32)
    out = pruned(x)
    assert torch.allclose(out, out[:1].expand_as(out))                         # the output ignores the input


@pytest.mark.parametrize("seed", range(4))
def test_local_at_the_same_sparsity_keeps_every_layer(seed):
    pruned = prune_unstructured(collapsible_mlp(seed), 0.995, scope="local")
    report = detect_layer_collapse(pruned, warn=False)
    assert report.collapsed == []
    assert all(u.dead_outputs < u.outputs for u in report.layers)


def test_local_at_the_same_sparsity_does_not_collapse():
    # With this seed the few survivors of each layer still line up into a path. At 99.5% local pruning can
    # still disconnect a chain when survivors of consecutive layers miss each other (other seeds do).
    pruned = prune_unstructured(collapsible_mlp(2), 0.995, scope="local")
    with warnings.catch_warnings():
        warnings.simplefilter("error", LayerCollapseWarning)
        report = detect_layer_collapse(pruned)
    assert report.collapsed == [] and not report.disconnected and not report


def test_chain_with_disjoint_alive_units_is_disconnected_without_an_empty_layer():
    model = mlp(0)
    masks = {"0": torch.zeros(9, 12, dtype=torch.bool), "2": torch.zeros(7, 9, dtype=torch.bool),
             "4": torch.ones(3, 7, dtype=torch.bool)}
    masks["0"][0, :] = True                       # only hidden unit 0 of layer 0 is alive ...
    masks["2"][:, 1] = True                       # ... but layer 2 reads only hidden unit 1
    report = detect_layer_collapse(apply_masks(model, masks), warn=False)
    assert report.collapsed == [] and report.disconnected and report.cut_at == "2"
    masks["2"][:, 0] = True                       # reconnect through unit 0
    assert not detect_layer_collapse(apply_masks(model, masks), warn=False).disconnected


def test_flatten_maps_conv_channels_to_linear_input_blocks():
    model = cnn(0)
    conv = torch.zeros(4, 1, 3, 3, dtype=torch.bool)
    conv[0] = True                                # only channel 0 alive: Linear inputs 0..3 after the 2x2 pool
    fc = torch.zeros(5, 16, dtype=torch.bool)
    fc[:, 4:8] = True                             # reads channel 1 only
    assert detect_layer_collapse(apply_masks(model, {"0": conv, "5": fc}), warn=False).cut_at == "5"
    fc[:, 3] = True                               # and one input of channel 0
    assert not detect_layer_collapse(apply_masks(model, {"0": conv, "5": fc}), warn=False)


def test_layer_sparsity_table_access_and_display():
    table = layer_sparsity(prune_unstructured(mlp(0), 0.5))
    assert len(table) == 3 and table.names == ["0", "2", "4"]
    assert table[0] == table["0"] and table["0"].shape == (9, 12) and table["0"].weights == 108
    assert table.to_dict() == {r.name: r.sparsity for r in table}
    assert table.overall.zeros == sum(r.zeros for r in table)
    assert "overall" in repr(table) and "<table>" in table._repr_html_()
    with pytest.raises(KeyError, match="no weight matrix"):
        table["nope"]


def test_layer_sparsity_plot_draws_one_bar_per_layer_on_a_fresh_figure():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    table = layer_sparsity(prune_unstructured(mlp(0), 0.5))
    stray = plt.figure().gca()
    ax = table.plot()
    assert ax is not stray and not stray.patches
    assert [round(p.get_height(), 6) for p in ax.patches] == [round(s, 6) for s in table.sparsities]
    assert ax.get_lines()[0].get_ydata()[0] == pytest.approx(table.overall.sparsity)
    plt.close("all")


# ---------------------------------------------------------------- fine-tuning keeps zeros

@pytest.mark.parametrize("make_opt", [
    lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9, weight_decay=1e-3),
    lambda p: torch.optim.Adam(p, lr=0.01),
], ids=["sgd-momentum", "adam"])
@pytest.mark.parametrize("enforce", [True, False])
def test_finetuning_keeps_pruned_weights_exactly_zero(make_opt, enforce):
    model = prune_unstructured(mlp(0), 0.7)
    if not enforce:                               # the control: the same masks as bare buffers, without the hooks
        bare = mlp(0)
        for name, mask in get_masks(model).items():
            bare.get_submodule(name).register_buffer(MASK, mask)
            with torch.no_grad():
                bare.get_submodule(name).weight.mul_(mask)
        model = bare
    start = snapshot(model)
    opt = make_opt(model.parameters())
    for X, y in batches(10, in_shape=(12,), classes=3):   # a plain loop: the mask hooks hold by themselves
        opt.zero_grad()
        nn.functional.cross_entropy(model(X), y).backward()
        opt.step()
    pruned_values = torch.cat([m.weight[~m.prune_mask] for m in model if hasattr(m, MASK)])
    if enforce:
        assert torch.equal(pruned_values, torch.zeros_like(pruned_values))
    else:                                         # the control: without the hooks the optimizer revives them
        assert (pruned_values != 0).any()
    assert not torch.equal(model[0].weight, start["0.weight"])                # it did train


@settings(max_examples=200, deadline=None)
@given(values=st.lists(st.sampled_from([-math.inf, -1.0, 0.0, 0.0, 0.5, 1.0, 2.0, math.nan]), min_size=1,
                       max_size=40),
       frac=st.floats(0, 1))
def test_selection_by_kthvalue_equals_a_stable_sort_ties_and_infinities_included(values, frac):
    from course.pruning.unstructured import lowest

    scores = torch.tensor(values)
    k = round(frac * len(values))
    expected = torch.zeros(len(values), dtype=torch.bool)
    expected[torch.sort(scores, stable=True).indices[:k]] = True
    assert torch.equal(lowest(scores, k), expected)
