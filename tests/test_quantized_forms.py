"""The quantized storage forms load back bit for bit, their sizes follow the layout, and a model's size counts a
form exactly when it reproduces that model's weights."""
from __future__ import annotations

import io
import math

import pytest
import torch
from hypothesis import given, settings, strategies as st

from course.export import exact_for, load_pruned, lossless_forms, save_pruned, to_bytes
from course.metrics import size_bytes, stored_size
from course.models import build_model
from course.pruning.masks import get_masks
from course.pruning.unstructured import prune_unstructured
from course.quantization import quantize
from course.quantized_forms import pack_indices, unpack_indices


def _same(a: torch.nn.Module, b: torch.nn.Module) -> None:
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)   # weights and masks bit for bit
    x = torch.randn(32, *a.in_shape, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert torch.equal(a.eval()(x), b.eval()(x))


def _pruned(name="lenet300", sparsity=0.9):
    torch.manual_seed(0)
    return prune_unstructured(build_model(name, (1, 28, 28)), sparsity, scope="global")


@pytest.mark.parametrize("compress", [False, True])
@pytest.mark.parametrize("name", ["lenet300", "lenet5"])
def test_codebook_form_round_trips_exactly(tmp_path, name, compress):
    model = quantize(_pruned(name), 4, method="kmeans")
    back = load_pruned(save_pruned(model, tmp_path / "m", "bitmask_codebook", compress=compress),
                       build_model(name, (1, 28, 28)))
    _same(model, back)
    assert get_masks(back).keys() == get_masks(model).keys()


@pytest.mark.parametrize("bits, per_channel", [(8, True), (4, True), (8, False), (3, False)])
def test_int8_form_round_trips_linear_quantized_models_exactly(tmp_path, bits, per_channel):
    model = quantize(_pruned("lenet5", 0.7), bits, per_channel=per_channel)
    _same(model, load_pruned(save_pruned(model, tmp_path / "m", "bitmask_int8", compress=True),
                             build_model("lenet5", (1, 28, 28))))


def test_unpruned_quantized_models_round_trip_too(tmp_path):
    torch.manual_seed(0)
    for model, fmt in ((quantize(build_model("lenet300"), 2, method="kmeans"), "bitmask_codebook"),
                       (quantize(build_model("lenet300"), 8), "bitmask_int8")):
        _same(model, load_pruned(save_pruned(model, tmp_path / fmt, fmt), build_model("lenet300")))


def test_codebook_payload_has_the_documented_layout():
    model = quantize(_pruned(), 3, method="kmeans")
    payload = torch.load(io.BytesIO(to_bytes(model, "bitmask_codebook")), weights_only=True)
    entry = payload["sparse"]["fc1"]
    kept = int(get_masks(model)["fc1"].sum())
    assert entry["codebook"].numel() <= 8 and entry["codebook"].dtype == torch.float32
    assert entry["nbits"] == max(1, math.ceil(math.log2(entry["codebook"].numel())))
    assert entry["index"].dtype == torch.uint8 and entry["index"].numel() == math.ceil(kept * entry["nbits"] / 8)
    assert entry["bits"].numel() == math.ceil(784 * 300 / 8)


def test_int8_payload_stores_one_byte_per_kept_weight_and_a_scale_per_channel():
    model = quantize(_pruned(), 8)
    entry = torch.load(io.BytesIO(to_bytes(model, "bitmask_int8")), weights_only=True)["sparse"]["fc2"]
    assert entry["q"].dtype == torch.int8 and entry["q"].numel() == int(model.fc2.prune_mask.sum())
    assert entry["scale"].shape == (100,) and entry["scale"].dtype == torch.float32


def test_a_model_size_counts_a_form_only_when_it_is_exact_for_that_model():
    pruned = _pruned()
    shared, int8 = quantize(pruned, 4, method="kmeans"), quantize(pruned, 8)
    assert lossless_forms(pruned) == ("dense", "csr", "bitmask_fp32")
    assert "bitmask_codebook" in lossless_forms(shared) and "bitmask_int8" not in lossless_forms(shared)
    assert "bitmask_int8" in lossless_forms(int8) and "bitmask_codebook" not in lossless_forms(int8)
    assert stored_size(shared) == ("bitmask_codebook", size_bytes(shared, "bitmask_codebook"))
    assert stored_size(int8) == ("bitmask_int8", size_bytes(int8, "bitmask_int8"))
    assert stored_size(pruned)[0] == "bitmask_fp32"
    assert not exact_for(pruned, "bitmask_fp16") and exact_for(pruned, "csr")
    half = quantize(pruned, 8)                                            # fp16 numbers: fp16 is exact for them
    with torch.no_grad():
        for m in (half.fc1, half.fc2, half.fc3):
            m.weight.copy_(m.weight.half().float())
    assert exact_for(half, "bitmask_fp16")


def test_forms_that_cannot_hold_a_model_refuse_it_by_layer_and_write_nothing(tmp_path):
    with pytest.raises(ValueError, match=r"layer 'fc1'.*distinct values.*method='kmeans'"):
        save_pruned(build_model("lenet300"), tmp_path / "m", "bitmask_codebook")
    assert not (tmp_path / "m").exists()


def test_a_float_model_in_int8_form_is_the_8bit_per_channel_model(tmp_path):
    model = _pruned(sparsity=0.5)
    back = load_pruned(save_pruned(model, tmp_path / "m", "bitmask_int8"), build_model("lenet300"))
    _same(quantize(model, 8), back)


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 8), st.lists(st.integers(0, 255), min_size=0, max_size=200))
def test_index_packing_round_trips(bits, values):
    index = torch.tensor([v % (1 << bits) for v in values], dtype=torch.int64)
    packed = pack_indices(index, bits)
    assert packed.numel() == math.ceil(len(values) * bits / 8)
    assert torch.equal(unpack_indices(packed, bits, len(values)), index)
