"""nbgrader, the real tool, on two course notebooks: the release version scores 0, the solution version full marks,
and a wrong answer scores 0 on its own check with the check's feedback in the graded notebook.

Runs the `nbgrader` CLI in a temporary course folder written by `python -m scripts.grading`: generate_assignment,
then autograde of three submissions (the release as handed out; the release with the teacher's solutions pasted into
the solution cells; the solutions with one wrong answer). autograde executes each notebook top to bottom, in fast
mode, in a kernel that imports this checkout's `course`.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("nbgrader", reason="nbgrader is a test dependency: pip install -e '.[test]'")
from nbgrader.api import Gradebook  # noqa: E402

from scripts.grading import write_course  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
#: The two course notebooks with exercises that autograde runs fastest (in fast mode).
NOTEBOOKS = ("06_when_to_prune", "07_metrics_tradeoffs")
ASSIGNMENT = "pruning"
WRONG = {"exercise_06_3": "def cubic_schedule(step, final_sparsity, begin, end):\n"
                          "    return final_sparsity * min(max((step - begin) / (end - begin), 0.0), 1.0)\n"}

pytestmark = pytest.mark.slow


def nbgrader(course: Path, *args: str) -> subprocess.CompletedProcess:
    """Run `nbgrader ARGS` in `course`; the kernels it starts import this checkout's `course`."""
    bindir = str(Path(sys.executable).parent)          # nbgrader runs `alembic` from PATH when it creates the db
    env = {k: v for k, v in os.environ.items() if not k.startswith("COURSE_")}      # nbgrader_config.py sets them
    env |= {"PATH": bindir + os.pathsep + os.environ.get("PATH", ""),
            "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    proc = subprocess.run([sys.executable, "-m", "nbgrader", *args], cwd=course, env=env, capture_output=True,
                          text=True, timeout=900)
    assert proc.returncode == 0, f"nbgrader {' '.join(args)} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}"
    return proc


def cells(path: Path) -> list[dict]:
    return json.loads(path.read_text(encoding="utf-8"))["cells"]


def submit(course: Path, student: str, answers: dict[str, str]) -> None:
    """The released notebooks in submitted/<student>/, with `answers` (grade_id -> source) pasted in."""
    for stem in NOTEBOOKS:
        nb = json.loads((course / "release" / ASSIGNMENT / f"{stem}.ipynb").read_text(encoding="utf-8"))
        for cell in nb["cells"]:
            gid = cell["metadata"].get("nbgrader", {}).get("grade_id")
            if gid in answers:
                cell["source"] = answers[gid]
        dest = course / "submitted" / student / ASSIGNMENT / f"{stem}.ipynb"
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_text(json.dumps(nb), encoding="utf-8")


def scores(course: Path, student: str) -> dict[str, float]:
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}", "pruning-course") as gb:
        submission = gb.find_submission(ASSIGNMENT, student)
        return {g.name: g.score for nb in submission.notebooks for g in nb.grades}


def test_release_scores_zero_solutions_full_marks_and_a_wrong_answer_zero(tmp_path):
    course = tmp_path / "course"
    write_course(ROOT / "notebooks", course, list(NOTEBOOKS), assignment=ASSIGNMENT)
    nbgrader(course, "generate_assignment", ASSIGNMENT)
    for stem in NOTEBOOKS:
        graded = [c for c in cells(course / "release" / ASSIGNMENT / f"{stem}.ipynb") if "nbgrader" in c["metadata"]]
        stubs = ["".join(c["source"]) for c in graded if c["metadata"]["nbgrader"]["solution"]]
        assert stubs and all(s.rstrip().endswith("# YOUR CODE HERE\n    raise NotImplementedError()") for s in stubs)
        assert not any("### BEGIN SOLUTION" in "".join(c["source"]) for c in graded)

    solutions = {c["metadata"]["nbgrader"]["grade_id"]: "".join(c["source"])
                 for stem in NOTEBOOKS for c in cells(course / "source" / ASSIGNMENT / f"{stem}.ipynb")
                 if c["metadata"].get("nbgrader", {}).get("solution")}
    assert sorted(solutions) == ["exercise_06_1", "exercise_06_2", "exercise_06_3", "exercise_07_1", "exercise_07_2"]
    submit(course, "release", {})
    submit(course, "solution", solutions)
    submit(course, "one_wrong", solutions | WRONG)
    for student in ("release", "solution", "one_wrong"):
        nbgrader(course, "autograde", ASSIGNMENT, "--student", student)

    checks = {"check_06_1", "check_06_2", "check_06_3", "check_07_1", "check_07_2"}
    assert scores(course, "release") == dict.fromkeys(checks, 0.0)
    assert scores(course, "solution") == dict.fromkeys(checks, 1.0)
    assert scores(course, "one_wrong") == dict.fromkeys(checks, 1.0) | {"check_06_3": 0.0}
    graded = (course / "autograded" / "one_wrong" / ASSIGNMENT / "06_when_to_prune.ipynb").read_text()
    assert "AssertionError" in graded and "Your schedule is linear in the step" in graded   # the check's feedback
