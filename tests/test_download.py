"""Download machinery against a local HTTP server: good, corrupt and truncated files; mirrors; safe extraction."""
from __future__ import annotations

import hashlib
import io
import json
import tarfile
from pathlib import Path

import numpy as np
import pytest
import torch

from course import data
from course.data import download
from course.data.download import Checksum, ChecksumError, DataUnavailableError
from course.data.formats import encode_idx
from course.files import gzip_bytes

FIXTURES = Path(__file__).parent / "fixtures"
CIFAR_TGZ = FIXTURES / "cifar10" / "cifar-10-python.tar.gz"


@pytest.fixture(autouse=True)
def _fresh_unreachable(monkeypatch):
    """Each test starts with no host remembered as unreachable, and without $COURSE_MIRROR."""
    download.forget_unreachable()
    monkeypatch.delenv("COURSE_MIRROR", raising=False)


def _leftovers(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.is_file()] if folder.exists() else []


@pytest.fixture(scope="module")
def mnist_mini() -> tuple[dict[str, bytes], dict[str, tuple[Checksum, ...]]]:
    """Four small .gz IDX files cut from the shipped real MNIST subset, and md5 checksums for them."""
    train = data.load_dataset("mnist", "train", download=False)
    test = data.load_dataset("mnist", "test", download=False)
    arrays = {
        "train-images-idx3-ubyte.gz": train.images[:60, 0].numpy(),
        "train-labels-idx1-ubyte.gz": train.labels[:60].numpy().astype(np.uint8),
        "t10k-images-idx3-ubyte.gz": test.images[:30, 0].numpy(),
        "t10k-labels-idx1-ubyte.gz": test.labels[:30].numpy().astype(np.uint8),
    }
    files = {name: gzip_bytes(encode_idx(a)) for name, a in arrays.items()}
    sums = {name: (Checksum("md5", hashlib.md5(b).hexdigest()), Checksum("sha256", hashlib.sha256(encode_idx(arrays[name])).hexdigest(), "raw"))
            for name, b in files.items()}
    return files, sums


@pytest.fixture(scope="module")
def cifar_sums() -> dict[str, tuple[Checksum, ...]]:
    record = json.loads((FIXTURES / "cifar10" / "checksums.json").read_text())["files"]
    return {name: (Checksum("md5", md5),) for name, md5 in record.items()}


def test_fetch_url_good_file_is_verified_and_renamed_into_place(http_server, tmp_path):
    body = b"real bytes " * 1000
    http_server.files["f.bin"] = body
    dest = tmp_path / "sub" / "f.bin"
    out = download.fetch_url(http_server.url + "f.bin", dest, (Checksum("sha256", hashlib.sha256(body).hexdigest()),), progress=False)
    assert out == dest and dest.read_bytes() == body
    assert _leftovers(tmp_path) == [dest]  # no .part file left behind


def test_fetch_url_checksum_mismatch_leaves_nothing(http_server, tmp_path):
    http_server.files["f.bin"] = b"tampered"
    dest = tmp_path / "f.bin"
    with pytest.raises(ChecksumError, match="checksum mismatch"):
        download.fetch_url(http_server.url + "f.bin", dest, (Checksum("md5", hashlib.md5(b"original").hexdigest()),), progress=False)
    assert _leftovers(tmp_path) == []


def test_fetch_url_truncated_body_leaves_nothing(http_server, tmp_path):
    body = bytes(range(256)) * 400
    http_server.files["f.bin"] = body
    http_server.modes["f.bin"] = "truncate"
    with pytest.raises(DataUnavailableError, match=r"truncated download: got 51200 of 102400 bytes"):
        download.fetch_url(http_server.url + "f.bin", tmp_path / "f.bin", (Checksum("md5", hashlib.md5(body).hexdigest()),), progress=False)
    assert _leftovers(tmp_path) == []


def test_existing_file_is_not_replaced_by_a_bad_download(http_server, tmp_path):
    dest = tmp_path / "f.bin"
    dest.write_bytes(b"old good copy")
    http_server.files["f.bin"] = b"bad"
    with pytest.raises(ChecksumError):
        download.fetch_url(http_server.url + "f.bin", dest, (Checksum("md5", "0" * 32),), progress=False)
    assert dest.read_bytes() == b"old good copy" and _leftovers(tmp_path) == [dest]


def test_mnist_download_loads_and_is_cached(http_server, tmp_path, mnist_mini):
    files, sums = mnist_mini
    http_server.files.update(files)
    ds = data.load_dataset("mnist", "train", root=tmp_path, mirrors=[http_server.url], checksums=sums)
    assert (ds.info.source, ds.info.variant, ds.info.title) == ("download", "full", "MNIST")
    assert ds.images.shape == (60, 1, 28, 28) and ds.images.dtype == torch.uint8 and ds.labels.dtype == torch.int64
    expected = data.load_dataset("mnist", "train", download=False)
    assert torch.equal(ds.images, expected.images[:60]) and torch.equal(ds.labels, expected.labels[:60])
    assert sorted(p.name for p in _leftovers(tmp_path)) == sorted(files)  # all four, nothing else
    asked = len(http_server.requests)
    again = data.load_dataset("mnist", "test", root=tmp_path, mirrors=[http_server.url], checksums=sums)
    assert again.info.source == "cache" and len(again) == 30 and len(http_server.requests) == asked


def test_second_mirror_is_used_when_the_first_is_down(http_server, dead_url, tmp_path, mnist_mini):
    files, sums = mnist_mini
    http_server.files.update(files)
    ds = data.load_dataset("mnist", "test", root=tmp_path, mirrors=[dead_url, http_server.url], checksums=sums)
    assert ds.info.source == "download" and len(ds) == 30
    assert len(download.UNREACHABLE) == 1  # the dead host was remembered, and skipped for the next three files


def test_course_mirror_env_var_replaces_the_official_mirrors(http_server, tmp_path, mnist_mini, monkeypatch):
    files, sums = mnist_mini
    http_server.files.update(files)
    monkeypatch.setenv("COURSE_MIRROR", http_server.url)
    assert download.mirrors_for("mnist") == (http_server.url,)
    ds = data.load_dataset("mnist", root=tmp_path, checksums=sums)
    assert ds.info.source == "download" and http_server.requests[0] == "train-images-idx3-ubyte.gz"


def test_corrupt_mnist_download_falls_back_to_shipped_subset_and_leaves_nothing(http_server, tmp_path, mnist_mini):
    files, sums = mnist_mini
    http_server.files.update(files)
    http_server.files["t10k-images-idx3-ubyte.gz"] = gzip_bytes(b"\x00\x00\x08\x03 not MNIST")
    ds = data.load_dataset("mnist", "test", root=tmp_path, mirrors=[http_server.url], checksums=sums)
    assert (ds.info.source, ds.info.variant) == ("shipped", "10k-subset") and "download failed" in ds.info.note
    cache = tmp_path / "downloads" / "mnist"
    assert "t10k-images-idx3-ubyte.gz" not in {p.name for p in _leftovers(cache)}
    assert not [p for p in _leftovers(cache) if p.suffix == ".part"]


def test_cifar10_download_unpacks_the_real_batch_format(http_server, tmp_path, cifar_sums):
    http_server.files["cifar-10-python.tar.gz"] = CIFAR_TGZ.read_bytes()
    train = data.load_dataset("cifar10", "train", root=tmp_path, mirrors=[http_server.url], checksums=cifar_sums)
    test = data.load_dataset("cifar10", "test", root=tmp_path, mirrors=[http_server.url], checksums=cifar_sums)
    assert (train.info.source, test.info.source) == ("download", "cache")
    assert train.images.shape == (20, 3, 32, 32) and test.images.shape == (20, 3, 32, 32)
    assert test.labels.tolist() == [3, 8, 8, 0, 6, 6, 1, 6, 3, 1, 0, 9, 5, 7, 9, 8, 5, 7, 8, 6]  # CIFAR-10 test 0..19
    assert torch.equal(train.images, test.images) and test.classes[3] == "cat"
    cache = tmp_path / "downloads" / "cifar10"
    assert not (cache / "cifar-10-python.tar.gz").exists()  # archive removed once its batches were verified
    assert sorted(p.name for p in _leftovers(cache)) == sorted(["data_batch_1", "data_batch_2", "data_batch_3",
                                                                "data_batch_4", "data_batch_5", "test_batch"])


def test_cifar10_archive_placed_by_hand_is_unpacked_offline(tmp_path, cifar_sums):
    cache = tmp_path / "downloads" / "cifar10"
    cache.mkdir(parents=True)
    (cache / "cifar-10-python.tar.gz").write_bytes(CIFAR_TGZ.read_bytes())
    ds = data.load_dataset("cifar10", "test", root=tmp_path, download=False, checksums=cifar_sums)
    assert ds.info.source == "cache" and len(ds) == 20


@pytest.mark.parametrize("mode", ["corrupt", "truncate"])
def test_bad_cifar10_download_raises_and_leaves_nothing(http_server, tmp_path, cifar_sums, mode):
    body = CIFAR_TGZ.read_bytes()
    if mode == "corrupt":
        body = body[:1000] + bytes([body[1000] ^ 0xFF]) + body[1001:]
    http_server.files["cifar-10-python.tar.gz"] = body
    http_server.modes["cifar-10-python.tar.gz"] = "ok" if mode == "corrupt" else "truncate"
    with pytest.raises(DataUnavailableError) as err:
        data.load_dataset("cifar10", root=tmp_path, mirrors=[http_server.url], checksums=cifar_sums)
    assert ("checksum mismatch" if mode == "corrupt" else "truncated download") in str(err.value)
    assert "make data" in str(err.value)
    assert _leftovers(tmp_path) == []


def test_extract_members_refuses_unsafe_paths_and_links(tmp_path):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        link = tarfile.TarInfo("cifar-10-batches-py/test_batch")
        link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
        tar.addfile(link)
    archive = tmp_path / "a.tar"
    archive.write_bytes(buf.getvalue())
    with pytest.raises(ValueError, match="unsafe archive path"):
        download.extract_members(archive, tmp_path / "out", {"../evil": ()})
    with pytest.raises(DataUnavailableError, match="not a regular file"):
        download.extract_members(archive, tmp_path / "out", {"cifar-10-batches-py/test_batch": ()})
    assert not (tmp_path / "out").exists()


def test_checksum_rejects_unknown_algorithms():
    with pytest.raises(ValueError, match=r"Checksum.algo 'crc32'; choose one of \['md5', 'sha256'\]"):
        Checksum("crc32", "0")
    with pytest.raises(ValueError, match=r"Checksum.of 'gz'; choose one of \['file', 'raw'\]"):
        Checksum("md5", "0", of="gz")


def test_published_checksum_tables_are_complete():
    for name in data.DATASET_NAMES:
        for split in data.SPLITS:
            for rel in download.FILES[name][split]:
                assert download.CHECKSUMS[name][rel], f"{name}/{rel} has no checksum"
    assert download.CHECKSUMS["cifar10"]["cifar-10-python.tar.gz"][0].hexdigest == "c58f30108f718f92721af3b95e74349a"
    assert all(c.of == "raw" and c.algo == "sha256" for cs in download.CHECKSUMS["fashion-mnist"].values() for c in cs)
