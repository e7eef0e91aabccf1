"""Where files live: shipped files in the package, everything written in DATA_DIR, commands that work where the user
is, and COURSE_BARE=1 (a fresh offline laptop: only what the package ships)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from course import checkpoints, config
from course.data import DataUnavailableError, choose_dataset, download, load_dataset, loading, locate

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def _isolated(monkeypatch):
    download.forget_unreachable()
    monkeypatch.delenv("COURSE_MIRROR", raising=False)
    monkeypatch.delenv("COURSE_BARE", raising=False)


def _fake_full_copy(folder: Path, name: str) -> Path:
    """Empty files under the right names: enough for `locate`, which checks presence, not content."""
    folder.mkdir(parents=True, exist_ok=True)
    for split in ("train", "test"):
        for f in download.FILES[name][split]:
            (folder / f).parent.mkdir(parents=True, exist_ok=True)
            (folder / f).write_bytes(b"")
    return folder


def _config_in_subprocess(env: dict[str, str]) -> dict:
    code = ("import json; from course import config; print(json.dumps({k: str(getattr(config, k)) for k in "
            "('DATA_DIR', 'CHECKPOINT_DIR', 'LOCAL_CHECKPOINT_DIR', 'SHIPPED_DIR', 'IN_CHECKOUT')}))")
    base = {k: v for k, v in os.environ.items() if not k.startswith("COURSE_")}
    out = subprocess.run([sys.executable, "-c", code], env=base | env, cwd=ROOT, capture_output=True, text=True,
                         check=True)
    return json.loads(out.stdout)


def test_shipped_files_are_package_data_and_written_files_go_to_data_dir():
    paths = _config_in_subprocess({})
    assert paths["IN_CHECKOUT"] == "True"
    assert paths["SHIPPED_DIR"] == str(ROOT / "course" / "shipped")
    assert paths["CHECKPOINT_DIR"] == str(ROOT / "course" / "shipped" / "checkpoints")
    assert paths["DATA_DIR"] == str(ROOT / "data")
    assert paths["LOCAL_CHECKPOINT_DIR"] == str(ROOT / "data" / "checkpoints" / "local")
    assert (ROOT / "course" / "shipped" / "checkpoints" / "manifest.json").is_file()
    assert (ROOT / "course" / "shipped" / "mnist10k" / "checksums.json").is_file()


def test_course_data_dir_moves_downloads_and_trained_checkpoints_together(tmp_path):
    paths = _config_in_subprocess({"COURSE_DATA_DIR": str(tmp_path)})
    assert paths["DATA_DIR"] == str(tmp_path)
    assert paths["LOCAL_CHECKPOINT_DIR"] == str(tmp_path / "checkpoints" / "local")
    assert paths["CHECKPOINT_DIR"] == str(ROOT / "course" / "shipped" / "checkpoints")   # shipped ones stay put


def test_commands_are_make_in_a_checkout_and_the_cli_outside(monkeypatch, tmp_path):
    assert config.command("download") == "`make data`" and config.command("prepare") == "`make data-offline`"
    monkeypatch.setattr(config, "IN_CHECKOUT", False)
    assert config.command("download") == "`python -m course.data download`"
    with pytest.raises(DataUnavailableError) as err:
        load_dataset("cifar10", root=tmp_path, download=False)
    assert "run `python -m course.data download`;" in str(err.value) and "make data" not in str(err.value)
    assert "repository root" not in str(err.value)


def test_shipping_baselines_outside_a_checkout_is_refused(monkeypatch):
    monkeypatch.setattr(config, "IN_CHECKOUT", False)
    with pytest.raises(ValueError, match="run it in a git checkout"):
        checkpoints.train_and_save("lenet300", "mnist", shipped=True)


def test_default_checkpoint_folders_are_the_shipped_then_the_local_one(monkeypatch, tmp_path):
    monkeypatch.setattr(config, "LOCAL_CHECKPOINT_DIR", tmp_path / "local")
    key = next(iter(checkpoints.read_manifest(config.CHECKPOINT_DIR)))
    path, entry, source = checkpoints.find_checkpoint(key)
    assert source == "shipped" and path.parent == config.CHECKPOINT_DIR
    assert checkpoints.find_checkpoint("lenet300_mnist_nowhere_0000000000") is None


def test_bare_hides_os_packages_and_the_cache(monkeypatch, tmp_path):
    os_copy = _fake_full_copy(tmp_path / "os", "fashion-mnist")
    _fake_full_copy(tmp_path / "downloads" / "mnist", "mnist")
    monkeypatch.setattr(loading, "OS_DIRS", {"fashion-mnist": (os_copy,)})
    assert locate("fashion-mnist", root=tmp_path).source == "os-package"
    assert locate("mnist", root=tmp_path).source == "cache"
    monkeypatch.setenv("COURSE_BARE", "1")
    assert locate("fashion-mnist", root=tmp_path) is None
    assert locate("mnist", root=tmp_path).source == "shipped"


def test_bare_never_downloads_and_says_why(monkeypatch, tmp_path):
    monkeypatch.setenv("COURSE_BARE", "1")
    monkeypatch.setattr(loading, "fetch_dataset", lambda *a, **k: pytest.fail("COURSE_BARE=1 must not download"))
    with pytest.raises(DataUnavailableError, match="COURSE_BARE=1 hides every copy but the shipped ones"):
        load_dataset("cifar10", root=tmp_path)
    test = load_dataset("mnist", "test", root=tmp_path)
    assert test.info.source == "shipped" and "COURSE_BARE=1 is set" in test.info.note


def test_bare_notebooks_fall_back_to_the_shipped_subset_with_a_banner(monkeypatch):
    monkeypatch.setenv("COURSE_BARE", "1")
    choice = choose_dataset("fashion-mnist", fallbacks=("mnist",), download=False)
    assert (choice.name, choice.variant, choice.fallback) == ("mnist", "10k-subset", True)
    text = choice.message()
    assert text.startswith("Fashion-MNIST is not available on this machine: COURSE_BARE=1")
    assert "`make data`" in text and "sudo apt install dataset-fashion-mnist" in text
