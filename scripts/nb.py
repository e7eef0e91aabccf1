"""Build course notebooks from their sources with jupytext, and run them with a timer.

    python scripts/nb.py build notebooks/src/01_what_is_pruning.py   # source -> notebooks/01_what_is_pruning.ipynb
    python scripts/nb.py source notebooks/01_what_is_pruning.ipynb   # notebook edited in Jupyter -> its source
    python scripts/nb.py run notebooks/01_what_is_pruning.ipynb      # execute in place (full mode), record the time

The sources in notebooks/src/ are jupytext percent files without a metadata header. `build` is jupytext's
`--update`: the cells come from the source, the outputs of every cell whose code did not change are kept (so
`# NBVAL_CHECK_OUTPUT` cells keep the outputs they are compared with), and the notebook's own metadata stays.
`source` writes the percent file back with jupytext, metadata filtered out, so that a round trip changes nothing.
`run` is the one thing jupytext does not do: a timed top-to-bottom run, stored in notebooks/runtimes.json, which
the README's course map quotes. `build` first brings the source's Colab/Binder badges and Colab cell in step with
pyproject.toml (scripts/links.py), so building a new notebook gives it both, and writes the nbgrader metadata of its
exercises (scripts/exercises.py), which jupytext's `--update` would drop.
"""
from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import jupytext
import nbformat
from jupytext.cli import jupytext as jupytext_cli
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parent.parent
SOURCES = ROOT / "notebooks" / "src"
RUNTIMES = ROOT / "notebooks" / "runtimes.json"
#: The percent format without a header: no notebook or cell metadata goes into the sources.
FORMAT = {"extension": ".py", "format_name": "percent", "notebook_metadata_filter": "-all",
          "cell_metadata_filter": "-all"}
KERNEL = {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
          "language_info": {"name": "python"}}

sys.path.insert(0, str(ROOT))
from course.files import atomic_write_bytes  # noqa: E402
from scripts import links  # noqa: E402
from scripts.exercises import add_grading  # noqa: E402


def _json(nb: nbformat.NotebookNode) -> bytes:
    """The notebook as nbformat writes it to a file (JSON, final newline)."""
    text = nbformat.writes(nb)
    return (text if text.endswith("\n") else text + "\n").encode()


def read_source(src: Path) -> nbformat.NotebookNode:
    """The notebook a percent source describes (cells only), read by jupytext."""
    return jupytext.read(src, fmt="py:percent")


def build(src: Path) -> Path:
    """notebooks/NN.ipynb from notebooks/src/NN.py: jupytext `--update` (outputs of unchanged cells are kept)."""
    out = ROOT / "notebooks" / f"{Path(src).stem}.ipynb"
    text = Path(src).read_text(encoding="utf-8")
    linked = links.apply_source(text, f"notebooks/{out.name}")
    if linked != text:                                # badges and Colab cell follow [project.urls] Repository
        atomic_write_bytes(Path(src), linked.encode("utf-8"))
        print(f"updated the badges and Colab cell of {Path(src).name}")
    args = ["--to", "notebook", "--output", str(out), str(src)]
    if out.exists():
        args.insert(0, "--update")
    if jupytext_cli(args) != 0:
        raise SystemExit(f"jupytext could not build {out}")
    nb = nbformat.read(out, as_version=4)
    nb = nbformat.from_dict(add_grading(nb, out.name, strict=False)[0])  # nbgrader metadata (jupytext drops it)
    nb.metadata.pop("jupytext", None)                 # the pairing lives in this script, not in every notebook
    for key, value in KERNEL.items():
        nb.metadata.setdefault(key, value)
    atomic_write_bytes(out, _json(nb))
    print(f"wrote {out.relative_to(ROOT)}")
    return out


def source_text(nb: nbformat.NotebookNode) -> str:
    """The percent source of a notebook, as jupytext writes it without metadata."""
    return jupytext.writes(nb, fmt=FORMAT)


def source(path: Path) -> Path:
    """notebooks/src/NN.py from notebooks/NN.ipynb (after editing the notebook in Jupyter)."""
    out = SOURCES / f"{Path(path).stem}.py"
    atomic_write_bytes(out, source_text(nbformat.read(path, as_version=4)).encode())
    print(f"wrote {out.relative_to(ROOT)}")
    return out


def run(path: Path, timeout: int = 1200) -> float:
    """Execute `path` top to bottom in a fresh kernel (full mode), write it back atomically, record the wall time."""
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
    atomic_write_bytes(path, _json(nb))
    times = json.loads(RUNTIMES.read_text()) if RUNTIMES.exists() else {}
    times[path.name] = round(seconds, 1)
    atomic_write_bytes(RUNTIMES, (json.dumps(dict(sorted(times.items())), indent=2) + "\n").encode())
    print(f"{path.name}: full run {seconds:.1f} s")
    return seconds


COMMANDS = {"build": build, "source": source, "run": run}

if __name__ == "__main__":
    if len(sys.argv) < 3 or sys.argv[1] not in COMMANDS:
        sys.exit(__doc__)
    for arg in sys.argv[2:]:
        COMMANDS[sys.argv[1]](Path(arg).resolve())
