"""The curvature diagonals and OBD against torch autograd: the Gauss-Newton diagonal is diag(JᵀHJ) of cross-entropy,
it equals the Hessian diagonal of a ReLU network, the empirical Fisher is the mean squared per-sample gradient, and
every weight the hooks cannot score is refused by name."""
from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.func import functional_call, hessian, jacrev

from course.pruning import prunable_weights, score
from course.pruning.curvature import fisher_diagonal, ggn_diagonal, obd_scores


class Tokens(nn.Module):
    """A Linear over tokens (N, T, in) then a mean over T: per-sample gradients sum over the tokens."""

    def __init__(self):
        super().__init__()
        self.proj, self.head = nn.Linear(4, 6), nn.Linear(6, 3)

    def forward(self, x):                                      # (N, T, 4)
        return self.head(torch.tanh(self.proj(x)).mean(1))     # (N, 3)


def models() -> dict[str, tuple[nn.Module, torch.Tensor]]:
    torch.manual_seed(0)
    mlp = nn.Sequential(nn.Linear(5, 4), nn.Tanh(), nn.Linear(4, 3)).double()
    cnn = nn.Sequential(nn.Conv2d(2, 3, 3, stride=2, padding=1), nn.BatchNorm2d(3), nn.ReLU(), nn.Flatten(),
                        nn.Linear(3 * 3 * 3, 4)).double()
    cnn[1].running_mean.uniform_(-0.5, 0.5)                    # eval-mode BatchNorm: a fixed affine map
    g = torch.Generator().manual_seed(1)
    return {"mlp": (mlp, torch.randn(7, 5, generator=g, dtype=torch.float64)),
            "cnn": (cnn, torch.randn(6, 2, 5, 5, generator=g, dtype=torch.float64)),
            "tokens": (Tokens().double(), torch.randn(5, 3, 4, generator=g, dtype=torch.float64))}


def per_sample_jacobians(model: nn.Module, X: torch.Tensor) -> list[dict[str, torch.Tensor]]:
    """For each sample: {weight name: ∂logits/∂W, shape (classes, *W.shape)}, by torch.func on the eval-mode model."""
    model = model.eval()
    params = {k: v.detach() for k, v in model.named_parameters()}
    out = []
    for x in X:
        f = lambda p, x=x: functional_call(model, p, (x[None],))[0]          # noqa: E731  (classes,)
        out.append(jacrev(f)(params))
    return out


@pytest.mark.parametrize("name", ["mlp", "cnn", "tokens"])
def test_ggn_diagonal_is_the_diagonal_of_j_transpose_h_j(name):
    model, X = models()[name]
    y = torch.arange(len(X)) % 3
    layers = prunable_weights(model)
    mine = ggn_diagonal(model, layers, (X, y))
    with torch.no_grad():
        probs = torch.softmax(model.eval()(X), 1)                             # (N, C)
    for t in layers:
        ref = torch.zeros_like(t.weight)
        for n, jac in enumerate(per_sample_jacobians(model, X)):
            J = jac[t.param_name].flatten(1)                                   # (C, P)
            H = torch.diag(probs[n]) - probs[n][:, None] * probs[n][None, :]   # cross-entropy's Hessian in the logits
            ref += torch.einsum("cp,cd,dp->p", J, H, J).view_as(t.weight)      # diag(Jᵀ H J)
        torch.testing.assert_close(mine[t.name].double(), ref.detach() / len(X), rtol=1e-4, atol=1e-9)


def test_ggn_is_the_hessian_diagonal_of_a_relu_network():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(5, 6), nn.ReLU(), nn.Linear(6, 3)).double()
    X, y = torch.randn(20, 5, dtype=torch.float64), torch.randint(0, 3, (20,))
    mine = ggn_diagonal(model, prunable_weights(model), (X, y))
    params = {k: v.detach() for k, v in model.named_parameters()}
    for key, pname in (("0", "0.weight"), ("2", "2.weight")):
        def loss(w, pname=pname):
            return nn.functional.cross_entropy(functional_call(model, {**params, pname: w}, (X,)), y)
        H = hessian(loss)(params[pname]).reshape(params[pname].numel(), -1)
        torch.testing.assert_close(mine[key].double().flatten(), H.diagonal(), rtol=1e-4, atol=1e-9)


def test_empirical_fisher_is_the_mean_squared_per_sample_gradient():
    model, X = models()["cnn"]
    y = torch.arange(len(X)) % 4
    layers = prunable_weights(model)
    mine = fisher_diagonal(model, layers, [(X[:4], y[:4]), (X[4:], y[4:])])    # two batches, one mean over samples
    model.eval()
    for t in layers:
        ref = torch.zeros_like(t.weight)
        for x, c in zip(X, y):
            g, = torch.autograd.grad(nn.functional.cross_entropy(model(x[None]), c[None]), t.weight)
            ref += g.square()
        torch.testing.assert_close(mine[t.name].double(), ref / len(X), rtol=1e-4, atol=1e-9)


def test_obd_is_half_h_w_squared_and_predicts_the_loss_change_at_a_minimum():
    torch.manual_seed(0)
    X = torch.randn(400, 4, dtype=torch.float64)
    y = (X[:, 0] + 0.5 * X[:, 1] + torch.randn(400, dtype=torch.float64) > 0).long()   # noisy: a finite minimum
    model = nn.Sequential(nn.Linear(4, 2)).double()
    opt = torch.optim.LBFGS(model.parameters(), max_iter=500, tolerance_grad=1e-12, tolerance_change=1e-14)

    def closure():
        opt.zero_grad()
        loss = nn.functional.cross_entropy(model(X), y)
        loss.backward()
        return loss
    opt.step(closure)
    layers = prunable_weights(model)
    scores = obd_scores(model, layers, data=(X, y))["0"]
    h = ggn_diagonal(model, layers, (X, y))["0"]
    torch.testing.assert_close(scores, 0.5 * h * model[0].weight.detach().float().square())
    base = nn.functional.cross_entropy(model(X), y)
    small = (model[0].weight.detach().abs() < 0.2).nonzero().tolist()          # where a quadratic model holds
    assert small
    for i, j in small:
        with torch.no_grad():
            w = model[0].weight[i, j].item()
            model[0].weight[i, j] = 0.0
            delta = nn.functional.cross_entropy(model(X), y) - base
            model[0].weight[i, j] = w
        assert float(delta) == pytest.approx(float(scores[i, j]), rel=0.05)


def test_obd_through_the_registry_and_scoring_leaves_the_model_alone():
    model, X = models()["cnn"]
    model.train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    s = score(model, "obd", (X, torch.arange(len(X)) % 4))
    assert set(s) == {"0", "4"} and all((v >= 0).all() for v in s.values())
    assert model.training and all(p.grad is None for p in model.parameters())
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_weights_the_hooks_cannot_score_are_refused_by_name():
    from zoo import ZOO

    lstm = ZOO["lstm"]
    with pytest.raises(TypeError, match=r"weight_ih_l0.*LSTM.*exclude="):
        score(lstm.model(), "obd", lstm.batch(4))
    mobile = ZOO["mobilenetv2"]
    with pytest.raises(TypeError, match=r"groups=.*exclude=\["):
        score(mobile.model(), "obd", mobile.batch(2))
    attention = nn.Sequential(nn.Linear(4, 4))
    with pytest.raises(ValueError, match="loss_fn=.*criterion='taylor'"):
        score(attention, "obd", (torch.randn(3, 4), torch.tensor([0, 1, 2])), loss_fn=nn.MSELoss())
    mha = nn.MultiheadAttention(4, 2, batch_first=True)

    class Attn(nn.Module):
        def __init__(self):
            super().__init__()
            self.attn, self.head = mha, nn.Linear(4, 2)

        def forward(self, x):
            return self.head(self.attn(x, x, x)[0].mean(1))

    with pytest.raises(ValueError, match=r"\['attn.out_proj'\] did not run exactly once"):
        score(Attn(), "obd", (torch.randn(3, 5, 4), torch.tensor([0, 1, 0])), exclude=["attn.in_proj_weight"])

    class Spare(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc, self.spare = nn.Linear(4, 3), nn.Linear(4, 4)          # spare never runs: refused by name

        def forward(self, x):
            return self.fc(x)

    with pytest.raises(ValueError, match=r"\['spare'\] did not run exactly once"):
        score(Spare(), "obd", (torch.randn(3, 4), torch.tensor([0, 1, 2])))
    with pytest.raises(ValueError, match="choose one of"):
        obd_scores(attention, prunable_weights(attention), data=(torch.randn(3, 4), torch.tensor([0, 1, 2])),
                   hessian="hutchinson")


def test_the_empirical_fisher_variant_plugs_in_as_a_criterion():
    import functools

    from course.pruning import Criterion, prune_unstructured

    model, X = models()["mlp"]
    data = (X, torch.arange(len(X)) % 3)
    fisher = Criterion("obd_fisher", "weights", functools.partial(obd_scores, hessian="fisher"), needs_data=True)
    pruned = prune_unstructured(model, 0.5, criterion=fisher, data=data)
    h = fisher_diagonal(model, prunable_weights(model), data)["0"]
    expected = (0.5 * h * model[0].weight.detach().float().square()).flatten()
    kept = pruned[0].prune_mask.flatten()
    assert expected[kept].min() >= expected[~kept].max()

