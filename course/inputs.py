"""What the library accepts as data, in one place: an (X, y) pair, a DataLoader, or any iterable of (X, y) batches.

    for x, y in batches(data):                 # (X, y) -> one batch; a loader -> its batches
    for x, y in batches(data, limit=4):        # at most 4 batches (gradient criteria score on a few)
    data = reusable(data, batch_size=500)      # read many times: a pair is split, a one-shot iterator refused

Also here: `eval_mode` (every submodule in eval mode, each one's flag restored after), `model_device`, and
`example_input`, the seeded random batch that FLOP counts and latencies feed a model.
"""
from __future__ import annotations

from collections.abc import Iterable, Iterator
from itertools import islice
from typing import Any

import torch
from torch import nn

from course import arguments

__all__ = ["Batch", "is_pair", "batches", "reusable", "eval_mode", "model_device", "example_input"]

Batch = tuple[torch.Tensor, torch.Tensor]
_WHAT = "an (X, y) pair of tensors, a DataLoader, or an iterable of (X, y) batches"


def is_pair(data: Any) -> bool:
    """True for one (X, y) batch: a tuple or list of exactly two tensors."""
    return isinstance(data, (tuple, list)) and len(data) == 2 and all(isinstance(t, torch.Tensor) for t in data)


def _pair(batch: Any) -> Batch:
    """One batch as (x, y); anything else is a TypeError that says what a batch must be."""
    if is_pair(batch):
        return batch[0], batch[1]
    raise TypeError(f"each batch must be an (x, y) pair of tensors, got {type(batch).__name__}")


def batches(data: Any, *, limit: int | None = None) -> Iterator[Batch]:
    """The (x, y) batches of `data`: one (X, y) pair, or the batches of a loader/iterable (the first `limit`)."""
    if is_pair(data):
        return iter([(data[0], data[1])])
    if data is None or isinstance(data, torch.Tensor) or not isinstance(data, Iterable):
        raise TypeError(f"data must be {_WHAT}, got {type(data).__name__}")
    return map(_pair, data if limit is None else islice(data, limit))


def reusable(data: Any, *, batch_size: int = 500) -> list[Batch] | Iterable:
    """Data that can be read many times: an (X, y) pair split into batches of `batch_size` (bounded memory), or a
    re-iterable such as a DataLoader as it is. A one-shot iterator (a generator) is refused: it would run dry."""
    if is_pair(data):
        x, y = data
        if len(x) != len(y) or len(x) == 0:
            raise ValueError(f"data must be a non-empty (x, y) pair of equal length, got {len(x)} and {len(y)}")
        return list(zip(x.split(batch_size), y.split(batch_size)))
    if not isinstance(data, Iterable) or isinstance(data, torch.Tensor) or iter(data) is data:
        raise TypeError(f"data must be an (x, y) pair of tensors or a re-iterable of batches such as a DataLoader "
                        f"(it is read more than once), got {type(data).__name__}")
    return data


class eval_mode:
    """Context manager: every submodule in eval mode inside; each module's own train/eval flag restored after."""

    def __init__(self, model: Any):
        self.modules = list(model.modules()) if isinstance(model, nn.Module) else []

    def __enter__(self) -> "eval_mode":
        self.flags = [m.training for m in self.modules]
        for m in self.modules:
            m.training = False
        return self

    def __exit__(self, *exc: Any) -> None:
        for m, flag in zip(self.modules, self.flags):
            m.training = flag

    def __repr__(self) -> str:
        return f"eval_mode({len(self.modules)} modules)"


def model_device(model: Any) -> torch.device:
    """The device of the model's first parameter (cpu for a model without parameters or a plain callable)."""
    p = next(iter(model.parameters()), None) if isinstance(model, nn.Module) else None
    return p.device if p is not None else torch.device("cpu")


def example_input(model: Any, input_shape: Any = None, batch_size: int = 1) -> torch.Tensor:
    """A seeded random input (batch_size, *input_shape) on the model's device; input_shape defaults to `model.in_shape`."""
    if input_shape is None:
        input_shape = getattr(model, "in_shape", None)
        if input_shape is None:
            raise ValueError("input_shape is required (e.g. (1, 28, 28)) for a model without `.in_shape`")
    batch_size = arguments.integer(batch_size, "batch_size", low=1)
    return torch.randn(batch_size, *input_shape, generator=torch.Generator().manual_seed(0)).to(model_device(model))
