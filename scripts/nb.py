"""Build and run course notebooks.

    python scripts/nb.py build notebooks/src/01_what_is_pruning.py   # percent-format source -> notebooks/01_what_is_pruning.ipynb
    python scripts/nb.py run notebooks/01_what_is_pruning.ipynb      # execute in place (full mode), record the wall time

Sources use the percent format: `# %%` starts a code cell, `# %% [markdown]` a markdown cell whose lines start
with `# `. `run` stores the measured wall time in notebooks/runtimes.json, which the README's course map quotes.
"""
from __future__ import annotations

import json
import os
import re
import sys
import tempfile
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parent.parent
RUNTIMES = ROOT / "notebooks" / "runtimes.json"


def parse_percent(text: str) -> nbformat.NotebookNode:
    """Split a percent-format script into notebook cells."""
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.metadata["language_info"] = {"name": "python"}
    chunks = re.split(r"^# %%(.*)$", text, flags=re.M)
    for header, body in zip(chunks[1::2], chunks[2::2]):
        body = body.strip("\n")
        if "[markdown]" in header:
            lines = [ln[2:] if ln.startswith("# ") else ln.lstrip("#") for ln in body.splitlines()]
            nb.cells.append(nbformat.v4.new_markdown_cell("\n".join(lines).strip("\n")))
        elif body.strip():
            nb.cells.append(nbformat.v4.new_code_cell(body))
    return nb


def build(src: Path) -> Path:
    out = ROOT / "notebooks" / (src.stem + ".ipynb")
    nbformat.write(parse_percent(src.read_text()), out)
    print(f"wrote {out.relative_to(ROOT)}")
    return out


def run(path: Path, timeout: int = 1200) -> float:
    """Execute `path` top to bottom in a fresh kernel (full mode) and write it back atomically."""
    nb = nbformat.read(path, as_version=4)
    env_fast = os.environ.pop("COURSE_FAST", None)
    t0 = time.perf_counter()
    try:
        NotebookClient(nb, timeout=timeout, kernel_name="python3",
                       resources={"metadata": {"path": str(path.parent)}}).execute()
    finally:
        if env_fast is not None:
            os.environ["COURSE_FAST"] = env_fast
    seconds = time.perf_counter() - t0
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".ipynb")
    os.close(fd)
    nbformat.write(nb, tmp)
    os.replace(tmp, path)
    times = json.loads(RUNTIMES.read_text()) if RUNTIMES.exists() else {}
    times[path.name] = round(seconds, 1)
    RUNTIMES.write_text(json.dumps(dict(sorted(times.items())), indent=2) + "\n")
    print(f"{path.name}: full run {seconds:.1f} s")
    return seconds


if __name__ == "__main__":
    if len(sys.argv) < 3 or sys.argv[1] not in ("build", "run"):
        sys.exit(__doc__)
    for arg in sys.argv[2:]:
        (build if sys.argv[1] == "build" else run)(Path(arg).resolve())
