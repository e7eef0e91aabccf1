"""course.data.choice: choosing the dataset (real CIFAR-10 format fixture, real fallbacks), never inventing data."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from course import DatasetChoice, choose_dataset
from course.data import download
from course.data.download import Checksum, DataUnavailableError

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "cifar10"
CIFAR_TGZ = FIXTURES / "cifar-10-python.tar.gz"
needs_fashion = pytest.mark.skipif(not Path("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz").exists(),
                                   reason="needs Debian's dataset-fashion-mnist")


@pytest.fixture(autouse=True)
def _isolated(monkeypatch):
    download.forget_unreachable()
    monkeypatch.delenv("COURSE_MIRROR", raising=False)


@pytest.fixture
def cifar_sums() -> dict[str, tuple[Checksum, ...]]:
    record = json.loads((FIXTURES / "checksums.json").read_text())["files"]
    return {name: (Checksum("md5", h),) for name, h in record.items()}


# --- choose_dataset -----------------------------------------------------------------------------------------------

def test_cifar10_downloaded_from_a_mirror_is_used_without_a_banner_warning(http_server, tmp_path, cifar_sums):
    http_server.files["cifar-10-python.tar.gz"] = CIFAR_TGZ.read_bytes()
    choice = choose_dataset("cifar10", root=tmp_path, mirrors=[http_server.url], checksums=cifar_sums)
    assert (choice.name, choice.variant, choice.fallback, choice.reason) == ("cifar10", "full", False, "")
    assert "Running on CIFAR-10 (full, real)" in choice._repr_html_()
    again = choose_dataset("cifar10", root=tmp_path, download=False)     # now on disk: no second download
    assert again.name == "cifar10" and http_server.requests == ["cifar-10-python.tar.gz"]


def test_cifar10_archive_placed_by_hand_is_used_offline(tmp_path, cifar_sums):
    cache = tmp_path / "downloads" / "cifar10"
    cache.mkdir(parents=True)
    shutil.copy(CIFAR_TGZ, cache / CIFAR_TGZ.name)
    choice = choose_dataset("cifar10", root=tmp_path, download=False, checksums=cifar_sums)
    assert choice.name == "cifar10" and not choice.fallback


@needs_fashion
def test_offline_falls_back_to_full_fashion_mnist_and_says_why(tmp_path, dead_url):
    choice = choose_dataset("cifar10", root=tmp_path, mirrors=[dead_url])
    assert (choice.name, choice.variant, choice.fallback) == ("fashion-mnist", "full", True)
    assert "download failed" in choice.reason and "To get it" not in choice.reason and "\n" not in choice.reason
    text = choice.message()
    assert text.startswith("CIFAR-10 is not available on this machine: no copy on disk, and the download failed")
    assert "Running the same recipe on Fashion-MNIST (full, real) instead" in text and "make data" in text
    page = choice._repr_html_()
    assert "⚠ CIFAR-10 is not available" in page and "<code>make data</code>" in page
    assert repr(choice).startswith("⚠ CIFAR-10 is not available")


@needs_fashion
def test_a_full_fallback_wins_over_a_subset_listed_first(tmp_path):
    choice = choose_dataset("cifar10", ("mnist", "fashion-mnist"), root=tmp_path, download=False)
    assert choice.name == "fashion-mnist" and "download=False" in choice.reason


def test_the_shipped_mnist_subset_is_the_last_resort(tmp_path):
    choice = choose_dataset("cifar10", ("mnist",), root=tmp_path, download=False)
    assert (choice.name, choice.variant) == ("mnist", "10k-subset")
    assert "MNIST (10k-subset, real)" in choice.message()


def test_no_real_fallback_raises_instead_of_inventing_data(tmp_path):
    with pytest.raises(DataUnavailableError, match="no fallback"):
        choose_dataset("cifar10", (), root=tmp_path, download=False)


def test_unknown_dataset_names_are_rejected_with_the_choices():
    with pytest.raises(ValueError, match=r"choose one of \['mnist', 'fashion-mnist', 'cifar10'\]"):
        choose_dataset("cifar100")
    with pytest.raises(ValueError, match="'svhn'"):
        choose_dataset("cifar10", ("svhn",))


def test_dataset_choice_of_the_wanted_dataset_is_not_a_fallback():
    choice = DatasetChoice("cifar10", "cifar10", "full")
    assert not choice.fallback and "Using CIFAR-10 (full, real)" in choice.message()
