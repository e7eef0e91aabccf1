"""course.widgets: the plain twins agree with the library, the widgets show the twins' numbers, nothing mutates."""
from __future__ import annotations

import html

import pytest
import torch
from matplotlib.figure import Figure

from course.data import held_out_batch
from course.metrics import count_flops, size_bytes, stored_size
from course.models import build_model
from course.pruning import get_masks
from course.pruning.masks import MASK
from course.pruning.targets import prunable_layers
from course.pruning.stats import detect_layer_collapse, layer_sparsity
from course.pruning.structured import prune_structured
from course.pruning.unstructured import prune_unstructured
from course import evaluate, train_or_load
from course.widgets import (
    PruningEngine, compare_scopes, explore_sparsity, scope_explorer, sparsity_explorer,
)

SHAPE = (1, 28, 28)


@pytest.fixture(scope="module")
def baseline():
    """The shipped LeNet-300-100 baseline on MNIST and the held-out batch the notebooks use."""
    model, _ = train_or_load("lenet300", "mnist", progress=False)
    X, y = held_out_batch("mnist", 1000)
    return model, X, y


@pytest.fixture(scope="module")
def engine(baseline):
    model, X, y = baseline
    return PruningEngine(model, X, y, input_shape=SHAPE)


def _state(model):
    return {k: v.clone() for k, v in model.state_dict().items()}


def _library_numbers(pruned, X, y):
    """What the library itself measures for a pruned model, on the same batch."""
    return {
        "accuracy": evaluate(pruned, [(X, y)]),
        "size_bytes": stored_size(pruned)[1],
        "effective_flops": count_flops(pruned, SHAPE).effective,
    }


@pytest.mark.parametrize("criterion", ["magnitude", "gradient", "taylor", "snip", "random"])
@pytest.mark.parametrize("scope", ["local", "global"])
def test_twin_agrees_with_prune_unstructured(baseline, criterion, scope):
    model, X, y = baseline
    numbers, fig = explore_sparsity(model, X, y, 0.8, criterion, scope, input_shape=SHAPE)
    pruned = prune_unstructured(model, 0.8, criterion=criterion, scope=scope, data=(X, y))
    table = layer_sparsity(pruned)
    assert numbers.sparsity == pytest.approx(table.overall.sparsity, abs=1e-12)
    assert numbers.layer_sparsity == pytest.approx(table.to_dict(), abs=1e-12)
    lib = _library_numbers(pruned, X, y)
    assert numbers.accuracy == pytest.approx(lib["accuracy"], abs=1e-9)
    assert numbers.size_bytes == lib["size_bytes"]
    assert numbers.effective_flops == pytest.approx(lib["effective_flops"])
    assert numbers.collapse == (str(r) if (r := detect_layer_collapse(pruned, warn=False)) else "")
    assert isinstance(fig, Figure)
    assert fig._repr_png_().startswith(b"\x89PNG\r\n\x1a\n")                   # shows inline without pyplot


def test_engine_masks_are_the_librarys(baseline, engine):
    model, X, y = baseline
    for criterion in ("magnitude", "taylor"):
        for scope in ("local", "global"):
            for s in (0.0, 0.33, 0.9, 0.995):
                got = engine.run(s, criterion, scope).masks
                want = get_masks(prune_unstructured(model, s, criterion=criterion, scope=scope, data=(X, y)))
                assert got.keys() == want.keys()
                for name in want:
                    assert torch.equal(got[name], want[name]), (criterion, scope, s, name)


@pytest.mark.parametrize("scope", ["local", "global"])
def test_engine_keeps_pruned_weights_of_a_masked_model_pruned_as_the_library_does(scope):
    """A model that already carries masks: the engine's selection is still exactly prune_unstructured's."""
    torch.manual_seed(0)
    model = prune_unstructured(build_model("lenet300", (1, 8, 8)), 0.3, criterion="random")
    X, y = torch.randn(16, 1, 8, 8), torch.randint(0, 10, (16,))
    engine = PruningEngine(model, X, y, input_shape=(1, 8, 8))
    for s in (0.0, 0.2, 0.5, 0.95):
        got = engine.run(s, "magnitude", scope).masks
        want = get_masks(prune_unstructured(model, s, scope=scope))
        assert all(torch.equal(got[name], want[name]) for name in want), (scope, s)


@pytest.mark.parametrize("scope", ["local", "global"])
def test_units_twin_agrees_with_prune_structured(baseline, scope):
    model, X, y = baseline
    numbers, _ = explore_sparsity(model, X, y, 0.5, "magnitude", scope, "units", input_shape=SHAPE)
    small = prune_structured(model, 0.5, criterion="l1", scope=scope)
    lib = _library_numbers(small, X, y)
    assert numbers.accuracy == pytest.approx(lib["accuracy"], abs=1e-9)
    assert numbers.size_bytes == lib["size_bytes"]
    assert numbers.effective_flops == pytest.approx(lib["effective_flops"])
    kept = sum(m.weight.numel() for _, m in prunable_layers(small))
    total = sum(m.weight.numel() for _, m in prunable_layers(model))
    assert numbers.sparsity == pytest.approx(1 - kept / total)
    assert numbers.size_bytes < size_bytes(model, "dense")


def test_dense_size_of_a_masked_copy_equals_the_originals(baseline):
    """The readout's 'x smaller than the dense original' divides by the original's dense file: shapes decide it."""
    model, X, y = baseline
    assert size_bytes(prune_unstructured(model, 0.7), "dense") == size_bytes(model, "dense")


def test_compare_scopes_agrees_with_library_and_flags_collapse(baseline):
    model, X, y = baseline
    comp, fig = compare_scopes(model, X, y, 0.999, input_shape=SHAPE)
    for numbers, scope in ((comp.local, "local"), (comp.global_, "global")):
        pruned = prune_unstructured(model, 0.999, scope=scope)
        assert numbers.scope == scope
        assert numbers.accuracy == pytest.approx(evaluate(pruned, [(X, y)]), abs=1e-9)
        assert numbers.layer_sparsity == pytest.approx(layer_sparsity(pruned).to_dict(), abs=1e-12)
        report = detect_layer_collapse(pruned, warn=False)
        assert list(numbers.collapsed) == report.collapsed
    # global magnitude pruning at 99.9% empties fc1 of this baseline (its weights are the smallest); local cannot
    assert comp.global_.collapsed == ("fc1",) and not comp.local.collapse
    assert "layer collapse under global" in comp.readout()
    comp, _ = compare_scopes(model, X, y, 0.5, input_shape=SHAPE)
    assert "collapse" not in comp.readout()
    assert comp.local.layer_sparsity != comp.global_.layer_sparsity


def test_widget_readout_shows_the_twins_numbers(baseline):
    model, X, y = baseline
    ui = sparsity_explorer(model, X, y, input_shape=SHAPE)
    first_png = ui.image.value
    bars = list(ui.view.figure.bars)
    for setting in (0.7, 0.93):
        ui.slider.value = setting
        twin, _ = explore_sparsity(model, X, y, setting, input_shape=SHAPE)
        assert ui.readout.value == html.escape(twin.readout())
        assert ui.numbers == twin
    assert ui.image.value != first_png
    assert list(ui.view.figure.bars) == bars                                    # same artists, moved in place
    assert [b.get_height() for b in bars] == pytest.approx(list(twin.layer_sparsity.values()))
    ui.criterion.value, ui.scope.value = "taylor", "global"
    twin, _ = explore_sparsity(model, X, y, 0.93, "taylor", "global", input_shape=SHAPE)
    assert ui.readout.value == html.escape(twin.readout())
    ui.criterion.value = "snip"
    ui.granularity.value = "units"                                              # snip cannot score units
    assert ui.criterion.value == "magnitude" and ui.slider.description == "ratio"
    assert "snip" not in ui.criterion.options
    twin, _ = explore_sparsity(model, X, y, 0.93, "magnitude", "global", "units", input_shape=SHAPE)
    assert ui.readout.value == html.escape(twin.readout())
    ui.layer.value = "fc2"
    assert ui.view.figure.image.get_array().shape == (100, 200)                 # fc2 (100, 300) pooled to 200 wide


def test_scope_widget_readout_shows_the_twins_numbers(baseline):
    model, X, y = baseline
    ui = scope_explorer(model, X, y, input_shape=SHAPE)
    ui.slider.value = 0.999
    twin, _ = compare_scopes(model, X, y, 0.999, input_shape=SHAPE)
    assert ui.readout.value == html.escape(twin.readout())
    assert "fc1" in ui.collapse.value
    ui.slider.value = 0.6
    assert ui.collapse.value == ""


def test_model_is_never_mutated(baseline):
    model, X, y = baseline
    before, mode = _state(model), model.training
    grads = [p.grad for p in model.parameters()]
    ui = sparsity_explorer(model, X, y, input_shape=SHAPE)
    for crit in ("gradient", "taylor"):
        ui.criterion.value = crit
        ui.slider.value = 0.9
    ui.granularity.value = "units"
    scope_explorer(model, X, y, input_shape=SHAPE).slider.value = 0.99
    explore_sparsity(model, X, y, 0.5, "snip", input_shape=SHAPE)
    after = model.state_dict()
    assert before.keys() == after.keys()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert not any(hasattr(m, MASK) for m in model.modules())
    assert model.training == mode and [p.grad for p in model.parameters()] == grads


def test_no_pyplot_figures_are_left_open(baseline):
    import matplotlib.pyplot as plt

    model, X, y = baseline
    plt.close("all")
    ui = sparsity_explorer(model, X, y, input_shape=SHAPE)
    ui.slider.value = 0.6
    explore_sparsity(model, X, y, 0.6, input_shape=SHAPE)
    assert plt.get_fignums() == []


@pytest.mark.parametrize("kwargs, error, words", [
    ({"sparsity": 1.0}, ValueError, "[0, 1)"),
    ({"sparsity": "half"}, TypeError, "number"),
    ({"criterion": "biggest"}, ValueError, "magnitude"),
    ({"scope": "per-model"}, ValueError, "global"),
    ({"granularity": "blocks"}, ValueError, "units"),
    ({"granularity": "units", "criterion": "snip"}, ValueError, "taylor"),
    ({"granularity": "units", "sparsity": 1.2}, ValueError, "units removed"),
    ({"layer": "fc9"}, ValueError, "fc1"),
    ({"input_shape": (1, 32, 32)}, ValueError, "shape"),
    ({"input_shape": "28x28"}, TypeError, "(1, 28, 28)"),
])
def test_bad_settings_raise_clear_errors(baseline, kwargs, error, words):
    model, X, y = baseline
    args = {"sparsity": 0.5, "input_shape": SHAPE} | kwargs
    with pytest.raises(error) as info:
        explore_sparsity(model, X, y, **args)
    assert words in str(info.value)


def test_bad_inputs_raise_clear_errors(baseline):
    model, X, y = baseline
    with pytest.raises(TypeError, match="nn.Module"):
        sparsity_explorer(model.state_dict(), X, y, input_shape=SHAPE)
    with pytest.raises(TypeError, match="torch tensors"):
        explore_sparsity(model, X.numpy(), y, 0.5, input_shape=SHAPE)
    with pytest.raises(ValueError, match="int64"):
        explore_sparsity(model, X, y.float(), 0.5, input_shape=SHAPE)
    with pytest.raises(ValueError, match=r"\[0, 1\)"):
        compare_scopes(model, X, y, -0.1, input_shape=SHAPE)
    with pytest.raises(ValueError, match="threads"):
        PruningEngine(model, X, y, input_shape=SHAPE, threads=0)
    with pytest.raises(ValueError, match=r"\[0, 1\)"):
        sparsity_explorer(model, X, y, input_shape=SHAPE, sparsity=1.5)
    with pytest.raises(ValueError, match="choose one of"):
        sparsity_explorer(model, X, y, input_shape=SHAPE, layer="conv1")
    with pytest.raises(ValueError, match="unknown scope 'layer'; choose one of"):
        sparsity_explorer(model, X, y, input_shape=SHAPE, scope="layer")
    with pytest.raises(ValueError, match="scores single weights only"):
        sparsity_explorer(model, X, y, input_shape=SHAPE, criterion="snip", granularity="units")


@pytest.mark.parametrize("criterion, scope, granularity", [("taylor", "global", "weights"),
                                                            ("magnitude", "local", "units")])
def test_explorer_starts_from_the_given_settings(baseline, criterion, scope, granularity):
    model, X, y = baseline
    ui = sparsity_explorer(model, X, y, input_shape=SHAPE, sparsity=0.8, criterion=criterion, scope=scope,
                           granularity=granularity)
    assert (ui.criterion.value, ui.scope.value, ui.granularity.value) == (criterion, scope, granularity)
    assert ui.slider.description == ("ratio" if granularity == "units" else "sparsity")
    twin, _ = explore_sparsity(model, X, y, 0.8, criterion, scope, granularity, input_shape=SHAPE)
    assert ui.numbers == twin


@pytest.mark.parametrize("make", ["sparsity", "scope"])
def test_blitted_png_matches_a_full_redraw(baseline, make):
    """Only the moving artists are redrawn per update; the result must look like drawing the whole figure."""
    import io

    import numpy as np
    from PIL import Image

    model, X, y = baseline
    ui = (sparsity_explorer if make == "sparsity" else scope_explorer)(model, X, y, input_shape=SHAPE)
    first = ui.image.value
    for s in (0.3, 0.999 if make == "scope" else 0.95):
        ui.slider.value = s
    if make == "sparsity":
        ui.layer.value = "fc2"                                                  # rebuilt panels, new background
        ui.criterion.value = "magnitude"
        ui.slider.value = 0.75
    blitted = np.asarray(Image.open(io.BytesIO(ui.image.value)).convert("RGBA")).astype(int)
    buf = io.BytesIO()
    ui.view.figure.fig.savefig(buf, format="png")                              # draws every artist afresh
    full = np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("RGBA")).astype(int)
    assert blitted.shape == full.shape
    assert np.abs(blitted - full).max() <= 16                                  # antialiasing rounding only
    assert ui.image.value != first
