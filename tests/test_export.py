"""course.export: small pruned files that round-trip, load with weights_only=True, and refuse the wrong model."""
from __future__ import annotations

import os

import torch
import pytest

from course.export import FORMATS, SPARSE_FORMATS, load_pruned, save_pruned, to_bytes
from course.files import gzip_bytes
from course.models import build_model
from course.pruning.masks import apply_masks, get_masks, remove_masks
from course.pruning.targets import prunable_layers
from course.quantization import quantize


def pruned(name: str = "lenet300", density: float = 0.2, seed: int = 0, in_shape=(1, 28, 28)):
    """A model with random weights and a random course mask of about `density` on every prunable layer."""
    torch.manual_seed(seed)
    model = build_model(name, in_shape)
    gen = torch.Generator().manual_seed(seed + 1)
    masks = {n: torch.rand(m.weight.shape, generator=gen) < density for n, m in prunable_layers(model)}
    return apply_masks(model, masks).eval()


def out(model, seed: int = 0):
    x = torch.randn(8, *model.in_shape, generator=torch.Generator().manual_seed(seed))
    with torch.no_grad():
        return model.eval()(x)


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("name", ["lenet300", "lenet5", "vgg"])
def test_round_trip_restores_weights_masks_and_outputs(tmp_path, name, fmt):
    model = pruned(name, in_shape=(1, 28, 28))
    if fmt == "bitmask_codebook":                     # float weights are not shared: the form refuses them
        with pytest.raises(ValueError, match=r"layer '.*distinct values.*method='kmeans'"):
            save_pruned(model, tmp_path / f"m.{fmt}", fmt)
        assert not (tmp_path / f"m.{fmt}").exists()
        return
    torch.manual_seed(0)                              # the dense model `pruned` masked: torch prune keeps its values
    path = save_pruned(model, tmp_path / f"m.{fmt}", fmt, original=build_model(name, (1, 28, 28)))
    loaded = load_pruned(path, build_model(name, (1, 28, 28)))
    masks, got = get_masks(model), get_masks(loaded)
    if fmt == "dense":
        assert got == {}                              # the dense form drops the masks by definition
        assert torch.equal(out(loaded), out(model))
        return
    assert sorted(got) == sorted(masks)
    assert all(torch.equal(got[n], masks[n]) for n in masks)
    if fmt == "bitmask_fp16":
        # each kept weight is rounded to fp16 (relative error <= 2**-11), so outputs agree only to that precision
        for n, m in prunable_layers(model):
            w, w16 = m.weight, dict(loaded.named_modules())[n].weight
            assert torch.equal(w16, w.half().float())
        assert not torch.equal(out(loaded), out(model))
        torch.testing.assert_close(out(loaded), out(model), rtol=1e-2, atol=1e-2)
    elif fmt == "bitmask_int8":                       # float weights are rounded to the 8-bit per-channel grid
        assert torch.equal(out(loaded), out(quantize(model, 8)))
        assert not torch.equal(out(loaded), out(model))
    else:
        assert torch.equal(out(loaded), out(model))   # fp32 forms are lossless: identical outputs


def test_files_load_with_weights_only_and_hold_plain_tensors(tmp_path):
    model = pruned()
    for fmt in ("csr", "bitmask_fp32", "bitmask_fp16"):
        data = torch.load(save_pruned(model, tmp_path / fmt, fmt), weights_only=True)
        assert data["course_format"] == fmt and data["model"] == "LeNet300100"
        entry = data["sparse"]["fc1"]
        assert entry["values"].dtype == (torch.float16 if fmt == "bitmask_fp16" else torch.float32)
        assert entry["values"].numel() == int(model.fc1.prune_mask.sum())     # only the kept weights
        if fmt == "csr":
            assert entry["crow"].dtype == entry["col"].dtype == torch.int32
            assert entry["crow"].numel() == 300 + 1 and entry["col"].numel() == entry["values"].numel()
        else:
            assert entry["bits"].dtype == torch.uint8 and entry["bits"].numel() == (300 * 784 + 7) // 8


def test_kept_weights_that_are_zero_keep_their_mask(tmp_path):
    model = pruned(density=0.5)
    kept = model.fc2.prune_mask.nonzero()[0]
    with torch.no_grad():
        model.fc2.weight[tuple(kept)] = 0.0          # a weight that is kept but happens to be 0
    for fmt in ("csr", "bitmask_fp32"):
        loaded = load_pruned(save_pruned(model, tmp_path / fmt, fmt), build_model("lenet300"))
        assert torch.equal(loaded.fc2.prune_mask, model.fc2.prune_mask)


def test_unmasked_layers_stay_unmasked(tmp_path):
    model = build_model("lenet300")
    model = apply_masks(model, {"fc1": torch.rand(300, 784) < 0.3})
    loaded = load_pruned(save_pruned(model, tmp_path / "m", "csr"), build_model("lenet300"))
    assert sorted(get_masks(loaded)) == ["fc1"]
    assert torch.equal(loaded.fc2.weight, model.fc2.weight)


def test_load_into_another_architecture_is_a_clear_error(tmp_path):
    path = save_pruned(pruned("lenet300"), tmp_path / "m", "bitmask_fp32")
    with pytest.raises(ValueError, match="saved from a LeNet300100, not a LeNet5"):
        load_pruned(path, build_model("lenet5"))
    with pytest.raises(ValueError, match=r"shape mismatches .*fc1.weight"):
        load_pruned(path, build_model("lenet300", (3, 32, 32)))
    dense = save_pruned(pruned("lenet300"), tmp_path / "d", "dense")
    with pytest.raises(ValueError, match="does not fit a LeNet5"):
        load_pruned(dense, build_model("lenet5"))


def test_load_does_not_touch_the_template(tmp_path):
    template = build_model("lenet300")
    before = {k: v.clone() for k, v in template.state_dict().items()}
    load_pruned(save_pruned(pruned(), tmp_path / "m", "csr"), template)
    after = template.state_dict()
    assert before.keys() == after.keys() and all(torch.equal(before[k], after[k]) for k in before)


def test_bad_format_and_bad_input_name_the_choices(tmp_path):
    with pytest.raises(ValueError, match="bitmask_fp16"):
        save_pruned(pruned(), tmp_path / "m", "zip")
    with pytest.raises(TypeError, match="nn.Module"):
        save_pruned({"not": "a model"}, tmp_path / "m2", "csr")
    assert not (tmp_path / "m").exists() and not (tmp_path / "m2").exists()
    with pytest.raises(FileNotFoundError):
        load_pruned(tmp_path / "missing", build_model("lenet300"))


def test_writes_are_atomic_and_leave_no_temp_files(tmp_path):
    model = pruned()
    path = tmp_path / "m.pt"
    save_pruned(model, path, "csr")
    save_pruned(model, path, "bitmask_fp16")                # overwrite in place
    assert [p.name for p in tmp_path.iterdir()] == ["m.pt"]
    umask = os.umask(0)
    os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask        # not mkstemp's private 0600
    assert torch.load(path, weights_only=True)["course_format"] == "bitmask_fp16"


def test_serialisation_is_deterministic_and_does_not_change_the_model():
    model = pruned()
    state = {k: v.clone() for k, v in model.state_dict().items()}
    assert to_bytes(model, "csr") == to_bytes(model, "csr")
    assert all(torch.equal(state[k], v) for k, v in model.state_dict().items())
    assert to_bytes(model, "dense") == to_bytes(remove_masks(model), "course_masks")


@pytest.mark.parametrize("fmt", ["bitmask_fp32", "csr", "dense"])
def test_compressed_files_have_the_xz_size_and_load_back_the_same_model(tmp_path, fmt):
    from course.metrics import size_bytes

    model = pruned("lenet5", in_shape=(1, 28, 28))
    path = save_pruned(model, tmp_path / f"m.{fmt}.xz", fmt, compress=True)
    assert path.read_bytes()[:6] == b"\xfd7zXZ\x00"                     # an xz stream
    assert path.stat().st_size == size_bytes(model, fmt, compressed=True) < size_bytes(model, fmt)
    loaded = load_pruned(path, build_model("lenet5", (1, 28, 28)))
    assert torch.equal(out(loaded), out(model))
    if fmt != "dense":
        assert all(torch.equal(a, b) for a, b in zip(get_masks(loaded).values(), get_masks(model).values()))


def test_gzip_files_of_earlier_versions_still_load(tmp_path):
    model = pruned()
    path = tmp_path / "old.pt.gz"
    path.write_bytes(gzip_bytes(to_bytes(model, "bitmask_fp32")))
    assert torch.equal(out(load_pruned(path, build_model("lenet300"))), out(model))


@pytest.mark.parametrize("suffix", ["xz", "gz"])
def test_a_damaged_compressed_file_is_a_clear_error(tmp_path, suffix):
    model = pruned("lenet300", in_shape=(1, 28, 28))
    path = tmp_path / f"m.{suffix}"
    data = to_bytes(model, "csr")
    path.write_bytes((gzip_bytes(data) if suffix == "gz" else save_pruned(model, path, "csr", compress=True)
                      .read_bytes())[: len(data) // 4])
    codec = {"xz": "xz", "gz": "gzip"}[suffix]
    with pytest.raises(ValueError, match=rf"m\.{suffix} is a damaged {codec} file.*save the model again"):
        load_pruned(path, build_model("lenet300", (1, 28, 28)))
    with pytest.raises(TypeError, match="compress must be True or False"):
        save_pruned(model, tmp_path / "x", "csr", compress="yes")
