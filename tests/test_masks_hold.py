"""Masks hold in a user's own loop, on every zoo model; torch.nn.utils.prune is the oracle for the training dynamics.

The masks here are built by the test itself (its own list of layer types and its own magnitude rule), so the tests
check the mechanism of `course.pruning.masks` (the three hooks) and not the library's selection."""
from __future__ import annotations

import copy
import io

import pytest
import torch
from torch import nn
from torch.func import functional_call
from torch.nn.utils import prune as torch_prune

from course.pruning import masks as masking
from course.pruning.masks import MaskMismatchError, apply_masks, check_masks, get_masks, remove_masks
from course.pruning.reparam import check_plain, from_torch_prune
from zoo import ZOO

PRUNABLE = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d,
            nn.MultiheadAttention, nn.RNNBase)
OPTIMIZERS = {
    "sgd_momentum": lambda ps: torch.optim.SGD(ps, lr=0.05, momentum=0.9, weight_decay=5e-4),
    "adam": lambda ps: torch.optim.Adam(ps, lr=1e-2),
    "adamw": lambda ps: torch.optim.AdamW(ps, lr=1e-2, weight_decay=0.1),
}


def key(mname: str, attr: str) -> str:
    """The mask key: the module name for `weight`, "module.attr" otherwise."""
    return mname if attr == "weight" else f"{mname}.{attr}"


def weight_matrices(model: nn.Module) -> list[tuple[str, str, str]]:
    """(mask key, module name, attr) of every weight matrix of a prunable layer, each Parameter once."""
    out, seen = [], set()
    for mname, m in model.named_modules():
        if isinstance(m, PRUNABLE):
            for attr, p in m._parameters.items():
                if p is not None and p.dim() >= 2 and id(p) not in seen:
                    seen.add(id(p))
                    out.append((key(mname, attr), mname, attr))
    return out


def magnitude_masks(model: nn.Module, sparsity: float = 0.8) -> dict[str, torch.Tensor]:
    """Keep the (1 - sparsity) largest |w| of each weight matrix."""
    masks = {}
    for key, mname, attr in weight_matrices(model):
        w = model.get_submodule(mname)._parameters[attr].detach()
        keep = torch.ones(w.numel(), dtype=torch.bool)
        keep[w.abs().flatten().argsort()[: round(sparsity * w.numel())]] = False
        masks[key] = keep.view_as(w)
    return masks


def param(model: nn.Module, name: str) -> torch.Tensor:
    """The parameter a mask key names ("conv1" -> conv1.weight, "lstm.weight_hh_l1" -> itself)."""
    found = {k: (m, a) for k, m, a in weight_matrices(model)}
    if name not in found:                                        # a tied owner that is not the first (lm_head)
        return model.get_submodule(name).weight
    mname, attr = found[name]
    return model.get_submodule(mname)._parameters[attr]


def grown(model: nn.Module, masks: dict) -> int:
    """Pruned positions holding a nonzero value."""
    return sum(int((param(model, k).detach()[~m] != 0).sum()) for k, m in masks.items())


def step(spec, model, opt, seed):
    opt.zero_grad()
    spec.loss_fn(model, spec.batch(4, seed=seed)).backward()
    opt.step()


def call(model, inputs):
    if isinstance(inputs, dict):
        return model(**inputs)
    return model(*inputs) if isinstance(inputs, tuple) else model(inputs)


def masked_reference(spec, model, masks, inputs) -> torch.Tensor:
    """Torch oracle: a plain model of the same architecture, run functionally with w * mask."""
    plain = spec.model().eval()
    by_param = {id(param(model, k)): m for k, m in masks.items()}
    state = {}
    for name, _ in [*plain.named_parameters(), *plain.named_buffers()]:
        mname, _, attr = name.rpartition(".")
        live = getattr(model.get_submodule(mname), attr)
        mask = by_param.get(id(live))
        state[name] = live.detach() * mask if mask is not None else live.detach()
    args, kwargs = ((), inputs) if isinstance(inputs, dict) else (inputs if isinstance(inputs, tuple) else (inputs,), {})
    with torch.no_grad():
        return functional_call(plain, state, args, kwargs)


@pytest.mark.parametrize("opt_name", OPTIMIZERS)
@pytest.mark.parametrize("name", ZOO)
def test_pruned_weights_are_exactly_zero_right_after_every_step(name, opt_name):
    spec = ZOO[name]
    masks = magnitude_masks(spec.model())
    model = apply_masks(spec.model(), masks).train()
    opt = OPTIMIZERS[opt_name](model.parameters())
    for s in range(3):
        step(spec, model, opt, s)
        assert grown(model, masks) == 0
    check_masks(model)


@pytest.mark.parametrize("name", ["resnet18", "lstm", "tiny_gpt", "text_transformer"])
def test_an_optimizer_with_momentum_from_before_pruning_cannot_regrow_weights(name):
    spec = ZOO[name]
    model = spec.model().train()
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    for s in range(2):
        step(spec, model, opt, 50 + s)                                  # momentum built on every weight
    masks = magnitude_masks(model)
    apply_masks(model, masks, inplace=True)
    for s in range(3):
        step(spec, model, opt, s)
        assert grown(model, masks) == 0


@pytest.mark.parametrize("name", [n for n in ZOO if n != "text_transformer"])
def test_training_matches_torch_nn_utils_prune_step_for_step(name):
    """Oracle: the same masks through torch.nn.utils.prune give the same weights after 3 Adam steps."""
    spec = ZOO[name]
    masks = magnitude_masks(spec.model())
    ours = apply_masks(spec.model(), masks).train()
    theirs = spec.model().train()
    for k, m in masks.items():
        target = param(theirs, k)
        for owner in theirs.modules():                                  # every owner of a tied parameter
            for a, p in list(owner._parameters.items()):
                if p is target:
                    torch_prune.custom_from_mask(owner, a, m)
    runs = []
    for model in (ours, theirs):
        opt = torch.optim.Adam(model.parameters(), lr=1e-2)
        torch.manual_seed(0)                                            # the same dropout masks in both runs
        for s in range(3):
            step(spec, model, opt, s)
        runs.append(model)
    names = {k: (mn, a) for k, mn, a in weight_matrices(spec.model())}
    for k in masks:
        mname, attr = names[k]
        module = theirs.get_submodule(mname)
        expected = getattr(module, attr + "_orig") * getattr(module, attr + "_mask")
        torch.testing.assert_close(param(ours, k).detach(), expected.detach(), rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("name", ZOO)
def test_forward_uses_the_masked_weights_after_a_write_behind_the_masks(name):
    spec = ZOO[name]
    masks = magnitude_masks(spec.model())
    model = apply_masks(spec.model(), masks).eval()
    model.load_state_dict(spec.model(seed=3).state_dict(), strict=False)     # dense weights, masks kept
    x = spec.inputs(spec.batch(3, seed=9))
    with torch.no_grad():
        out = call(model, x)
    torch.testing.assert_close(out, masked_reference(spec, model, masks, x))
    assert grown(model, masks) == 0


@pytest.mark.parametrize("name", ["resnet18", "text_transformer", "lstm"])
def test_loading_a_state_dict_re_masks_at_once(name):
    spec = ZOO[name]
    masks = magnitude_masks(spec.model())
    model = apply_masks(spec.model(), masks)
    model.load_state_dict(spec.model(seed=3).state_dict(), strict=False)          # dense weights, no forward yet
    assert grown(model, masks) == 0
    other = magnitude_masks(spec.model(seed=7))                                    # only new masks loaded
    new = apply_masks(spec.model(), other).state_dict()
    model.load_state_dict({k: v for k, v in new.items() if k.endswith(masking.MASK)}, strict=False)
    assert grown(model, other) == 0 and all(torch.equal(get_masks(model)[k], m) for k, m in other.items())


def test_an_in_place_masked_lstm_weight_reaches_the_flat_weights_path():
    spec = ZOO["lstm_padded"]
    model = spec.model().eval()
    masks = {"lstm.weight_hh_l1": torch.rand(128, 32, generator=torch.Generator().manual_seed(0)) > 0.5}
    apply_masks(model, masks, inplace=True)
    x = spec.inputs(spec.batch(2))
    with torch.no_grad():
        assert (call(model, x) - masked_reference(spec, model, masks, x)).abs().max() == 0
        assert model.lstm._flat_weights[model.lstm._flat_weights_names.index("weight_hh_l1")] is model.lstm.weight_hh_l1


def test_transformer_encoder_in_eval_with_padding_keeps_its_fused_path_and_the_masks():
    spec = ZOO["text_transformer"]
    masks = magnitude_masks(spec.model())
    model = apply_masks(spec.model(), masks).eval()
    inside = [m for layer in model.encoder.layers for m in layer.modules() if m._forward_pre_hooks]
    assert not inside                                   # a hook inside a layer breaks torch's nested-tensor path
    model.load_state_dict(spec.model(seed=3).state_dict(), strict=False)
    x = spec.inputs(spec.batch(3, seed=9))
    with torch.no_grad():
        out = call(model, x)                            # fused path, nested tensors: no error
    torch.testing.assert_close(out, masked_reference(spec, model, masks, x), rtol=1e-4, atol=1e-5)


def test_tied_weights_have_one_mask_in_both_owners():
    spec = ZOO["tiny_gpt"]
    gpt = spec.model()
    mask = magnitude_masks(gpt)["lm_head"]
    model = apply_masks(gpt, {"lm_head": mask})
    assert model.wte.prune_mask is model.lm_head.prune_mask
    assert list(get_masks(model)) == ["wte"]                                 # one parameter, one mask, first owner
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    for s in range(3):
        step(spec, model, opt, s)
    assert model.wte.weight is model.lm_head.weight
    assert int((model.lm_head.weight.detach()[~mask] != 0).sum()) == 0
    ids = torch.arange(64)
    assert torch.equal(model.wte(ids), model.lm_head.weight.detach() * mask)  # the embedding reads masked rows
    model.wte.prune_mask = torch.ones_like(mask)
    with pytest.raises(MaskMismatchError, match="tied"):
        check_masks(model)


@pytest.mark.parametrize("name", ["resnet18", "lstm", "tiny_gpt"])
def test_a_deep_copy_keeps_its_masks_and_leaves_the_original_alone(name):
    spec = ZOO[name]
    masks = magnitude_masks(spec.model())
    model = apply_masks(spec.model(), masks)
    before = copy.deepcopy(model.state_dict())
    twin = copy.deepcopy(model).train()
    opt = torch.optim.Adam(twin.parameters(), lr=1e-2)
    for s in range(3):
        step(spec, twin, opt, s)
        assert grown(twin, masks) == 0
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_a_pickled_model_keeps_its_masks():
    spec = ZOO["mobilenetv2"]
    masks = magnitude_masks(spec.model())
    buf = io.BytesIO()
    torch.save(apply_masks(spec.model(), masks), buf)
    buf.seek(0)
    model = torch.load(buf, weights_only=False).train()
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    for s in range(3):
        step(spec, model, opt, s)
    assert grown(model, masks) == 0


@pytest.mark.parametrize("name", ["resnet18", "text_transformer", "lstm", "tiny_gpt"])
def test_state_dict_keeps_the_usual_keys_and_reloads_with_weights_only(name):
    spec = ZOO[name]
    masks = magnitude_masks(spec.model())
    model = apply_masks(spec.model(), masks).eval()
    state = model.state_dict()
    dense_keys = set(spec.model().state_dict())
    assert dense_keys <= set(state)
    assert all(k.endswith(masking.MASK) for k in set(state) - dense_keys)
    buf = io.BytesIO()
    torch.save(state, buf)
    buf.seek(0)
    twin = apply_masks(spec.model(seed=1), masks).eval()
    twin.load_state_dict(torch.load(buf, weights_only=True))
    x = spec.inputs(spec.batch(2))
    with torch.no_grad():
        assert torch.equal(call(model, x), call(twin, x))


def test_two_forwards_before_one_backward_are_legal():
    spec = ZOO["tiny_gpt"]
    masks = magnitude_masks(spec.model())
    model = apply_masks(spec.model(), masks).train()
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    step(spec, model, opt, 0)
    opt.zero_grad()
    (spec.loss_fn(model, spec.batch(2, seed=1)) + spec.loss_fn(model, spec.batch(2, seed=2))).backward()
    opt.step()
    assert grown(model, masks) == 0


def test_gradients_are_masked_as_torch_prune_masks_them():
    spec = ZOO["resnet18"]
    masks = magnitude_masks(spec.model())
    model = apply_masks(spec.model(), masks).train()
    spec.loss_fn(model, spec.batch(4)).backward()
    assert all(int((param(model, k).grad[~m] != 0).sum()) == 0 for k, m in masks.items())


def test_a_dtype_change_keeps_the_masks_working():
    spec = ZOO["signal_cnn"]
    masks = magnitude_masks(spec.model())
    model = apply_masks(spec.model(), masks).double().train()
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    for s in range(3):
        x, y = spec.batch(4, seed=s)
        opt.zero_grad()
        nn.functional.cross_entropy(model(x.double()), y).backward()
        opt.step()
    assert grown(model, masks) == 0


def test_a_write_through_data_is_caught_by_check_masks():
    spec = ZOO["signal_cnn"]
    masks = magnitude_masks(spec.model())
    model = apply_masks(spec.model(), masks)
    model.conv2.weight.data[~masks["conv2"]] = 1.0                         # .data bypasses the version counter
    with pytest.raises(MaskMismatchError, match="conv2"):
        check_masks(model)


def test_remove_masks_drops_buffers_and_hooks_and_keeps_the_zeros():
    spec = ZOO["text_transformer"]
    masks = magnitude_masks(spec.model())
    model = remove_masks(apply_masks(spec.model(), masks))
    assert not get_masks(model) and grown(model, masks) == 0
    assert not any(m._forward_pre_hooks or m._load_state_dict_post_hooks for m in model.modules())
    assert set(model.state_dict()) == set(spec.model().state_dict())


def test_bad_masks_are_named():
    model = ZOO["signal_cnn"].model()
    with pytest.raises(ValueError, match="conv9"):
        apply_masks(model, {"conv9": torch.ones(1, dtype=torch.bool)})
    with pytest.raises(ValueError, match="shape"):
        apply_masks(model, {"conv1.weight": torch.ones(3, dtype=torch.bool)})   # the full parameter name works too


def test_the_model_passed_in_is_not_changed_unless_inplace():
    spec = ZOO["resnet18"]
    model = spec.model()
    before = copy.deepcopy(model.state_dict())
    apply_masks(model, magnitude_masks(model))
    assert set(model.state_dict()) == set(before)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_a_torch_pruned_model_is_refused_by_name_then_converted_exactly():
    spec = ZOO["lstm_padded"]
    model = spec.model().eval()
    torch_prune.l1_unstructured(model.fc, "weight", amount=0.3)
    torch_prune.random_unstructured(model.lstm, "weight_hh_l1", amount=0.5)
    with pytest.raises(ValueError, match=r"lstm\.weight_hh_l1.*from_torch_prune"):
        check_plain(model)
    x = spec.inputs(spec.batch(2))
    with torch.no_grad():
        expected = call(model, x)
    converted = from_torch_prune(model)
    check_plain(converted)
    assert set(get_masks(converted)) == {"fc", "lstm.weight_hh_l1"}
    assert torch.equal(get_masks(converted)["fc"], model.fc.weight_mask.bool())
    with torch.no_grad():
        assert torch.equal(call(converted, x), expected)
    assert hasattr(model.fc, "weight_orig")                                     # the input model is untouched


def test_a_parametrized_model_is_refused_by_name():
    model = ZOO["signal_cnn"].model()
    torch.nn.utils.parametrizations.weight_norm(model.conv2)
    with pytest.raises(ValueError, match=r"conv2\.weight.*remove_parametrizations"):
        check_plain(model)
