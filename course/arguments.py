"""Argument checks, in one place, so that a function's first lines show its mechanism instead of its guards.

    sparsity = arguments.sparsity(sparsity)                   # a float in [0, 1), or a clear error
    steps = arguments.integer(steps, "steps", low=1)
    scope = arguments.choice(scope, SCOPES, "scope")

Every check returns the value in its canonical form (float, int, tuple) or raises TypeError (wrong type) or
ValueError (right type, outside the valid range) with a message that names the parameter and what is valid.
A bool is never a number here (True is an int to Python, but `sparsity=True` is a mistake), and a bare string is
never a list of names unless the function says it accepts one (`exclude="fc1"`).
"""
from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Collection, Iterable
from typing import Any

__all__ = ["number", "sparsity", "ratio", "fraction", "integer", "choice", "boolean", "function", "names", "each"]


def _got(value: Any) -> str:
    return f"{type(value).__name__} {value!r}"


def _interval(low: float | None, high: float | None, low_open: bool, high_open: bool) -> str:
    """'[0, 1)', '(0, 1)', '>= 1' or '<= 5', for messages."""
    if low is not None and high is not None:
        return f"{'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"
    if low is not None:
        return f"{'>' if low_open else '>='} {low:g}"
    return f"{'<' if high_open else '<='} {high:g}" if high is not None else "any real number"


def number(value: Any, name: str, *, low: float | None = None, high: float | None = None, low_open: bool = False,
           high_open: bool = False, none: bool = False, meaning: str = "") -> float | None:
    """`value` as a float inside [low, high] (ends open as asked); None passes when `none=True`; NaN never does."""
    if value is None and none:
        return None
    where = "" if low is None and high is None else _interval(low, high, low_open, high_open)
    where = f" in {where}" if where and where[0] in "[(" else f" {where}" if where else ""
    what = f"{name} must be a number{where}{' or None' if none else ''}{f' ({meaning})' if meaning else ''}"
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{what}, got {_got(value)}")
    x = float(value)
    if math.isnan(x) or (low is not None and (x <= low if low_open else x < low)) \
            or (high is not None and (x >= high if high_open else x > high)):
        raise ValueError(f"{what}, got {value!r}")
    return x


def sparsity(value: Any, name: str = "sparsity") -> float:
    """A sparsity: a float in [0, 1), the fraction of weights set to zero."""
    return number(value, name, low=0.0, high=1.0, high_open=True, meaning="fraction of weights set to zero")


def ratio(value: Any, name: str = "ratio") -> float:
    """A unit ratio: a float in [0, 1), the fraction of units (neurons, channels) removed."""
    return number(value, name, low=0.0, high=1.0, high_open=True, meaning="fraction of units removed")


def fraction(value: Any, name: str, *, closed: bool = False, none: bool = False, meaning: str = "") -> float | None:
    """A fraction in [0, 1) (or [0, 1] with `closed=True`); None passes when `none=True`."""
    return number(value, name, low=0.0, high=1.0, high_open=not closed, none=none, meaning=meaning)


def integer(value: Any, name: str, *, low: int | None = None, high: int | None = None, none: bool = False,
            meaning: str = "") -> int | None:
    """`value` as an int in [low, high]; numpy integers pass, floats and bools do not; None passes when `none`."""
    if value is None and none:
        return None
    where = f"between {low} and {high}" if low is not None and high is not None else _interval(low, high, False, False)
    what = f"{name} must be an int {where}{' or None' if none else ''}{f' ({meaning})' if meaning else ''}"
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{what}, got {_got(value)}")
    if (low is not None and value < low) or (high is not None and value > high):
        raise ValueError(f"{what}, got {value!r}")
    return int(value)


def choice(value: Any, choices: Collection, name: str) -> Any:
    """`value` if it is one of `choices`; else ValueError 'unknown <name> ...; choose one of [...]'."""
    try:
        ok = value in choices
    except TypeError:                                    # an unhashable value asked of a dict or set
        ok = False
    if not ok:
        raise ValueError(f"unknown {name} {value!r}; choose one of {list(choices)}")
    return value


def boolean(value: Any, name: str) -> bool:
    """`value` if it is True or False; the strings 'False', 0 and None are refused (they are not what they say)."""
    if not isinstance(value, bool):
        raise TypeError(f"{name} must be True or False, got {_got(value)}")
    return value


def function(value: Any, name: str, *, signature: str = "", none: bool = False) -> Callable | None:
    """`value` if it is callable (None passes when `none`); `signature` shows the expected call in the message."""
    if value is None and none:
        return None
    if not callable(value):
        call = f" {signature}" if signature else ""
        raise TypeError(f"{name} must be a callable{call}{' or None' if none else ''}, got {_got(value)}")
    return value


def names(value: Any, name: str, *, single: bool = True) -> tuple[str, ...]:
    """A tuple of names from a list/tuple/set of str; a bare str is one name when `single`, else a TypeError."""
    if isinstance(value, str):
        if single:
            return (value,)
        raise TypeError(f"{name} must be a list of names, got the string {value!r} (write [{value!r}])")
    if not isinstance(value, Iterable) or isinstance(value, (bytes, dict)):
        raise TypeError(f"{name} must be a list of names, got {_got(value)}")
    out = tuple(value)
    bad = [v for v in out if not isinstance(v, str)]
    if bad:
        raise TypeError(f"{name} must be a list of names (strings), got {bad[0]!r} among them")
    return out


def each(values: Any, name: str, check: Callable[[Any, str], Any], *, distinct: bool = False) -> list:
    """`[check(v, name) for v in values]` for a non-empty list or tuple (a bare str or a lone number is refused)."""
    if isinstance(values, (str, bytes)) or not isinstance(values, Iterable):
        raise TypeError(f"{name} must be a list, e.g. [0.5, 0.9], got {_got(values)}")
    out = [check(v, name) for v in values]
    if not out:
        raise ValueError(f"{name} must be a non-empty list (at least one value), got an empty {type(values).__name__}")
    if distinct and len(set(out)) != len(out):
        raise ValueError(f"{name} must hold distinct values, got {list(values)}")
    return out
