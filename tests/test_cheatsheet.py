"""Every ```python block of docs/cheatsheet.md runs as written and asserts something, so the recipes cannot rot."""
from __future__ import annotations

import re
import sys
import types
from pathlib import Path

import pytest
import torch

CHEATSHEET = Path(__file__).resolve().parent.parent / "docs" / "cheatsheet.md"


def blocks() -> list[tuple[str, str]]:
    """(heading of the section, code) for every ```python block, in order."""
    text = CHEATSHEET.read_text(encoding="utf-8")
    found, heading = [], "top"
    for m in re.finditer(r"^## (?P<h>[^\n]+)$|^```python\n(?P<code>.*?)^```$", text, flags=re.M | re.S):
        if m.group("h"):
            heading = m.group("h").strip()
        else:
            found.append((heading, m.group("code")))
    return found


BLOCKS = blocks()


def test_the_cheatsheet_has_the_four_recipes():
    headings = " ".join(h for h, _ in BLOCKS).lower()
    assert len(BLOCKS) >= 4
    for topic in ("unstructured", "torch-pruning", "gradual", "flops"):
        assert topic in headings, f"no recipe about {topic}"


@pytest.mark.parametrize("heading, code", BLOCKS, ids=[h.split()[0] for h, _ in BLOCKS])
def test_recipe_is_self_contained_and_asserts(heading, code):
    assert re.search(r"^\s*assert\b", code, flags=re.M), f"recipe {heading!r} asserts nothing"
    assert not re.search(r"^\s*(from|import)\s+course\b", code, flags=re.M), "recipes must not need the course library"


@pytest.mark.parametrize("heading, code", BLOCKS, ids=[h.split()[0] for h, _ in BLOCKS])
def test_recipe_runs(heading, code, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)                             # anything a recipe writes lands in tmp
    threads, rng = torch.get_num_threads(), torch.get_rng_state()
    module = types.ModuleType("cheatsheet_recipe")         # a real module, so classes it defines can be pickled
    monkeypatch.setitem(sys.modules, module.__name__, module)
    try:
        exec(compile(code, f"cheatsheet: {heading}", "exec"), module.__dict__)
    finally:
        torch.set_num_threads(threads)
        torch.set_rng_state(rng)
