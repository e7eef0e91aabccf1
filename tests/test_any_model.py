"""The engine on the models users have (the zoo): every weight layer pruned or named, tied weights, models pruned
elsewhere, batches in any form, and layer collapse that is functional. Each test fails on the library before issue 11.
"""
from __future__ import annotations

import copy
import warnings

import pytest
import torch
from torch import nn
from torch.nn.utils import prune as torch_prune

from course import (
    LayerCollapseWarning, NotPrunedWarning, detect_layer_collapse, from_torch_prune, get_masks, layer_sparsity,
    prunable_weights, prune_unstructured, score, unit_scores, weight_matrices,
)
from course.inputs import call
from zoo import ZOO

LAYERS = (nn.Linear, nn.modules.conv._ConvNd, nn.MultiheadAttention, nn.RNNBase)


def own_matrices(model: nn.Module, embeddings: bool = False) -> dict[int, torch.Tensor]:
    """The test's own list: every weight matrix (dim >= 2) of the layers issue 11 names, each Parameter once."""
    types = LAYERS + ((nn.Embedding,) if embeddings else ())
    return {id(p): p for m in model.modules() if isinstance(m, types) for p in m.parameters(recurse=False)
            if p.dim() >= 2}


def sparsity_of(params) -> float:
    params = list(params)
    return sum(int((p == 0).sum()) for p in params) / sum(p.numel() for p in params)


def quiet_prune(*args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotPrunedWarning)
        return prune_unstructured(*args, **kwargs)


@pytest.mark.parametrize("scope", ["local", "global"])
@pytest.mark.parametrize("name", ZOO)
def test_every_weight_layer_reaches_the_requested_sparsity(name, scope):
    model = ZOO[name].model()
    pruned = quiet_prune(model, 0.9, scope=scope)
    assert sparsity_of(own_matrices(pruned).values()) == pytest.approx(0.9, abs=2e-3)
    if scope == "local":                                  # every matrix, LSTM gates and in_proj_weight included
        assert all(sparsity_of([p]) == pytest.approx(0.9, abs=0.01) for p in own_matrices(pruned).values())


@pytest.mark.parametrize("name", ZOO)
def test_layer_sparsity_lists_every_weight_matrix_pruned_or_not(name):
    pruned = quiet_prune(ZOO[name].model(), 0.5)
    table = layer_sparsity(pruned)
    everything = own_matrices(pruned, embeddings=True)
    assert sum(r.weights for r in table) == sum(p.numel() for p in everything.values())
    assert table.overall.sparsity == pytest.approx(sparsity_of(everything.values()))
    masked = {r.name for r in table if r.masked}
    assert masked == set(get_masks(pruned))


def test_keys_are_module_names_for_weights_and_module_dot_parameter_otherwise():
    keys = [t.name for t in prunable_weights(ZOO["text_transformer"].model())]
    assert "head" in keys and "encoder.layers.0.self_attn.in_proj_weight" in keys
    assert "encoder.layers.0.self_attn.out_proj" in keys and "encoder.layers.1.linear2" in keys
    lstm = [t.name for t in prunable_weights(ZOO["lstm"].model())]
    assert lstm == ["lstm.weight_ih_l0", "lstm.weight_hh_l0", "lstm.weight_ih_l1", "lstm.weight_hh_l1", "fc"]


@pytest.mark.parametrize("name", ["text_transformer", "lstm"])
def test_a_warning_names_the_embeddings_left_dense_and_include_prunes_them(name):
    model = ZOO[name].model()
    with pytest.warns(NotPrunedWarning, match=r"embed.*Embedding.*include="):
        prune_unstructured(model, 0.9)
    with warnings.catch_warnings():
        warnings.simplefilter("error", NotPrunedWarning)
        full = prune_unstructured(model, 0.9, include=[nn.Embedding], scope="global")
        embedding = [t.name for t in weight_matrices(model) if isinstance(t.module, nn.Embedding)]
        prune_unstructured(model, 0.9, exclude=embedding)              # excluded by name: not news
    assert layer_sparsity(full).overall.sparsity == pytest.approx(0.9, abs=1e-3)


def test_unknown_include_or_exclude_names_are_refused_with_the_valid_names():
    model = ZOO["lstm"].model()
    with pytest.raises(ValueError, match="lstm.weight_hh_l0"):
        prune_unstructured(model, 0.5, exclude=["lstm.weight_hh_l9"])
    with pytest.raises(TypeError, match="include"):
        prune_unstructured(model, 0.5, include=[3])
    pruned = prune_unstructured(model, 0.5, exclude=["lstm"], include=["embedding"])   # a module: all its weights
    assert set(get_masks(pruned)) == {"embedding", "fc"}


@pytest.mark.parametrize("name", ["tiny_gpt", "tiny_gpt_sdpa"])
def test_tied_weights_get_one_mask_with_the_requested_sparsity(name):
    model = ZOO[name].model()
    pruned = prune_unstructured(model, 0.8, include=[nn.Embedding], scope="local")
    assert pruned.wte.weight is pruned.lm_head.weight and pruned.wte.prune_mask is pruned.lm_head.prune_mask
    assert "lm_head" not in get_masks(pruned) and sparsity_of([pruned.wte.weight]) == pytest.approx(0.8, abs=1e-3)
    ids = torch.arange(64)
    assert torch.equal(pruned.wte(ids), pruned.lm_head.weight.detach())      # the same zeros in both places


def test_a_torch_pruned_model_is_refused_with_how_to_convert_and_converts_exactly():
    """Before issue 11: prune_unstructured(inplace=True) reported 0.50, then a forward pass put it back to 0.30."""
    model = ZOO["resnet18"].model()
    torch_prune.l1_unstructured(model.linear, "weight", amount=0.3)
    with pytest.raises(ValueError, match=r"linear\.weight.*from_torch_prune"):
        prune_unstructured(model, 0.5, inplace=True)
    pruned = prune_unstructured(from_torch_prune(model), 0.5, scope="local")
    pruned(torch.randn(2, 3, 16, 16))
    assert layer_sparsity(pruned)["linear"].sparsity == pytest.approx(0.5, abs=0.01)


@pytest.mark.parametrize("name", ZOO)
def test_plain_adam_keeps_the_sparsity_and_save_load_gives_the_same_outputs(name, tmp_path):
    from course import load_pruned, save_pruned

    spec = ZOO[name]
    pruned = quiet_prune(spec.model(), 0.8)
    before = layer_sparsity(pruned).overall.sparsity
    opt = torch.optim.Adam(pruned.parameters(), lr=1e-2)
    pruned.train()
    for step in range(3):
        opt.zero_grad()
        spec.loss_fn(pruned, spec.batch(4, seed=step)).backward()
        opt.step()
    assert layer_sparsity(pruned).overall.sparsity == before
    loaded = load_pruned(save_pruned(pruned, tmp_path / "m.pt", "bitmask_fp32"), spec.model())
    x = spec.inputs(spec.batch(8, seed=99))
    with torch.no_grad():
        assert torch.equal(call(pruned.eval(), x), call(loaded.eval(), x))


# ---------------------------------------------------------------- batches the way users have them

@pytest.mark.parametrize("criterion", ["gradient", "taylor", "taylor_signed_mean", "snip", lambda w, g: (w * g).abs()])
@pytest.mark.parametrize("name", ["text_transformer", "lstm", "tiny_gpt", "autoencoder"])
def test_gradient_criteria_take_a_loss_of_model_and_batch(name, criterion):
    spec = ZOO[name]
    model = spec.model()
    data = [spec.batch(4, seed=s) for s in range(2)]
    # a list of tensors is ONE batch ((x, y) as a DataLoader yields it), so tensor batches come from a generator
    given = (b for b in data) if name == "autoencoder" else data
    scores = score(model, criterion, given, loss_fn=spec.loss_fn)
    reference = copy.deepcopy(model).train()                 # the oracle: autograd on the mean loss, same dropout
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        (sum(spec.loss_fn(reference, b) for b in data) / 2).backward()
    for t in prunable_weights(reference):
        assert scores[t.name].shape == t.weight.shape
        if criterion == "gradient":
            torch.testing.assert_close(scores[t.name], t.weight.grad.abs(), rtol=1e-4, atol=1e-6)


def test_frozen_layers_are_scored_and_an_unused_one_is_named():
    spec = ZOO["resnet18"]
    model = spec.model()
    for p in model.layer1.parameters():
        p.requires_grad_(False)
    scores = score(model, "taylor", spec.batch(4), loss_fn=spec.loss_fn)
    assert scores["layer1.0.conv1"].abs().sum() > 0 and not model.layer1[0].conv1.weight.requires_grad
    model.unused = nn.Linear(3, 3)
    with pytest.raises(ValueError, match=r"no gradient reaches \['unused'\]"):
        score(model, "gradient", spec.batch(4), loss_fn=spec.loss_fn)


def test_unit_taylor_is_reproducible_with_dropout_and_leaves_the_global_rng_alone():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Dropout(0.5), nn.Linear(16, 3))
    data = [(torch.randn(16, 8), torch.randint(0, 3, (16,))) for _ in range(2)]
    state = torch.random.get_rng_state()
    a = unit_scores(model, "taylor", data, seed=3)
    assert torch.equal(torch.random.get_rng_state(), state)
    b = unit_scores(model, "taylor", data, seed=3)
    c = unit_scores(model, "taylor", data, seed=4)
    assert torch.equal(a["0"], b["0"]) and not torch.equal(a["0"], c["0"])


# ---------------------------------------------------------------- layer collapse, functionally

@pytest.mark.parametrize("name, layer", [("resnet18", "layer1.0.conv2"), ("tiny_gpt", "h.0.attn.c_attn"),
                                         ("mobilenetv2", "features.3.conv.3"),
                                         ("text_transformer", "encoder.layers.0.self_attn.in_proj_weight")])
def test_a_zeroed_layer_with_another_path_is_collapsed_but_not_disconnected(name, layer):
    spec = ZOO[name]
    model = quiet_prune(spec.model(), 0.0)
    masks = get_masks(model)
    masks[layer] = torch.zeros_like(masks[layer])
    from course import apply_masks

    model = apply_masks(model, masks)
    report = detect_layer_collapse(model, spec.inputs(spec.batch(4)), warn=False)
    assert report.collapsed == [layer] and not report.disconnected and report.checked == "forward"
    assert "still depends on the input" in str(report)


def test_a_zeroed_layer_on_the_only_path_is_disconnected():
    spec = ZOO["mobilenetv2"]
    model = prune_unstructured(spec.model(), 0.0)
    masks = get_masks(model)
    masks["features.2.conv.3"] = torch.zeros_like(masks["features.2.conv.3"])    # stride 2: no residual
    from course import apply_masks

    model = apply_masks(model, masks)
    with pytest.warns(LayerCollapseWarning, match="disconnected"):
        report = detect_layer_collapse(model, spec.inputs(spec.batch(4)))
    assert report.disconnected and report.checked == "forward"
    with torch.no_grad():
        out = model.eval()(torch.randn(4, 3, 32, 32))
    assert torch.equal(out, out[:1].expand_as(out))


def test_without_inputs_a_non_chain_is_not_called_disconnected():
    model = ZOO["lstm"].model()
    report = detect_layer_collapse(quiet_prune(model, 0.5), warn=False)
    assert report.checked == "no" and not report.disconnected


@pytest.mark.parametrize("scope", ["local", "global", "row"])
def test_layer_collapse_is_warned_about_at_any_scope(scope):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(10, 2), nn.ReLU(), nn.Linear(2, 1))      # the last layer: 2 weights
    with pytest.warns(LayerCollapseWarning, match=r"\['2'\] lost every weight"):
        prune_unstructured(model, 0.8, scope=scope, exclude=["0"])            # round(0.8 * 2) = 2 of 2
