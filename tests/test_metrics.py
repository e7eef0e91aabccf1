"""course.metrics and course.timing: parameter counts, real file sizes, FLOPs against hand-computed formulas, latency,
the report card."""
from __future__ import annotations

import io
import lzma

import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

from course import metrics, timing
from course.export import FORMATS, save_pruned
from course.models import build_model
from course.pruning.masks import apply_masks, remove_masks
from course.pruning.targets import prunable_layers
from course.quantization import quantize
from course.table import Table
from course.files import seal


def masked(model, density: float, seed: int = 0, layers=None):
    gen = torch.Generator().manual_seed(seed + 12345)      # independent of the weights' init stream
    layers = layers or [n for n, _ in prunable_layers(model)]
    masks = {n: torch.rand(m.weight.shape, generator=gen) < density
             for n, m in prunable_layers(model) if n in layers}
    return apply_masks(model, masks)


def exact_half_mask(weight: torch.Tensor) -> torch.Tensor:
    """A mask keeping exactly half of the weights (every other element)."""
    mask = torch.zeros(weight.numel(), dtype=torch.bool)
    mask[::2] = True
    return mask.reshape(weight.shape)


def test_count_params_lenet300_totals_and_nonzero():
    torch.manual_seed(0)
    model = build_model("lenet300")
    counts = metrics.count_params(model)
    assert counts.total == 266_610 and counts.nonzero == 266_610
    assert counts.layers["fc1"] == (235_500, 235_500)
    pruned = masked(model, 0.1)
    c = metrics.count_params(pruned)
    kept = sum(int(m.prune_mask.sum()) for _, m in prunable_layers(pruned))
    assert c.total == 266_610                                   # masks are buffers, not parameters
    assert c.nonzero == kept + 300 + 100 + 10                   # kept weights + (nonzero) biases
    assert c.sparsity == pytest.approx(1 - c.nonzero / c.total)
    assert "fc1" in repr(c) and "<table>" in c._repr_html_()


def test_sizes_equal_the_lengths_of_the_real_files(tmp_path):
    torch.manual_seed(0)
    original = build_model("lenet5")
    model = masked(original, 0.2)
    for fmt in FORMATS:
        if fmt == "bitmask_codebook":                       # float weights: the codebook form refuses them
            model_fmt = quantize(model, 4, method="kmeans")
        else:
            model_fmt = model
        path = save_pruned(model_fmt, tmp_path / f"{fmt}.pt", fmt, original=original)
        raw = path.read_bytes()
        assert metrics.size_bytes(model_fmt, fmt, original=original) == len(raw) == path.stat().st_size
        xz = save_pruned(model_fmt, tmp_path / f"{fmt}.pt.xz", fmt, compress=True, original=original)
        assert lzma.decompress(xz.read_bytes()) == raw
        assert metrics.size_bytes(model_fmt, fmt, compressed=True, original=original) == xz.stat().st_size
    # "dense" is exactly what a plain torch.save of the mask-free state_dict writes, plus the checksum trailer
    buf = io.BytesIO()
    torch.save(remove_masks(model).state_dict(), buf)
    assert metrics.size_bytes(model, "dense") == len(seal(buf.getvalue()))


def test_storage_forms_compare_as_their_formulas_say():
    torch.manual_seed(0)
    dense_model = build_model("lenet300")
    model = masked(dense_model, 0.1)
    dense = metrics.size_bytes(model, "dense")
    n = 266_610
    assert dense == pytest.approx(4 * n, rel=0.01)
    assert metrics.size_bytes(model, "torch_prune", original=dense_model) / dense == pytest.approx(2.0, abs=0.02)
    assert metrics.size_bytes(model, "course_masks") / dense == pytest.approx(1.25, abs=0.02)  # + 1 byte bool
    k = sum(int(m.prune_mask.sum()) for _, m in prunable_layers(model))
    w = 784 * 300 + 300 * 100 + 100 * 10
    assert metrics.size_bytes(model, "bitmask_fp32") == pytest.approx(w / 8 + 4 * k + 4 * 410, rel=0.05)
    assert metrics.size_bytes(model, "bitmask_fp16") < metrics.size_bytes(model, "bitmask_fp32") < dense
    assert metrics.size_bytes(model, "csr") < dense
    assert metrics.size_bytes(model, "dense", compressed=True) < dense       # zeros compress
    # honest: a dense model in CSR costs more than dense (indices for every weight)
    assert metrics.size_bytes(dense_model, "csr") > 1.9 * metrics.size_bytes(dense_model, "dense")
    table = metrics.size_table(model)
    assert table.column("format") == list(FORMATS)
    assert table.column("bytes")[0] == dense and "<table>" in table._repr_html_()
    rows = {r["format"]: r for r in table}
    assert rows["bitmask_fp32"]["exact"] and not rows["bitmask_fp16"]["exact"] and not rows["bitmask_int8"]["exact"]
    assert rows["bitmask_codebook"]["bytes"] is None                  # float weights cannot be stored as a codebook
    assert rows["torch_prune"]["bytes"] is None                       # its original values are unknown without original=
    assert metrics.size_bytes(model, "bitmask_int8") < metrics.size_bytes(model, "bitmask_fp16")


def test_lenet300_has_266200_macs():
    flops = metrics.count_flops(build_model("lenet300"), (1, 28, 28))
    assert flops.macs == 266_200 == 784 * 300 + 300 * 100 + 100 * 10
    assert flops.dense == 532_400 == flops.effective
    assert metrics.count_flops(build_model("lenet300"), (1, 28, 28), batch_size=4).dense == 4 * 532_400


def test_lenet5_flops_match_the_conv_formula():
    # Conv: 2 * C_in * k * k * C_out * H_out * W_out; Linear: 2 * in * out
    expected = 2 * (1 * 25 * 6 * 28 * 28 + 6 * 25 * 16 * 10 * 10 + 400 * 120 + 120 * 84 + 84 * 10)
    flops = metrics.count_flops(build_model("lenet5"), (1, 28, 28))
    assert flops.dense == expected
    assert flops.layers["conv2"]["dense"] == 2 * 6 * 25 * 16 * 10 * 10


def test_effective_flops_halve_with_a_50_percent_sparse_layer():
    model = build_model("lenet300")
    dense = metrics.count_flops(model, (1, 28, 28))
    half = apply_masks(model, {"fc1": exact_half_mask(model.fc1.weight)})
    flops = metrics.count_flops(half, (1, 28, 28))
    assert flops.layers["fc1"]["effective"] == dense.layers["fc1"]["dense"] / 2
    assert flops.layers["fc2"]["effective"] == dense.layers["fc2"]["dense"]            # other layers unchanged
    assert flops.effective == dense.dense - dense.layers["fc1"]["dense"] / 2
    all_half = apply_masks(model, {n: exact_half_mask(m.weight) for n, m in prunable_layers(model)})
    assert metrics.count_flops(all_half, (1, 28, 28)).effective == dense.dense / 2
    assert flops.effective_macs == flops.effective / 2


def test_flops_and_latency_leave_the_model_as_it_was():
    model = build_model("vgg", (1, 28, 28)).train()
    state = {k: v.clone() for k, v in model.state_dict().items()}
    metrics.count_flops(model)                                  # input shape from model.in_shape
    result = timing.latency(model, 2, min_run_time=0.05, threads=1)
    assert model.training and all(m.training for m in model.modules())
    assert all(torch.equal(state[k], v) for k, v in model.state_dict().items())   # BN stats untouched
    assert result.batch_size == 2 and result.threads == 1 and result.median_ms > 0 and result.iqr_ms >= 0
    assert "ms" in repr(result)


@pytest.mark.filterwarnings("ignore:Sparse CSR tensor support is in beta")
def test_latency_times_any_callable_such_as_a_csr_matmul():
    weight = masked(build_model("lenet300"), 0.1).fc1.weight.detach()
    sparse = weight.to_sparse_csr()
    threads = torch.get_num_threads()
    result = timing.latency(lambda x: (sparse @ x.flatten(1).T).T, 4, input_shape=(1, 28, 28),
                             min_run_time=0.05)
    assert result.median_ms > 0 and result.threads == threads == torch.get_num_threads()


def test_bad_arguments_name_what_is_wrong():
    model = build_model("lenet300")
    with pytest.raises(ValueError, match="unknown storage format 'zip'.*csr"):
        metrics.size_bytes(model, "zip")
    with pytest.raises(ValueError, match="batch_size"):
        timing.latency(model, 0)
    with pytest.raises(ValueError, match="input_shape is required"):
        timing.latency(lambda x: x, 1)
    with pytest.raises(TypeError, match="callable"):
        timing.latency(42, 1, input_shape=(1, 28, 28))
    with pytest.raises(ValueError, match="columns"):
        Table(["a", "b"], [(1,)])


def test_report_card_measures_and_compares():
    torch.manual_seed(0)
    dense = build_model("lenet300").eval()
    pruned = masked(dense, 0.1)
    gen = torch.Generator().manual_seed(0)
    x, y = torch.randn(64, 1, 28, 28, generator=gen), torch.randint(0, 10, (64,), generator=gen)
    loader = DataLoader(TensorDataset(x, y), batch_size=16)
    card = metrics.report({"dense": dense, "pruned": pruned}, loader=loader, min_run_time=0.05, progress=False)
    rows = card.rows_by_name
    with torch.no_grad():
        expected = float((pruned(x).argmax(1) == y).float().mean())
    assert rows["pruned"]["accuracy"] == pytest.approx(expected)
    assert rows["dense"]["size ×"] == rows["dense"]["FLOPs ×"] == rows["dense"]["speedup ×"] == 1.0
    assert rows["pruned"]["nonzero"] == metrics.count_params(pruned).nonzero
    assert rows["pruned"]["stored"] == metrics.stored_size(pruned)[1] == min(metrics.size_bytes(pruned, f)
                                                                            for f in ("dense", "csr", "bitmask_fp32"))
    assert rows["pruned"]["stored form"] == metrics.stored_size(pruned)[0]
    assert rows["pruned"]["size ×"] > 4 and rows["pruned"]["FLOPs ×"] > 8
    assert "Report card" in str(card) and "<table>" in card._repr_html_()
    with pytest.raises(ValueError, match="reference 'x' is not one of"):
        metrics.report({"dense": dense}, reference="x", progress=False)


def test_report_card_rounds_keep_each_models_fastest_round():
    dense = build_model("lenet300").eval()
    timings = iter([3.0, 5.0, 1.0, 4.0, 2.0, 6.0])       # rounds x models, in the order they are timed
    seen = []

    def fake_latency(model, batch_size, **kw):
        seen.append(model)
        return timing.LatencyResult(next(timings), 0.1, batch_size, 1, 10)

    card = metrics.report({"a": dense, "b": masked(dense, 0.5)}, rounds=3, progress=False, timer=fake_latency)
    rows = card.rows_by_name
    assert rows["a"]["latency ms"] == 1.0 and rows["b"]["latency ms"] == 4.0    # min of (3, 1, 2) and (5, 4, 6)
    assert rows["b"]["speedup ×"] == pytest.approx(0.25)
    assert all(m is not dense for m in seen)                                   # fresh copies, never the model itself
    with pytest.raises(ValueError, match="rounds must be an int >= 1"):
        metrics.report({"a": dense}, rounds=0, progress=False)
