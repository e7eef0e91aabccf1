"""Criteria: each score matches its stated formula, and gradient criteria leave the model untouched."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from course.pruning.criteria import CRITERIA, score


def net(seed: int = 0) -> nn.Sequential:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(6, 5), nn.BatchNorm1d(5), nn.ReLU(), nn.Linear(5, 3))


def batches(n: int, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    return [(torch.randn(10, 6, generator=g), torch.randint(0, 3, (10,), generator=g)) for _ in range(n)]


def mean_grads(model: nn.Module, data, loss_fn=nn.functional.cross_entropy) -> dict[str, torch.Tensor]:
    """Reference: gradient of the mean loss over `data`, by plain autograd on a copy in train mode."""
    import copy
    work = copy.deepcopy(model).train()
    loss = sum(loss_fn(work(X), y) for X, y in data) / len(data)
    loss.backward()
    return {"0": work[0].weight.grad, "3": work[3].weight.grad}


def test_registry_names():
    assert sorted(CRITERIA) == ["gradient", "lamp", "magnitude", "obd", "random", "snip", "taylor",
                                "taylor_signed_mean", "wanda"]
    assert CRITERIA["lamp"].scope == "global" and CRITERIA["obd"].needs_data and CRITERIA["taylor"].needs_data


def test_magnitude_is_abs_weight():
    model = net()
    s = score(model, "magnitude")
    assert set(s) == {"0", "3"}
    assert torch.equal(s["0"], model[0].weight.abs()) and torch.equal(s["3"], model[3].weight.abs())


def test_random_is_seeded_uniform_and_ignores_weights():
    a, b = score(net(0), "random", seed=3), score(net(1), "random", seed=3)
    c = score(net(0), "random", seed=4)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not torch.equal(a["0"], c["0"])
    assert all(((v >= 0) & (v < 1)).all() for v in a.values())


def test_gradient_is_abs_of_mean_gradient_over_num_batches():
    model, data = net(), batches(3)
    s = score(model, "gradient", data, num_batches=2)                          # third batch ignored
    ref = mean_grads(model, data[:2])
    for k in s:
        torch.testing.assert_close(s[k], ref[k].abs())
    assert not torch.allclose(s["0"], mean_grads(model, data)["0"].abs())


def test_taylor_is_the_mean_over_batches_of_the_squared_per_batch_term():
    """Molchanov et al. (2019): (1/B) Σ_b (w·g_b)², each batch's gradient squared before averaging."""
    model, data = net(), batches(3)
    s = score(model, "taylor", data, num_batches=3)
    per_batch = [mean_grads(model, [b]) for b in data]
    for k, layer in (("0", model[0]), ("3", model[3])):
        ref = sum((layer.weight * g[k]).square() for g in per_batch) / 3
        torch.testing.assert_close(s[k], ref.detach())
        signed = (layer.weight * mean_grads(model, data)[k]).abs().detach()
        assert not torch.allclose(s[k], signed.square())           # not the square of the signed mean


def test_taylor_with_one_batch_is_the_square_of_the_signed_mean():
    model, data = net(), batches(1)
    cited, signed = score(model, "taylor", data), score(model, "taylor_signed_mean", data)
    assert all(torch.allclose(cited[k], signed[k].square()) for k in cited)


def test_taylor_signed_mean_is_abs_weight_times_mean_gradient():
    model, data = net(), batches(2)
    s = score(model, "taylor_signed_mean", data)
    ref = mean_grads(model, data)
    torch.testing.assert_close(s["0"], (model[0].weight * ref["0"]).abs())
    torch.testing.assert_close(s["3"], (model[3].weight * ref["3"]).abs())


def test_snip_is_abs_weight_times_mean_gradient_normalised_to_sum_one():
    """SNIP keeps the signed mean gradient (Lee et al. 2019), not the cited Taylor's per-batch squares."""
    model, data = net(), batches(3)
    snip = score(model, "snip", data, num_batches=3)
    ref = mean_grads(model, data)
    raw = {"0": (model[0].weight * ref["0"]).abs().detach(), "3": (model[3].weight * ref["3"]).abs().detach()}
    total = sum(v.sum() for v in raw.values())
    assert torch.isclose(sum(v.sum() for v in snip.values()), torch.tensor(1.0))
    for k in snip:
        torch.testing.assert_close(snip[k], raw[k] / total)


def test_taylor_predicts_the_loss_change_of_removing_a_small_weight():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 3)).double()                          # float64: ΔL is tiny
    with torch.no_grad():
        model[0].weight.mul_(1e-3)               # small weights: the first-order term dominates
    X, y = batches(1)[0]
    X = X.double()
    s = score(model, "taylor_signed_mean", (X, y))["0"]
    assert torch.allclose(score(model, "taylor", (X, y))["0"], s.square())   # one batch: the cited score is its square
    base = nn.functional.cross_entropy(model(X), y)
    for i, j in [(0, 0), (1, 4), (2, 5)]:
        with torch.no_grad():
            w = model[0].weight[i, j].item()
            model[0].weight[i, j] = 0.0
            delta = (nn.functional.cross_entropy(model(X), y) - base).abs()
            model[0].weight[i, j] = w
        torch.testing.assert_close(s[i, j], delta, rtol=1e-2, atol=0.0)


def test_custom_loss_fn_is_used():
    model, data = net(), [(X, torch.nn.functional.one_hot(y, 3).float()) for X, y in batches(1)]
    s = score(model, "gradient", data, loss_fn=nn.MSELoss())
    ref = mean_grads(model, data, nn.functional.mse_loss)
    torch.testing.assert_close(s["0"], ref["0"].abs())


@pytest.mark.parametrize("criterion", sorted(CRITERIA))
@pytest.mark.parametrize("mode", ["train", "eval"])
def test_scoring_leaves_weights_grads_statistics_and_mode_alone(criterion, mode):
    model = net()
    model.train(mode == "train")
    before = {k: v.clone() for k, v in model.state_dict().items()}
    score(model, criterion, batches(2))
    assert model.training == (mode == "train")
    assert all(p.grad is None for p in model.parameters())
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_scoring_preserves_existing_grads():
    model = net()
    X, y = batches(1)[0]
    nn.functional.cross_entropy(model.train()(X), y).backward()
    grads = [p.grad.clone() for p in model.parameters()]
    score(model, "taylor", batches(1, seed=5))
    assert all(torch.equal(g, p.grad) for g, p in zip(grads, model.parameters()))


def test_bad_inputs_are_refused_with_the_choices():
    with pytest.raises(ValueError, match="choose one of .*magnitude"):
        score(net(), "l2")
    with pytest.raises(ValueError, match="pass data="):
        score(net(), "snip")
    with pytest.raises(ValueError, match="num_batches"):
        score(net(), "gradient", batches(1), num_batches=0)
    with pytest.raises(ValueError, match="no batches"):
        score(net(), "gradient", [])
    with pytest.raises(ValueError, match="no prunable layers"):
        score(nn.Sequential(nn.ReLU()), "magnitude")


# --- one registry, and your own criterion --------------------------------------------------------------------

def test_one_registry_for_weights_and_units_with_one_vocabulary():
    from course.pruning.criteria import ALIASES, UNIT_CRITERIA, criterion_for
    from course.pruning.structured import unit_scores

    assert sorted(UNIT_CRITERIA) == ["bn_gamma", "l2", "magnitude", "next_layer", "random", "taylor", "taylor_abs_mean"]
    assert ALIASES["units"] == {"l1": "magnitude"}
    assert criterion_for("l1", "units") is criterion_for("magnitude", "units")
    model = nn.Sequential(nn.Linear(6, 5), nn.ReLU(), nn.Linear(5, 3))
    magnitude = unit_scores(model, "magnitude")
    assert torch.allclose(magnitude["0"], model[0].weight.abs().sum(1))      # the L1 norm of each unit's row
    assert all(torch.equal(magnitude[n], s) for n, s in unit_scores(model, "l1").items())
    with pytest.raises(ValueError, match="choose one of .*'l1'.*fn\\(weight, grad\\)"):
        criterion_for("snip", "units")


def test_the_taylor_score_of_exercise_04_1_plugs_in_as_a_criterion():
    from notebook_solutions import solutions

    from course.pruning.unstructured import prune_unstructured

    taylor_score = solutions("04_criteria").taylor_score             # the learner's own fn(weight, grad)
    model, data = net(), batches(3)
    mine = score(model, taylor_score, data)
    library = score(model, "taylor_signed_mean", data)
    assert all(torch.allclose(mine[n], library[n]) for n in library)
    ours = prune_unstructured(model, 0.6, criterion=taylor_score, data=data, scope="global")
    theirs = prune_unstructured(model, 0.6, criterion="taylor_signed_mean", data=data, scope="global")
    assert all(torch.equal(a, b) for a, b in zip(ours.state_dict().values(), theirs.state_dict().values()))
    with pytest.raises(ValueError, match="needs data"):
        prune_unstructured(model, 0.5, criterion=taylor_score)           # fn(weight, grad) needs gradients


def test_a_function_of_the_weight_alone_needs_no_data_and_its_shape_is_checked():
    from course.pruning.structured import prune_structured, unit_scores

    model = nn.Sequential(nn.Linear(6, 5), nn.ReLU(), nn.Linear(5, 3))
    assert all(torch.equal(a, b) for a, b in zip(score(model, lambda w: w.abs()).values(),
                                                  score(model, "magnitude").values()))
    l1 = unit_scores(model, lambda w: w.abs().sum(1))                     # one score per output unit
    assert torch.allclose(l1["0"], unit_scores(model, "l1")["0"])
    assert prune_structured(model, 0.4, criterion=lambda w: w.abs().sum(1))[0].out_features == 3
    with pytest.raises(ValueError, match=r"shape \(5,\).*one score per output unit"):
        unit_scores(model, lambda w: w.abs())                             # weight-shaped: not one per unit
    with pytest.raises(TypeError, match=r"takes \(weight\) or \(weight, grad\)"):
        score(model, lambda w, g, h: w)


def test_registering_a_criterion_makes_it_usable_by_name():
    from course.pruning import criteria
    from course.pruning.unstructured import prune_unstructured

    @criteria.register("smallest_first_test", "weights")
    def inverse(model, layers, **_):
        return {name: -m.weight.detach().abs() for name, m in layers}     # keeps the SMALLEST weights

    try:
        model = net()
        pruned = prune_unstructured(model, 0.5, criterion="smallest_first_test")
        kept = pruned[0].weight[pruned[0].prune_mask].abs()
        dropped = model[0].weight[~pruned[0].prune_mask].abs()
        assert kept.max() <= dropped.min()
    finally:
        del criteria.CRITERIA["smallest_first_test"]
