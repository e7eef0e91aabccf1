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
    listed = {_norm(x) for x in pip_lines if not x.startswith("-")}          # pip options: -e ., --extra-index-url
    assert {_norm(x) for x in wanted} == listed


def test_environment_yml_pins_one_tested_python_minor_version():
    # Binder resolves `python=3.11` to one build; a range such as `python>=3.10` leaves it open
    pins = re.findall(r"^\s*-\s*python\s*([<>=!~]=?)\s*([\d.]+)\s*$", (ROOT / "environment.yml").read_text(), flags=re.M)
    assert len(pins) == 1 and pins[0][0] == "=" and re.fullmatch(r"3\.\d+", pins[0][1]), pins
    requires = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["requires-python"]
    assert requires == ">=3.10" and int(pins[0][1].split(".")[1]) >= 10


def test_environment_yml_asks_for_the_cpu_build_of_torch():
    text = (ROOT / "environment.yml").read_text()
    assert "--extra-index-url https://download.pytorch.org/whl/cpu" in text


def test_build_requirements_match_the_license_metadata():
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert "setuptools>=77.0.3" in meta["build-system"]["requires"]        # PEP 639 `license` strings need 77
    assert meta["project"]["license"].startswith("MIT")
    for name in meta["project"]["license-files"]:
        assert (ROOT / name).is_file(), name
    assert "MIT License" in (ROOT / "LICENSE").read_text()


def test_torch_pin_takes_the_cpu_wheel_range():
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    assert "torch>=2.3,<2.14" in deps
    assert not any(d.startswith("torchvision") for d in deps), "torchvision cannot import beside the CPU torch here"
