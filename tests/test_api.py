"""The names notebooks import from `course` all resolve, and unknown names fail clearly."""
import pytest

import course


def test_every_exported_name_resolves():
    missing = [name for name in course.__all__ if getattr(course, name, None) is None]
    assert missing == []


def test_unknown_name_raises_attribute_error():
    with pytest.raises(AttributeError, match="no attribute 'prune_everything'"):
        course.prune_everything  # noqa: B018


def test_exported_names_are_the_functions_not_same_named_submodules():
    # `course.train` and `course.show` are modules *and* functions; whichever was imported first, the package
    # attribute must stay the function (importing the submodule binds the module onto the package otherwise).
    import subprocess
    import sys
    code = ("import course.train, course.show, course.capstone, course.widgets\n"
            "from course import train, show\n"
            "import types\n"
            "bad = [f.__name__ for f in (train, show) if isinstance(f, types.ModuleType)]\n"
            "assert not bad, bad\n"
            "from course.train import evaluate\n"
            "assert callable(train) and callable(show) and callable(evaluate)\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr


def test_every_name_in_all_is_exported_as_an_object_not_a_module():
    import types
    modules = [name for name in course.__all__ if isinstance(getattr(course, name), types.ModuleType)]
    assert modules == []
