"""shuffle_within_layers: Frankle et al.'s (2021) control keeps every layer's density exactly and moves its positions."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from course.pruning.controls import shuffle_within_layers
from course.pruning.masks import apply_masks, get_masks
from course.pruning.unstructured import prune_unstructured


def pruned_masks(sparsity: float = 0.7) -> dict[str, torch.Tensor]:
    """Global magnitude masks of a conv + LSTM + linear model: uneven densities, 4-D, 2-D and recurrent weights."""
    torch.manual_seed(0)
    model = nn.ModuleDict({"conv": nn.Conv2d(3, 8, 3), "lstm": nn.LSTM(6, 5), "fc": nn.Linear(40, 10)})
    return get_masks(prune_unstructured(model, sparsity, scope="global"))


def test_every_layer_keeps_exactly_its_count_and_shape():
    masks = pruned_masks()
    shuffled = shuffle_within_layers(masks, seed=3)
    assert list(shuffled) == list(masks)
    for key, mask in masks.items():
        assert shuffled[key].dtype == torch.bool and shuffled[key].shape == mask.shape
        assert int(shuffled[key].sum()) == int(mask.sum()), key
    assert len({round(float(m.float().mean()), 3) for m in masks.values()}) > 1   # the densities really differ


def test_positions_are_permuted_and_the_input_is_untouched():
    masks = pruned_masks()
    before = {k: v.clone() for k, v in masks.items()}
    shuffled = shuffle_within_layers(masks, seed=0)
    assert all(torch.equal(masks[k], before[k]) for k in masks)
    moved = [k for k in masks if 0 < int(masks[k].sum()) < masks[k].numel()]
    assert moved and all(not torch.equal(shuffled[k], masks[k]) for k in moved)
    for key in ("conv", "fc"):              # density 0.23 and 0.10: a random placement meets about that share again
        overlap = float((shuffled[key] & masks[key]).sum() / masks[key].sum())
        assert overlap < 0.45, (key, overlap)


def test_seeded():
    masks = pruned_masks()
    a, b, c = (shuffle_within_layers(masks, seed=s) for s in (1, 1, 2))
    assert all(torch.equal(a[k], b[k]) for k in masks)
    assert any(not torch.equal(a[k], c[k]) for k in masks)


def test_the_permutation_is_uniform():
    """Each position of a one-kept mask is equally likely over many seeds (a chi-square bound on 20 positions)."""
    mask = {"w": torch.zeros(4, 5, dtype=torch.bool)}
    mask["w"][0, 0] = True
    counts = torch.zeros(20)
    for s in range(2000):
        counts += shuffle_within_layers(mask, seed=s)["w"].flatten().float()
    chi2 = float(((counts - 100) ** 2 / 100).sum())
    assert chi2 < 45                       # 19 degrees of freedom: P(chi2 > 45) < 0.001


def test_applies_to_the_model_it_came_from():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(10, 8), nn.ReLU(), nn.Linear(8, 2))
    pruned = prune_unstructured(model, 0.75, scope="global")
    shuffled = apply_masks(model, shuffle_within_layers(get_masks(pruned), seed=0))
    for key, mask in get_masks(shuffled).items():
        assert int(mask.sum()) == int(get_masks(pruned)[key].sum())
        weight = shuffled.get_submodule(key).weight
        assert bool((weight[~mask] == 0).all()) and torch.equal(weight[mask], model.get_submodule(key).weight[mask])


@pytest.mark.parametrize("masks, error, fragment", [
    ([torch.ones(2, dtype=torch.bool)], TypeError, "dict"),
    ({}, ValueError, "empty"),
    ({"fc": torch.ones(2)}, TypeError, "bool tensor"),
    ({"fc": [True, False]}, TypeError, "bool tensor"),
])
def test_bad_masks_are_refused_by_name(masks, error, fragment):
    with pytest.raises(error, match=fragment):
        shuffle_within_layers(masks)


def test_bad_seed_is_refused():
    with pytest.raises((TypeError, ValueError), match="seed"):
        shuffle_within_layers({"fc": torch.ones(2, dtype=torch.bool)}, seed=-1)
