"""docs/DESIGN.md is true: every module under course/ has a row there (by its path), and every path it names exists."""
from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NAMED = set(re.findall(r"`(course/[\w/]+\.py)`", (ROOT / "docs" / "DESIGN.md").read_text()))


def test_every_module_is_in_design_md():
    modules = sorted(p.relative_to(ROOT).as_posix() for p in (ROOT / "course").rglob("*.py"))
    assert [m for m in modules if m not in NAMED] == [], "add these modules to docs/DESIGN.md"


def test_design_md_names_no_module_that_does_not_exist():
    assert sorted(m for m in NAMED if not (ROOT / m).exists()) == []
