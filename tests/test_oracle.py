"""The oracle: true single-weight loss changes (shortcut == plain zero-evaluate-restore), ranks and Spearman's rho."""
from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from course.lessons.oracle import gather, loss_change, rank, sample_weights, spearman


def conv_net(seed: int = 0) -> nn.Sequential:
    torch.manual_seed(seed)
    net = nn.Sequential(nn.Conv2d(2, 3, 3, padding=1, stride=2), nn.BatchNorm2d(3), nn.ReLU(),
                        nn.Flatten(), nn.Linear(3 * 4 * 4, 5), nn.ReLU(), nn.Linear(5, 4))
    net[1].running_mean.normal_()                                             # eval-mode BatchNorm must be used
    return net


def data(n: int = 16, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 2, 8, 8, generator=g), torch.randint(0, 4, (n,), generator=g)


def by_hand(model: nn.Module, X, y, name: str, idx: int) -> float:
    """The definition, written out: zero the weight in a float64 copy, evaluate, compare with the intact copy."""
    work = copy.deepcopy(model).double().eval()
    with torch.no_grad():
        base = nn.functional.cross_entropy(work(X.double()), y)
        dict(work.named_modules())[name].weight.view(-1)[idx] = 0.0
        return float(nn.functional.cross_entropy(work(X.double()), y) - base)


def test_loss_change_matches_zeroing_each_weight_by_hand_and_leaves_the_model_alone():
    model, (X, y) = conv_net(), data()
    before = copy.deepcopy(model.state_dict())
    picks = sample_weights(model, 4, seed=1)
    got = loss_change(model, X, y, picks, progress=False)
    want = torch.tensor([by_hand(model, X, y, n, i) for n, i in picks], dtype=torch.float64)
    torch.testing.assert_close(got, want, rtol=1e-9, atol=1e-12)
    assert (got.abs() > 1e-6).sum() >= 4                                     # not a trivially all-zero answer
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert model.training and next(model.parameters()).dtype == torch.float32


def test_shortcut_equals_the_plain_way_for_linear_and_conv_layers():
    model, (X, y) = conv_net(1), data(seed=1)
    picks = sample_weights(model, 10, seed=0)
    assert {n for n, _ in picks} == {"0", "4", "6"}
    fast = loss_change(model, X, y, picks, progress=False)
    plain = loss_change(model, X, y, picks, progress=False, shortcut=False)
    torch.testing.assert_close(fast, plain, rtol=1e-9, atol=1e-13)


def test_a_model_that_is_not_a_sequential_chain_takes_the_plain_way():
    class Wrapped(nn.Module):
        def __init__(self):
            super().__init__()
            self.body = conv_net(2)

        def forward(self, x):
            return self.body(x)

    model, (X, y) = Wrapped(), data(seed=2)
    picks = [("body.4", 7), ("body.0", 3)]                                   # interleaved layers, any order
    want = torch.tensor([by_hand(model, X, y, n, i) for n, i in picks], dtype=torch.float64)
    torch.testing.assert_close(loss_change(model, X, y, picks, progress=False), want, rtol=1e-9, atol=1e-12)


def test_float64_resolves_changes_that_float32_rounds_away():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(50, 10))
    with torch.no_grad():
        model[0].weight[0, 0] = 1e-7
    X, y = torch.randn(64, 50), torch.randint(0, 10, (64,))
    d64 = loss_change(model, X, y, [("0", 0)], progress=False)
    assert d64.abs().item() > 0
    assert d64.abs().item() < 1e-6


def test_sample_weights_is_seeded_distinct_and_per_layer():
    model = conv_net()
    a, b, c = sample_weights(model, 5, seed=3), sample_weights(model, 5, seed=3), sample_weights(model, 5, seed=4)
    assert a == b and a != c
    for name in ("0", "4", "6"):
        idx = [i for n, i in a if n == name]
        assert len(idx) == len(set(idx)) == 5
    assert {n for n, _ in sample_weights(model, 2, exclude=("0",))} == {"4", "6"}
    with pytest.raises(ValueError, match="only 20 weights"):
        sample_weights(model, 21)
    with pytest.raises(ValueError, match="per_layer"):
        sample_weights(model, 0)


def test_bad_picks_name_the_problem():
    model, (X, y) = conv_net(), data()
    with pytest.raises(ValueError, match="unknown layer 'fc9'"):
        loss_change(model, X, y, [("fc9", 0)], progress=False)
    with pytest.raises(ValueError, match="out of range"):
        loss_change(model, X, y, [("6", 20)], progress=False)
    with pytest.raises(ValueError, match="empty"):
        loss_change(model, X, y, [], progress=False)


def test_gather_reads_the_picked_scores_in_order():
    scores = {"a": torch.arange(6.0).view(2, 3), "b": torch.tensor([10.0, 20.0])}
    assert gather(scores, [("b", 1), ("a", 4), ("a", 0)]).tolist() == [20.0, 4.0, 0.0]
    with pytest.raises(ValueError, match="no layer"):
        gather(scores, [("c", 0)])


def test_rank_gives_ties_the_mean_position():
    assert rank(torch.tensor([3.0, 1.0, 3.0, 2.0])).tolist() == [3.5, 1.0, 3.5, 2.0]
    assert rank(torch.tensor([0.5, -1.0, 7.0])).tolist() == [2.0, 1.0, 3.0]


def test_spearman_matches_the_textbook_formula_and_ignores_monotone_transforms():
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(40, generator=g), torch.randn(40, generator=g)
    d = rank(a) - rank(b)
    n = 40
    assert spearman(a, b) == pytest.approx(1 - 6 * float((d ** 2).sum()) / (n * (n * n - 1)), abs=1e-12)
    assert spearman(a, a.exp()) == pytest.approx(1.0)
    assert spearman(a, -a ** 3) == pytest.approx(-1.0)
    with pytest.raises(ValueError, match="same length"):
        spearman(a, b[:5])
    with pytest.raises(ValueError, match="constant"):
        spearman(a, torch.ones(40))


def test_spearman_by_layer_is_pooled_and_within_each_layer():
    from course.lessons.oracle import spearman_by_layer

    picks = [("a", i) for i in range(5)] + [("b", i) for i in range(5)]
    truth = torch.tensor([1.0, 2, 3, 4, 5, 10, 20, 30, 40, 50])
    scores = torch.tensor([5.0, 4, 3, 2, 1, 6, 7, 8, 9, 10])        # layer a reversed, b right, b above a
    rho = spearman_by_layer(scores, truth, picks)
    assert list(rho) == ["all", "a", "b"]
    assert rho["a"] == pytest.approx(-1.0) and rho["b"] == pytest.approx(1.0)
    assert rho["all"] == pytest.approx(spearman(scores, truth)) and 0 < rho["all"] < 1
    with pytest.raises(ValueError, match="one entry per pick"):
        spearman_by_layer(scores[:9], truth, picks)
