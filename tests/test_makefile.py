"""The Makefile's install options, as `make -n` prints them, and the CPU-torch line run by pip against a local index.

PyTorch's CPU index is not reachable from every test machine, so the pip line runs against a stand-in index on
disk (PEP 503 layout, one tiny wheel named like the CPU build), with `--dry-run` and no pip configuration: it shows that the line
resolves torch from that index alone, within the version range of pyproject.toml.
"""
from __future__ import annotations

import base64
import hashlib
import json
import os
import shlex
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")


def make_n(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    """`make -n install` for a venv that does not exist yet, so make prints every set-up step."""
    return subprocess.run(["make", "-n", "install", f"VENV={tmp_path / 'venv'}", *args], cwd=ROOT,
                          capture_output=True, text=True)


def pip_lines(out: str) -> list[str]:
    return [line for line in out.splitlines() if "-m pip install" in line]


def test_default_install_takes_torch_from_pypi_like_everything_else(tmp_path):
    lines = pip_lines(make_n(tmp_path).stdout)
    assert len(lines) == 2 and "--index-url" not in " ".join(lines)
    assert lines[-1].endswith("install --quiet -e '.[test]'")


def test_torch_cpu_installs_torch_from_the_cpu_index_first(tmp_path):
    lines = pip_lines(make_n(tmp_path, "TORCH=cpu").stdout)
    spec = next(d for d in tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
                if d.startswith("torch") and not d.startswith("torch-"))
    assert lines[1].endswith(f"install --quiet --index-url https://download.pytorch.org/whl/cpu '{spec}'")
    assert lines[2].endswith("install --quiet -e '.[test]'")        # then the rest, which keeps that torch


def test_an_unknown_torch_option_is_a_clear_error(tmp_path):
    proc = make_n(tmp_path, "TORCH=cuda")
    assert proc.returncode != 0 and 'TORCH must be empty (torch from PyPI) or cpu' in proc.stderr


def _stand_in_index(root: Path, version: str) -> Path:
    """A PEP 503 index with one wheel `torch-<version>-py3-none-any.whl` (metadata only, no code)."""
    name = f"torch-{version}-py3-none-any.whl"
    wheel = root / "files" / name
    wheel.parent.mkdir(parents=True)
    info = f"torch-{version}.dist-info"
    files = {f"{info}/METADATA": f"Metadata-Version: 2.1\nName: torch\nVersion: {version}\n",
             f"{info}/WHEEL": "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n"}
    record = [f"{p},sha256={base64.urlsafe_b64encode(hashlib.sha256(t.encode()).digest()).rstrip(b'=').decode()},"
              f"{len(t.encode())}" for p, t in files.items()] + [f"{info}/RECORD,,"]
    with zipfile.ZipFile(wheel, "w") as z:
        for p, t in files.items():
            z.writestr(p, t)
        z.writestr(f"{info}/RECORD", "\n".join(record) + "\n")
    page = root / "simple" / "torch" / "index.html"
    page.parent.mkdir(parents=True)
    page.write_text(f'<html><body><a href="../../files/{name}">{name}</a></body></html>\n')
    return root / "simple"


def test_the_cpu_line_resolves_torch_from_the_given_index_alone(tmp_path):
    index = _stand_in_index(tmp_path / "index", "2.13.0+cpu")
    line = pip_lines(make_n(tmp_path, "TORCH=cpu", f"TORCH_CPU_INDEX={index.as_uri()}").stdout)[1]
    args = shlex.split(line)[1:]                                   # drop the venv's python: ours runs pip
    report = tmp_path / "report.json"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_")} | {"PIP_CONFIG_FILE": os.devnull}
    proc = subprocess.run([sys.executable, *args, "--dry-run", "--ignore-installed", "--no-cache-dir",
                           "--report", str(report)], capture_output=True, text=True, timeout=120, env=env)
    assert proc.returncode == 0, proc.stderr[-2000:]
    picked = [(i["metadata"]["name"], i["metadata"]["version"], i["download_info"]["url"])
              for i in json.loads(report.read_text())["install"]]
    assert picked == [("torch", "2.13.0+cpu", (tmp_path / "index" / "files" / "torch-2.13.0+cpu-py3-none-any.whl").as_uri())]
