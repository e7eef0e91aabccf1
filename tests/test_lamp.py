"""LAMP (Lee et al. 2021): the score by hand, magnitude's order within a layer, invariance to rescaling a layer."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from course.pruning import CRITERIA, LayerCollapseWarning, prune_unstructured, score
from course.pruning.lamp import lamp_score


def test_lamp_score_by_hand():
    w = torch.tensor([[3.0, -1.0], [0.5, 2.0]])
    # sorted w²: 0.25, 1, 4, 9 -> 0.25/14.25, 1/14, 4/13, 9/9
    expected = torch.tensor([[1.0, 1 / 14], [0.25 / 14.25, 4 / 13]])
    torch.testing.assert_close(lamp_score(w), expected)


def test_lamp_ranks_like_magnitude_within_a_layer_and_scores_each_layers_largest_weight_1():
    torch.manual_seed(0)
    w = torch.randn(30, 20)
    s = lamp_score(w)
    assert torch.equal(s.flatten().argsort(), w.abs().flatten().argsort())
    assert s.max() == 1.0 and s.flatten()[w.abs().argmax()] == 1.0


def net(scale: float = 1.0) -> nn.Sequential:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(50, 40), nn.ReLU(), nn.Linear(40, 10))
    with torch.no_grad():
        model[0].weight.mul_(scale)
    return model


def test_lamp_masks_do_not_change_when_a_layer_is_rescaled_but_magnitude_masks_do():
    a, b = net(1.0), net(0.01)                                   # the first layer 100x smaller
    lamp_a, lamp_b = prune_unstructured(a, 0.9, criterion="lamp"), prune_unstructured(b, 0.9, criterion="lamp")
    assert all(torch.equal(x.prune_mask, y.prune_mask) for x, y in ((lamp_a[0], lamp_b[0]), (lamp_a[2], lamp_b[2])))
    with pytest.warns(LayerCollapseWarning):
        mag_b = prune_unstructured(b, 0.9, scope="global")
    assert mag_b[0].prune_mask.sum() == 0                        # magnitude empties the small layer; LAMP does not
    assert lamp_b[0].prune_mask.sum() > 0


def test_lamp_is_registered_with_the_global_scope_and_leaves_the_model_alone():
    model = net()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    assert CRITERIA["lamp"].scope == "global" and not CRITERIA["lamp"].needs_data
    pruned = prune_unstructured(model, 0.8, criterion="lamp")
    same = prune_unstructured(model, 0.8, criterion="lamp", scope="global")
    assert all(torch.equal(x, y) for x, y in zip(pruned.state_dict().values(), same.state_dict().values()))
    kept = [int(m.prune_mask.sum()) for m in (pruned[0], pruned[2])]
    assert sum(kept) == round(0.2 * (50 * 40 + 40 * 10))         # one global budget
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert set(score(model, "lamp")) == {"0", "2"}
