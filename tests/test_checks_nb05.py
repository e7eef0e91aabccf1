"""Checks of notebook 05: the solution passes, a stub gets the friendly message, the usual mistakes get specific feedback."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from course.checks import CheckResult, check_chain_connected
from course.pruning import detect_layer_collapse


def assert_fails(result: CheckResult, *fragments: str) -> None:
    assert isinstance(result, CheckResult)
    assert not result.passed, f"expected a failure, got: {result.message}"
    for fragment in fragments:
        assert fragment in result.message, f"{fragment!r} not in {result.message!r}"


# --- Exercise 05.2: is the chain still connected? -------------------------------------------------------------

def chain_connected(masks):
    """Reference solution: propagate the set of reachable units from the input, layer by layer."""
    reach = torch.ones(masks[0].shape[1], dtype=torch.bool)
    for m in masks:
        reach = (m & reach[None, :]).any(1)
    return bool(reach.any())


def by_matrix_product(masks):
    """Another correct way: the number of paths is the product of the 0/1 matrices."""
    paths = masks[0].double()
    for m in masks[1:]:
        paths = m.double() @ paths
    return paths.sum() > 0


def via_library(masks):
    """The library's own detector on a chain of Linear layers carrying these weights."""
    net = nn.Sequential(*[nn.Linear(m.shape[1], m.shape[0]) for m in masks])
    with torch.no_grad():
        for layer, m in zip(net, masks):
            layer.weight.copy_(m.float())
    return not detect_layer_collapse(net, warn=False).disconnected


@pytest.mark.parametrize("solution", [chain_connected, by_matrix_product, via_library])
def test_chain_connected_passes_three_correct_solutions(solution):
    result = check_chain_connected(solution)
    assert result.passed, result.message
    assert "do not line up" in result.message


def test_chain_connected_stub_gets_the_friendly_message():
    def stub(masks):
        raise NotImplementedError("Exercise 05.2: is the chain still connected?")

    assert_fails(check_chain_connected(stub), "Not done yet", "Exercise 05.2 (is the chain still connected?)")


def transposed(masks):
    reach = torch.ones(masks[0].shape[0], dtype=torch.bool)
    for m in masks:
        reach = (m & reach[:, None]).any(0)
    return bool(reach.any())


def square_only_transposed(masks):
    """Reads masks as (in, out) when it can (square chains) and answers right otherwise: the mistake on its own."""
    if all(m.shape[0] == m.shape[1] for m in masks):
        return transposed(masks)
    return chain_connected(masks)


def every_output(masks):
    reach = torch.ones(masks[0].shape[1], dtype=torch.bool)
    for m in masks:
        reach = (m & reach[None, :]).any(1)
    return bool(reach.all())


@pytest.mark.parametrize("wrong, fragment", [
    (lambda masks: all(bool(m.any()) for m in masks), "Checking that every layer keeps a weight is not enough"),
    (transposed, "size"),                                   # crashes on the 4x6 mask: the error is reported
    (square_only_transposed, "Read each mask as (out, in)"),
    (every_output, "One path is enough"),
    (lambda masks: False, "the answer is True"),
    (lambda masks: torch.ones(3, dtype=torch.bool), "Return True or False"),
    (lambda masks: masks.pop() is None, "changed its input `masks` in place"),
])
def test_chain_connected_catches_typical_mistakes(wrong, fragment):
    assert_fails(check_chain_connected(wrong), fragment)


def test_the_reference_agrees_with_the_library_on_random_sparse_chains():
    g = torch.Generator().manual_seed(0)
    seen = set()
    for _ in range(200):
        shapes = [(5, 7), (4, 5), (3, 4)]
        masks = [torch.rand(s, generator=g) < 0.12 for s in shapes]
        want = chain_connected(masks)
        seen.add(want)
        assert via_library(masks) == want
    assert seen == {True, False}
