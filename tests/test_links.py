"""Badges and the Colab cell come from pyproject's [project.urls] Repository; the cell is a no-op off Colab.

Every notebook, every learner copy and the README are held to what scripts/links.py generates from the URL.
"""
from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
import sys
import types
from pathlib import Path

import pytest

from scripts import links

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))


def run_cell(monkeypatch, *, colab: bool, installed: bool) -> list[list[str]]:
    """Execute the Colab cell with subprocess.run recorded (nothing is cloned); return the commands it ran."""
    calls = []
    monkeypatch.setattr(subprocess, "run", lambda cmd, **kw: calls.append(cmd))
    if colab:
        monkeypatch.setitem(sys.modules, "google.colab", types.ModuleType("google.colab"))
    else:
        monkeypatch.delitem(sys.modules, "google.colab", raising=False)
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "course" and not installed else real(name, *a))
    monkeypatch.setattr(sys, "path", list(sys.path))
    exec(compile(links.colab_cell(), "<colab cell>", "exec"), {})          # noqa: S102 - the cell under test
    return calls


def test_the_colab_cell_does_nothing_off_colab(monkeypatch):
    assert run_cell(monkeypatch, colab=False, installed=False) == []


def test_the_colab_cell_does_nothing_when_the_course_is_importable(monkeypatch):
    assert run_cell(monkeypatch, colab=True, installed=True) == []


def test_the_colab_cell_clones_the_repository_of_pyproject_and_installs_it(monkeypatch):
    url, _, name = links.repository()
    calls = run_cell(monkeypatch, colab=True, installed=False)
    assert calls == [["git", "clone", "-q", "--depth=1", url, f"/content/{name}"],
                     [sys.executable, "-m", "pip", "install", "-q", "-e", f"/content/{name}"]]
    assert sys.path[0] == f"/content/{name}"


def test_nbval_ignores_the_output_of_the_colab_cell():
    lines = links.colab_cell().splitlines()
    assert lines[0] == links.COLAB_MARK and "# NBVAL_IGNORE_OUTPUT" in lines         # the marker alone on its line


def test_a_url_that_is_not_github_is_refused(tmp_path):
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "x"\n[project.urls]\nRepository = "https://example.org/x"\n')
    with pytest.raises(ValueError, match="github.com/OWNER/NAME"):
        links.repository(tmp_path)


def test_badges_and_cell_follow_the_url(tmp_path):
    text = (ROOT / "pyproject.toml").read_text().replace(links.repository()[0], "https://github.com/me/my-fork")
    (tmp_path / "pyproject.toml").write_text(text)
    assert links.repository(tmp_path) == ("https://github.com/me/my-fork", "me", "my-fork")
    line = links.badges("notebooks/exercises/01_a.ipynb", tmp_path)
    assert "colab.research.google.com/github/me/my-fork/blob/main/notebooks/exercises/01_a.ipynb" in line
    assert "mybinder.org/v2/gh/me/my-fork/HEAD?labpath=notebooks%2Fexercises%2F01_a.ipynb" in line
    assert '"https://github.com/me/my-fork", repo' in links.colab_cell(tmp_path)
    assert 'repo = "/content/my-fork"' in links.colab_cell(tmp_path)


def test_applying_to_a_source_is_idempotent_and_repairs_a_copied_badge():
    src = (ROOT / "notebooks" / "src" / "01_what_is_pruning.py").read_text()
    assert links.apply_source(src, "notebooks/01_what_is_pruning.ipynb") == src
    copied = links.apply_source(src, "notebooks/09_new.ipynb")                    # a new notebook copied from 01
    assert "notebooks/09_new.ipynb" in copied and "notebooks/01_what_is_pruning.ipynb" not in copied
    assert copied.count(links.COLAB_MARK) == 1
    bare = src.replace(links.badges("notebooks/01_what_is_pruning.ipynb"), "X").replace("#\n# X\n", "")
    bare = bare.replace("# %%\n" + links.colab_cell() + "\n", "")
    assert links.COLAB_MARK not in bare and "Open In Colab" not in bare
    assert links.apply_source(bare, "notebooks/01_what_is_pruning.ipynb") == src   # both put back where they belong


def test_sources_and_readme_are_in_step_with_pyproject():
    assert links.main(["--check"]) == 0, "run `python -m scripts.links`"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_and_learner_copy_badges_and_colab_cell_follow_pyproject(path):
    cells = json.loads(path.read_text())["cells"]
    assert links.badges(f"notebooks/{path.name}") in "".join(cells[0]["source"])
    assert "".join(cells[1]["source"]) == links.colab_cell().rstrip("\n")
    copy = ROOT / "notebooks" / "exercises" / path.name
    if copy.exists():                                       # the learner copy's badges open the learner copy
        copy_cells = json.loads(copy.read_text())["cells"]
        assert links.badges(f"notebooks/exercises/{path.name}") in "".join(copy_cells[0]["source"])
        assert "".join(copy_cells[1]["source"]) == links.colab_cell().rstrip("\n")


def test_the_readme_says_the_url_must_be_set_and_shows_the_cell():
    text = (ROOT / "README.md").read_text()
    assert links.colab_cell() in text and "set it to your repository when you publish or fork" in text.lower()


def test_the_cli_rewrites_a_source_of_another_notebook(tmp_path):
    src = tmp_path / "09_new.py"
    shutil.copy(ROOT / "notebooks" / "src" / "01_what_is_pruning.py", src)
    res = subprocess.run([sys.executable, "-m", "scripts.links", str(src)], cwd=ROOT, capture_output=True, text=True)
    assert res.returncode == 0 and "rewrote" in res.stdout
    assert "notebooks/09_new.ipynb" in src.read_text()
    again = subprocess.run([sys.executable, "-m", "scripts.links", "--check", str(src)], cwd=ROOT, capture_output=True,
                           text=True)
    assert again.returncode == 0
