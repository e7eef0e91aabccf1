"""An nbgrader course folder made from the course notebooks, so the exercises can be graded with nbgrader.

    python -m scripts.grading ~/grading 01 06                 # one assignment per notebook: 01_what_is_pruning, ...
    python -m scripts.grading ~/grading 01 06 --assignment week1   # both notebooks in one assignment

writes COURSE_DIR/nbgrader_config.py and COURSE_DIR/source/<assignment>/NN_*.ipynb: the teacher notebooks, outputs
cleared, with the nbgrader metadata of scripts/exercises.py (each solution cell an autograded answer, the check cell
below it an autograder test worth 1 point). Then, in COURSE_DIR, nbgrader's own commands:

    nbgrader generate_assignment 01_what_is_pruning        # release/: solutions replaced by NotImplementedError
    nbgrader autograde 01_what_is_pruning                  # grades submitted/<student>/01_what_is_pruning/
    nbgrader export                                        # grades.csv

The config sets COURSE_CHECKS=raise (a check that does not pass raises AssertionError with its feedback, so the
test cell scores 0; the default red box would score full marks) and, unless already set, COURSE_FAST=1 (autograde
runs every cell of the notebook; fast mode keeps its training to seconds and does not change the checks). The
course must be importable where nbgrader runs, and nbgrader starts `alembic` from PATH when it creates the
gradebook: run it with the environment's bin/ on PATH.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from course.files import atomic_write_bytes
from scripts.exercises import NOTEBOOK, ExerciseError, add_grading, render

__all__ = ["CONFIG", "clear_outputs", "write_course", "main"]

ROOT = Path(__file__).resolve().parent.parent

CONFIG = '''\
"""nbgrader configuration for the pruning course (written by `python -m scripts.grading`; edit course_id)."""
import os

c = get_config()  # noqa: F821 (nbgrader's config loader defines it)
c.CourseDirectory.course_id = "pruning-course"
# A check that does not pass raises AssertionError with its feedback, so a wrong answer scores 0 (the default,
# a red box, would score full marks). Set here because the kernels nbgrader starts inherit this environment.
os.environ["COURSE_CHECKS"] = "raise"
# autograde runs every cell of a notebook; fast mode keeps the lessons' training to seconds (the checks do not
# depend on it). Set COURSE_FAST=0 before running nbgrader to grade in full mode.
os.environ.setdefault("COURSE_FAST", "1")
c.Execute.timeout = 600              # seconds per cell; nbgrader's default of 30 is tight for a cold kernel
'''


def clear_outputs(nb: dict) -> dict:
    """Outputs, execution counts and saved widget state removed: nbgrader's source version is clean."""
    for cell in nb.get("cells", []):
        if cell.get("cell_type") == "code":
            cell["outputs"], cell["execution_count"] = [], None
        cell.get("metadata", {}).pop("execution", None)
    nb.get("metadata", {}).pop("widgets", None)
    return nb


def _notebook(notebooks: Path, number: str) -> Path:
    """notebooks/NN_*.ipynb for `number` ('01' or the full stem)."""
    found = [p for p in sorted(Path(notebooks).glob("*.ipynb")) if NOTEBOOK.match(p.name)
             and (p.stem == number or p.name[:2] == number)]
    if len(found) != 1:
        raise ExerciseError(f"no single notebook {number!r} in {notebooks} (give NN, e.g. 01, or a notebook's stem)")
    return found[0]


def write_course(notebooks: Path, out: Path, numbers: list[str], assignment: str | None = None) -> list[Path]:
    """An nbgrader course folder: out/nbgrader_config.py and out/source/<assignment or stem>/<stem>.ipynb."""
    written = []
    sources = [_notebook(notebooks, n) for n in numbers]
    for src in sources:                                          # check all before writing any
        if not add_grading(json.loads(src.read_text(encoding="utf-8")), src.name)[1]:
            raise ExerciseError(f"{src.name}: no exercises, nothing for nbgrader to grade")
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(out / "nbgrader_config.py", CONFIG.encode())
    for src in sources:
        nb, _ = add_grading(json.loads(src.read_text(encoding="utf-8")), src.name)
        dest = out / "source" / (assignment or src.stem) / src.name
        dest.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(dest, render(clear_outputs(nb)).encode("utf-8"))
        written.append(dest)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m scripts.grading", description=__doc__.splitlines()[0])
    parser.add_argument("course_dir", type=Path, help="the nbgrader course folder to write (created if absent)")
    parser.add_argument("notebooks", nargs="+", help="notebook numbers (01 06) or stems")
    parser.add_argument("--assignment", help="put every notebook in this one assignment (default: one per notebook)")
    parser.add_argument("--from", dest="source", type=Path, default=ROOT / "notebooks", help="the notebooks folder")
    args = parser.parse_args(argv)
    try:
        for path in write_course(args.source, args.course_dir, args.notebooks, args.assignment):
            print(f"wrote {path}")
    except ExerciseError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {args.course_dir / 'nbgrader_config.py'}\nnext: cd {args.course_dir} && nbgrader generate_assignment "
          f"{args.assignment or _notebook(args.source, args.notebooks[0]).stem}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
