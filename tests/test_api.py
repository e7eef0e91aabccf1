"""The names notebooks import from `course` all resolve, and unknown names fail clearly."""
import pytest

import course


def test_every_exported_name_resolves():
    missing = [name for name in course.__all__ if getattr(course, name, None) is None]
    assert missing == []


def test_unknown_name_raises_attribute_error():
    with pytest.raises(AttributeError, match="no attribute 'prune_everything'"):
        course.prune_everything  # noqa: B018


def test_no_exported_name_is_also_a_submodule():
    # A submodule is bound onto its package when imported, so a name shared by a function and a module would flip
    # from one to the other depending on import order. The layout avoids it: the loop lives in course.training.
    import pkgutil
    submodules = {m.name for m in pkgutil.iter_modules(course.__path__)}
    assert submodules & set(course.__all__) == set()


def test_train_and_show_are_functions_whatever_was_imported_first():
    import subprocess
    import sys
    code = ("import course.training, course.source, course.lessons.sensitivity, course.widgets\n"
            "from course import train, show, evaluate\n"
            "import types\n"
            "assert all(callable(f) and not isinstance(f, types.ModuleType) for f in (train, show, evaluate))\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr


def test_every_name_in_all_is_exported_as_an_object_not_a_module():
    import types
    modules = [name for name in course.__all__ if isinstance(getattr(course, name), types.ModuleType)]
    assert modules == []
