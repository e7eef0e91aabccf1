"""Measurement and Torch-Pruning on the zoo: FLOPs, latency and the report card take the inputs a model takes, and
Torch-Pruning's options pass through while its failures come back as messages that say what to do."""
from __future__ import annotations

import warnings

import pytest
import torch
from torch import nn

from course import count_flops, latency, prune_unstructured, prune_with_torch_pruning, report
from course.inputs import call
from course.pruning import UnsupportedModelError
from course.pruning.masks import apply_masks, has_masks
from zoo import ZOO


def params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize("name", ["text_transformer", "tiny_gpt", "lstm"])
def test_report_and_latency_take_example_inputs_token_ids_included(name):
    spec = ZOO[name]
    dense = spec.model()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sparse = prune_unstructured(dense, 0.5)
    inputs = spec.inputs(spec.batch(3))
    card = report({"dense": dense, "sparse": sparse}, example_inputs=inputs, min_run_time=0.01, progress=False)
    rows = card.rows_by_name
    assert rows["dense"]["FLOPs"] == spec.flops(spec.batch(3)) == rows["sparse"]["FLOPs"]
    assert rows["sparse"]["eff. FLOPs"] < rows["dense"]["eff. FLOPs"]
    result = latency(sparse, example_inputs=inputs, min_run_time=0.01)
    assert result.batch_size == 3 and result.median_ms > 0


def test_latency_times_the_model_as_deployed_without_the_mask_hooks(monkeypatch):
    from course import timing

    spec = ZOO["resnet18"]
    sparse = prune_unstructured(spec.model(), 0.5)
    timed = []
    real = timing.benchmark.Timer

    def spy(*args, globals, **kwargs):                 # the model the timer's statement calls
        timed.append(globals["forward"].__closure__)
        return real(*args, globals=globals, **kwargs)

    monkeypatch.setattr(timing.benchmark, "Timer", spy)
    latency(sparse, input_shape=(3, 16, 16), min_run_time=0.01)
    models = [c.cell_contents for c in timed[0] if isinstance(c.cell_contents, nn.Module)]
    assert models and not has_masks(models[0]) and has_masks(sparse)


def test_a_token_model_given_random_floats_names_example_inputs():
    with pytest.raises(TypeError, match="example_inputs"):
        count_flops(ZOO["tiny_gpt"].model(), input_shape=(16,))


# ---------------------------------------------------------------- Torch-Pruning

@pytest.mark.parametrize("name", ["resnet18", "mobilenetv2", "text_transformer", "signal_cnn", "autoencoder"])
def test_torch_pruning_shrinks_the_models_it_supports_and_they_still_run(name):
    spec = ZOO[name]
    model = spec.model()
    inputs = spec.inputs(spec.batch(2))                   # a dict for the text transformer, a tensor otherwise
    slim = prune_with_torch_pruning(model, 0.3, inputs)
    assert params(slim) < 0.8 * params(model)
    with torch.no_grad():
        assert call(slim.eval(), inputs).shape == call(model.eval(), inputs).shape


def test_attention_heads_stay_whole_and_the_embedding_width_divides_by_them():
    spec = ZOO["text_transformer"]
    slim = prune_with_torch_pruning(spec.model(), 0.3, spec.inputs(spec.batch(2)))
    for layer in slim.encoder.layers:
        attn = layer.self_attn
        assert attn.embed_dim % attn.num_heads == 0 and attn.in_proj_weight.shape[0] == 3 * attn.embed_dim


def test_a_multi_layer_lstm_is_refused_by_name_with_what_to_do():
    spec = ZOO["lstm"]
    with pytest.raises(UnsupportedModelError, match=r"multi-layer nn.LSTM \(lstm.*ignored_layers=\['lstm'\]"):
        prune_with_torch_pruning(spec.model(), 0.3, spec.inputs(spec.batch(2)))


@pytest.mark.parametrize("name", ["lstm", "lstm_padded"])
def test_a_call_that_prunes_nothing_says_so(name):
    spec = ZOO[name]
    with pytest.warns(UserWarning, match="removed nothing"):
        slim = prune_with_torch_pruning(spec.model(), 0.3, spec.inputs(spec.batch(2)), ignored_layers=["lstm"])
    assert params(slim) == params(spec.model())


def test_a_fused_qkv_projection_is_named_and_ignoring_it_works():
    spec = ZOO["tiny_gpt"]
    inputs = spec.inputs(spec.batch(2))
    with pytest.raises(UnsupportedModelError, match=r"h\.0\.attn\.c_attn.*ignored_layers"):
        prune_with_torch_pruning(spec.model(), 0.3, inputs)
    slim = prune_with_torch_pruning(spec.model(), 0.3, inputs, ignored_layers=["h.0.attn.c_attn", "h.1.attn.c_attn"])
    assert slim.wte.weight is slim.lm_head.weight                           # the tied pair is left whole
    assert slim.h[0].mlp.c_fc.out_features == 128 - round(0.3 * 128) and params(slim) < params(spec.model())


def test_round_to_forward_fn_and_modules_as_ignored_layers_pass_through():
    spec = ZOO["resnet18"]
    model = spec.model()
    calls = []

    def forward_fn(m, x):
        calls.append(1)
        return m(x["image"])

    slim = prune_with_torch_pruning(model, 0.3, {"image": spec.batch(2)[0]}, round_to=4, forward_fn=forward_fn,
                                    ignored_layers=[model.conv1])
    assert calls and slim.conv1.out_channels == model.conv1.out_channels
    assert all(m.out_channels % 4 == 0 for n, m in slim.named_modules() if isinstance(m, nn.Conv2d) and n != "conv1")


def test_unwrapped_parameters_are_passed_by_name():
    class Scaled(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc1, self.fc2 = nn.Linear(8, 16), nn.Linear(16, 3)
            self.scale = nn.Parameter(torch.ones(16))      # a parameter outside any layer, on fc1's outputs

        def forward(self, x):
            return self.fc2(torch.relu(self.fc1(x)) * self.scale)

    slim = prune_with_torch_pruning(Scaled(), 0.5, torch.randn(2, 8), unwrapped_parameters={"scale": 0})
    assert slim.fc1.out_features == slim.scale.numel() == 8
    with pytest.raises(ValueError, match="not a parameter"):
        prune_with_torch_pruning(Scaled(), 0.5, torch.randn(2, 8), unwrapped_parameters={"nope": 0})


def test_a_masked_model_is_refused_before_torch_pruning_reshapes_its_weights():
    spec = ZOO["resnet18"]
    masked = apply_masks(spec.model(), {"conv1": torch.ones(8, 3, 3, 3, dtype=torch.bool)})
    with pytest.raises(ValueError, match="remove_masks"):
        prune_with_torch_pruning(masked, 0.3, spec.batch(2)[0])
