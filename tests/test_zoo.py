"""The zoo itself: deterministic models and batches, a working loss, and the layer types issue 11 names."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from zoo import ZOO


@pytest.mark.parametrize("name", ZOO)
def test_same_seed_same_model_and_global_rng_untouched(name):
    spec = ZOO[name]
    state = torch.random.get_rng_state()
    a, b, c = spec.model(0).state_dict(), spec.model(0).state_dict(), spec.model(1).state_dict()
    assert torch.equal(torch.random.get_rng_state(), state)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert any(not torch.equal(a[k], c[k]) for k in a if a[k].is_floating_point())


@pytest.mark.parametrize("name", ZOO)
def test_loss_is_finite_and_every_parameter_gets_a_gradient(name):
    spec = ZOO[name]
    model = spec.model().train()
    loss = spec.loss_fn(model, spec.batch(4, seed=3))
    assert loss.dim() == 0 and torch.isfinite(loss)
    loss.backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None]
    assert not missing


@pytest.mark.parametrize("name", ZOO)
def test_batches_are_deterministic(name):
    spec = ZOO[name]
    flat = lambda b: list(b.values()) if isinstance(b, dict) else list(b) if isinstance(b, tuple) else [b]  # noqa: E731
    assert all(torch.equal(x, y) for x, y in zip(flat(spec.batch(3, seed=5)), flat(spec.batch(3, seed=5))))


def test_the_zoo_covers_the_layer_types_issue_11_names():
    modules = [m for name in ZOO for m in ZOO[name].model().modules()]
    kinds = {type(m) for m in modules}
    assert {nn.Conv1d, nn.Conv2d, nn.ConvTranspose2d, nn.Linear, nn.LSTM, nn.MultiheadAttention,
            nn.TransformerEncoder, nn.Embedding} <= kinds
    assert any(isinstance(m, nn.Conv2d) and m.groups == m.in_channels > 1 for m in modules)   # depthwise
    assert any(isinstance(m, nn.Conv1d) and m.groups > 1 for m in modules)                     # grouped
    gpt = ZOO["tiny_gpt"].model()
    assert gpt.wte.weight is gpt.lm_head.weight                                                # tied


def test_batches_come_in_the_forms_users_have():
    assert isinstance(ZOO["text_transformer"].batch(), dict)
    assert ZOO["text_transformer"].batch()["input_ids"].dtype == torch.int64
    assert len(ZOO["lstm"].batch()) == 3 and len(ZOO["lstm_padded"].batch()) == 2
    assert isinstance(ZOO["autoencoder"].batch(), torch.Tensor)
