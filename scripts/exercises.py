"""Learner copies of the notebooks: every solution replaced by a stub, every output stripped.

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
the copy keeps it and the generator warns when an exercise has none.
"""
from __future__ import annotations

import argparse
import copy
import json
import re
import sys
from pathlib import Path

from course.files import atomic_write_bytes

__all__ = ["ExerciseError", "strip_solutions", "make_exercise", "render", "plan", "generate", "stale", "main"]

BEGIN, END = "### BEGIN SOLUTION", "### END SOLUTION"
NOTEBOOK = re.compile(r"^(\d{2})_.+\.ipynb$")
EXERCISE = re.compile(r"^\s*(?:#+|>)?\s*(?:\*\*)?\s*Exercise\s+(\d{2}\.\d+)\s*:\s*(.+?)\s*(?:\*\*)?\s*$")
HINT = "<summary>Hint"


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
            above.append(cell)
            continue
        heading = None
        for md in above:
            for line in _text(md).splitlines():
                if (hm := EXERCISE.match(line)) is not None:
                    heading = (hm.group(1), hm.group(2))
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
    """Every learner copy `folder/exercises/NN_*.ipynb` and its wanted content (None: it should not exist)."""
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
        copy_nb, ids = make_exercise(nb, path.name)
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
            problems.append(f"{path}: out of date")
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
