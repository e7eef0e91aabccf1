"""Every notebook has a readable percent-format source in notebooks/src/, and the two say the same thing.

The sources make reviews possible (a diff of .py lines, not of notebook JSON); the notebooks carry the outputs of
a full run. Edit either, then bring the other in line with jupytext: `python scripts/nb.py build
notebooks/src/NN_*.py` after editing a source (outputs of unchanged cells are kept), `python scripts/nb.py source
notebooks/NN_*.ipynb` after editing a notebook in Jupyter.
"""
from __future__ import annotations

from pathlib import Path

import nbformat
import pytest

from scripts import links
from scripts import nb as nb_script

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))


def test_every_notebook_has_a_source_and_every_source_a_notebook():
    sources = sorted(p.stem for p in (ROOT / "notebooks" / "src").glob("*.py"))
    assert sources == [p.stem for p in NOTEBOOKS]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_cells_match_their_source(path):
    built = nb_script.read_source(ROOT / "notebooks" / "src" / f"{path.stem}.py")
    committed = nbformat.read(path, as_version=4)
    want = [(c.cell_type, c.source) for c in built.cells]
    have = [(c.cell_type, c.source) for c in committed.cells]
    assert len(have) == len(want), f"{path.name}: {len(have)} cells, its source has {len(want)}"
    for i, (h, w) in enumerate(zip(have, want)):
        assert h == w, f"{path.name}, cell {i} differs from notebooks/src/{path.stem}.py:\n{h[1][:300]}\n---\n{w[1][:300]}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_jupytext_writes_the_source_back_unchanged(path):
    # no metadata header and no cell metadata in the sources: a round trip through jupytext changes nothing
    source = (ROOT / "notebooks" / "src" / f"{path.stem}.py").read_text()
    assert not source.startswith("# ---"), "a jupytext header crept into the source"
    assert nb_script.source_text(nbformat.read(path, as_version=4)) == source


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_follows_the_course_skeleton(path):
    cells = nbformat.read(path, as_version=4).cells
    assert cells[0].cell_type == "markdown" and cells[0].source.startswith(f"# {path.name[:2]} · ")
    assert "**What you will learn**" in cells[0].source
    assert cells[1].cell_type == "code" and cells[1].source.startswith(links.COLAB_MARK)   # tests/test_links.py
    setup = next(c for c in cells[2:] if c.cell_type == "code")             # the Colab cell does not count
    lines = [ln for ln in setup.source.splitlines() if ln.strip()]
    assert len(lines) <= 5, f"{path.name}: the setup cell has {len(lines)} lines; keep it to five"
    headings = [line.strip() for c in cells if c.cell_type == "markdown" for line in c.source.splitlines()
                if line.startswith("## ")]
    tail = [h for h in headings if h in ("## Summary", "## Exercises", "## References")]
    assert tail == ["## Summary", "## Exercises", "## References"], f"{path.name}: {tail}"
    numbered = [h for h in headings if h[3:4].isdigit()]
    assert numbered and [int(h[3:].split(" ")[0]) for h in numbered] == list(range(1, len(numbered) + 1))


@pytest.mark.parametrize("path", sorted((ROOT / "notebooks" / "src").glob("*.py")), ids=lambda p: p.stem)
def test_notebooks_import_public_names_only_from_course_and_course_checks(path):
    import re

    imports = re.findall(r"^\s*(?:from (course[\w.]*) import (.+)|import (course[\w.]*))", path.read_text(), flags=re.M)
    modules = {m or plain for m, _, plain in imports}
    assert modules <= {"course", "course.checks"}, f"{path.name} imports from {sorted(modules)}"
    names = [n.strip(" ()") for _, listed, _ in imports for n in listed.split(",")]
    assert not [n for n in names if n.startswith("_")], f"{path.name} imports a private name"
