"""course.lessons.tradeoffs: configs re-pruned from the original, repeatable builds, real sizes, Pareto fronts, budgets."""
from __future__ import annotations

import itertools

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.utils.data import DataLoader, TensorDataset

from course.lessons import tradeoffs
from course.export import to_bytes
from course.models import build_model
from course.pruning.masks import get_masks
from course.export import LOSSLESS
from course.lessons.tradeoffs import Config, build, dominates, pareto_front, pick
from course.metrics import stored_size


def lenet300(seed: int = 0):
    torch.manual_seed(seed)
    return build_model("lenet300")


def loaders(n: int = 64, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    X, y = torch.randn(n, 1, 28, 28, generator=g), torch.randint(0, 10, (n,), generator=g)
    ds = TensorDataset(X, y)
    return (DataLoader(ds, batch_size=16, shuffle=True, generator=torch.Generator().manual_seed(1)),
            DataLoader(ds, batch_size=32))


def same_state(a, b) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return list(sa) == list(sb) and all(torch.equal(sa[k], sb[k]) for k in sa)


# --- configs -------------------------------------------------------------------------------------------------

def test_config_names_and_validation():
    assert Config("dense").name == "dense"
    assert Config("unstructured", 0.9).name == "unstructured 90%"
    assert Config("structured", 0.875).name == "structured 87.5%"
    with pytest.raises(ValueError, match="choose one of"):
        Config("sparse", 0.5)
    for bad in (1.0, -0.1, float("nan")):
        with pytest.raises(ValueError, match=r"\[0, 1\)"):
            Config("unstructured", bad)
    with pytest.raises(TypeError, match=r"\[0, 1\)"):
        Config("unstructured", True)
    with pytest.raises(ValueError, match="amount must be 0"):
        Config("dense", 0.5)
    assert Config("unstructured", 0.9, "global").name == "unstructured 90% global"
    with pytest.raises(ValueError, match=r"unknown scope 'layer'; choose one of \['local', 'global'\]"):
        Config("structured", 0.5, "layer")
    point = {"name": "unstructured 90% global", "kind": "unstructured", "amount": 0.9, "scope": "global"}
    assert Config.of(point) == Config("unstructured", 0.9, "global")


def test_prune_config_returns_new_models_and_leaves_the_original_alone():
    model = lenet300()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    u = tradeoffs.prune_config(model, Config("unstructured", 0.9))
    s = tradeoffs.prune_config(model, Config("structured", 0.5))
    d = tradeoffs.prune_config(model, Config("dense"))
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    masks = get_masks(u)
    assert sum(int((~m).sum()) for m in masks.values()) == sum(round(0.9 * m.numel()) for m in masks.values())
    assert (s.fc1.out_features, s.fc2.out_features, s.fc3.out_features) == (150, 50, 10)
    assert d is not model and same_state(d, model)
    with pytest.raises(TypeError, match="Config"):
        tradeoffs.prune_config(model, ("unstructured", 0.5))
    with pytest.raises(TypeError, match="give the scope in the Config"):
        tradeoffs.prune_config(model, Config("unstructured", 0.5), scope="global")
    g = tradeoffs.prune_config(model, Config("unstructured", 0.9, "global"))
    densities = {n: float(m.float().mean()) for n, m in get_masks(g).items()}
    assert len({round(d, 3) for d in densities.values()}) > 1                 # one threshold, uneven layers
    assert abs(sum(float(m.sum()) for m in get_masks(g).values()) / sum(m.numel() for m in get_masks(g).values())
               - 0.1) < 1e-3


def test_build_is_repeatable_and_fine_tunes_only_pruned_configs():
    model = lenet300()
    train_loader, _ = loaders()
    a = build(model, Config("unstructured", 0.8), train_loader, epochs=1, lr=0.05, seed=3)
    b = build(model, Config("unstructured", 0.8), train_loader, epochs=1, lr=0.05, seed=3)
    untuned = build(model, Config("unstructured", 0.8), epochs=0)
    assert same_state(a, b)                                       # same arguments -> the same model
    assert not same_state(a, untuned)                             # ... and it was really fine-tuned
    assert torch.equal(get_masks(a)["fc1"], get_masks(untuned)["fc1"])
    assert bool((a.fc1.weight[~a.fc1.prune_mask] == 0).all())     # pruned weights stayed at zero
    assert same_state(build(model, Config("dense"), train_loader, epochs=2), model)
    with pytest.raises(ValueError, match="train_loader"):
        build(model, Config("unstructured", 0.5), None, epochs=1)


def test_stored_size_is_the_shortest_real_lossless_file():
    model = lenet300()
    assert stored_size(model) == ("dense", len(to_bytes(model, "dense")))
    sparse = tradeoffs.prune_config(model, Config("unstructured", 0.95))
    form, size = stored_size(sparse)
    assert form in ("csr", "bitmask_fp32")
    assert size == min(len(to_bytes(sparse, f)) for f in LOSSLESS) < len(to_bytes(sparse, "dense")) / 5


def test_measure_and_sweep_give_one_real_point_per_config():
    from course import evaluate

    model = lenet300()
    train_loader, test_loader = loaders()
    configs = [Config("dense"), Config("unstructured", 0.9), Config("structured", 0.5)]
    points = tradeoffs.sweep(model, configs, train_loader, test_loader, epochs=1, lr=0.01, batch_size=4,
                             repeats=1, min_run_time=0.01, progress=False)
    assert [p["name"] for p in points] == ["dense", "unstructured 90%", "structured 50%"]
    dense, unstructured, structured = points
    assert dense["accuracy"] == evaluate(model, test_loader)
    assert dense["flops"] == 2 * (784 * 300 + 300 * 100 + 100 * 10)
    assert unstructured["flops"] == pytest.approx(0.1 * dense["flops"], rel=0.01)
    assert structured["flops"] == 2 * (784 * 150 + 150 * 50 + 50 * 10)
    assert unstructured["size_bytes"] < dense["size_bytes"] / 4 and unstructured["format"] != "dense"
    assert structured["format"] == "dense" and structured["size_bytes"] < dense["size_bytes"] / 1.8
    assert all(p["latency_ms"] > 0 and 0 <= p["accuracy"] <= 1 for p in points)
    assert [Config.of(p) for p in points] == configs                          # a point says how to re-make it
    rebuilt = build(model, configs[1], train_loader, epochs=1, lr=0.01)
    again = tradeoffs.measure(rebuilt, configs[1], test_loader, batch_size=4, min_run_time=0.01)
    assert again["accuracy"] == unstructured["accuracy"]
    assert (again["format"], again["size_bytes"]) == stored_size(rebuilt)          # one size, everywhere


def test_quantized_configs_are_built_named_sized_and_picked_like_any_other():
    model = lenet300()
    train_loader, test_loader = loaders()
    configs = [Config("dense"), Config("dense", quant="linear", bits=8), Config("unstructured", 0.9, "global"),
               Config("unstructured", 0.9, "global", quant="kmeans", bits=4)]
    points = tradeoffs.sweep(model, configs, train_loader, test_loader, epochs=1, lr=0.01, batch_size=4,
                             repeats=1, min_run_time=0.01, progress=False)
    names = [p["name"] for p in points]
    assert names == ["dense", "dense + int8", "unstructured 90% global", "unstructured 90% global + 4-bit k-means"]
    dense, int8, pruned, both = points
    assert int8["format"] == "bitmask_int8" and both["format"] == "bitmask_codebook"
    assert both["size_bytes"] < pruned["size_bytes"] < dense["size_bytes"] and int8["size_bytes"] < dense["size_bytes"]
    assert (int8["quant"], int8["bits"], pruned["quant"], pruned["bits"]) == ("linear", 8, None, None)
    assert [Config.of(p) for p in points] == configs                          # a point says how to re-make it
    rebuilt = build(model, configs[3], train_loader, epochs=1, lr=0.01)
    assert stored_size(rebuilt) == (both["format"], both["size_bytes"])
    assert all(torch.unique(m.weight[m.prune_mask]).numel() <= 16 for m in (rebuilt.fc1, rebuilt.fc2, rebuilt.fc3))
    assert pick(points, max_size=pruned["size_bytes"] - 1)["name"] == both["name"]     # only "both" fits
    with pytest.raises(ValueError, match="quant"):
        Config("dense", quant="log")
    with pytest.raises(ValueError, match="bits"):
        Config("dense", quant="linear", bits=1)


def test_sweep_refuses_repeated_configs():
    train_loader, test_loader = loaders()
    with pytest.raises(ValueError, match="configs repeat"):
        tradeoffs.sweep(lenet300(), [Config("dense"), Config("dense")], train_loader, test_loader, progress=False)


def test_latencies_take_turns_and_keep_each_models_fastest_round():
    from course import timing

    calls = []
    fake = {"a": iter([5.0, 3.0, 4.0]), "b": iter([1.0, 2.0, 0.5])}

    def fake_latency(model, batch_size, **kw):
        calls.append(model.tag)
        return timing.LatencyResult(next(fake[model.tag]), 0.0, batch_size, 1, 1)

    models = {name: torch.nn.Linear(2, 2) for name in ("a", "b")}
    for name, m in models.items():
        m.tag = name
    assert tradeoffs.latencies(models, 8, repeats=3, timer=fake_latency) == {"a": 3.0, "b": 0.5}
    assert calls == ["a", "b"] * 3                                       # round-robin, not one model at a time
    with pytest.raises(ValueError, match="repeats must be an int >= 1"):
        tradeoffs.latencies(models, repeats=0, timer=fake_latency)


def test_speedups_pair_each_round_and_report_the_spread():
    from course import timing

    calls = []
    fake = {"ref": iter([4.0, 8.0, 4.0, 4.0, 6.0]), "half": iter([2.0, 4.0, 2.0, 2.0, 3.0]),
            "copy": iter([4.0, 4.0, 5.0, 4.0, 6.0])}

    def fake_latency(model, batch_size, **kw):
        calls.append(model.tag)
        return timing.LatencyResult(next(fake[model.tag]), 0.0, batch_size, 1, 1)

    models = {name: torch.nn.Linear(2, 2) for name in fake}
    for name, m in models.items():
        m.tag = name
    out = tradeoffs.speedups(models, "ref", 8, repeats=5, timer=fake_latency)
    assert calls[:6] == ["ref", "half", "copy", "copy", "half", "ref"]        # ABBA: drift hits every model alike
    # paired within the round: the slow round (8 ms against 4) cancels out of the ratio
    assert out["half"] == {"ms": 2.0, "median": 2.0, "q25": 2.0, "q75": 2.0, "rounds": 5}
    assert out["ref"]["median"] == 1.0 and out["ref"]["ms"] == 4.0
    ratios = sorted([4 / 4, 8 / 4, 4 / 5, 4 / 4, 6 / 6])                    # the copy: 0.8, 1, 1, 1, 2
    assert out["copy"]["median"] == 1.0 and out["copy"]["q25"] == ratios[1] and out["copy"]["q75"] == ratios[3]
    with pytest.raises(ValueError, match="reference 'nope' is not one of the models"):
        tradeoffs.speedups(models, "nope", timer=fake_latency)


# --- fronts and budgets --------------------------------------------------------------------------------------

def P(name, acc, size, lat=1.0):
    return {"name": name, "accuracy": acc, "size_bytes": size, "latency_ms": lat}


def test_dominates_needs_at_least_as_good_in_both_and_better_in_one():
    assert dominates(P("a", 0.9, 100), P("b", 0.9, 200))
    assert dominates(P("a", 0.91, 100), P("b", 0.9, 100))
    assert not dominates(P("a", 0.9, 100), P("b", 0.9, 100))           # equal: neither dominates
    assert not dominates(P("a", 0.95, 300), P("b", 0.9, 100))          # a trade-off
    assert dominates(P("a", 0.9, 5, lat=1.0), P("b", 0.9, 1, lat=2.0), x="latency_ms")
    with pytest.raises(ValueError, match="no 'size_bytes'"):
        dominates({"name": "a", "accuracy": 0.9}, P("b", 0.9, 1))


def test_pareto_front_on_a_hand_made_example():
    pts = [P("dense", 0.912, 1_066_440), P("u50", 0.912, 540_000), P("u90", 0.905, 160_000),
           P("s50", 0.897, 270_000), P("s75", 0.871, 120_000), P("u95", 0.880, 120_000),
           P("s90", 0.802, 40_000), P("u98", 0.790, 45_000), P("twin", 0.802, 40_000)]
    assert [p["name"] for p in pareto_front(pts)] == ["s90", "twin", "u95", "u90", "u50"]
    assert pareto_front([]) == []


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 6), st.integers(0, 6)), min_size=1, max_size=12))
def test_pareto_front_matches_brute_force(pairs):
    pts = [P(f"p{i}", acc / 6, size) for i, (acc, size) in enumerate(pairs)]
    front = pareto_front(pts)
    names = {p["name"] for p in front}
    for p in pts:
        beaten = any(q["size_bytes"] <= p["size_bytes"] and q["accuracy"] >= p["accuracy"]
                     and (q["size_bytes"] < p["size_bytes"] or q["accuracy"] > p["accuracy"]) for q in pts)
        assert (p["name"] in names) == (not beaten)
    assert [p["size_bytes"] for p in front] == sorted(p["size_bytes"] for p in front)
    accs = [p["accuracy"] for p in front]
    assert all(a <= b for a, b in zip(accs, accs[1:]))                # up the front, accuracy never falls


CONFIGS = [P("structured-75", 0.871, 120_000, 0.62), P("dense", 0.912, 1_066_440, 2.10),
           P("structured-90", 0.802, 40_000, 0.30), P("unstructured-90", 0.905, 160_000, 2.05),
           P("structured-50", 0.897, 270_000, 1.10)]


@pytest.mark.parametrize("limits, want", [
    ({}, "dense"), ({"max_size": 200_000}, "unstructured-90"), ({"max_latency": 1.10}, "structured-50"),
    ({"max_size": 300_000, "max_latency": 1.5}, "structured-50"), ({"max_latency": 1.0, "min_accuracy": 0.9}, None),
    ({"max_size": 10_000}, None), ({"min_accuracy": 0.912}, "dense"), ({"max_size": 120_000}, "structured-75"),
])
def test_pick_is_the_most_accurate_within_every_inclusive_limit(limits, want):
    got = pick(CONFIGS, **limits)
    assert (got and got["name"]) == want if want else got is None


def test_pick_breaks_ties_by_size_then_latency_and_validates_limits():
    pts = [P("big", 0.9, 300, 1.0), P("small-slow", 0.9, 100, 3.0), P("small-fast", 0.9, 100, 2.0)]
    assert pick(pts)["name"] == "small-fast"
    for order in itertools.permutations(pts):
        assert pick(list(order))["name"] == "small-fast"
    with pytest.raises(TypeError, match="max_size must be a number or None"):
        pick(pts, max_size="1 MB")
    with pytest.raises(ValueError, match="has no 'latency_ms'"):
        pick([{"name": "x", "accuracy": 0.5, "size_bytes": 1}], max_latency=1.0)


def test_points_table_marks_the_front():
    table = tradeoffs.points_table([dict(P("a", 0.9, 100), format="csr", nonzero=5, flops=10.0),
                                    dict(P("b", 0.8, 200), format="dense", nonzero=9, flops=20.0)],
                                   front=[P("a", 0.9, 100)])
    text = str(table)
    assert "★ a" in text and "★ b" not in text and "90.00%" in text
