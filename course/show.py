"""Show a library function's source in a notebook, when the code itself is the lesson."""
from __future__ import annotations

import inspect


class _Source:
    def __init__(self, fn):
        self.name = getattr(fn, "__qualname__", repr(fn))
        self.source = inspect.getsource(fn)

    def __repr__(self) -> str:
        return self.source

    def _repr_markdown_(self) -> str:
        return f"```python\n{self.source}```"


def show(fn) -> _Source:
    """Return an object that displays `fn`'s source code (syntax-highlighted in Jupyter)."""
    if not callable(fn):
        raise TypeError(f"show() takes a function or class, got {type(fn).__name__}")
    return _Source(fn)
