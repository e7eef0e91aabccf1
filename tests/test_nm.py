"""N:M masks and the row scope: the pattern, the ASP grouping for convs, torch's 2:4 compressor as the oracle,
fine-tuning, and the per-row comparison group."""
import warnings

import pytest
import torch
from torch import nn
from torch.sparse._semi_structured_conversions import (
    sparse_semi_structured_from_dense_cutlass, sparse_semi_structured_to_dense_cutlass,
)

from course import train
from course.models import LeNet300100, LeNet5
from course.pruning.criteria import score
from course.pruning.masks import get_masks
from course.pruning.nm import NMSkipWarning, is_nm_sparse, nm_mask, nm_metadata_bytes, parse_pattern
from course.pruning.unstructured import prune_unstructured, select


def test_parse_pattern():
    assert parse_pattern("2:4") == (2, 4) and parse_pattern(" 4 : 8 ") == (4, 8)
    for bad in ("2-4", "4:2", "0:4", "4:4", 2, None, "a:b"):
        with pytest.raises(ValueError, match="N:M"):
            parse_pattern(bad)


def test_linear_mask_keeps_the_top_n_of_each_group_of_m():
    scores = torch.randn(6, 16)
    mask = nm_mask(scores, 2, 4)
    groups, keep = scores.view(6, 4, 4), mask.view(6, 4, 4)
    assert (keep.sum(-1) == 2).all()
    for r in range(6):
        for g in range(4):
            top = set(torch.topk(groups[r, g], 2).indices.tolist())
            assert set(torch.nonzero(keep[r, g]).flatten().tolist()) == top


def test_ties_go_to_the_lower_index():
    mask = nm_mask(torch.ones(1, 8), 2, 4)
    assert mask.tolist() == [[True, True, False, False, True, True, False, False]]


def test_conv_groups_run_along_input_channels_at_each_kernel_position():
    scores = torch.randn(3, 8, 2, 2)                                      # (out, C_in, kh, kw)
    mask = nm_mask(scores, 1, 4)
    for o in range(3):
        for i in range(2):
            for j in range(2):
                for g in range(2):
                    chans = scores[o, 4 * g: 4 * g + 4, i, j]
                    kept = mask[o, 4 * g: 4 * g + 4, i, j]
                    assert kept.sum() == 1 and kept[chans.argmax()]


def test_torch_cutlass_2to4_compressor_round_trips_our_masks():
    layer = nn.Linear(128, 64)
    model = prune_unstructured(nn.Sequential(layer), 0.5, pattern="2:4")
    dense = model[0].weight.detach().half()                               # (64, 128)
    sparse, meta = sparse_semi_structured_from_dense_cutlass(dense)
    assert sparse.shape == (64, 64)                                       # half the values
    assert meta.numel() * meta.element_size() == 64 * 128 // 8            # 2 bits per kept value
    assert torch.equal(sparse_semi_structured_to_dense_cutlass(sparse, meta), dense)
    unstructured = prune_unstructured(nn.Sequential(nn.Linear(128, 64)), 0.5)[0].weight.detach().half()
    sparse, meta = sparse_semi_structured_from_dense_cutlass(unstructured)
    assert not torch.equal(sparse_semi_structured_to_dense_cutlass(sparse, meta), unstructured)


def test_prune_unstructured_2to4_on_lenet300():
    model = LeNet300100()
    pruned = prune_unstructured(model, 0.5, pattern="2:4")
    masks = get_masks(pruned)
    assert set(masks) == {"fc1", "fc2", "fc3"}
    for name, mask in masks.items():
        assert mask.float().mean() == 0.5
        assert is_nm_sparse(getattr(pruned, name).weight, 2, 4)
    assert not hasattr(model.fc1, "prune_mask")                           # the input model is untouched


def test_masks_hold_through_fine_tuning():
    model = prune_unstructured(LeNet300100(), 0.5, pattern="2:4")
    before = get_masks(model)
    data = [(torch.randn(16, 1, 28, 28), torch.randint(0, 10, (16,))) for _ in range(3)]
    train(model, data, epochs=1, lr=0.1, progress=False, device="cpu")
    for name, mask in get_masks(model).items():
        assert torch.equal(mask, before[name])
        assert is_nm_sparse(getattr(model, name).weight, 2, 4)


def test_lenet5_convs_are_skipped_with_a_warning_that_names_them():
    with pytest.warns(NMSkipWarning, match=r"conv1 \(grouped dimension 1\).*conv2 \(grouped dimension 6\)"):
        pruned = prune_unstructured(LeNet5(), 0.5, pattern="2:4")
    assert set(get_masks(pruned)) == {"fc1", "fc2", "fc3"}
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        prune_unstructured(LeNet5(), 0.5, pattern="2:4", exclude=["conv1", "conv2"])


def test_other_patterns_and_layers_they_cannot_take():
    pruned = prune_unstructured(LeNet300100(), 0.75, pattern="1:4")
    assert all(m.float().mean() == 0.25 for m in get_masks(pruned).values())
    with pytest.warns(NMSkipWarning, match=r"fc2 .*300.*fc3 .*100"):
        pruned = prune_unstructured(LeNet300100(), 0.5, pattern="4:8")
    assert set(get_masks(pruned)) == {"fc1"} and is_nm_sparse(pruned.fc1.weight, 4, 8)


def test_any_criterion_scores_select_the_mask():
    model = LeNet300100()
    data = [(torch.randn(8, 1, 28, 28), torch.randint(0, 10, (8,)))]
    pruned = prune_unstructured(model, 0.5, pattern="2:4", criterion="taylor", data=data)
    scores = score(model, "taylor", data)
    for name, mask in get_masks(pruned).items():
        assert torch.equal(mask, nm_mask(scores[name], 2, 4))


def test_repruning_keeps_the_mask_and_respects_existing_masks():
    once = prune_unstructured(LeNet300100(), 0.5, pattern="2:4")
    twice = prune_unstructured(once, 0.5, pattern="2:4")
    for name, mask in get_masks(once).items():
        assert torch.equal(get_masks(twice)[name], mask)
    sparse = prune_unstructured(LeNet300100(), 0.9)                      # 90% unstructured, then 2:4 on top
    both = prune_unstructured(sparse, 0.5, pattern="2:4")
    for name, mask in get_masks(both).items():
        assert not (mask & ~get_masks(sparse)[name]).any() and is_nm_sparse(mask, 2, 4)


@pytest.mark.parametrize("kwargs, match", [
    (dict(sparsity=0.6), "sparsity is 0.5"), (dict(scope="global"), "replaces the scope"), (dict(scope="local"), "replaces the scope"),
    (dict(min_density=0.1), "min_density"), (dict(pattern="5:4"), "N:M"),
])
def test_bad_arguments_get_clear_errors(kwargs, match):
    args = dict(sparsity=0.5, pattern="2:4") | kwargs
    with pytest.raises(ValueError, match=match):
        prune_unstructured(LeNet300100(), args.pop("sparsity"), **args)


def test_a_model_with_no_eligible_layer_is_refused():
    with pytest.raises(ValueError, match="divisible by 4"), pytest.warns(NMSkipWarning):
        prune_unstructured(nn.Sequential(nn.Linear(6, 3)), 0.5, pattern="2:4")


def test_metadata_is_two_bits_per_kept_value():
    pruned = prune_unstructured(LeNet300100(), 0.5, pattern="2:4")
    kept = sum(int(m.sum()) for m in get_masks(pruned).values())
    assert kept == 266_200 // 2
    assert nm_metadata_bytes(pruned) == 117_600 * 2 // 8 + 15_000 * 2 // 8 + 500 * 2 // 8 == 33_275


def test_conv1d_and_conv3d_group_along_input_channels():
    for shape in ((4, 8, 3), (2, 8, 2, 2, 2)):
        scores = torch.randn(shape)
        mask = nm_mask(scores, 2, 4)
        assert is_nm_sparse(mask, 2, 4) and mask.float().mean() == 0.5
        moved = mask.movedim(1, -1).reshape(-1, 2, 4)                     # (positions, groups, 4) along C_in
        assert (moved.sum(-1) == 2).all()


def test_row_scope_drops_the_same_count_from_every_row():
    scores = {"a": torch.randn(5, 20), "b": torch.randn(3, 4, 2, 2)}
    masks = select(scores, 0.3, "row")
    assert (masks["a"].sum(1) == 14).all()
    assert (masks["b"].flatten(1).sum(1) == 16 - round(0.3 * 16)).all()
    for name, s in scores.items():                                       # the dropped ones are each row's lowest
        rows, keep = s.flatten(1), masks[name].flatten(1)
        for r in range(rows.shape[0]):
            assert rows[r][~keep[r]].max() <= rows[r][keep[r]].min()


def test_row_scope_keeps_already_pruned_weights_pruned():
    once = prune_unstructured(LeNet300100(), 0.5, scope="row")
    twice = prune_unstructured(once, 0.3, scope="row")
    for name, mask in get_masks(twice).items():
        assert torch.equal(mask, get_masks(once)[name])
        assert (mask.sum(1) == mask.shape[1] - round(0.5 * mask.shape[1])).all()


def test_row_scope_refuses_min_density():
    with pytest.raises(ValueError, match="min_density"):
        prune_unstructured(LeNet300100(), 0.5, scope="row", min_density=0.1)
