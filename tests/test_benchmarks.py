"""Smoke tests of the benchmark scripts: every part runs on tiny inputs and returns tables of the right shape.

Timings are never asserted (they depend on the machine and its load); only structure and what must hold
whatever the clock says (sparsity reached, files round-trip, models left unchanged, summaries written).
"""
from __future__ import annotations

import json
import math
import sys
import time
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))

import bench_criteria as bc  # noqa: E402
import bench_latency as bl  # noqa: E402
import bench_targets as bt  # noqa: E402
import benchkit  # noqa: E402
import run_all  # noqa: E402
import targets_accuracy as ta  # noqa: E402
import targets_masks as tm  # noqa: E402
import targets_storage as tst  # noqa: E402
import targets_structured as tsd  # noqa: E402

from course.data import make_loaders  # noqa: E402
from course.metrics import evaluate  # noqa: E402
from course.models import build_model  # noqa: E402
from course.pruning import prune_unstructured  # noqa: E402
from course.table import Table  # noqa: E402

FAST = {"rounds": 1, "min_run_time": 0.001}


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """The scripts run with one torch thread (see benchmarks/README.md); so do their tests. Restored after."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def tiny():
    """Real MNIST (the shipped subset): 256 training and 128 test images."""
    torch.manual_seed(0)
    return make_loaders("mnist", batch_size=64, test_batch_size=128, train_size=256, test_size=128, download=False)


def _mlp(hidden: int = 32) -> torch.nn.Module:
    """A small 784-hidden-10 MLP (a LeNet-300-100 with one narrow layer), so the smoke tests stay fast."""
    torch.manual_seed(0)
    return bl.BigMLP(hidden=hidden)


def _state(model):
    return {k: v.clone() for k, v in model.state_dict().items()}


def _same(model, state) -> bool:
    now = model.state_dict()
    return set(now) == set(state) and all(torch.equal(now[k], state[k]) for k in state)


def test_criteria_sweep_covers_every_cell_and_leaves_models_alone(tiny):
    train_loader, test_loader = tiny
    models = {0: _mlp(), 1: _mlp()}
    before = {s: _state(m) for s, m in models.items()}
    records = bc.run_sweep(models, train_loader, test_loader, sparsities=(0.5, 0.9), ft_sparsities=(0.9,),
                           ft_steps=2, progress=False)
    n = len(bc.CRITERIA_NAMES)
    assert len(records) == 2 * (1 + n * 2 * 2 + n * 2 * 1)
    assert all(_same(models[s], before[s]) for s in models)
    table = bc.summarize(records, "MNIST-10k (real subset, offline)")
    assert table.columns == bc.COLUMNS
    modes = [r["mode"] for r in table]
    assert modes.count("dense") == 1 and modes.count("one-shot") == 4 * n and modes.count("fine-tuned") == 2 * n
    assert {r["seeds"] for r in table} == {2}
    assert all(0 <= r["accuracy mean"] <= 1 and r["accuracy std"] >= 0 for r in table)
    assert {(r["criterion"], r["scope"]) for r in table if r["mode"] == "one-shot"} == {
        (c, s) for c in bc.CRITERIA_NAMES for s in bc.SCOPES}
    grid = bc.wide_markdown(table, "one-shot", 2)
    assert "| criterion | scope | 50% | 90% |" in grid and grid.count("\n| ") == 2 * n + 1
    assert bc.summary_rows(table, at=0.9)[0]["benchmark"] == "criteria"
    assert bc.plot([table]) is not None


def test_steps_is_a_fixed_budget_with_a_reseeded_shuffle(tiny):
    train_loader, _ = tiny
    steps = bc.Steps(train_loader, 3, seed=5)
    first = [y for _, y in steps]
    assert len(steps) == 3 and len(first) == 3
    assert all(torch.equal(a, b) for a, b in zip(first, [y for _, y in steps]))
    assert len(bc.Steps(train_loader, 100, seed=0)) == len(train_loader)


def test_latency_table_rows_ratios_and_break_even():
    torch.manual_seed(0)
    model = bl.BigMLP(hidden=16)
    before = _state(model)
    table = bl.latency_table("tiny", model, sparsities=(0.0, 0.9), batches=(1, 4), progress=False, **FAST)
    assert table.columns == bl.COLUMNS
    assert [(r["batch"], r["sparsity"]) for r in table] == [(1, 0.0), (1, 0.9), (4, 0.0), (4, 0.9)]
    for r in table:
        assert r["dense ms"] > 0 and r["csr ms"] > 0 and r["structured ms"] > 0
        assert math.isclose(r["csr ×"], r["dense ms"] / r["csr ms"])     # one round: the paired ratio is the ratio
    assert _same(model, before)
    even = bl.break_even_table(table)
    assert even.columns[:3] == ["model", "batch", "CSR break-even sparsity"] and len(even) == 2
    assert "| sparsity |" in bl.wide_markdown(table, "tiny")


def test_structured_match_hits_the_parameter_count():
    model = build_model("lenet300")
    target = 30_000
    ratio, slim = bl.structured_match(model, target)
    n = sum(p.numel() for p in slim.parameters())
    assert 0 < ratio < 1 and abs(n - target) < 0.05 * target


def test_accuracy_target_picks_on_validation_and_judges_the_mean_of_the_seeds(tiny):
    train_loader, test_loader = tiny
    val = make_loaders("mnist", batch_size=64, test_batch_size=128, train_size=256, test_size=128, val_size=64,
                       download=False)[1]
    denses = {s: build_model("lenet300") for s in (0, 1)}
    loaders = {s: (train_loader, val, test_loader) for s in (0, 1)}
    methods = ["one-shot-adam", "iterative"]
    rows, epochs = ta.run_grid(denses, loaders, methods=methods, max_epochs=1)
    assert epochs == 1 and [(r["method"], r["seed"]) for r in rows] == [(m, s) for m in methods for s in (0, 1)]
    assert all(r["sparsity"] >= 0.95 - 1e-6 and 0 <= r["val"] <= 1 and "test" not in r for r in rows)
    picked = ta.select(rows)
    mean_val = {m: sum(r["val"] for r in rows if r["method"] == m) / 2 for m in methods}
    assert mean_val[picked] == max(mean_val.values())
    sel = ta.selection_table("tiny", rows, epochs, picked)
    assert sel.columns == ta.SELECTION_COLUMNS and [r["picked"] for r in sel].count("◀") == 1
    row, models = ta.judge("tiny", rows, picked, denses, loaders, epochs)
    r = dict(zip(ta.COLUMNS, row))
    tests = [evaluate(models[s], test_loader) for s in (0, 1)]
    dense = [evaluate(denses[s], test_loader) for s in (0, 1)]
    assert r["recipe"] == picked and r["seeds"] == 2 and math.isclose(r["pruned acc"], sum(tests) / 2)
    assert math.isclose(r["Δ pp"], 100 * (sum(tests) - sum(dense)) / 2)
    assert r["status"] == ("PASS" if r["Δ pp"] >= -ta.TOLERANCE_PP and r["fine-tune s"] <= ta.BUDGET_S else "MISS")
    assert ta.verdict_table([row]).columns == ta.COLUMNS
    with pytest.raises(ValueError, match="unknown methods"):
        ta.run_grid(denses, loaders, methods=["nope"], max_epochs=1)


def test_deadline_stops_a_pass_once_the_budget_is_spent(tiny):
    train_loader, _ = tiny
    late = ta.Deadline(train_loader, time.perf_counter() - 1)
    assert len(late) == len(train_loader) and list(late) == [] and late.cut
    on_time = ta.Deadline(train_loader, time.perf_counter() + 3600)
    assert len(list(on_time)) == len(train_loader) and not on_time.cut
    assert ta.plan_epochs(10.0, budget_s=120, safety=0.5) == 6 and ta.plan_epochs(1e-3, max_epochs=7) == 7


def test_structured_target_picks_half_the_flops_and_times_both_layouts(tiny):
    from course.metrics import count_flops

    train_loader, test_loader = tiny
    torch.manual_seed(0)
    dense = build_model("vgg", (1, 28, 28))
    before = _state(dense)
    d_flops = count_flops(dense).dense
    ratio, uniform = tsd.choose_ratio(dense)
    assert count_flops(uniform).dense <= 0.5 * d_flops
    assert all(w % 8 == 0 for w in tsd.widths(uniform)[:-2])
    assert tsd.conv_blocks(dense) == [["conv1", "conv2"], ["conv3", "conv4"], ["conv5", "conv6"]]
    best, search = tsd.latency_aware(dense, **FAST)
    assert len(search) >= 1 and len(best) == 3 and all(w % 8 == 0 for w in best)
    assert all(2 <= r["FLOP ratio"] <= 1 / 0.35 + 1e-9 for r in search)
    aware = tsd.prune_to_widths(dense, {"conv1": best[0], "conv2": best[0], "conv3": best[1], "conv4": best[1],
                                        "conv5": best[2], "conv6": best[2]})
    assert tsd.widths(aware)[:6] == [best[0]] * 2 + [best[1]] * 2 + [best[2]] * 2
    acc, tuned = tsd.accuracy_table(dense, {"uniform": uniform, "aware": aware}, train_loader, test_loader, epochs=1)
    assert [r["model"] for r in acc] == ["dense", "uniform", "aware"] and acc[-1]["status"] in ("PASS", "MISS")
    speed = tsd.speed_table(dense, tuned, **FAST)
    assert speed.columns == tsd.COLUMNS
    assert [(r["method"], r["layout"], r["threads"]) for r in speed] == [
        (m, lay, n) for m in ("uniform", "aware") for lay in tsd.LAYOUTS for n in (1, 2)]
    assert all(r["FLOP ratio"] >= 2 for r in speed)
    assert _same(dense, before)


def test_storage_round_trips_every_form(tiny):
    _, test_loader = tiny
    dense = _mlp(64)
    pruned = prune_unstructured(dense, 0.95, scope="global")
    x, _ = next(iter(test_loader))
    table, extra = tst.storage_table(dense, pruned, bl.BigMLP(hidden=64), x[:16], test_loader=test_loader)
    assert table.columns == tst.COLUMNS and len(table) == 12
    assert all(r["identical"] and r["max |Δ logit|"] == 0 for r in table)
    for r in table:
        assert math.isclose(r["ratio"], extra["dense_bytes"] / r["bytes"])
        assert r["status"] == ("PASS" if r["ratio"] >= tst.RATIO_TARGET else "MISS")
    rounded = tst.round_fp16(pruned)
    w = rounded[-1].weight                       # (global pruning at 95% may empty the first layer)
    assert torch.equal(w, w.half().float()) and not torch.equal(w, pruned[-1].weight)
    assert torch.equal(rounded[-1].prune_mask, pruned[-1].prune_mask)


def test_masks_target_has_one_row_per_operation(tiny):
    train_loader, _ = tiny
    model = build_model("lenet300")
    before = _state(model)
    x, y = next(iter(train_loader))
    table = tm.masks_table(model, x, y, forward_batches=(1, 8), **FAST)
    assert table.columns == tm.COLUMNS and len(table) == 6
    assert [r["operation"] for r in table][:2] == ["forward, batch 1", "forward, batch 8"]
    assert all(r["status"] == ("PASS" if r["course / torch"] <= tm.SLOWER_TOLERANCE else "MISS") for r in table)
    assert _same(model, before)


def test_zoo_masks_row_times_both_on_the_same_weight_matrices():
    import bench_targets
    from course.pruning import prunable_weights

    model = bench_targets.largest_zoo_model()
    assert type(model).__name__ == "ResNet18"
    before = _state(model)
    table = tm.zoo_masks_table(model, **FAST)
    row = table[0]
    assert len(table) == 1 and row["course ms"] > 0 and row["torch ms"] > 0 and "ResNet18" in row["operation"]
    assert str(len(prunable_weights(model))) in table.title and _same(model, before)


def test_benchkit_helpers():
    assert benchkit.iqr([1, 2, 3, 4, 5]) == 2 and benchkit.iqr([7]) == 0
    assert benchkit.mean_std([1.0, 3.0]) == (2.0, math.sqrt(2))
    a, b = {"values": [2.0, 4.0, 9.0]}, {"values": [1.0, 1.0, 3.0]}
    assert benchkit.paired_ratio(a, b) == 3.0
    md = benchkit.markdown(Table(["x", "y"], [(0.5, None)], title="T", formats={"x": ".0%"}, note="n"))
    assert "**T**" in md and "| 50% | – |" in md and "_n_" in md


def test_results_files_and_readme_summary(tmp_path):
    table = Table(["a"], [(1,)])
    meta = {"quick": True, "load_start": 1.0, "started": time.time()}
    paths = benchkit.write_result(tmp_path, "latency", "Title", ["text"], {"t": table},
                                  meta=benchkit.finish_meta(meta),
                                  summary=[{"benchmark": "latency", "measure": "m1", "result": "r1"}])
    assert [p.name for p in paths] == ["latency.md", "latency.json"]
    data = json.loads((tmp_path / "latency.json").read_text())
    assert data["tables"]["t"]["rows"] == [[1]] and data["meta"]["threads"] >= 1
    readme = tmp_path / "README.md"
    readme.write_text(f"intro\n{run_all.START}\nold\n{run_all.END}\nend\n")
    text = run_all.write_summary(tmp_path, readme)
    assert "| [latency](results/latency.md) | m1 | r1 |" in text and "old" not in text
    assert text.startswith("intro\n") and text.endswith("end\n") and "criteria | – | not run yet" in text
    readme.write_text("no markers")
    with pytest.raises(ValueError, match="markers"):
        run_all.write_summary(tmp_path, readme)
    with pytest.raises(ValueError, match="unknown benchmarks"):
        run_all.scripts(["nope"])


def test_targets_plot_and_verdict():
    rows = [("d", "m", 1, 3, 0.95, 0.9, 0.9, 0.001, 0.0, 0.1, 1.0, False, "PASS")]
    tables = {"a": Table(ta.COLUMNS, rows)}
    assert bt.verdict(tables["a"]) == "PASS" and bt.verdict(Table(["status"], [("MISS",)])) == "MISS"
    assert bt.plot(tables) is not None and bt.plot({}) is None


def test_latency_script_quick_run_writes_its_results(tmp_path):
    assert bl.main(["--quick", "--out", str(tmp_path)]) == 0
    assert {p.name for p in tmp_path.iterdir()} >= {"latency.md", "latency.json", "latency.png"}
    data = json.loads((tmp_path / "latency.json").read_text())
    assert data["meta"]["quick"] and len(data["tables"]["latency"]["rows"]) == 2 * 2 * 2


def test_compression_target_runs_end_to_end_on_tiny_inputs(tmp_path):
    import bench_compression as bcmp
    import targets_compression as tc

    assert bcmp.main(["--quick", "--out", str(tmp_path)]) == 0
    data = json.loads((tmp_path / "compression.json").read_text())
    measures = [r["measure"] for r in data["summary"]]
    assert sum(m.startswith("(e1)") for m in measures) == 4 and sum(m.startswith("(e2)") for m in measures) == 3
    assert any(m.startswith("(e3)") for m in measures)
    for ds in ("mnist", "fashion-mnist"):
        final = data["tables"][f"e1_{ds}"]
        assert all(row[-1] is True for row in final["rows"])              # every file loads back identically
        control = data["tables"][f"e1_{ds}_control"]                     # pruning alone: 0% (the recipe's control)
        assert [r[0] for r in control["rows"]] == ["0%", "95%"] and all(r[-1] == 2 for r in control["rows"])
    # the selection rule: the smallest file within SELECT_PP; at its sparsity, more bits when within one SE
    def rec(s, b, v, n):
        return {"recipe": tc.Recipe(s, b, 1, 0.1), "val": v, "dense_val": 0.9, "bytes": n}

    rows = [rec(0.9, 3, 0.899, 1000), rec(0.9, 4, 0.8985, 1100), rec(0.95, 3, 0.85, 500)]
    assert tc.select(rows, 800)[0] == tc.Recipe(0.9, 4, 1, 0.1)          # 3 vs 4 bits: a tie on 800 images
    rows[1]["val"] = 0.85
    assert tc.select(rows, 800)[0].bits == 3                              # 4 bits now measurably worse
    rows[0]["val"] = rows[1]["val"] = 0.5
    assert tc.select(rows, 800)[0].sparsity == 0.95                       # nothing qualifies: the smallest drop


def test_transformers_script_quick_run_judges_every_part_and_leaves_the_baseline_alone(tmp_path):
    import bench_transformers as btr

    assert btr.main(["--quick", "--out", str(tmp_path)]) == 0
    assert {p.name for p in tmp_path.iterdir()} >= {"transformers.md", "transformers.json", "transformers.png"}
    data = json.loads((tmp_path / "transformers.json").read_text())
    measures = [r["measure"] for r in data["summary"]]
    assert [m[:4] for m in measures] == ["(f1)", "(f1)", "(f2)", "(f3)", "(f3)"]
    assert all(r["result"].split(":")[0] in ("PASS", "MISS") for r in data["summary"][:4])
    post = data["tables"]["post"]
    cols = post["columns"]
    cells = {(r[cols.index("layers")], r[cols.index("target")], r[cols.index("method")]) for r in post["rows"]}
    assert cells == {(layers, t, m) for layers in btr.LAYERS for t in ("50%", "70%", "2:4") for m in btr.METHODS}
    speed = data["tables"]["f3_speed"]
    assert [r[0] for r in speed["rows"]] == ["dense", "heads 50%", "MLP 50%", "heads + MLP 50%"]
    params = {r[0]: r[1] for r in speed["rows"]}
    assert params["dense"] == 139_018 and params["heads 50%"] == 105_866 and params["MLP 50%"] == 105_994
