"""Head pruning: physical removal equals its masked twin; the gate importance is ∂L/∂ξ_h; Torch-Pruning agrees."""
from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from course.models import ViT
from course.pruning import (attention_layers, head_masks, head_scores, mask_heads, prune_heads, remove_heads,
                            zero_heads)
from course.training import train


def _vit(seed: int = 0, **kw) -> ViT:
    torch.manual_seed(seed)
    return ViT(**({"dim": 32, "depth": 3, "heads": 4} | kw)).eval()


def _batch(n: int = 16, seed: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 1, 28, 28, generator=g), torch.randint(0, 10, (n,), generator=g)


def _params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize("criterion, scope", [("l1", "global"), ("l1", "local"), ("gate", "global")])
def test_head_pruned_model_equals_its_masked_twin(criterion, scope):
    model, (x, y) = _vit(), _batch()
    small = prune_heads(model, 0.5, criterion=criterion, scope=scope, data=(x, y))
    twin = mask_heads(model, 0.5, criterion=criterion, scope=scope, data=(x, y))
    torch.testing.assert_close(small(x), twin(x), atol=1e-5, rtol=0)
    assert sum(m.heads for _, m in attention_layers(small)) == 6         # half of 3 × 4
    d = 32 // 4
    assert _params(model) - _params(small) == 6 * (3 * (32 * d + d) + 32 * d)   # q, k, v rows + biases, o columns


def test_the_masked_twin_stays_equal_through_fine_tuning():
    model, (x, y) = _vit(), _batch()
    keep = head_masks(head_scores(model, "l1"), 0.5, "local")
    small, twin = remove_heads(model, keep), zero_heads(model, keep)
    for net in (small, twin):
        train(net, [(x, y)], epochs=3, lr=1e-3, optimizer="sgd", momentum=0.0, progress=False, device="cpu")
    torch.testing.assert_close(small.eval()(x), twin.eval()(x), atol=1e-5, rtol=0)


def test_removing_no_heads_changes_nothing_and_the_input_is_untouched():
    model, (x, _) = _vit(), _batch()
    before = copy.deepcopy(model.state_dict())
    torch.testing.assert_close(prune_heads(model, 0.0)(x), model(x))
    prune_heads(model, 0.5)
    mask_heads(model, 0.5, criterion="gate", data=_batch())
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert not any(p.grad is not None for p in model.parameters())


def test_removing_a_head_by_hand_matches_zeroing_its_columns_of_o():
    model, (x, _) = _vit(), _batch()
    keep = {n: torch.tensor([True, False, True, True]) for n, _ in attention_layers(model)}
    ref = copy.deepcopy(model)
    with torch.no_grad():
        for block in ref.blocks:
            block.attn.o.weight[:, 8:16] = 0                           # head 1's columns of o
    torch.testing.assert_close(remove_heads(model, keep)(x), ref(x), atol=1e-5, rtol=0)
    torch.testing.assert_close(zero_heads(model, keep)(x), ref(x), atol=1e-5, rtol=0)


def test_gate_importance_is_the_mean_absolute_gradient_of_an_explicit_gate():
    model, (x, y) = _vit(), _batch(6)
    scores = head_scores(model, "gate", (x, y))
    expected = {n: torch.zeros(4) for n, _ in attention_layers(model)}
    for i in range(len(x)):                                            # one sample at a time: E_x |∂L(x)/∂ξ|
        net = copy.deepcopy(model)
        gates = {}
        for n, attn in attention_layers(net):
            xi = torch.ones(4, requires_grad=True)
            gates[n] = xi
            attn.o.register_forward_pre_hook(lambda m, a, xi=xi: (a[0] * xi.repeat_interleave(8),))  # ξ_h scales head h
        F.cross_entropy(net(x[i:i + 1]), y[i:i + 1]).backward()
        for n, xi in gates.items():
            expected[n] += xi.grad.abs() / len(x)
    for n in scores:
        torch.testing.assert_close(scores[n], expected[n], atol=1e-6, rtol=1e-4)


def test_global_scope_takes_more_heads_from_a_weak_layer_and_keeps_one_everywhere():
    model = _vit()
    with torch.no_grad():
        for p in "qkvo":                                               # layer 1's heads become tiny except head 0
            getattr(model.blocks[1].attn, p).weight.mul_(0.01)
        model.blocks[1].attn.q.weight[:8] *= 100
    removed = [int((~k).sum()) for k in head_masks(head_scores(model, "l1"), 0.5, "global").values()]
    assert sum(removed) == 6 and removed[1] == 3                       # the weak layer loses all but its best head
    assert all(int(k.sum()) == 1 for k in head_masks(head_scores(model, "l1"), 0.99, "global").values())


def test_head_pruning_refuses_models_without_attention_and_bad_arguments():
    with pytest.raises(TypeError, match="no attention module"):
        prune_heads(nn.Sequential(nn.Linear(4, 4)), 0.5)
    with pytest.raises(TypeError, match="num_heads"):
        prune_heads(nn.TransformerEncoderLayer(8, 2), 0.5)                # packed q/k/v: named, with the way out
    with pytest.raises(ValueError, match="needs data"):
        prune_heads(_vit(), 0.5, criterion="gate")
    with pytest.raises(ValueError, match="unknown head criterion"):
        prune_heads(_vit(), 0.5, criterion="taylor")
    with pytest.raises(ValueError, match="ratio"):
        prune_heads(_vit(), 1.0)
    with pytest.raises(ValueError, match="keeps at least one head"):
        remove_heads(_vit(), {"blocks.0.attn": torch.zeros(4, dtype=torch.bool)})


def test_torch_pruning_with_num_heads_removes_the_same_heads_and_parameters():
    tp = pytest.importorskip("torch_pruning")
    model, (x, _) = _vit(), _batch()
    net = copy.deepcopy(model)
    num_heads = {getattr(attn, p): attn.heads for _, attn in attention_layers(net) for p in "qkv"}
    imp = tp.importance.GroupMagnitudeImportance(p=1, group_reduction="sum", normalizer=None)   # Σ|w| over q,k,v,o
    pruner = tp.pruner.BasePruner(net, x[:2], importance=imp, pruning_ratio=0.0,
                                  pruning_ratio_dict={b.attn.q: 0.5 for b in net.blocks}, ignored_layers=[net.head],
                                  num_heads=num_heads, prune_num_heads=True, prune_head_dims=False,
                                  head_pruning_ratio=0.5)
    pruner.step()
    for _, attn in attention_layers(net):
        attn.heads = attn.q.out_features // attn.head_dim               # TP does not know our `heads` attribute
    ours = prune_heads(model, 0.5, criterion="l1", scope="local")
    assert _params(net) == _params(ours) == _params(model) - 6 * (3 * (32 * 8 + 8) + 32 * 8)
    torch.testing.assert_close(net(x), ours(x), atol=1e-5, rtol=0)
