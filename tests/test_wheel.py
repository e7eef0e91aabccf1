"""The wheel works outside a checkout: it carries MNIST-10k and the baselines, and never writes into itself.

Builds the wheel from a copy of the checkout's package files (`pip wheel --no-deps --no-build-isolation`, offline;
building in the checkout would reuse a stale build/ folder), installs it with `--no-deps --no-index` into a fresh
venv that sees this environment's packages through a .pth file (torch and numpy are not copied), and then, from an
empty directory with HOME and the cache in tmp_path: loads MNIST-10k, loads a shipped baseline and measures its
accuracy against the manifest, asks for a dataset that is not there, and compares a snapshot of the installed
package before and after.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import sysconfig
import textwrap
import venv
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.slow

#: What a build reads: the metadata, the readme and licences, and the package (with its data).
BUILD_INPUTS = ("pyproject.toml", "README.md", "LICENSE", "course")

SCRIPT = textwrap.dedent("""
    import json
    import course
    from course import config, evaluate, make_loaders, train_or_load
    from course.data import DataUnavailableError, load_dataset

    out = {"course": course.__file__, "in_checkout": config.IN_CHECKOUT, "data_dir": str(config.DATA_DIR),
           "local": str(config.LOCAL_CHECKPOINT_DIR), "shipped": str(config.SHIPPED_DIR)}
    test = load_dataset("mnist", "test", download=False)
    out["mnist"] = [test.info.source, test.info.variant, len(test)]
    model, info = train_or_load("lenet300", "mnist", progress=False)
    _, loader = make_loaders("mnist", download=False)
    out["baseline"] = [info["source"], info["key"], info["test_accuracy"], round(evaluate(model, loader), 4)]
    try:
        load_dataset("cifar10", "test")             # COURSE_MIRROR points at a closed port: the download fails
    except DataUnavailableError as err:
        out["error"] = str(err)
    print(json.dumps(out))
""")


def snapshot(folder: Path) -> dict[str, str]:
    """relative path -> sha256 of every file under `folder`."""
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    src = tmp_path_factory.mktemp("src")
    for name in BUILD_INPUTS:
        copy = shutil.copytree if (ROOT / name).is_dir() else shutil.copy2
        kwargs = {"ignore": shutil.ignore_patterns("__pycache__", "*.pyc")} if (ROOT / name).is_dir() else {}
        copy(ROOT / name, src / name, **kwargs)
    dist = tmp_path_factory.mktemp("dist")
    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--quiet",
                           "--wheel-dir", str(dist), str(src)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    (whl,) = dist.glob("pruning_course-*.whl")
    return whl


def test_the_wheel_carries_the_data_the_course_needs_and_nothing_else(wheel):
    archive = zipfile.ZipFile(wheel)
    names = set(archive.namelist())
    manifest = json.loads(archive.read("course/shipped/checkpoints/manifest.json"))
    assert manifest["checkpoints"]
    for entry in manifest["checkpoints"].values():
        assert f"course/shipped/checkpoints/{entry['file']}" in names
    for f in json.loads((ROOT / "course/shipped/mnist10k/checksums.json").read_text())["files"]:
        assert f"course/shipped/mnist10k/{f}" in names
    assert {n.rsplit("/", 1)[1] for n in names if "/licenses/" in n} == {"LICENSE", "DATA-LICENSE.md"}
    assert not [n for n in names if n.startswith(("data/", "notebooks/", "tests/", "scripts/", "benchmarks/"))]
    modules = {p.relative_to(ROOT).as_posix() for p in (ROOT / "course").rglob("*.py")}
    assert modules <= names, f"modules missing from the wheel: {sorted(modules - names)}"
    metadata = archive.read(next(n for n in names if n.endswith(".dist-info/METADATA"))).decode()
    assert "License-Expression: MIT AND CC-BY-SA-3.0" in metadata
    assert "Requires-Dist: platformdirs" in metadata
    assert wheel.stat().st_size < 8_000_000


def test_installed_wheel_loads_data_and_a_baseline_without_writing_into_itself(wheel, tmp_path, dead_url):
    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=False).create(env_dir)
    python = env_dir / "bin" / "python"
    site = Path(subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
                               check=True, capture_output=True, text=True).stdout.strip())
    # this environment's packages (torch, numpy, ...) come after the venv's own: .pth lines are appended to sys.path
    (site / "zz_parent_env.pth").write_text(sysconfig.get_path("purelib") + "\n")
    proc = subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "--no-index",
                           "--quiet", str(wheel)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    before = snapshot(site)

    work = tmp_path / "elsewhere"
    work.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("COURSE_", "PYTHON", "XDG_"))}
    env |= {"HOME": str(tmp_path / "home"), "XDG_CACHE_HOME": str(tmp_path / "cache"), "COURSE_MIRROR": dead_url,
            "PYTHONDONTWRITEBYTECODE": "1"}
    proc = subprocess.run([python, "-c", SCRIPT], cwd=work, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])

    assert Path(out["course"]).parent == site / "course" and out["in_checkout"] is False
    assert out["shipped"] == str(site / "course" / "shipped")
    assert out["data_dir"] == str(tmp_path / "cache" / "pruning-course")            # the platform's user cache
    assert out["local"] == str(tmp_path / "cache" / "pruning-course" / "checkpoints" / "local")
    assert out["mnist"] == ["shipped", "10k-subset", 2000]
    source, key, recorded, measured = out["baseline"]
    assert source == "shipped" and key.startswith("lenet300_mnist_10k-subset_") and measured == recorded
    assert "run `python -m course.data download`" in out["error"] and "make data" not in out["error"]
    assert snapshot(site) == before                                   # nothing written into site-packages
    assert not any(work.iterdir())                                    # nor into the working directory
