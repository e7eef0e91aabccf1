"""The names notebooks import from `course` all resolve, and unknown names fail clearly."""
import pytest

import course


def test_every_exported_name_resolves():
    missing = [name for name in course.__all__ if getattr(course, name, None) is None]
    assert missing == []


def test_unknown_name_raises_attribute_error():
    with pytest.raises(AttributeError, match="no attribute 'prune_everything'"):
        course.prune_everything  # noqa: B018
