"""Reliability: checksummed files, one error type for damaged or foreign files, no silently unreachable targets,
string arguments that are not what they say, downloads with a deadline and no decompression bombs."""
from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
import warnings
import zlib

import pytest
import torch
from torch import nn

from course import FileFormatError, MaskMismatchError, data, load_pruned, prune_unstructured, save_pruned
from course.checkpoints import find_checkpoint, load_state, read_manifest
from course.data import download
from course.data.download import Checksum, ChecksumError, DataUnavailableError
from course.files import TRAILER
from course.models import build_model


def pruned_lenet():
    torch.manual_seed(0)
    return prune_unstructured(build_model("lenet300"), 0.8)


# ---------------------------------------------------------------- save_pruned / load_pruned

@pytest.mark.parametrize("compress", [False, True])
@pytest.mark.parametrize("fmt", ["dense", "course_masks", "csr", "bitmask_fp32"])
def test_a_flipped_byte_is_a_clear_error_not_a_weight_of_1e37(tmp_path, fmt, compress):
    model = pruned_lenet()
    path = save_pruned(model, tmp_path / "m.pt", fmt)
    raw = bytearray(path.read_bytes())
    kept = model.fc1.weight.detach()[model.fc1.prune_mask][0]
    where = bytes(raw).find(kept.numpy().tobytes())               # a weight's own bytes in the file
    assert where > 0
    raw[where + 3] ^= 0x40                                         # its exponent: 0.05 -> about 1e18
    path.write_bytes(gzip.compress(bytes(raw)) if compress else bytes(raw))
    with pytest.raises(FileFormatError, match=r"m\.pt is damaged.*sha256"):
        load_pruned(path, build_model("lenet300"))


def test_the_trailer_does_not_stop_torch_load(tmp_path):
    path = save_pruned(pruned_lenet(), tmp_path / "m.pt", "dense")
    assert TRAILER in path.read_bytes()[-64:]
    state = torch.load(path, weights_only=True)                     # a plain state_dict for anyone's torch.load
    build_model("lenet300").load_state_dict(state)


@pytest.mark.parametrize("content", [
    b"not a model at all", b"", json.dumps({"a": 1}).encode(), gzip.compress(b"\x00" * 100),
    "torch-list", "torch-dict-of-str", "course-form-without-entries", "truncated-zip",
])
def test_foreign_or_damaged_files_are_one_error_type(tmp_path, content):
    path = tmp_path / "f.pt"
    if content == "torch-list":
        torch.save([1, 2, 3], path)
    elif content == "torch-dict-of-str":
        torch.save({"fc1.weight": "text"}, path)
    elif content == "course-form-without-entries":
        torch.save({"course_format": "csr", "version": 2, "model": "LeNet300100"}, path)
    elif content == "truncated-zip":
        path.write_bytes(save_pruned(pruned_lenet(), tmp_path / "m", "csr").read_bytes()[:5000])
    else:
        path.write_bytes(content)
    with pytest.raises(FileFormatError):
        load_pruned(path, build_model("lenet300"))


def test_save_pruned_refuses_weights_that_disagree_with_their_masks(tmp_path):
    model = pruned_lenet()
    model.fc2.weight.data[~model.fc2.prune_mask] = 1.0             # .data: behind the masks' back
    with pytest.raises(MaskMismatchError, match=r"fc2: \d+ pruned weights are nonzero"):
        save_pruned(model, tmp_path / "m.pt", "bitmask_fp32")
    assert not (tmp_path / "m.pt").exists()


# ---------------------------------------------------------------- checkpoints

@pytest.mark.parametrize("manifest", ["{not json", json.dumps({"format": 1}), json.dumps({"checkpoints": {"k": {}}}),
                                      json.dumps({"checkpoints": [1, 2]})])
def test_a_damaged_manifest_is_a_file_format_error(tmp_path, manifest):
    (tmp_path / "manifest.json").write_text(manifest)
    with pytest.raises(FileFormatError, match="manifest.json is not a checkpoint manifest"):
        find_checkpoint("k", tmp_path, local=False)
    with pytest.raises(FileFormatError):
        read_manifest(tmp_path)


def test_a_foreign_checkpoint_file_is_a_file_format_error(tmp_path):
    (tmp_path / "x.pt").write_bytes(b"\x00" * 64)
    with pytest.raises(FileFormatError, match="not a state_dict"):
        load_state(tmp_path / "x.pt", build_model("lenet300"))
    torch.save([1, 2], tmp_path / "y.pt")
    with pytest.raises(FileFormatError, match="not a state_dict"):
        load_state(tmp_path / "y.pt", build_model("lenet300"))


# ---------------------------------------------------------------- targets that cannot be reached

def test_local_scope_warns_when_min_density_makes_the_target_unreachable():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(20, 20), nn.ReLU(), nn.Linear(20, 5))
    with pytest.warns(UserWarning, match=r"min_density=0\.5 keeps layers \['0', '2'\] below sparsity 0\.9"):
        pruned = prune_unstructured(model, 0.9, scope="local", min_density=0.5)
    assert all(abs(row.sparsity - 0.5) < 1e-9 for row in __import__("course").layer_sparsity(pruned))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        prune_unstructured(model, 0.4, scope="local", min_density=0.5)              # reachable: silent


# ---------------------------------------------------------------- strings where a bool or a list is expected

def test_strings_where_a_bool_or_a_list_is_expected_are_type_errors(tmp_path):
    with pytest.raises(TypeError, match="download must be True or False"):
        data.load_dataset("mnist", root=tmp_path, download="False")
    with pytest.raises(TypeError, match="mirrors must be a list"):
        data.load_dataset("mnist", root=tmp_path, mirrors="http://127.0.0.1:9/")
    with pytest.raises(TypeError, match="mirrors must be a list"):
        download.fetch_dataset("mnist", tmp_path, mirrors="http://127.0.0.1:9/")


# ---------------------------------------------------------------- downloads: a deadline, no bombs

@pytest.fixture(autouse=True)
def _fresh_unreachable(monkeypatch):
    download.forget_unreachable()
    monkeypatch.delenv("COURSE_MIRROR", raising=False)


def test_a_download_that_trickles_past_the_deadline_is_stopped(http_server, tmp_path, monkeypatch):
    body = bytes(range(256)) * 40                                  # 10 kB at 2 kB/s: 5 s
    http_server.files["f.bin"] = body
    http_server.modes["f.bin"] = "slow"
    monkeypatch.setattr(download, "DEADLINE_S", 0.5)
    with pytest.raises(DataUnavailableError, match="deadline"):
        download.fetch_url(http_server.url + "f.bin", tmp_path / "f.bin",
                           (Checksum("md5", hashlib.md5(body).hexdigest()),), progress=False)
    assert list(tmp_path.iterdir()) == []


def test_a_gzip_bomb_is_refused_before_it_inflates(tmp_path, monkeypatch):
    monkeypatch.setattr(download, "MAX_INFLATED_BYTES", 1 << 20)
    bomb = gzip.compress(b"\x00" * (8 << 20))                      # 8 MB of zeros in about 8 kB
    inflated = []
    real = zlib.decompressobj
    monkeypatch.setattr(download.zlib, "decompressobj", lambda *a: inflated.append(1) or real(*a))
    with pytest.raises(ChecksumError, match="decompression bomb"):
        download.verify(tmp_path / "t.gz", bomb, (Checksum("md5", hashlib.md5(b"x").hexdigest(), "raw"),), fix="",
                        want_raw=True)
    assert inflated == []                                          # its declared size was enough to refuse it
    liar = bomb[:-4] + (100).to_bytes(4, "little")                 # a trailer that claims 100 bytes
    with pytest.raises(ChecksumError, match="decompression bomb"):
        download._gunzip(tmp_path / "t.gz", liar, fix="")


def test_a_tar_bomb_is_refused_member_by_member(tmp_path, monkeypatch):
    monkeypatch.setattr(download, "MAX_INFLATED_BYTES", 1 << 20)
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        info = tarfile.TarInfo("cifar-10-batches-py/data_batch_1")
        info.size = 4 << 20
        tar.addfile(info, io.BytesIO(b"\x00" * info.size))
    archive = tmp_path / "a.tar.gz"
    archive.write_bytes(buf.getvalue())
    with pytest.raises(ChecksumError, match="decompression bomb"):
        download.extract_members(archive, tmp_path / "out", {"cifar-10-batches-py/data_batch_1": ()})
    assert not (tmp_path / "out").exists()
