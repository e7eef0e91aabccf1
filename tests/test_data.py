"""course.data: parsers, the resolution order, verification errors, loaders and the CLI (all on real data)."""
from __future__ import annotations

import gzip
import hashlib
import pickle
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from course import config, data
from course.data import cli as data_cli
from course.data import download, loading
from course.data.download import Checksum, ChecksumError, DataUnavailableError
from course.data.formats import FormatError, encode_cifar_batch, encode_idx, parse_cifar_batch, parse_idx
from course.files import gzip_bytes

ROOT = Path(__file__).resolve().parents[1]
FASHION_OS = Path("/usr/share/datasets/fashion-mnist")
needs_fashion = pytest.mark.skipif(not (FASHION_OS / "train-images-idx3-ubyte.gz").exists(),
                                   reason="needs Debian's dataset-fashion-mnist (apt-get install dataset-fashion-mnist)")
MNIST10K_COUNTS = [1001, 1127, 991, 1032, 980, 863, 1014, 1070, 944, 978]


@pytest.fixture(autouse=True)
def _isolated(monkeypatch):
    download.forget_unreachable()
    monkeypatch.delenv("COURSE_MIRROR", raising=False)


@pytest.fixture
def offline(dead_url, monkeypatch):
    """Point every dataset's mirrors at a closed port on 127.0.0.1 (COURSE_MIRROR), like a machine without internet."""
    monkeypatch.setenv("COURSE_MIRROR", dead_url)


# --- IDX and CIFAR parsers ------------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", [np.uint8, np.int8, np.int16, np.int32, np.float32, np.float64])
def test_idx_round_trip(dtype):
    array = (np.arange(2 * 3 * 4) - 7).astype(dtype).reshape(2, 3, 4)
    raw = encode_idx(array)
    assert raw[:4] == bytes([0, 0, {np.uint8: 8, np.int8: 9, np.int16: 11, np.int32: 12, np.float32: 13, np.float64: 14}[dtype], 3])
    back = parse_idx(raw)
    assert back.dtype == np.dtype(dtype) and back.shape == (2, 3, 4) and np.array_equal(back, array)


def test_idx_header_matches_the_official_layout():
    raw = encode_idx(np.zeros((2, 28, 28), dtype=np.uint8))
    assert raw[:16] == bytes.fromhex("00000803" "00000002" "0000001c" "0000001c")  # magic 2051, n, rows, cols
    assert len(raw) == 16 + 2 * 784


@pytest.mark.parametrize("raw, message", [
    (b"\x00\x00", "too short"),
    (b"\x12\x34\x08\x01\x00\x00\x00\x01\x00", "bad IDX magic number 12340801"),
    (b"\x00\x00\x07\x01\x00\x00\x00\x01\x00", "bad IDX magic number"),
    (b"\x00\x00\x08\x03\x00\x00\x00\x02", "truncated IDX header"),
    (encode_idx(np.zeros((3, 4, 4), np.uint8))[:-5], r"promises shape \(3, 4, 4\) \(48 data bytes\) but the file holds 43"),
    (encode_idx(np.zeros((3,), np.uint8)) + b"\x00", "holds 4 data bytes"),
])
def test_idx_rejects_bad_files(raw, message):
    with pytest.raises(FormatError, match=message):
        parse_idx(raw, name="x.idx")


def test_encode_idx_rejects_unsupported_dtypes():
    with pytest.raises(TypeError, match="IDX cannot store dtype bool"):
        encode_idx(np.zeros(3, dtype=bool))


def test_cifar_batch_round_trip_and_layout():
    images = np.arange(2 * 3072, dtype=np.int64).reshape(2, 3, 32, 32).astype(np.uint8)
    out, labels = parse_cifar_batch(encode_cifar_batch(images, [7, 2]))
    assert np.array_equal(out, images) and labels.tolist() == [7, 2] and labels.dtype == np.int64
    entry = pickle.loads(encode_cifar_batch(images, [7, 2]), encoding="bytes")
    assert entry[b"data"].shape == (2, 3072) and entry[b"data"][0, 1024] == images[0, 1, 0, 0]  # R plane, then G


def test_cifar_parser_refuses_code_and_bad_batches():
    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))
    with pytest.raises(FormatError, match="refusing to load builtins.print"):
        parse_cifar_batch(pickle.dumps({b"data": Evil()}))
    with pytest.raises(FormatError, match="needs keys 'data' and 'labels'"):
        parse_cifar_batch(pickle.dumps({b"data": np.zeros((1, 3072), np.uint8)}))
    with pytest.raises(FormatError, match=r"uint8 \(N, 3072\)"):
        parse_cifar_batch(pickle.dumps({b"data": np.zeros((1, 100), np.uint8), b"labels": [0]}))
    with pytest.raises(FormatError, match="labels outside"):
        parse_cifar_batch(pickle.dumps({b"data": np.zeros((1, 3072), np.uint8), b"labels": [10]}))


# --- names, splits, shapes ------------------------------------------------------------------------------------

def test_unknown_name_and_split_raise_value_errors_listing_choices():
    with pytest.raises(ValueError, match=r"unknown dataset 'mnsit'; choose one of \['mnist', 'fashion-mnist', 'cifar10'\]"):
        data.load_dataset("mnsit")
    with pytest.raises(ValueError, match=r"unknown split 'val'; choose one of \['train', 'test'\]"):
        data.load_dataset("mnist", "val")
    with pytest.raises(ValueError, match="choose one of"):
        data.make_loaders("cifar100")


def test_input_shape_and_normalization_constants():
    assert data.input_shape("mnist") == (1, 28, 28) and data.input_shape("cifar10") == (3, 32, 32)
    mean, std = data.normalization("cifar10")
    assert len(mean) == len(std) == 3


# --- resolution order -----------------------------------------------------------------------------------------

def test_shipped_subset_is_the_verified_real_10k(tmp_path):
    train = data.load_dataset("mnist", "train", root=tmp_path, download=False)
    test = data.load_dataset("mnist", "test", root=tmp_path, download=False)
    assert (train.info.variant, train.info.source, train.info.title) == ("10k-subset", "shipped", "MNIST-10k (real subset)")
    assert (len(train), len(test)) == (8000, 2000) and train.images.shape[1:] == (1, 28, 28)
    counts = torch.bincount(torch.cat([train.labels, test.labels]), minlength=10).tolist()
    assert counts == MNIST10K_COUNTS
    assert torch.bincount(test.labels, minlength=10).tolist() == [round(c * 0.2) for c in MNIST10K_COUNTS]
    train_rows = {bytes(x.numpy()) for x in train.images}
    assert not any(bytes(x.numpy()) in train_rows for x in test.images)  # no image in both splits
    assert abs(train.images.float().mean().item() / 255 - 0.1307) < 0.002  # MNIST's pixel mean
    assert "download=False" in train.info.note and "CC BY-SA 3.0" in train.info.licence


def test_mnist_falls_back_to_the_shipped_subset_when_offline(tmp_path, offline):
    ds = data.load_dataset("mnist", root=tmp_path)
    assert (ds.info.source, ds.info.variant) == ("shipped", "10k-subset")
    assert "the download failed" in ds.info.note
    assert data.available("mnist", root=tmp_path)


@needs_fashion
def test_full_fashion_mnist_from_the_os_package(tmp_path):
    train = data.load_dataset("fashion-mnist", "train", root=tmp_path, download=False)
    assert (train.info.source, train.info.variant, train.info.num_images) == ("os-package", "full", 60000)
    assert train.images.shape == (60000, 1, 28, 28) and train.images.dtype == torch.uint8
    assert torch.bincount(train.labels).tolist() == [6000] * 10
    assert abs(train.images.float().mean().item() / 255 - 0.2860) < 1e-4
    assert train.info.folder == str(FASHION_OS) and "Zalando" in train.info.licence
    assert len(data.load_dataset("fashion-mnist", "test", root=tmp_path, download=False)) == 10000


@needs_fashion
def test_cache_wins_over_the_os_package(tmp_path):
    real = data.load_dataset("fashion-mnist", "test", root=tmp_path, download=False)
    cache = tmp_path / "downloads" / "fashion-mnist"
    cache.mkdir(parents=True)
    sums = {}
    for split, n in (("train", 50), ("test", 20)):
        imgs_name, labels_name = download.FILES["fashion-mnist"][split]
        for fname, array in ((imgs_name, real.images[:n, 0].numpy()), (labels_name, real.labels[:n].numpy().astype(np.uint8))):
            raw = encode_idx(array)
            (cache / fname).write_bytes(gzip_bytes(raw))
            sums[fname] = (Checksum("md5", hashlib.md5(raw).hexdigest(), "raw"),)
    ds = data.load_dataset("fashion-mnist", "test", root=tmp_path, download=False, checksums=sums)
    assert (ds.info.source, len(ds)) == ("cache", 20) and torch.equal(ds.images, real.images[:20])


def test_corrupt_cache_raises_instead_of_falling_back(tmp_path, offline):
    sub = data.load_dataset("mnist", "test", download=False)
    cache = tmp_path / "downloads" / "mnist"
    cache.mkdir(parents=True)
    for fname in download.FILES["mnist"]["train"] + download.FILES["mnist"]["test"]:
        array = sub.images[:10, 0].numpy() if "images" in fname else sub.labels[:10].numpy().astype(np.uint8)
        (cache / fname).write_bytes(gzip_bytes(encode_idx(array)))
    # Those files are not the official ones, so the official checksums reject them: loud, never a silent fallback.
    with pytest.raises(ChecksumError) as err:
        data.load_dataset("mnist", root=tmp_path)
    message = str(err.value)
    assert str(cache / "train-images-idx3-ubyte.gz") in message and "md5" in message
    assert "was not used" in message and "Delete it and run `make data`" in message


def test_corrupt_file_is_never_parsed(tmp_path, monkeypatch):
    shipped = tmp_path / "mnist10k"
    shutil.copytree(loading.SHIPPED_DIR, shipped)
    target = shipped / "t10k-labels-idx1-ubyte.gz"
    raw = bytearray(gzip.decompress(target.read_bytes()))
    raw[100] = (raw[100] + 1) % 10  # a valid label, wrong value: only the checksum can notice
    target.write_bytes(gzip_bytes(bytes(raw)))
    monkeypatch.setattr(loading, "SHIPPED_DIR", shipped)
    with monkeypatch.context() as patch, pytest.raises(ChecksumError) as err:
        patch.setattr(loading, "parse_idx", lambda *a, **k: pytest.fail("a file reached the parser"))
        data.load_dataset("mnist", "test", root=tmp_path, download=False)
    assert str(target) in str(err.value) and "git checkout -- course/shipped/mnist10k" in str(err.value)
    assert data_cli.prepare(root=tmp_path) == 1


def test_offline_without_any_copy_says_how_to_get_the_data(tmp_path, offline, monkeypatch):
    with pytest.raises(DataUnavailableError) as err:
        data.load_dataset("cifar10", root=tmp_path)
    message = str(err.value)
    assert message.startswith("CIFAR-10 is not available here: no copy on disk, and the download failed.")
    assert "cannot connect" in message and "`make data`" in message and "Traceback" not in message
    assert err.value.__context__ is None and err.value.__cause__ is None  # no urllib traceback attached
    monkeypatch.setattr(loading, "OS_DIRS", {})
    with pytest.raises(DataUnavailableError, match=r"apt-get install dataset-fashion-mnist"):
        data.load_dataset("fashion-mnist", root=tmp_path)
    with pytest.raises(DataUnavailableError, match="download=False"):
        data.load_dataset("cifar10", root=tmp_path, download=False)
    assert not data.available("cifar10", root=tmp_path)
    assert not [p for p in tmp_path.rglob("*") if p.is_file()]  # nothing half-written


def test_info_prints_what_was_used(tmp_path):
    info = data.load_dataset("mnist", "test", root=tmp_path, download=False).info
    text = str(info)
    assert text.startswith("MNIST-10k (real subset) · test split · 2,000 images · variant 10k-subset")
    assert "source: shipped" in text and "licence: CC BY-SA 3.0" in text and "cite: Y. LeCun" in text
    assert "variant='10k-subset'" in repr(info) and "source='shipped'" in repr(info)


# --- loaders --------------------------------------------------------------------------------------------------

def test_stratified_indices_keep_class_proportions():
    labels = np.repeat(np.arange(4), [10, 20, 30, 40])
    idx = data.stratified_indices(labels, 50, seed=1)
    assert len(idx) == len(np.unique(idx)) == 50 and np.all(np.diff(idx) > 0)
    assert np.bincount(labels[idx]).tolist() == [5, 10, 15, 20]
    assert np.array_equal(idx, data.stratified_indices(labels, 50, seed=1))
    assert not np.array_equal(idx, data.stratified_indices(labels, 50, seed=2))
    with pytest.raises(ValueError, match="between 1 and 100"):
        data.stratified_indices(labels, 101)


def test_make_loaders_normalises_and_repeats(tmp_path):
    train, test = data.make_loaders("mnist", batch_size=64, root=tmp_path, download=False, train_size=640, test_size=300)
    assert (len(train.dataset), len(test.dataset)) == (640, 300) and train.dataset.info.variant == "10k-subset"
    X, y = next(iter(train))
    assert X.shape == (64, 1, 28, 28) and X.dtype == torch.float32 and y.dtype == torch.int64
    raw = train.dataset.images[:64].float() / 255
    assert torch.allclose(train.dataset.tensors()[0][:64] * 0.3081 + 0.1307, raw, atol=1e-6)
    whole = torch.cat([x for x, _ in test])
    assert abs(whole.mean().item()) < 0.1 and abs(whole.std().item() - 1) < 0.1
    again, _ = data.make_loaders("mnist", batch_size=64, root=tmp_path, download=False, train_size=640, test_size=300)
    epoch1 = [b[1].tolist() for b in again]
    assert epoch1[0] == y.tolist()  # same seed, same first epoch
    assert [b[1].tolist() for b in again] != epoch1  # the next epoch is shuffled anew
    other, _ = data.make_loaders("mnist", batch_size=64, root=tmp_path, download=False, train_size=640, seed=1)
    assert next(iter(other))[1].tolist() != y.tolist()
    assert sum(len(b[1]) for b in test) == 300 and torch.bincount(test.dataset.labels).min() >= 25


def test_fast_mode_uses_stratified_subsets(tmp_path, monkeypatch):
    monkeypatch.setattr(config, "FAST", True)
    train, test = data.make_loaders("mnist", root=tmp_path, download=False)
    assert (len(train.dataset), len(test.dataset)) == (2000, 1000)
    halves = torch.bincount(data.load_dataset("mnist", "test", download=False).labels) / 2
    assert ((torch.bincount(test.dataset.labels) - halves).abs() <= 0.5).all()  # class shares kept
    monkeypatch.setattr(config, "FAST", False)
    train, _ = data.make_loaders("mnist", root=tmp_path, download=False)
    assert len(train.dataset) == 8000


def test_make_loaders_rejects_bad_sizes(tmp_path):
    with pytest.raises(ValueError, match="batch_size must be an int >= 1, got 0"):
        data.make_loaders("mnist", batch_size=0, download=False)
    with pytest.raises(ValueError, match="train_size must be an int between 1 and 8000"):
        data.make_loaders("mnist", root=tmp_path, download=False, train_size=9000)


def test_a_validation_split_comes_from_the_training_images_and_never_overlaps(tmp_path):
    train, val, test = data.make_loaders("mnist", root=tmp_path, download=False, val_size=800, test_size=300)
    assert (len(train.dataset), len(val.dataset), len(test.dataset)) == (7200, 800, 300)
    images = data.load_dataset("mnist", "train", download=False).images
    both = torch.cat([train.dataset.images, val.dataset.images])
    assert sorted(map(bytes, both.numpy())) == sorted(map(bytes, images.numpy()))    # a partition of train
    counts = torch.bincount(data.load_dataset("mnist", "train", download=False).labels) / 10
    assert ((torch.bincount(val.dataset.labels) - counts).abs() <= 1).all()          # stratified
    assert val.dataset.info.variant == "10k-subset" and not isinstance(val.sampler, torch.utils.data.RandomSampler)
    again = data.make_loaders("mnist", root=tmp_path, download=False, val_size=800, train_size=1000)
    assert torch.equal(again[1].dataset.labels, val.dataset.labels) and len(again[0].dataset) == 1000
    assert not set(map(bytes, again[0].dataset.images.numpy())) & set(map(bytes, val.dataset.images.numpy()))
    with pytest.raises(ValueError, match="val_size must be an int between 1 and 7999"):
        data.make_loaders("mnist", root=tmp_path, download=False, val_size=8000)
    with pytest.raises(ValueError, match="train_size must be an int between 1 and 7200"):
        data.make_loaders("mnist", root=tmp_path, download=False, val_size=800, train_size=7201)


def test_held_out_batch_is_stratified_and_seeded(tmp_path):
    X, y = data.held_out_batch("mnist", 500, root=tmp_path, download=False)
    assert X.shape == (500, 1, 28, 28) and X.dtype == torch.float32 and y.dtype == torch.int64
    assert torch.bincount(y, minlength=10).tolist() == [50, 56, 50, 52, 49, 43, 51, 53, 47, 49]
    X2, y2 = data.held_out_batch("mnist", 500, root=tmp_path, download=False)
    assert torch.equal(X, X2) and torch.equal(y, y2)
    with pytest.raises(ValueError, match="between 1 and 2000"):
        data.held_out_batch("mnist", 5000, download=False)


# --- command line ---------------------------------------------------------------------------------------------

def test_prepare_cli_reports_sources_and_exits_zero_without_cifar(tmp_path):
    out = subprocess.run([sys.executable, "-m", "course.data", "--root", str(tmp_path), "prepare"],
                         cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "ok       MNIST-10k (real subset): 8,000 train + 2,000 test images, checksums verified" in out.stdout
    assert "10k-subset MNIST-10k (real subset)" in out.stdout and "absent     CIFAR-10" in out.stdout


def test_download_cli_fails_cleanly_offline(tmp_path, dead_url, capsys, monkeypatch):
    monkeypatch.setenv("COURSE_MIRROR", dead_url)
    assert data_cli.main(["--root", str(tmp_path), "download", "cifar10", "mnist"]) == 1
    text = capsys.readouterr().out
    assert "FAILED   CIFAR-10: could not download cifar-10-python.tar.gz" in text
    assert "FAILED   MNIST:" in text and "Traceback" not in text and "2 of 2 datasets" in text
    with pytest.raises(SystemExit):
        data_cli.main(["download", "cifar100"])
