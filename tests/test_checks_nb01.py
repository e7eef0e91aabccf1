"""Checks of 01 · What is pruning: the solutions pass, stubs get "Not done yet", typical mistakes get named."""
from __future__ import annotations

import pytest
from torch import nn

from course import build_model, layer_sparsity, prune_unstructured
from course.checks import CheckResult, check_achieved_sparsity, check_largest_sparsity_within, check_magnitude_mask
from course.lessons.sweeps import largest_sparsity_within
from notebook_solutions import solutions


def stub(*args, **kwargs):
    raise NotImplementedError("Exercise 01.2: achieved sparsity")


def assert_fails(result: CheckResult, *fragments: str) -> None:
    assert isinstance(result, CheckResult) and not result.passed, result.message
    for fragment in fragments:
        assert fragment in result.message, f"{fragment!r} not in {result.message!r}"


# --- the notebook's solutions, read from notebooks/src/ (no copies to drift) ------------------------------

_NB01 = solutions('01_what_is_pruning')                 # the notebook's own solutions (notebooks/src/)
magnitude_mask = _NB01.magnitude_mask
achieved_sparsity = _NB01.achieved_sparsity
largest_within = _NB01.largest_within


# --- 01.1 (the core check, on the notebook's solution) -----------------------------------------------------

def test_magnitude_mask_solution_passes():
    assert check_magnitude_mask(magnitude_mask).passed


# --- 01.2 --------------------------------------------------------------------------------------------------

def test_achieved_sparsity_solution_passes_and_agrees_with_layer_sparsity():
    result = check_achieved_sparsity(achieved_sparsity)
    assert result.passed, result.message
    pruned = prune_unstructured(build_model("lenet300"), 0.7, scope="global")
    assert achieved_sparsity(pruned) == pytest.approx(layer_sparsity(pruned).overall.sparsity)


def test_achieved_sparsity_stub_is_not_done_yet():
    assert_fails(check_achieved_sparsity(stub), "Not done yet", "Exercise 01.2 (achieved sparsity)")


def _all_params(model):
    ps = list(model.parameters())
    return sum(int((p == 0).sum()) for p in ps) / sum(p.numel() for p in ps)


def _named_weights(model):
    ps = [p for n, p in model.named_parameters() if n.endswith("weight")]
    return sum(int((p == 0).sum()) for p in ps) / sum(p.numel() for p in ps)


def _layer_mean(model):
    layers = [m for m in model.modules() if isinstance(m, (nn.Linear, nn.Conv2d))]
    return sum(float((m.weight == 0).float().mean()) for m in layers) / len(layers)


def _masks_only(model):
    masks = [m.prune_mask for m in model.modules() if hasattr(m, "prune_mask")]
    return sum(int((~m).sum()) for m in masks) / sum(m.numel() for m in masks) if masks else 0.0


@pytest.mark.parametrize("wrong, fragment", [
    (lambda m: 1 - achieved_sparsity(m), "density"),
    (lambda m: 100 * achieved_sparsity(m), "not a percentage"),
    (_all_params, "biases included"),
    (_named_weights, "BatchNorm's scale"),
    (_layer_mean, "averaged the per-layer sparsities"),
    (_masks_only, "after remove_masks"),
])
def test_achieved_sparsity_names_the_mistake(wrong, fragment):
    assert_fails(check_achieved_sparsity(wrong), fragment, "Expected")


def test_achieved_sparsity_mask_counting_that_crashes_is_reported_with_the_case():
    def crashes(model):
        masks = [m.prune_mask for m in model.modules() if isinstance(m, (nn.Linear, nn.Conv2d))]
        return sum(int((~m).sum()) for m in masks) / sum(m.numel() for m in masks)

    assert_fails(check_achieved_sparsity(crashes), "Your code raised AttributeError", "remove_masks")


def test_achieved_sparsity_flags_a_function_that_removes_masks_in_place():
    from course.pruning.masks import remove_masks

    def strips(model):
        remove_masks(model, inplace=True)
        return achieved_sparsity(model)

    assert_fails(check_achieved_sparsity(strips), "changed its input `model` in place")


# --- 01.3 --------------------------------------------------------------------------------------------------

def test_largest_within_solution_and_library_pass():
    assert check_largest_sparsity_within(largest_within).passed
    assert check_largest_sparsity_within(largest_sparsity_within).passed


def test_largest_within_stub_is_not_done_yet():
    assert_fails(check_largest_sparsity_within(stub), "Not done yet")


def _anywhere(s, a, ref, tol):
    ok = [si for si, ai in zip(s, a) if ai >= ref - tol - 1e-12]
    return max(ok) if ok else 0.0


def _relative(s, a, ref, tol):
    return next((s[i - 1] if i else 0.0 for i, x in enumerate(a) if x < ref * (1 - tol)), s[-1])


def _strict(s, a, ref, tol):
    return next((s[i - 1] if i else 0.0 for i, x in enumerate(a) if not x > ref - tol + 1e-12), s[-1])


def _first_failing(s, a, ref, tol):
    return next((si for si, x in zip(s, a) if x < ref - tol), s[-1])


def _index(s, a, ref, tol):
    return s.index(largest_within(s, a, ref, tol))


def _pp(s, a, ref, tol):
    return largest_within(s, a, ref, tol / 100)


def _first_point(s, a, ref, tol):
    return largest_within(s, a, ref, tol) or s[0]


@pytest.mark.parametrize("wrong, fragment", [
    (_anywhere, "FIRST point"),
    (_relative, "relative tolerance"),
    (_strict, "exactly tol below"),
    (_first_failing, "return the last one that does not"),
    (_index, "not its position"),
    (_pp, "divided it by 100"),
    (lambda s, a, ref, tol: largest_within(s, a, ref, tol) or None, "return 0.0"),
    (_first_point, "pruning nothing is always free"),
])
def test_largest_within_names_the_mistake(wrong, fragment):
    assert_fails(check_largest_sparsity_within(wrong), fragment)


def test_library_largest_within_sorts_points_and_validates():
    assert largest_sparsity_within([0.9, 0.0, 0.5], [0.5, 0.9, 0.895], 0.9, 0.01) == 0.5
    with pytest.raises(ValueError, match="equally long"):
        largest_sparsity_within([0.0, 0.5], [0.9], 0.9, 0.01)
    with pytest.raises(ValueError, match="0.01 = 1 percentage point"):
        largest_sparsity_within([0.0], [0.9], 0.9, 1.0)
    with pytest.raises(TypeError, match="sparsities must be a list"):
        largest_sparsity_within(0.5, [0.9], 0.9, 0.01)
