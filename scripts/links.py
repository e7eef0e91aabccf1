"""The repository URL from one place, and everything generated from it: Colab/Binder badges and the Colab cell.

    python -m scripts.links                          # rewrite badges + Colab cell in notebooks/src/*.py and README.md
    python -m scripts.links notebooks/src/09_x.py    # the same for some sources (idempotent; any notebook source)
    python -m scripts.links --check                  # exit 1 and list what is out of step

The one source is `[project.urls] Repository` in pyproject.toml (a https://github.com/OWNER/NAME URL: Colab and
Binder open notebooks from GitHub). From it:

- the badge line under a notebook's title: Colab opens `notebooks/NN_x.ipynb` from the `main` branch, Binder starts
  JupyterLab on it; a learner copy's badges (scripts/exercises.py) open `notebooks/exercises/NN_x.ipynb` instead;
- the Colab cell, every notebook's first code cell: on Colab, when `course` is not importable, it clones the
  repository and installs it; everywhere else it does nothing. nbval ignores its output (`# NBVAL_IGNORE_OUTPUT`
  alone on its line), and it is not the five-line setup cell;
- the same cell in README.md, between the `colab-cell` markers.

`python scripts/nb.py build` applies this to a source before it builds the notebook, so a new notebook gets both
by being built. tests/test_links.py keeps every notebook, learner copy and the README in step.
"""
from __future__ import annotations

import re
import sys
import tomllib
import urllib.parse
from pathlib import Path

from course.files import atomic_write_bytes

__all__ = ["ROOT", "COLAB_MARK", "repository", "badges", "colab_cell", "apply_source", "apply_readme", "main"]

ROOT = Path(__file__).resolve().parent.parent
BRANCH = "main"
GITHUB = re.compile(r"^https://github\.com/(?P<owner>[A-Za-z0-9_.-]+)/(?P<name>[A-Za-z0-9_.-]+?)(?:\.git)?/?$")
#: The first line of the Colab cell; it names the cell wherever it is.
COLAB_MARK = "# On Colab: fetch and install the course (this cell does nothing anywhere else)"
BADGE_LINE = re.compile(r"^\[!\[Open In Colab\]\(.*$", re.M)
README_BLOCK = re.compile(r"(<!-- colab-cell[^\n]*-->\n```python\n).*?(```\n<!-- /colab-cell -->)", re.S)


def repository(root: Path = ROOT) -> tuple[str, str, str]:
    """(url, owner, name) of `[project.urls] Repository` in root/pyproject.toml; ValueError unless a GitHub URL."""
    urls = tomllib.loads((Path(root) / "pyproject.toml").read_text())["project"].get("urls", {})
    url = urls.get("Repository", "")
    m = GITHUB.match(url)
    if m is None:
        raise ValueError(f"pyproject.toml [project.urls] Repository must be https://github.com/OWNER/NAME (Colab and "
                         f"Binder open notebooks from GitHub), got {url!r}")
    return url.rstrip("/").removesuffix(".git"), m["owner"], m["name"]


def badges(path: str, root: Path = ROOT) -> str:
    """The markdown line of both badges for the notebook at `path` (relative to the repository root)."""
    _, owner, name = repository(root)
    colab = f"https://colab.research.google.com/github/{owner}/{name}/blob/{BRANCH}/{path}"
    binder = f"https://mybinder.org/v2/gh/{owner}/{name}/HEAD?labpath={urllib.parse.quote(path, safe='')}"
    return (f"[![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)]({colab}) "
            f"[![Binder](https://mybinder.org/badge_logo.svg)]({binder})")


def colab_cell(root: Path = ROOT) -> str:
    """The guarded cell: on Colab without `course`, clone the repository, install it, and make it importable now."""
    url, _, name = repository(root)
    return (f"{COLAB_MARK}\n"
            "# NBVAL_IGNORE_OUTPUT\n"
            "import importlib.util, subprocess, sys\n"
            "if \"google.colab\" in sys.modules and importlib.util.find_spec(\"course\") is None:\n"
            f"    repo = \"/content/{name}\"\n"
            f"    subprocess.run([\"git\", \"clone\", \"-q\", \"--depth=1\", \"{url}\", repo], check=True)\n"
            "    subprocess.run([sys.executable, \"-m\", \"pip\", \"install\", \"-q\", \"-e\", repo], check=True)\n"
            "    sys.path.insert(0, repo)  # the running kernel does not see a fresh editable install\n")


def _commented(text: str) -> str:
    """Markdown as a percent source stores it: every line behind '# ' (empty lines as '#')."""
    return "".join(f"# {line}\n" if line else "#\n" for line in text.splitlines())


def apply_source(source: str, path: str, root: Path = ROOT) -> str:
    """A percent source with its badge line (re)generated under the title and the Colab cell right after the
    title cell; `path` is the notebook it builds, e.g. 'notebooks/01_what_is_pruning.ipynb'. Idempotent."""
    line = "# " + badges(path, root)
    cells = [c for c in re.split(r"(?m)^(?=# %%)", source) if c]
    if not cells or not cells[0].startswith("# %% [markdown]"):
        raise ValueError(f"{path}: the source must start with the title cell (`# %% [markdown]`, `# # NN · Title`)")
    title = cells[0]
    if re.search(r"(?m)^# \[!\[Open In Colab\]\(.*$", title):
        title = re.sub(r"(?m)^# \[!\[Open In Colab\]\(.*$", lambda _: line, title, count=1)
    else:
        title = re.sub(r"(?m)^(# # .*\n)", lambda m: f"{m.group(1)}#\n{line}\n", title, count=1)
    rest = [c for c in cells[1:] if not c.split("\n", 1)[1].startswith(COLAB_MARK)]
    return "".join([title, "# %%\n" + colab_cell(root) + "\n", *rest])


def apply_readme(text: str, root: Path = ROOT) -> str:
    """README.md with the Colab cell between its `colab-cell` markers regenerated."""
    if not README_BLOCK.search(text):
        raise ValueError("README.md has no `<!-- colab-cell ... -->` ... `<!-- /colab-cell -->` block")
    return README_BLOCK.sub(lambda m: m.group(1) + colab_cell(root) + m.group(2), text, count=1)


def _targets(paths: list[str]) -> list[Path]:
    if paths:
        return [Path(p).resolve() for p in paths]
    return sorted((ROOT / "notebooks" / "src").glob("[0-9][0-9]_*.py")) + [ROOT / "README.md"]


def _wanted(path: Path) -> str:
    text = path.read_text(encoding="utf-8")
    if path.name == "README.md":
        return apply_readme(text)
    return apply_source(text, f"notebooks/{path.stem}.ipynb")


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    check = "--check" in args
    stale = []
    for path in _targets([a for a in args if a != "--check"]):
        want = _wanted(path)
        if want == path.read_text(encoding="utf-8"):
            continue
        stale.append(path)
        if not check:
            atomic_write_bytes(path, want.encode("utf-8"))
            print(f"rewrote {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}")
    if check and stale:
        print("out of step with [project.urls] Repository, run `python -m scripts.links`:\n  "
              + "\n  ".join(map(str, stale)))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
