"""Learner copies of the notebooks: every solution replaced by a stub, every output stripped; nbgrader metadata.

    python -m scripts.exercises notebooks           # write notebooks/exercises/NN_*.ipynb (what `make exercises` runs)
    python -m scripts.exercises --check notebooks   # exit 1 and list the copies that are stale

How to write an exercise in notebooks/NN_*.ipynb (nbgrader's markers):

    # Exercise 02.1: a magnitude mask             <- in the cell, or in a markdown cell just above it
    def magnitude_mask(weight, sparsity):
        ### BEGIN SOLUTION
        ...the solution...
        ### END SOLUTION

The learner copy keeps every cell, its metadata and every other line; the block from BEGIN to END becomes

        # YOUR CODE HERE
        raise NotImplementedError("Exercise 02.1: a magnitude mask")

at the indentation of the BEGIN line. Outputs and execution counts of all code cells are cleared, and so is the
notebook's saved widget state (it describes those outputs). Copies are
written atomically and deterministically (nbformat's JSON layout), so `--check` can compare bytes.
Put the collapsible hint (`<details><summary>Hint</summary>...</details>`) in a markdown cell above the exercise;
the copy keeps it and the generator warns when an exercise has none. The learner copy's Colab/Binder badges open
the learner copy (scripts/links.py).

nbgrader metadata, written on the teacher notebooks (nbgrader's "source" version) and kept in the learner copies,
the metadata nbgrader 0.9's "Create Assignment" toolbar writes (schema 3):
- the code cell holding Exercise NN.k's solution is an autograded answer: {"solution": true, "grade": false,
  "grade_id": "exercise_NN_k", "locked": false, ...};
- the next code cell, which must call a `check_...` function, is an autograder test worth 1 point:
  {"grade": true, "grade_id": "check_NN_k", "points": 1, "locked": true, "solution": false, ...}.
grade_id has no dots (nbgrader allows [a-zA-Z0-9_-]). Every other cell's nbgrader metadata is removed, so the
markers in the notebooks stay the one source. `python -m scripts.grading` builds an nbgrader course from them.
"""
from __future__ import annotations

import argparse
import copy
import json
import re
import sys
from pathlib import Path

from course.files import atomic_write_bytes

__all__ = ["ExerciseError", "strip_solutions", "make_exercise", "add_grading", "solution_meta", "check_meta", "render",
           "plan", "generate", "stale", "main"]

BEGIN, END = "### BEGIN SOLUTION", "### END SOLUTION"
NOTEBOOK = re.compile(r"^(\d{2})_.+\.ipynb$")
EXERCISE = re.compile(r"^\s*(?:#+|>)?\s*(?:\*\*)?\s*Exercise\s+(\d{2}\.\d+)\s*:\s*(.+?)\s*(?:\*\*)?\s*$")
HINT = "<summary>Hint"
CHECK_CALL = re.compile(r"^\s*check_\w+\(", re.M)
NBGRADER_SCHEMA = 3


class ExerciseError(ValueError):
    """A malformed exercise: the message names the notebook, the cell and the line."""


def _text(cell: dict) -> str:
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else src


def _set_text(cell: dict, text: str) -> None:
    """Store `text` the way the cell stored its source (nbformat's list of lines, or one string)."""
    cell["source"] = text.splitlines(keepends=True) if isinstance(cell.get("source"), list) else text


def _literal(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def strip_solutions(source: str, *, heading: tuple[str, str] | None = None, where: str = "cell") -> tuple[str, list[str]]:
    """Replace each BEGIN..END block of a code cell's `source` by a stub; returns (new source, exercise ids).

    `heading` is the (id, title) found above the cell; a `# Exercise NN.k: title` line in the cell overrides it.
    """
    lines = source.splitlines(keepends=True)
    out: list[str] = []
    ids: list[str] = []
    current = heading
    i = 0
    while i < len(lines):
        line, stripped = lines[i], lines[i].strip()
        if (m := EXERCISE.match(line)) is not None:
            current = (m.group(1), m.group(2))
        if stripped == END:
            raise ExerciseError(f"{where}, line {i + 1}: `{END}` without a `{BEGIN}` before it")
        if ("BEGIN SOLUTION" in line or "END SOLUTION" in line) and stripped != BEGIN:
            raise ExerciseError(f"{where}, line {i + 1}: write the marker exactly as `{BEGIN}` / `{END}` on its "
                                f"own line (found {stripped!r})")
        if stripped != BEGIN:
            out.append(line)
            i += 1
            continue
        j = i + 1
        while j < len(lines) and lines[j].strip() != END:
            if lines[j].strip() == BEGIN:
                raise ExerciseError(f"{where}, line {j + 1}: a second `{BEGIN}` before the `{END}` of line {i + 1}")
            j += 1
        if j == len(lines):
            raise ExerciseError(f"{where}, line {i + 1}: `{BEGIN}` has no matching `{END}`")
        if current is None:
            raise ExerciseError(f"{where}, line {i + 1}: no `# Exercise NN.k: title` line above this solution "
                                f"(in the cell or in a markdown cell just above it)")
        indent = line[: len(line) - len(line.lstrip())]
        newline = "\n" if lines[j].endswith("\n") else ""
        out.append(f"{indent}# YOUR CODE HERE\n")
        out.append(f"{indent}raise NotImplementedError({_literal(f'Exercise {current[0]}: {current[1]}')}){newline}")
        ids.append(current[0])
        i = j + 1
    return "".join(out), ids


def solution_meta(exercise: str) -> dict:
    """nbgrader's "autograded answer" metadata for the solution cell of `exercise` ('01.1')."""
    return {"grade": False, "grade_id": "exercise_" + exercise.replace(".", "_"), "locked": False,
            "schema_version": NBGRADER_SCHEMA, "solution": True, "task": False}


def check_meta(exercise: str, points: float = 1) -> dict:
    """nbgrader's "autograder tests" metadata for the check cell of `exercise`: graded, locked, `points`."""
    return {"grade": True, "grade_id": "check_" + exercise.replace(".", "_"), "locked": True, "points": points,
            "schema_version": NBGRADER_SCHEMA, "solution": False, "task": False}


def add_grading(nb: dict, name: str, *, strict: bool = True) -> tuple[dict, list[str]]:
    """A copy of notebook `nb` whose solution and check cells carry nbgrader metadata; returns (copy, exercise ids).

    One solution cell holds one exercise, and the next code cell must call its check (so nbgrader can grade it);
    otherwise ExerciseError, or with strict=False a warning on stderr and no metadata on that cell.
    """
    nb = copy.deepcopy(nb)
    cells = nb.get("cells", [])
    for cell in cells:
        cell.get("metadata", {}).pop("nbgrader", None)          # rewritten from the markers every time
    ids: list[str] = []
    above: list[dict] = []
    for k, cell in enumerate(cells):
        if cell.get("cell_type") != "code":
            above.append(cell)
            continue
        text, heading = _text(cell), _heading(above)
        above = []
        if BEGIN not in text:
            continue
        where = f"{name}, cell {k + 1}"
        found = sorted(set(strip_solutions(text, heading=heading, where=where)[1]))
        nxt = next((j for j in range(k + 1, len(cells)) if cells[j].get("cell_type") == "code"), None)
        problem = (f"{where}: one solution cell holds one exercise for nbgrader, found {found}" if len(found) != 1
                   else f"{where}: the code cell after Exercise {found[0]}'s solution must call its check "
                        f"(`check_...(your_function)`), so that nbgrader can grade it"
                   if nxt is None or not CHECK_CALL.search(_text(cells[nxt])) or BEGIN in _text(cells[nxt]) else None)
        if problem is not None:
            if strict:
                raise ExerciseError(problem)
            print(f"warning: {problem}; no nbgrader metadata", file=sys.stderr)
            continue
        cell.setdefault("metadata", {})["nbgrader"] = solution_meta(found[0])
        cells[nxt].setdefault("metadata", {})["nbgrader"] = check_meta(found[0])
        ids.append(found[0])
    return nb, ids


def _heading(above: list[dict]) -> tuple[str, str] | None:
    """The last `Exercise NN.k: title` line in the markdown cells above a code cell."""
    heading = None
    for md in above:
        for line in _text(md).splitlines():
            if (hm := EXERCISE.match(line)) is not None:
                heading = (hm.group(1), hm.group(2))
    return heading


def _learner_badges(text: str, name: str) -> str:
    """The badge line of the title cell pointed at the learner copy notebooks/exercises/`name`."""
    from scripts import links

    return re.sub(r"(?m)^\[!\[Open In Colab\]\(.*$", lambda _: links.badges(f"notebooks/exercises/{name}"), text, count=1)


def make_exercise(nb: dict, name: str) -> tuple[dict, list[str]]:
    """The learner copy of notebook `nb` (named `name`, e.g. '02_unstructured.ipynb') and its exercise ids."""
    if nb.get("nbformat") != 4:
        raise ExerciseError(f"{name}: expected an nbformat 4 notebook, got nbformat {nb.get('nbformat')!r}")
    m = NOTEBOOK.match(name)
    number = m.group(1) if m else None
    nb = copy.deepcopy(nb)
    ids: list[str] = []
    above: list[dict] = []                       # the markdown cells since the last code cell
    for k, cell in enumerate(nb.get("cells", [])):
        cid = f" (id {cell['id']!r})" if "id" in cell else ""
        where = f"{name}, cell {k + 1}{cid}"
        text = _text(cell)
        if cell.get("cell_type") != "code":
            if "BEGIN SOLUTION" in text or "END SOLUTION" in text:
                raise ExerciseError(f"{where}: solution markers belong in code cells, this one is {cell.get('cell_type')}")
            if k == 0 and "[![Open In Colab]" in text:
                _set_text(cell, _learner_badges(text, name))
            above.append(cell)
            continue
        heading = _heading(above)
        new, found = strip_solutions(text, heading=heading, where=where)
        for ex in found:
            if number is not None and not ex.startswith(number + "."):
                raise ExerciseError(f"{where}: Exercise {ex} is in notebook {number}; number it {number}.k")
            if not any(HINT in _text(md) for md in above):
                print(f"warning: {where}: Exercise {ex} has no `<details><summary>Hint</summary>` cell above it",
                      file=sys.stderr)
        if found:
            _set_text(cell, new)
            ids.extend(found)
        cell["outputs"] = []
        cell["execution_count"] = None
        above = []
    nb.get("metadata", {}).pop("widgets", None)  # saved widget state belongs to the stripped outputs
    return nb, ids


def render(nb: dict) -> str:
    """The notebook as nbformat writes it: JSON, indent 1, sorted keys, UTF-8, final newline."""
    return json.dumps(nb, indent=1, sort_keys=True, ensure_ascii=False) + "\n"


def plan(folder: Path) -> dict[Path, str | None]:
    """Every learner copy `folder/exercises/NN_*.ipynb` and its wanted content (None: it should not exist), and
    every notebook `folder/NN_*.ipynb` whose nbgrader metadata must change."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ExerciseError(f"{folder} is not a folder of notebooks")
    out_dir = folder / "exercises"
    wanted: dict[Path, str | None] = {}
    for path in sorted(folder.glob("*.ipynb")):
        if not NOTEBOOK.match(path.name):
            continue
        try:
            nb = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise ExerciseError(f"{path.name}: not valid notebook JSON ({exc})") from None
        graded, _ = add_grading(nb, path.name, strict=False)
        if graded != nb:                               # the teacher notebook's nbgrader metadata is out of step
            wanted[path] = render(graded)
        copy_nb, ids = make_exercise(graded, path.name)
        if ids:
            wanted[out_dir / path.name] = render(copy_nb)
    for path in sorted(out_dir.glob("*.ipynb")) if out_dir.is_dir() else []:
        if NOTEBOOK.match(path.name) and path not in wanted:
            wanted[path] = None
    return wanted


def _current(path: Path) -> str | None:
    return path.read_text(encoding="utf-8") if path.exists() else None


def generate(folder: Path) -> list[Path]:
    """Write the learner copies that changed and delete orphaned ones; returns the paths touched."""
    touched = []
    for path, text in plan(folder).items():
        if text is None:
            path.unlink()
            touched.append(path)
        elif _current(path) != text:
            atomic_write_bytes(path, text.encode("utf-8"))
            touched.append(path)
    return touched


def stale(folder: Path) -> list[str]:
    """One line per learner copy that is missing, out of date, or orphaned (its notebook has no exercises)."""
    problems = []
    for path, text in plan(folder).items():
        have = _current(path)
        if text is None:
            problems.append(f"{path}: orphaned (its notebook is gone or has no solutions)")
        elif have is None:
            problems.append(f"{path}: missing")
        elif have != text:
            problems.append(f"{path}: " + ("out of date" if path.parent.name == "exercises"
                                           else "nbgrader metadata out of date"))
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m scripts.exercises", description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path, help="the notebooks folder (copies go to FOLDER/exercises/)")
    parser.add_argument("--check", action="store_true", help="do not write; exit 1 if any copy is stale")
    args = parser.parse_args(argv)
    try:
        if args.check:
            problems = stale(args.folder)
            for line in problems:
                print(line)
            if problems:
                print(f"{len(problems)} stale learner copies: run `make exercises`", file=sys.stderr)
            return 1 if problems else 0
        for path in generate(args.folder):
            print(f"{'removed' if not path.exists() else 'wrote'} {path}")
        return 0
    except ExerciseError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
