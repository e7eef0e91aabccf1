"""The README's course map lists every notebook, with the run time measured by `scripts/nb.py run`."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

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


def snippet() -> str:
    text = (ROOT / "README.md").read_text()
    section = text.split("## Using the library in your own project", 1)[1]
    return section.split("```python\n", 1)[1].split("```", 1)[0]


@pytest.mark.parametrize("name", ["resnet18", "mobilenetv2"])
def test_the_readme_library_snippet_runs_as_written(tmp_path, monkeypatch, name):
    import warnings

    import torch
    from torch.utils.data import DataLoader, TensorDataset

    from course import build_model, layer_sparsity
    from zoo import ZOO

    if name == "course-vgg":
        model, shape = build_model("vgg", (1, 28, 28)).eval(), (1, 28, 28)
    else:
        model = ZOO[name].model().eval()
        shape = tuple(ZOO[name].batch(1)[0].shape[1:])
    before = {k: v.clone() for k, v in model.state_dict().items()}
    data = TensorDataset(torch.randn(32, *shape), torch.randint(0, 4, (32,)))
    monkeypatch.chdir(tmp_path)
    namespace = {"model": model, "test_loader": DataLoader(data, batch_size=16)}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")                              # an untrained model collapses at 90% global
        exec(compile(snippet(), "README.md", "exec"), namespace)      # noqa: S102 - the snippet under test
    assert (tmp_path / "model.pt.gz").is_file()
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())   # "leaves the model untouched"
    params = lambda m: sum(p.numel() for p in m.parameters())       # noqa: E731
    assert params(namespace["slim"]) < 0.6 * params(model)
    assert layer_sparsity(namespace["sparse"]).overall.sparsity == pytest.approx(0.9, abs=1e-3)
