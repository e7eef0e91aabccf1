"""The exercise solutions of a notebook, read from its source in notebooks/src/, for the checks' tests.

Tests use the notebooks' own solutions rather than copies of them, so a solution edited in a notebook is the one
the tests hold to its check.
"""
from __future__ import annotations

import math
import re
from pathlib import Path
from types import SimpleNamespace

import torch
from torch import nn

from scripts import nb as _nb

ROOT = Path(__file__).resolve().parent.parent


def solution_cells(stem: str) -> list[tuple[str, str]]:
    """[(solution cell source, source of the next code cell)] of notebooks/src/{stem}.py, in order."""
    cells = [c.source for c in _nb.read_source(ROOT / "notebooks" / "src" / f"{stem}.py").cells
             if c.cell_type == "code"]
    return [(src, cells[i + 1] if i + 1 < len(cells) else "") for i, src in enumerate(cells)
            if "### BEGIN SOLUTION" in src]


def solutions(stem: str) -> SimpleNamespace:
    """The functions the solution cells of notebook `stem` define (e.g. solutions("03_structured").remove_filter)."""
    namespace = {"torch": torch, "nn": nn, "math": math}
    for src, _ in solution_cells(stem):
        exec(compile(src, f"notebooks/src/{stem}.py", "exec"), namespace)     # noqa: S102 - the course's own code
    return SimpleNamespace(**{k: v for k, v in namespace.items() if callable(v) and not k.startswith("_")})


def checked_solutions() -> list[tuple[str, str, str]]:
    """(notebook stem, function name, check name) for every exercise, the check read from the cell below it."""
    out = []
    for path in sorted((ROOT / "notebooks" / "src").glob("[0-9][0-9]_*.py")):
        for src, nxt in solution_cells(path.stem):
            for fn in re.findall(r"^def (\w+)\(", src, flags=re.M):
                call = re.search(rf"\b(check_\w+)\({fn}\)", nxt)
                assert call, f"{path.name}: no check_...({fn}) call in the cell after the solution of {fn}"
                out.append((path.stem, fn, call.group(1)))
    return out
