"""The learner-copy generator (scripts/exercises.py, `make exercises`) and the staleness of the committed copies."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from scripts import exercises
from scripts.exercises import ExerciseError, make_exercise, render, strip_solutions

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = ROOT / "notebooks"

MASK_CELL = '''\
# Exercise 02.1: a magnitude mask
def magnitude_mask(weight, sparsity):
    """True = kept."""
    ### BEGIN SOLUTION
    k = round(sparsity * weight.numel())
    return weight.abs() > weight.abs().flatten().kthvalue(k).values
    ### END SOLUTION
'''

TWO_CELL = '''\
# Exercise 02.2: bytes of a bitmask
def bitmask_bytes(weight):
    ### BEGIN SOLUTION
    return math.ceil(weight.numel() / 8) + 2 * int((weight != 0).sum())
    ### END SOLUTION

# Exercise 02.3: a "Taylor" score
class Scorer:
    def score(self, w, g):
        if True:
            ### BEGIN SOLUTION
            return (w * g).abs()
            ### END SOLUTION
print("defined")'''


def synthetic() -> nbformat.NotebookNode:
    """A small notebook with a markdown hint, two exercise cells and a plain cell, executed (outputs present)."""
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.metadata["custom"] = {"keep": [1, 2, 3]}
    md = nbformat.v4.new_markdown_cell("## Exercise 02.1: a magnitude mask\n\n<details><summary>Hint</summary>"
                                       "Use `kthvalue`.</details>")
    ex1 = nbformat.v4.new_code_cell(MASK_CELL, execution_count=3,
                                    outputs=[nbformat.v4.new_output("stream", name="stdout", text="hi\n")])
    ex1.metadata["tags"] = ["exercise"]
    hint2 = nbformat.v4.new_markdown_cell("<details><summary>Hint</summary>Two in one cell.</details>")
    ex2 = nbformat.v4.new_code_cell(TWO_CELL, execution_count=4)
    plain = nbformat.v4.new_code_cell("x = 1 + 1\nx", execution_count=5, outputs=[
        nbformat.v4.new_output("execute_result", data={"text/plain": "2"}, execution_count=5)])
    nb.cells = [md, ex1, hint2, ex2, plain]
    for i, cell in enumerate(nb.cells):
        cell["id"] = f"cell-{i}"
    return nb


def as_dict(nb) -> dict:
    return json.loads(nbformat.writes(nb))


def test_solution_is_replaced_by_a_stub_at_the_same_indentation():
    out, ids = strip_solutions(MASK_CELL)
    assert ids == ["02.1"]
    assert "kthvalue" not in out and "BEGIN SOLUTION" not in out
    assert out == ('# Exercise 02.1: a magnitude mask\ndef magnitude_mask(weight, sparsity):\n    """True = kept."""\n'
                   '    # YOUR CODE HERE\n    raise NotImplementedError("Exercise 02.1: a magnitude mask")\n')


def test_a_cell_with_two_exercises_gets_two_stubs_with_their_own_ids():
    out, ids = strip_solutions(TWO_CELL)
    assert ids == ["02.2", "02.3"]
    assert '    raise NotImplementedError("Exercise 02.2: bytes of a bitmask")\n' in out
    assert '            raise NotImplementedError("Exercise 02.3: a \\"Taylor\\" score")\n' in out
    assert out.endswith('print("defined")')
    compile(out, "learner copy", "exec")                   # still valid Python


def test_learner_copy_strips_outputs_and_keeps_everything_else():
    src = as_dict(synthetic())
    copy_nb, ids = make_exercise(src, "02_unstructured.ipynb")
    assert ids == ["02.1", "02.2", "02.3"]
    assert copy_nb["metadata"] == src["metadata"] and copy_nb["nbformat_minor"] == src["nbformat_minor"]
    assert len(copy_nb["cells"]) == len(src["cells"])
    for new, old in zip(copy_nb["cells"], src["cells"]):
        assert new["id"] == old["id"] and new["metadata"] == old["metadata"] and new["cell_type"] == old["cell_type"]
        if old["cell_type"] == "code":
            assert new["outputs"] == [] and new["execution_count"] is None
        else:
            assert new == old                                   # markdown (hints included) untouched
    assert copy_nb["cells"][4]["source"] == src["cells"][4]["source"]
    assert "Exercise 02.1: a magnitude mask" in "".join(copy_nb["cells"][1]["source"])
    assert src["cells"][1]["outputs"], "the source notebook must not be modified"
    nbformat.validate(nbformat.reads(render(copy_nb), as_version=4))


def test_learner_copy_drops_the_saved_widget_state_with_the_outputs():
    src = as_dict(synthetic())
    src["metadata"]["widgets"] = {"application/vnd.jupyter.widget-state+json": {"state": {"m1": {}}}}
    copy_nb, _ = make_exercise(src, "02_unstructured.ipynb")
    assert "widgets" not in copy_nb["metadata"] and "kernelspec" in copy_nb["metadata"]
    assert "widgets" in src["metadata"], "the source notebook must not be modified"


def test_the_heading_can_come_from_the_markdown_cell_above():
    nb = as_dict(synthetic())
    nb["cells"][1]["source"] = MASK_CELL.replace("# Exercise 02.1: a magnitude mask\n", "").splitlines(True)
    copy_nb, ids = make_exercise(nb, "02_unstructured.ipynb")
    assert ids[0] == "02.1"
    assert 'raise NotImplementedError("Exercise 02.1: a magnitude mask")' in "".join(copy_nb["cells"][1]["source"])


def test_generation_is_deterministic_and_written_like_nbformat(tmp_path):
    nb = synthetic()
    nbformat.write(nb, tmp_path / "02_unstructured.ipynb")
    nbformat.write(nbformat.v4.new_notebook(), tmp_path / "03_structured.ipynb")    # no solutions: no copy
    (tmp_path / "scratch.ipynb").write_text("not even json")                         # not NN_*: ignored
    touched = exercises.generate(tmp_path)
    out = tmp_path / "exercises" / "02_unstructured.ipynb"
    assert touched == [out]
    first = out.read_bytes()
    assert exercises.generate(tmp_path) == []               # nothing changed: nothing rewritten
    assert out.read_bytes() == first
    assert first.decode() == nbformat.writes(nbformat.reads(first.decode(), as_version=4)) + "\n"
    assert not (tmp_path / "exercises" / "03_structured.ipynb").exists()
    assert [p.name for p in (tmp_path / "exercises").iterdir()] == ["02_unstructured.ipynb"]   # no temp files left


def test_check_mode_lists_stale_missing_and_orphaned_copies(tmp_path):
    nbformat.write(synthetic(), tmp_path / "02_unstructured.ipynb")
    assert exercises.stale(tmp_path) == [f"{tmp_path / 'exercises' / '02_unstructured.ipynb'}: missing"]
    exercises.generate(tmp_path)
    assert exercises.stale(tmp_path) == []
    nb = synthetic()
    nb.cells[4].source = "x = 3"
    nbformat.write(nb, tmp_path / "02_unstructured.ipynb")
    (tmp_path / "exercises" / "05_local_vs_global.ipynb").write_text("{}")
    assert [line.split(": ")[1] for line in exercises.stale(tmp_path)] == ["out of date", "orphaned (its notebook is gone or has no solutions)"]
    cli = [sys.executable, "-m", "scripts.exercises"]
    res = subprocess.run([*cli, "--check", str(tmp_path)], capture_output=True, text=True, cwd=ROOT)
    assert res.returncode == 1 and "02_unstructured.ipynb: out of date" in res.stdout
    assert subprocess.run([*cli, str(tmp_path)], capture_output=True, text=True, cwd=ROOT).returncode == 0
    assert not (tmp_path / "exercises" / "05_local_vs_global.ipynb").exists()
    assert subprocess.run([*cli, "--check", str(tmp_path)], capture_output=True, text=True, cwd=ROOT).returncode == 0


@pytest.mark.parametrize("source, message", [
    (MASK_CELL.replace("    ### END SOLUTION\n", ""), "02_unstructured.ipynb, cell 2 (id 'cell-1'), line 4: "
                                                          "`### BEGIN SOLUTION` has no matching `### END SOLUTION`"),
    (MASK_CELL.replace("    ### BEGIN SOLUTION\n", ""), "cell 2 (id 'cell-1'), line 6: `### END SOLUTION` without"),
    (MASK_CELL.replace("### END", "### BEGIN"), "line 7: a second `### BEGIN SOLUTION` before the `### END SOLUTION`"),
    (MASK_CELL.replace("### BEGIN SOLUTION", "## BEGIN SOLUTION"), "write the marker exactly"),
    (MASK_CELL.replace("02.1", "03.1"), "Exercise 03.1 is in notebook 02; number it 02.k"),
])
def test_malformed_exercises_raise_a_clear_error_naming_notebook_and_cell(source, message):
    nb = as_dict(synthetic())
    nb["cells"][1]["source"] = source
    with pytest.raises(ExerciseError) as err:
        make_exercise(nb, "02_unstructured.ipynb")
    assert message in str(err.value)


def test_a_solution_without_an_exercise_line_is_an_error():
    nb = as_dict(synthetic())
    nb["cells"][0]["source"] = "Some text, no heading."
    nb["cells"][1]["source"] = MASK_CELL.replace("# Exercise 02.1: a magnitude mask\n", "")
    with pytest.raises(ExerciseError, match=r"cell 2 .* no `# Exercise NN.k: title` line above"):
        make_exercise(nb, "02_unstructured.ipynb")


def test_the_cli_reports_errors_with_exit_code_2(tmp_path):
    nb = synthetic()
    nb.cells[1].source = MASK_CELL.replace("    ### END SOLUTION\n", "")
    nbformat.write(nb, tmp_path / "02_unstructured.ipynb")
    res = subprocess.run([sys.executable, "-m", "scripts.exercises", str(tmp_path)], capture_output=True, text=True,
                         cwd=ROOT)
    assert res.returncode == 2 and "02_unstructured.ipynb, cell 2" in res.stderr
    assert not (tmp_path / "exercises").exists()


def test_committed_learner_copies_are_up_to_date():
    with_solutions = [p for p in sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb")) if "### BEGIN SOLUTION" in p.read_text()]
    if not with_solutions:
        pytest.skip("no notebook in notebooks/ has solutions yet (### BEGIN SOLUTION)")
    problems = exercises.stale(NOTEBOOKS)
    assert not problems, "stale learner copies, run `make exercises`:\n" + "\n".join(problems)
    for nb in with_solutions:
        assert (NOTEBOOKS / "exercises" / nb.name).exists()


# --- nbgrader metadata -------------------------------------------------------------------------------------------

def gradable() -> dict:
    """The synthetic notebook with its second exercise cell split in two, and a check cell after each exercise."""
    nb = as_dict(synthetic())
    check1 = nbformat.v4.new_code_cell("check_magnitude_mask(magnitude_mask)")
    check1["id"] = "check-1"
    nb["cells"] = nb["cells"][:2] + [json.loads(json.dumps(check1))] + nb["cells"][2:3] + [nb["cells"][4]]
    return nb


def test_solution_and_check_cells_get_nbgrader_metadata():
    nb, ids = exercises.add_grading(gradable(), "02_unstructured.ipynb")
    assert ids == ["02.1"]
    meta = [c["metadata"].get("nbgrader") for c in nb["cells"]]
    assert meta[1] == {"grade": False, "grade_id": "exercise_02_1", "locked": False, "schema_version": 3,
                       "solution": True, "task": False}
    assert meta[2] == {"grade": True, "grade_id": "check_02_1", "locked": True, "points": 1, "schema_version": 3,
                       "solution": False, "task": False}
    assert [m for i, m in enumerate(meta) if i not in (1, 2)] == [None] * (len(meta) - 2)
    assert nb["cells"][1]["metadata"]["tags"] == ["exercise"]                 # other metadata kept


def test_stale_nbgrader_metadata_is_removed_and_the_input_is_untouched():
    src = gradable()
    src["cells"][4]["metadata"]["nbgrader"] = {"grade": True, "grade_id": "old", "points": 3}
    before = json.dumps(src, sort_keys=True)
    nb, _ = exercises.add_grading(src, "02_unstructured.ipynb")
    assert "nbgrader" not in nb["cells"][4]["metadata"] and json.dumps(src, sort_keys=True) == before


@pytest.mark.parametrize("change, message", [
    (lambda nb: nb["cells"].pop(2), "must call its check"),
    (lambda nb: nb["cells"].insert(2, nb["cells"][3]), "one solution cell holds one exercise for nbgrader"),
])
def test_an_exercise_nbgrader_cannot_grade_is_an_error_or_a_warning(change, message, capsys):
    nb = gradable()
    if message.startswith("one solution"):
        nb["cells"][1]["source"] = TWO_CELL                     # two exercises in one cell
    else:
        change(nb)
    with pytest.raises(ExerciseError, match=message):
        exercises.add_grading(nb, "02_unstructured.ipynb")
    lenient, _ = exercises.add_grading(nb, "02_unstructured.ipynb", strict=False)
    assert message in capsys.readouterr().err and "nbgrader" not in lenient["cells"][1]["metadata"]


def test_every_course_exercise_is_graded_by_nbgrader_in_the_notebooks_and_learner_copies():
    for path in sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb")):
        nb = json.loads(path.read_text())
        _, ids = make_exercise(nb, path.name)
        graded, graded_ids = exercises.add_grading(nb, path.name)          # strict: raises if one is not gradable
        assert graded == nb, f"{path.name}: nbgrader metadata out of step, run `make exercises`"
        assert graded_ids == ids
        copy_cells = json.loads((NOTEBOOKS / "exercises" / path.name).read_text())["cells"] if ids else []
        assert [c["metadata"].get("nbgrader") for c in copy_cells] == [c["metadata"].get("nbgrader") for c in nb["cells"]][:len(copy_cells)]


def test_a_build_keeps_the_nbgrader_metadata(tmp_path, monkeypatch):
    from scripts import nb as nb_script

    path = NOTEBOOKS / "06_when_to_prune.ipynb"
    out = tmp_path / "notebooks" / path.name
    out.parent.mkdir()
    out.write_bytes(path.read_bytes())
    src = tmp_path / "06_when_to_prune.py"
    src.write_bytes((NOTEBOOKS / "src" / src.name).read_bytes())
    monkeypatch.setattr(nb_script, "ROOT", tmp_path)
    nb_script.build(src)                                        # jupytext --update alone would drop the metadata
    assert out.read_bytes() == path.read_bytes()


def test_an_nbgrader_course_folder_from_the_course_notebooks(tmp_path):
    from scripts import grading

    written = grading.write_course(NOTEBOOKS, tmp_path / "course", ["01", "06_when_to_prune"])
    assert [p.relative_to(tmp_path / "course").as_posix() for p in written] == [
        "source/01_what_is_pruning/01_what_is_pruning.ipynb", "source/06_when_to_prune/06_when_to_prune.ipynb"]
    config = (tmp_path / "course" / "nbgrader_config.py").read_text()
    assert 'os.environ["COURSE_CHECKS"] = "raise"' in config and 'os.environ.setdefault("COURSE_FAST", "1")' in config
    nb = json.loads(written[0].read_text())
    assert all(c.get("outputs", []) == [] for c in nb["cells"]) and "widgets" not in nb["metadata"]
    assert [c["metadata"]["nbgrader"]["grade_id"] for c in nb["cells"] if "nbgrader" in c["metadata"]] == [
        "exercise_01_1", "check_01_1", "exercise_01_2", "check_01_2", "exercise_01_3", "check_01_3"]


def test_an_nbgrader_course_needs_notebooks_with_exercises(tmp_path):
    from scripts import grading

    nbformat.write(nbformat.v4.new_notebook(), tmp_path / "03_structured.ipynb")
    with pytest.raises(ExerciseError, match="no exercises, nothing for nbgrader to grade"):
        grading.write_course(tmp_path, tmp_path / "course", ["03"])
    with pytest.raises(ExerciseError, match="no single notebook '04'"):
        grading.write_course(tmp_path, tmp_path / "course", ["04"])
    assert not (tmp_path / "course").exists()
    res = subprocess.run([sys.executable, "-m", "scripts.grading", str(tmp_path / "course"), "03", "--from",
                          str(tmp_path)], capture_output=True, text=True, cwd=ROOT)
    assert res.returncode == 2 and "nothing for nbgrader to grade" in res.stderr
