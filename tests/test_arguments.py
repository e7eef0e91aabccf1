"""course.arguments: the one module of argument checks. Wrong type -> TypeError, out of range -> ValueError, and the
message names the parameter and what is valid."""
from __future__ import annotations

import math

import numpy as np
import pytest

from course import arguments


def test_fractions_and_numbers():
    assert arguments.sparsity(0.5) == 0.5 and isinstance(arguments.sparsity(0), float)
    assert arguments.sparsity(np.float32(0.25)) == 0.25
    for bad in (1.0, -0.1, math.nan):
        with pytest.raises(ValueError, match=r"sparsity must be a number in \[0, 1\) \(fraction of weights"):
            arguments.sparsity(bad)
    for bad in (True, "0.5", None):
        with pytest.raises(TypeError, match=r"\[0, 1\)"):
            arguments.sparsity(bad)
    assert arguments.fraction(1.0, "min_density", closed=True) == 1.0
    assert arguments.fraction(None, "min_density", closed=True, none=True) is None
    with pytest.raises(ValueError, match=r"ratio must be a number in \[0, 1\) \(fraction of units removed\)"):
        arguments.ratio(1)
    with pytest.raises(ValueError, match=r"p must be a number in \(0, 1\)"):
        arguments.number(0.0, "p", low=0, high=1, low_open=True, high_open=True)
    with pytest.raises(TypeError, match="max_size must be a number or None"):
        arguments.number("1 MB", "max_size", none=True)


def test_integers():
    assert arguments.integer(np.int64(3), "steps", low=1) == 3
    with pytest.raises(ValueError, match="steps must be an int >= 1, got 0"):
        arguments.integer(0, "steps", low=1)
    with pytest.raises(TypeError, match="steps must be an int >= 1, got float 2.0"):
        arguments.integer(2.0, "steps", low=1)
    with pytest.raises(TypeError, match="got bool True"):
        arguments.integer(True, "steps", low=1)
    with pytest.raises(ValueError, match="n must be an int between 1 and 10"):
        arguments.integer(11, "n", low=1, high=10)
    assert arguments.integer(None, "threads", low=1, none=True) is None


def test_choices_booleans_functions_names_and_lists():
    assert arguments.choice("local", ("local", "global"), "scope") == "local"
    with pytest.raises(ValueError, match=r"unknown scope 'layer'; choose one of \['local', 'global'\]"):
        arguments.choice("layer", ("local", "global"), "scope")
    with pytest.raises(ValueError, match="unknown scope"):
        arguments.choice(["local"], {"local": 1}, "scope")               # unhashable: a clear error, not a crash
    assert arguments.boolean(False, "compress") is False
    for bad in ("False", 0, None):
        with pytest.raises(TypeError, match="compress must be True or False"):
            arguments.boolean(bad, "compress")
    assert arguments.function(len, "fn") is len and arguments.function(None, "fn", none=True) is None
    with pytest.raises(TypeError, match="finetune must be a callable finetune\\(model\\)"):
        arguments.function("sgd", "finetune", signature="finetune(model)")
    assert arguments.names("fc1", "exclude") == ("fc1",) and arguments.names(["a", "b"], "exclude") == ("a", "b")
    with pytest.raises(TypeError, match=r"write \['fc1'\]"):
        arguments.names("fc1", "layers", single=False)
    with pytest.raises(TypeError, match="strings"):
        arguments.names(["fc1", 3], "exclude")
    assert arguments.each([0.5, 0.9], "sparsities", arguments.sparsity) == [0.5, 0.9]
    with pytest.raises(TypeError, match="sparsities must be a list"):
        arguments.each("0.5", "sparsities", arguments.sparsity)
    with pytest.raises(ValueError, match="non-empty"):
        arguments.each([], "ratios", arguments.ratio)
    with pytest.raises(ValueError, match="distinct"):
        arguments.each([0.5, 0.5], "ratios", arguments.ratio, distinct=True)
