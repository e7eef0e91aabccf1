"""course.lessons.speedups and course.timing: table structure, FLOP ratios from torch's counter, the break-even interpolation, no mutation.

Timings are never asserted (they depend on the machine); only what must hold whatever the clock says.
"""
from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from course import build_model, count_flops
from course.lessons.speedups import break_even, csr_sweep, slim_sweep

FAST_TIMING = {"min_run_time": 0.01, "progress": False}


def _state(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in model.state_dict().items()}


def test_csr_sweep_rows_columns_and_ratios():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(32, 16), nn.ReLU(), nn.Linear(16, 4))
    before = _state(model)
    t = csr_sweep(model, [0.9, 0.0], [4, 1], input_shape=(32,), **FAST_TIMING)
    assert t.columns == ["sparsity", "batch", "dense ms", "zeros ms", "csr ms", "zeros ×", "csr ×"]
    assert [(r["batch"], r["sparsity"]) for r in t] == [(1, 0.0), (1, 0.9), (4, 0.0), (4, 0.9)]
    for r in t:
        assert r["dense ms"] > 0 and r["zeros ms"] > 0 and r["csr ms"] > 0
        assert math.isclose(r["csr ×"], r["dense ms"] / r["csr ms"])
        assert math.isclose(r["zeros ×"], r["dense ms"] / r["zeros ms"])
    # one dense timing per batch size, shared by its rows
    assert len({r["dense ms"] for r in t if r["batch"] == 1}) == 1
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before) and "0.prune_mask" not in after


@pytest.mark.parametrize("bad, error", [([], ValueError), ([1.0], ValueError), (["0.5"], TypeError)])
def test_csr_sweep_rejects_bad_sparsities(bad, error):
    with pytest.raises(error, match="sparsity"):
        csr_sweep(nn.Sequential(nn.Linear(4, 2)), bad, [1], input_shape=(4,), **FAST_TIMING)


@pytest.mark.parametrize("bad, error", [([], ValueError), ([0], ValueError), ([2.5], TypeError), ([True], TypeError)])
def test_sweeps_reject_bad_batch_sizes(bad, error):
    with pytest.raises(error, match="batch"):
        csr_sweep(nn.Sequential(nn.Linear(4, 2)), [0.5], bad, input_shape=(4,), **FAST_TIMING)
    with pytest.raises(error, match="batch"):
        slim_sweep(build_model("lenet5"), [0.5], bad, **FAST_TIMING)


def test_slim_sweep_flop_ratio_matches_the_flop_counter():
    torch.manual_seed(0)
    model = build_model("lenet5")
    before = _state(model)
    t = slim_sweep(model, [0.5, 0.25], [2], **FAST_TIMING)
    assert [r["ratio"] for r in t] == [0.25, 0.5]
    dense = count_flops(model).dense
    for r in t:
        assert math.isclose(r["FLOPs ×"], dense / r["FLOPs"])
        assert r["FLOPs ×"] > 1.0 and r["params"] < sum(p.numel() for p in model.parameters())
        assert math.isclose(r["speedup ×"], r["dense ms"] / r["slim ms"])
    assert t[1]["FLOPs ×"] > t[0]["FLOPs ×"]            # removing more units removes more FLOPs
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_slim_sweep_rejects_a_ratio_of_one():
    with pytest.raises(ValueError, match="ratio"):
        slim_sweep(build_model("lenet5"), [1.0], [1], **FAST_TIMING)


def test_break_even_interpolates_log_speedup_between_the_crossing_points():
    # speedup 0.5 at 0.8 and 2.0 at 0.9: log-linear crossing exactly half-way
    assert math.isclose(break_even([0.0, 0.8, 0.9, 0.99], [0.1, 0.5, 2.0, 5.0]), 0.85)
    # unsorted input gives the same answer
    assert math.isclose(break_even([0.9, 0.0, 0.99, 0.8], [2.0, 0.1, 5.0, 0.5]), 0.85)


def test_break_even_uses_the_last_crossing_from_below():
    # noisy: above 1 at 0.5, below again at 0.8; CSR only stays faster from the second crossing on
    got = break_even([0.0, 0.5, 0.8, 0.9], [0.5, 1.2, 0.8, 1.6])
    assert 0.8 < got < 0.9
    assert math.isclose(got, 0.8 + 0.1 * (-math.log(0.8)) / (math.log(1.6) - math.log(0.8)))


def test_break_even_edge_cases():
    assert break_even([0.5, 0.9], [1.0, 3.0]) == 0.5          # already at least as fast at the first point
    assert break_even([0.0, 0.9], [0.2, 0.9]) is None         # never reached
    with pytest.raises(ValueError, match="as many"):
        break_even([0.1, 0.2], [1.0])
    with pytest.raises(ValueError, match="> 0"):
        break_even([0.1, 0.2], [1.0, 0.0])


def test_best_of_rounds_interleaves_models_and_keeps_the_minimum():
    from course.timing import LatencyResult, best_of_rounds

    calls = []
    fake = {("a", 1): [3.0, 1.0, 2.0], ("b", 1): [5.0, 6.0, 4.0]}

    def fake_latency(model, batch_size, **timing):
        calls.append((model, batch_size))
        ms = fake[model, batch_size][sum(1 for c in calls if c == (model, batch_size)) - 1]
        return LatencyResult(median_ms=ms, iqr_ms=0.0, batch_size=batch_size, threads=1, runs=1)

    best = best_of_rounds({"a": "a", "b": "b"}, [1], 3, timer=fake_latency)
    assert best == {("a", 1): 1.0, ("b", 1): 4.0}
    assert calls == [("a", 1), ("b", 1)] * 3            # a, b, a, b, a, b: interleaved rounds
    with pytest.raises(ValueError, match="rounds"):
        best_of_rounds({"a": "a"}, [1], 0, timer=fake_latency)


def test_sweeps_accept_rounds():
    t = csr_sweep(nn.Sequential(nn.Linear(8, 4)), [0.5], [1], input_shape=(8,), rounds=2, **FAST_TIMING)
    assert len(t) == 1 and "best of 2" in t.note


def test_best_of_rounds_times_a_fresh_copy_each_round_when_it_can():
    from course import prune_unstructured, to_sparse_csr
    from course.timing import LatencyResult, best_of_rounds

    seen = []

    def fake_latency(model, batch_size, **timing):
        seen.append(model)
        return LatencyResult(median_ms=1.0, iqr_ms=0.0, batch_size=batch_size, threads=1, runs=1)

    dense = nn.Sequential(nn.Linear(8, 4))
    csr = to_sparse_csr(prune_unstructured(dense, 0.5))
    best_of_rounds({"dense": dense, "csr": csr}, [1], 2, timer=fake_latency)
    dense_seen, csr_seen = seen[0::2], seen[1::2]
    assert all(m is not dense and isinstance(m, nn.Sequential) for m in dense_seen)
    assert dense_seen[0] is not dense_seen[1]                    # a new copy every round
    assert all(m is csr for m in csr_seen)                       # CSR storage cannot be deep-copied: timed as is
