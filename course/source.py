"""Show a library function's source in a notebook, when the code itself is the lesson.

Introduced in 02_unstructured
"""
from __future__ import annotations

import inspect
from collections.abc import Callable

__all__ = ["Source", "show"]


class Source:
    """A function's source code: prints as text, renders as a highlighted code block in Jupyter."""

    def __init__(self, fn: Callable):
        self.name = getattr(fn, "__qualname__", repr(fn))
        self.source = inspect.getsource(fn)

    def __repr__(self) -> str:
        return self.source

    def _repr_markdown_(self) -> str:
        return f"```python\n{self.source}```"


def show(fn: Callable) -> Source:
    """Return an object that displays `fn`'s source code (syntax-highlighted in Jupyter)."""
    if not callable(fn):
        raise TypeError(f"show() takes a function or class, got {type(fn).__name__}")
    return Source(fn)
