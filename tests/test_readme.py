"""The README's course map lists every notebook, with the run time measured by `scripts/nb.py run`."""
from __future__ import annotations

import json
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _course_map() -> dict[str, list[str]]:
    text = (ROOT / "README.md").read_text()
    section = text.split("## Course map", 1)[1].split("\n## ", 1)[0]
    rows = {}
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 6 and re.fullmatch(r"\d\d", cells[0]):
            rows[cells[0]] = cells
    return rows


def test_course_map_lists_every_notebook_with_a_working_link():
    rows = _course_map()
    notebooks = sorted(p.name for p in (ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    assert sorted(rows) == [name[:2] for name in notebooks]
    for number, cells in rows.items():
        link = re.search(r"\]\((notebooks/[^)]+\.ipynb)\)", cells[1])
        assert link and (ROOT / link.group(1)).is_file(), f"row {number}: broken notebook link {cells[1]!r}"
        assert cells[2] and cells[3] and re.search(r"\d+ min", cells[4]), f"row {number} is missing a column"


def test_course_map_run_times_are_the_measured_ones():
    measured = json.loads((ROOT / "notebooks" / "runtimes.json").read_text())
    rows = _course_map()
    for name, seconds in measured.items():
        cells = rows[name[:2]]
        assert cells[5] == f"{round(seconds)} s", (
            f"README says {cells[5]!r} for {name}, runtimes.json says {seconds} s: update the course map")
    assert set(rows) == {name[:2] for name in measured}, "a notebook has no measured run time: run scripts/nb.py run"


def test_every_notebook_has_colab_and_binder_badges():
    from scripts import links

    _, owner, name = links.repository(ROOT)                   # [project.urls] Repository (tests/test_links.py)
    for path in sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb")):
        first = json.loads(path.read_text())["cells"][0]
        source = "".join(first["source"])
        assert f"colab.research.google.com/github/{owner}/{name}/blob/main/notebooks/{path.name}" in source
        assert f"mybinder.org/v2/gh/{owner}/{name}/HEAD?labpath=notebooks%2F{path.name}" in source


def test_the_readme_library_snippet_runs(tmp_path, monkeypatch):
    import torch
    from torch.utils.data import DataLoader, TensorDataset

    from course import build_model

    text = (ROOT / "README.md").read_text()
    section = text.split("## Using the library in your own project", 1)[1]
    code = section.split("```python\n", 1)[1].split("```", 1)[0]
    model = build_model("vgg", (1, 28, 28)).eval()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    data = TensorDataset(torch.randn(32, 1, 28, 28), torch.randint(0, 10, (32,)))
    monkeypatch.chdir(tmp_path)
    namespace = {"model": model, "test_loader": DataLoader(data, batch_size=16)}
    exec(compile(code, "README.md", "exec"), namespace)                  # noqa: S102 - the snippet under test
    assert (tmp_path / "model.pt.gz").is_file()
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())   # "leaves the model untouched"
    assert namespace["slim"].conv2.out_channels == 8 and namespace["slim"].conv1.out_channels == 16
