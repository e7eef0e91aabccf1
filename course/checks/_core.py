"""The checks framework: `CheckResult`, the `@check` decorator, and safe calls into a learner's function.

A check is `check_<thing>(learner_fn) -> CheckResult`. Its body calls the learner's function through
`call(...)` on cases chosen to catch the usual mistakes and calls `fail("specific feedback")` on the first
one it sees; returning a string means success (the string says what was verified). The decorator turns

- a stub that raises `NotImplementedError` into "Not done yet: replace the NotImplementedError in Exercise NN.k",
- any other exception inside the learner's code into a failed result that names the exception and the case,
- an input changed in place into a failed result that names the argument,

so a notebook never shows a traceback from a check. Exceptions raised by the check itself are bugs and propagate.

Grading mode (`COURSE_CHECKS=raise`, which the nbgrader_config.py of `python -m scripts.grading` sets): a check
that does not pass raises `AssertionError("title: feedback")`, so an autograded check cell scores 0; a check that
passes prints its line and returns None (no result that nbgrader could read as partial credit). nbgrader also
scores a cell 0 when anything reaches stderr, so in grading mode what the learner's code writes there (a warning
from torch, say) is printed on stdout instead. The default, `COURSE_CHECKS=show`, returns the green or red box and
never raises.
"""
from __future__ import annotations

import contextlib
import copy
import functools
import io
import html
import inspect
import math
import os
import re
import traceback
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

__all__ = ["CheckResult", "Failure", "check", "call", "fail", "describe", "as_number", "pct", "isclose", "grading",
           "MODES"]

_STUB = re.compile(r"^\s*(Exercise\s+(?P<id>\d{2}\.\d+)(?::\s*(?P<title>.*?))?)?\s*$", re.S)


@dataclass(frozen=True)
class CheckResult:
    """The outcome of one check: `passed`, the feedback `message`, and the check's `title`. Truthy iff passed."""

    passed: bool
    message: str
    title: str = ""

    def __bool__(self) -> bool:
        return self.passed

    def __str__(self) -> str:
        head = "PASSED" if self.passed else "NOT YET"
        return f"{'✔' if self.passed else '✘'} {head} · {self.title}: {self.message}"

    def __repr__(self) -> str:
        return str(self)

    def _repr_html_(self) -> str:
        fg, bg, mark, head = (("#1e6b34", "#e7f5ea", "✔", "Passed") if self.passed
                              else ("#9b1c1c", "#fdecea", "✘", "Not yet"))
        return (f'<div style="border:2px solid {fg};background:{bg};color:{fg};border-radius:6px;'
                f'padding:8px 12px;margin:4px 0;font-family:sans-serif">'
                f'<b>{mark} {head} · {html.escape(self.title)}</b>'
                f'<div style="color:#222;margin-top:4px;white-space:pre-wrap">{html.escape(self.message)}</div></div>')


#: The values of `COURSE_CHECKS`: "show" (a green or red box, the default) and "raise" (grading).
MODES = ("show", "raise")


def grading() -> bool:
    """True when `COURSE_CHECKS=raise`; read at every call, so the environment of a running kernel decides."""
    mode = os.environ.get("COURSE_CHECKS", "show").strip().lower() or "show"
    if mode not in MODES:
        raise ValueError(f"COURSE_CHECKS must be one of {', '.join(MODES)}, got {mode!r}")
    return mode == "raise"


def _graded(run: Callable[[], CheckResult]) -> CheckResult | None:
    """The result as a notebook shows it; in grading mode an AssertionError (not passed) or a printed line (passed),
    with anything the learner's code wrote to stderr moved to stdout."""
    if not grading():
        return run()
    with contextlib.redirect_stderr(io.StringIO()) as err:
        result = run()
    if err.getvalue():
        print(f"Your code wrote to stderr during the check (shown here, where it does not cost the grade):\n"
              f"{err.getvalue().rstrip()}")
    if not result.passed:
        raise AssertionError(f"{result.title}: {result.message}")
    print(result)
    return None


class Failure(Exception):
    """Raised inside a check body to end it with a failed `CheckResult` carrying `message`."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


def fail(message: str) -> None:
    """End the running check with a failed result and this specific feedback."""
    raise Failure(message)


def pct(x: float) -> str:
    """A fraction as a short percentage: 0.1 -> '10%', 0.125 -> '12.5%'."""
    return f"{100 * x:.3g}%"


def describe(x) -> str:
    """A short human description of an argument, for messages: tensors by shape, modules by repr."""
    if isinstance(x, torch.Tensor):
        return f"a {str(x.dtype).replace('torch.', '')} tensor of shape {tuple(x.shape)}"
    if isinstance(x, nn.Module):
        return repr(x)
    if isinstance(x, dict):
        return "{" + ", ".join(f"{k!r}: {describe(v)}" for k, v in x.items()) + "}"
    if isinstance(x, (list, tuple)) and len(x) > 3:
        return f"a {type(x).__name__} of {len(x)} items"
    if isinstance(x, (set, frozenset)):       # a set's repr follows the hash seed: describe it the same every time
        return f"a {type(x).__name__} of {len(x)} items" + (" (a set has no order)" if len(x) > 1 else "")
    return repr(x)


def as_number(value, what: str) -> float:
    """Accept a Python number or a one-element tensor as a float; anything else fails with a message."""
    if isinstance(value, bool):
        fail(f"{what} should be a number, but your function returned the bool {value}.")
    if isinstance(value, torch.Tensor):
        if value.numel() != 1:
            fail(f"{what} should be a single number, but your function returned {describe(value)}.")
        return float(value.detach().reshape(()).item())
    if isinstance(value, (int, float)) or type(value).__module__ == "numpy" and hasattr(value, "item"):
        return float(value)
    fail(f"{what} should be a number, but your function returned {type(value).__name__} {value!r}.")
    raise AssertionError  # unreachable


# --- calling the learner's function -------------------------------------------------------------------

class _NotDone(Exception):
    def __init__(self, exercise: str | None, title: str | None):
        self.exercise, self.title = exercise, title


class _Raised(Exception):
    def __init__(self, exc: BaseException, case: str):
        self.exc, self.case = exc, case


def _same(a, b) -> bool:
    """Structural equality of an argument before and after a call (tensors, modules, containers)."""
    if isinstance(a, torch.Tensor):
        return (isinstance(b, torch.Tensor) and a.shape == b.shape and a.dtype == b.dtype
                and bool(torch.equal(a.detach(), b.detach())))
    if isinstance(a, nn.Module):
        if type(a) is not type(b):
            return False
        plain = (int, float, bool, str, tuple, type(None))
        attrs_a = {k: v for k, v in vars(a).items() if isinstance(v, plain) and k != "training"}
        attrs_b = {k: v for k, v in vars(b).items() if isinstance(v, plain) and k != "training"}
        return attrs_a == attrs_b and _same(a.state_dict(), b.state_dict())
    if isinstance(a, dict):
        return isinstance(b, dict) and list(a) == list(b) and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return type(a) is type(b) and len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    return bool(a == b)


def _where(exc: BaseException) -> str:
    """' (line N of fn_name)' for the innermost frame of the traceback, or ''."""
    frames = [f for f in traceback.extract_tb(exc.__traceback__)[1:]   # [0] is `call` itself
              if f.filename != __file__ and "site-packages" not in f.filename]
    if not frames:
        return ""
    last = frames[-1]
    return f" (line {last.lineno} of {last.name})"


def call(fn: Callable, *args, names: tuple[str, ...] = (), case: str | None = None, **kwargs):
    """Call the learner's `fn(*args, **kwargs)`; stubs, exceptions and in-place changes of inputs become feedback.

    `names` names the positional arguments in messages; `case` describes the call (built from the args if None).
    """
    names = tuple(names) + tuple(f"argument {i + 1}" for i in range(len(names), len(args)))
    shown = ", ".join([describe(a) if n.startswith("argument") else f"{n}={describe(a)}" for n, a in zip(names, args)]
                      + [f"{k}={describe(v)}" for k, v in kwargs.items()])
    case = case or f"{getattr(fn, '__name__', 'your function')}({shown})"
    before = copy.deepcopy((args, kwargs))
    try:
        out = fn(*args, **kwargs)
    except NotImplementedError as exc:
        m = _STUB.match(str(exc.args[0]) if exc.args else "")
        if m:
            raise _NotDone(m.group("id"), m.group("title")) from None
        raise _Raised(exc, case) from None
    except Exception as exc:  # the learner's bug: report it, don't crash the notebook
        raise _Raised(exc, case) from None
    for name, old, new in zip(names, before[0], args):
        if not _same(old, new):
            fail(f"Your function changed its input `{name}` in place when called as {case}. "
                 f"Leave the inputs untouched: work on a copy (`.clone()`, `copy.deepcopy`) or build new objects.")
    for key in kwargs:
        if not _same(before[1][key], kwargs[key]):
            fail(f"Your function changed its input `{key}` in place when called as {case}. "
                 f"Leave the inputs untouched: work on a copy (`.clone()`, `copy.deepcopy`) or build new objects.")
    return out


def _run(body: Callable[[Callable], str], learner_fn: Callable, title: str) -> CheckResult:
    """One check body run on the learner's function: stubs, crashes and `fail` become a failed `CheckResult`."""
    if not callable(learner_fn):
        return CheckResult(False, f"Pass your function itself, not its result: `{body.__name__}(my_function)` "
                                  f"(you passed {describe(learner_fn)}).", title)
    try:
        with torch.random.fork_rng(devices=[]):      # a check never moves the notebook's random state
            return CheckResult(True, body(learner_fn), title)
    except Failure as f:
        return CheckResult(False, f.message, title)
    except _NotDone as nd:
        where = f"Exercise {nd.exercise}" + (f" ({nd.title})" if nd.title else "") if nd.exercise \
            else f"`{getattr(learner_fn, '__name__', 'your function')}`"
        return CheckResult(False, f"Not done yet: replace the NotImplementedError in {where} with your "
                                  f"solution, then run this check again.", title)
    except _Raised as r:
        return CheckResult(False, f"Your code raised {type(r.exc).__name__}: {r.exc}{_where(r.exc)}\n"
                                  f"It happened when called as {r.case}.", title)


def check(title: str) -> Callable[[Callable[[Callable], str]], Callable[[Callable], CheckResult]]:
    """Decorator: turn `body(learner_fn) -> success message` (which calls `fail(...)`) into a check returning `CheckResult`."""

    def deco(body: Callable[[Callable], str]) -> Callable[[Callable], CheckResult]:
        @functools.wraps(body)
        def wrapper(learner_fn: Callable) -> CheckResult | None:
            return _graded(lambda: _run(body, learner_fn, title))

        wrapper.title = title  # type: ignore[attr-defined]
        wrapper.__signature__ = inspect.signature(body).replace(return_annotation=CheckResult)  # type: ignore[attr-defined]
        return wrapper

    return deco


def isclose(a: float, b: float) -> bool:
    """Float equality for checks: relative 1e-6, absolute 1e-9."""
    return math.isclose(a, b, rel_tol=1e-6, abs_tol=1e-9)
