"""The layout is the architecture: imports inside `course/` only point down the layers, and there are no circles.

Layers, bottom up (docs/DESIGN.md): foundation, data, models, the pruning engine, measurement and files, training,
checkpoints, then the notebook-facing packages (lessons, widgets, checks) and the package's own `__init__`.
Every `import course...` counts, at module level or inside a function.
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
COURSE = ROOT / "course"

#: Module (or package) prefix -> layer; a module may import only from its own layer or a lower one.
LAYERS = {
    "course.config": 0, "course.arguments": 0, "course.files": 0, "course.table": 0, "course.source": 0,
    "course.inputs": 0,
    "course.data": 1,
    "course.models": 2,
    "course.pruning": 3, "course.quantization": 3,
    "course.timing": 4, "course.export": 4, "course.metrics": 4, "course.flops": 4, "course.quantized_forms": 4,
    "course.training": 5, "course.quantized_training": 5,
    "course.checkpoints": 6,
    "course.lessons": 7, "course.widgets": 7, "course.checks": 7,
    "course": 8,                                              # course/__init__.py: the lazy exports
}


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def layer(module: str) -> int:
    best = max((p for p in LAYERS if module == p or module.startswith(p + ".")), key=len)
    return LAYERS[best]


def course_imports(path: Path) -> set[str]:
    """Every course module `path` imports (`from course.x import y` counts course.x, and course.x.y if a module)."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.split(".")[0] == "course"}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:                                   # relative import
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else []))
            if base.split(".")[0] != "course":
                continue
            found.add(base)
            for alias in node.names:                         # `from course.data import loading`: a submodule
                if (ROOT / Path(*f"{base}.{alias.name}".split("."))).with_suffix(".py").exists() or \
                        (ROOT / Path(*f"{base}.{alias.name}".split("."))).is_dir():
                    found.add(f"{base}.{alias.name}")
    return found - {name}


MODULES = {module_name(p): p for p in sorted(COURSE.rglob("*.py"))}
GRAPH = {name: {m for m in course_imports(path) if m in MODULES} for name, path in MODULES.items()}


@pytest.mark.parametrize("name", sorted(MODULES))
def test_imports_point_down_the_layers(name):
    if name == "course":
        return                                               # the package exports everything (lazily)
    up = sorted(m for m in GRAPH[name] if layer(m) > layer(name) and m != "course")
    assert up == [], f"{name} (layer {layer(name)}) imports a higher layer: {up}"


def test_the_engine_never_imports_training_measurement_or_lessons():
    engine = [n for n in MODULES if n.startswith("course.pruning")]
    banned = ("course.training", "course.metrics", "course.timing", "course.export", "course.checkpoints",
              "course.lessons", "course.widgets", "course.data")
    bad = {n: sorted(m for m in GRAPH[n] if m.startswith(banned)) for n in engine}
    assert {n: v for n, v in bad.items() if v} == {}


def test_no_import_circles():
    state: dict[str, int] = {}                               # 1 = on the current path, 2 = done

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(GRAPH[node]):
            if nxt == "course" or nxt.startswith("course.") and nxt not in GRAPH:
                continue
            if state.get(nxt) == 1:
                raise AssertionError("import circle: " + " -> ".join(path[path.index(nxt):] + [nxt]))
            if nxt not in state:
                visit(nxt, path + [nxt])
        state[node] = 2

    for name in sorted(GRAPH):
        if name not in state and name != "course":
            visit(name, [name])


def test_no_module_at_the_root_is_named_after_a_notebook():
    # the notebooks' experiments live in course/lessons/; "metrics" (accuracy, bytes, FLOPs, latency) is a concept
    # every notebook uses from 00 on, not notebook 07's experiment, which is lessons/tradeoffs.py
    notebooks = {p.stem.split("_", 1)[1] for p in (ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb")}
    words = {w for stem in notebooks for w in stem.split("_") if len(w) > 3} - {"metrics"}
    words |= {"capstone", "sweeps", "speedups", "oracle", "tradeoffs", "diagrams", "sensitivity"}
    root = {p.stem for p in COURSE.glob("*.py")}
    assert root & words == set(), f"modules named after a notebook or its experiment: {root & words}"
