"""BN-aware unit criteria (BN-γ, next-layer norm), the cited group Taylor score, and BatchNorm recalibration."""
from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from course.pruning.structured import prune_structured, unit_scores
from course.pruning.surgery import recalibrate_bn
from course.pruning.unit_criteria import unit_taylor_terms
from course.pruning.surgery import chain_links


def tiny(seed: int = 0) -> nn.Sequential:
    """conv(2→3)+BN → ReLU → conv(3→4)+BN → ReLU → pool to 2×2 → Flatten → Linear(16→5) → ReLU → Linear(5→3)."""
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Conv2d(2, 3, 3, padding=1), nn.BatchNorm2d(3), nn.ReLU(),
                          nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.AdaptiveAvgPool2d(2),
                          nn.Flatten(), nn.Linear(16, 5), nn.ReLU(), nn.Linear(5, 3))
    with torch.no_grad():
        model[1].weight.copy_(torch.tensor([0.5, -2.0, 1.0]))
        model[4].weight.copy_(torch.tensor([-0.1, 3.0, 0.2, -1.5]))
        model[1].bias.copy_(torch.tensor([0.1, -0.2, 0.3]))
        model[4].bias.copy_(torch.tensor([0.2, 0.1, -0.3, 0.4]))
        model.train()
        for _ in range(3):
            model(torch.randn(8, 2, 6, 6) + 0.5)              # running statistics away from (0, 1)
    return model.eval()


def data(n: int = 6, seed: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(n, 2, 6, 6, generator=gen), torch.randint(0, 3, (n,), generator=gen)


def snapshot(model: nn.Module) -> dict:
    return {"state": {k: v.clone() for k, v in model.state_dict().items()},
            "modes": [m.training for m in model.modules()], "grads": [p.grad for p in model.parameters()],
            "requires_grad": [p.requires_grad for p in model.parameters()]}


def unchanged(model: nn.Module, before: dict) -> bool:
    after = snapshot(model)
    return (all(torch.equal(v, after["state"][k]) for k, v in before["state"].items())
            and before["modes"] == after["modes"] and all(g is None for g in after["grads"])
            and before["requires_grad"] == after["requires_grad"])


# --- BN-γ -----------------------------------------------------------------------------------------------------

def test_bn_gamma_is_the_absolute_gamma_of_the_batchnorm_after_each_conv():
    model = tiny()
    s = unit_scores(model, "bn_gamma", exclude=["8"])
    assert torch.equal(s["0"], torch.tensor([0.5, 2.0, 1.0]))
    assert torch.equal(s["3"], torch.tensor([0.1, 3.0, 0.2, 1.5]))
    keep = prune_structured(model, 0.5, criterion="bn_gamma", exclude=["8"])     # 2 of 4 go: |γ| 0.1 and 0.2
    assert torch.equal(keep[4].weight.detach(), torch.tensor([3.0, -1.5]))


def test_bn_gamma_refuses_a_layer_without_batchnorm_by_name():
    with pytest.raises(ValueError, match=r"'bn_gamma'.*\['8'\] have none.*exclude=\['8'\]"):
        unit_scores(tiny(), "bn_gamma")
    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2, affine=False), nn.ReLU(), nn.Flatten(),
                          nn.Linear(2 * 4 * 4, 3))
    with pytest.raises(ValueError, match=r"affine BatchNorm.*\['0'\]"):
        unit_scores(model, "bn_gamma")


# --- next layer -----------------------------------------------------------------------------------------------

def test_next_layer_is_the_l2_norm_of_the_weights_that_read_each_unit():
    model = tiny()
    s = unit_scores(model, "next_layer")
    w3, w8, w10 = model[3].weight.detach(), model[8].weight.detach(), model[10].weight.detach()
    for u in range(3):                                      # conv → conv: input channel u of the next conv
        assert torch.allclose(s["0"][u], w3[:, u].pow(2).sum().sqrt())
    for u in range(4):                                      # conv → Flatten → Linear: inputs 4u … 4u+3
        assert torch.allclose(s["3"][u], w8[:, 4 * u:4 * u + 4].pow(2).sum().sqrt())
    for u in range(5):                                      # Linear → Linear: column u
        assert torch.allclose(s["8"][u], w10[:, u].norm())


def test_next_layer_refuses_a_link_without_its_reader():
    from course.pruning.unit_criteria import next_layer_scores
    model = tiny()
    link = chain_links(model)[0]
    orphan = type(link)(link.layer, link.units, link.norms, "missing", link.block)
    with pytest.raises(ValueError, match=r"'next_layer'.*\['0'\]"):
        next_layer_scores(model, [orphan])


# --- Taylor ---------------------------------------------------------------------------------------------------

class Gated(nn.Module):
    """`tiny()` with a gate z (ones) on each unit's output: after BN for the convs, after the Linear for "8"."""

    def __init__(self, model: nn.Sequential):
        super().__init__()
        self.m = model
        self.z = nn.ParameterList([nn.Parameter(torch.ones(n)) for n in (3, 4, 5)])

    def forward(self, x):
        m, z = self.m, self.z
        x = m[2](m[1](m[0](x)) * z[0].view(1, -1, 1, 1))
        x = m[7](m[6](m[5](m[4](m[3](x)) * z[1].view(1, -1, 1, 1))))
        return m[10](m[9](m[8](x) * z[2]))


def gate_grads(model: nn.Module, batch) -> list[torch.Tensor]:
    """dL/dz for each gate at z = 1, train mode: the loss change of closing a gate, to first order."""
    gated = Gated(copy.deepcopy(model)).train()
    nn.functional.cross_entropy(gated(batch[0]), batch[1]).backward()
    return [g.grad.detach().clone() for g in gated.z]


def test_taylor_is_the_per_batch_squared_gate_score_averaged_over_batches():
    model, batches = tiny(), [data(seed=1), data(seed=2), data(seed=3)]
    s = unit_scores(model, "taylor", batches, num_batches=3)
    per_batch = [gate_grads(model, b) for b in batches]       # Molchanov et al. (2019): (dL/dz · z)², z = 1
    for i, layer in enumerate(["0", "3", "8"]):
        want = torch.stack([g[i] for g in per_batch]).square().mean(0)
        torch.testing.assert_close(s[layer], want, rtol=1e-4, atol=1e-10)
    mean_abs = unit_scores(model, "taylor_abs_mean", batches, num_batches=3)
    want = torch.stack([g[1] for g in per_batch]).abs().mean(0)
    torch.testing.assert_close(mean_abs["3"], want, rtol=1e-4, atol=1e-7)
    assert not torch.allclose(mean_abs["3"].square(), s["3"])      # the square is taken per batch, not at the end


def test_taylor_on_a_conv_before_batchnorm_is_gamma_g_gamma_plus_beta_g_beta():
    model, batch = tiny(), data()
    terms = unit_taylor_terms(model, chain_links(model), batch)
    net = copy.deepcopy(model).train()
    nn.functional.cross_entropy(net(batch[0]), batch[1]).backward()
    bn = net[4]
    torch.testing.assert_close(terms["3"][0], (bn.weight * bn.weight.grad + bn.bias * bn.bias.grad).detach(),
                               rtol=1e-4, atol=1e-6)
    filters = (net[3].weight * net[3].weight.grad).sum((1, 2, 3)) + net[3].bias * net[3].bias.grad
    assert filters.abs().max() < 1e-5 * (bn.weight * bn.weight.grad).abs().max() + 1e-7   # BN undoes any scaling


def test_taylor_needs_data_and_leaves_the_model_and_global_rng_alone():
    model = tiny().train()
    model[0].weight.requires_grad_(False)
    before = snapshot(model)
    with pytest.raises(ValueError, match="'taylor' needs data"):
        unit_scores(model, "taylor")
    state = torch.random.get_rng_state()
    for name in ("taylor", "taylor_abs_mean", "bn_gamma", "next_layer"):
        unit_scores(model, name, data(), exclude=["8"])
    assert torch.equal(torch.random.get_rng_state(), state)
    assert unchanged(model, before)
    with pytest.raises(ValueError, match="no batches"):
        unit_scores(model, "taylor", [])


# --- BatchNorm recalibration ----------------------------------------------------------------------------------

def test_recalibrate_bn_sets_running_stats_to_the_mean_of_batch_statistics():
    model, batches = tiny(), [data(seed=s) for s in (1, 2, 3)]
    before = snapshot(model)
    out = recalibrate_bn(model, batches, num_batches=2)
    assert unchanged(model, before)                                # a new model unless inplace=True
    with torch.no_grad():
        acts = [model[0](x) for x, _ in batches[:2]]               # (N, 3, H, W) per batch: what bn1 normalises
    means = torch.stack([a.mean((0, 2, 3)) for a in acts])
    variances = torch.stack([a.transpose(0, 1).flatten(1).var(1, unbiased=True) for a in acts])
    torch.testing.assert_close(out[1].running_mean, means.mean(0), rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(out[1].running_var, variances.mean(0), rtol=1e-5, atol=1e-6)
    assert out[1].momentum == model[1].momentum == 0.1 and not out.training
    assert all(torch.equal(p, q) for p, q in zip(out.parameters(), model.parameters()))   # weights untouched


def test_recalibrate_bn_after_a_cut_restores_what_the_dense_model_saw():
    model, x = tiny(), data(n=64, seed=4)[0]
    slim = prune_structured(model, 0.5, exclude=["8"])              # conv2 loses two input channels: bn2 is stale
    stale = slim[4].running_mean.clone()
    fixed = recalibrate_bn(slim, [(x, torch.zeros(len(x)))], inplace=True)
    assert fixed is slim
    with torch.no_grad():
        net = copy.deepcopy(slim).train()                           # bn1 normalised with the batch's statistics
        want = net[3](net[2](net[1](net[0](x)))).mean((0, 2, 3))
    torch.testing.assert_close(slim[4].running_mean, want, rtol=1e-5, atol=1e-6)
    assert not torch.allclose(stale, want)


def test_recalibrate_bn_refuses_empty_data_without_touching_the_model():
    model = tiny()
    before = snapshot(model)
    with pytest.raises(ValueError, match="no batches"):
        recalibrate_bn(model, [], inplace=True)
    assert unchanged(model, before)
    with pytest.raises(ValueError, match="num_batches"):
        recalibrate_bn(model, [data()], num_batches=0)


def test_recalibrate_bn_takes_batches_of_any_form_with_forward():
    model, (x, _) = tiny(), data()
    out = recalibrate_bn(model, [{"pixels": x}], forward=lambda m, b: m(b["pixels"]))
    ref = recalibrate_bn(model, [(x, torch.zeros(len(x)))])
    assert torch.equal(out[4].running_var, ref[4].running_var)
    plain = nn.Sequential(nn.Linear(3, 2))
    assert torch.equal(recalibrate_bn(plain, [data()])[0].weight, plain[0].weight)   # no BatchNorm: as it was
