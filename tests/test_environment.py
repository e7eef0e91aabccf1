"""The conda/Binder environment lists exactly the packages pyproject.toml pins."""
import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _norm(req: str) -> str:
    return re.sub(r"\s+", "", req).lower()


def test_environment_yml_matches_pyproject():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = project["dependencies"] + project["optional-dependencies"]["test"]
    lines = (ROOT / "environment.yml").read_text().splitlines()
    start = next(i for i, ln in enumerate(lines) if ln.strip() == "- pip:")
    indent = len(lines[start + 1]) - len(lines[start + 1].lstrip())
    pip_lines = []
    for ln in lines[start + 1:]:
        if not ln.strip() or len(ln) - len(ln.lstrip()) < indent:
            break
        pip_lines.append(ln.strip()[2:].strip())
    listed = {_norm(x) for x in pip_lines if not x.startswith("-e")}
    assert {_norm(x) for x in wanted} == listed


def test_torch_pin_takes_the_cpu_wheel_range():
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    assert "torch>=2.3,<2.14" in deps
    assert not any(d.startswith("torchvision") for d in deps), "torchvision cannot import beside the CPU torch here"
