"""What the library accepts as data and as a model's input, in one place.

    for x, y in batches(data):                 # (X, y) pairs: one pair, or the batches of a loader/iterable
    for batch in any_batches(data, limit=4):   # batches in any form: a tensor, (x, lengths, y), {"input_ids": ...}
    loss = batch_loss(loss_fn)(model, batch)   # THE loss of one batch (default: cross-entropy on an (x, y) pair)
    out = call(model, inputs)                  # model(**dict), model(*tuple) or model(tensor)
    inputs = example_inputs(model, input_shape=(1, 28, 28))   # or your own example_inputs=, as the model takes them
    data = reusable(data, batch_size=500)      # read many times: a pair is split, a one-shot iterator refused

A loss is a function of (model, batch), so dict batches ({"input_ids", "labels"}) and (x, mask, y) tuples work.
A torch loss (`nn.CrossEntropyLoss()`, `nn.MSELoss()`, any nn.Module, or a function of torch.nn.functional such as
`F.cross_entropy`) is the other form, loss(model(x), y), and applies to (x, y) pairs.
Also here: `eval_mode` (every submodule in eval mode, each one's flag restored after), `model_device`, `to_device`.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from itertools import islice
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from course import arguments

__all__ = ["Batch", "is_pair", "batches", "is_batch", "any_batches", "reusable", "eval_mode", "model_device",
           "to_device", "call", "example_input", "example_inputs", "leading_size", "BatchLoss", "batch_loss"]

Batch = tuple[torch.Tensor, torch.Tensor]
_WHAT = "an (X, y) pair of tensors, a DataLoader, or an iterable of (X, y) batches"


def is_pair(data: Any) -> bool:
    """True for one (X, y) batch: a tuple or list of exactly two tensors."""
    return isinstance(data, (tuple, list)) and len(data) == 2 and all(isinstance(t, torch.Tensor) for t in data)


def _pair(batch: Any) -> Batch:
    """One batch as (x, y); anything else is a TypeError that says what a batch must be."""
    if is_pair(batch):
        return batch[0], batch[1]
    raise TypeError(f"each batch must be an (x, y) pair of tensors, got {type(batch).__name__}; for batches of "
                    f"another form (a dict, (x, mask, y), ...) pass loss_fn=fn(model, batch) -> loss")


def batches(data: Any, *, limit: int | None = None) -> Iterator[Batch]:
    """The (x, y) batches of `data`: one (X, y) pair, or the batches of a loader/iterable (the first `limit`)."""
    if is_pair(data):
        return iter([(data[0], data[1])])
    if data is None or isinstance(data, torch.Tensor) or not isinstance(data, Iterable):
        raise TypeError(f"data must be {_WHAT}, got {type(data).__name__}")
    return map(_pair, data if limit is None else islice(data, limit))


def _is_args(inputs: Any) -> bool:
    """A plain tuple or list is positional arguments; a NamedTuple (a PackedSequence) is one argument."""
    return isinstance(inputs, (tuple, list)) and not hasattr(inputs, "_fields")


def is_batch(data: Any) -> bool:
    """True for ONE batch: a tensor, a dict, or a tuple/list of tensors (x, y), (x, lengths, y), ..."""
    if isinstance(data, (torch.Tensor, Mapping)):
        return True
    return _is_args(data) and len(data) > 0 and all(isinstance(t, torch.Tensor) for t in data)


def any_batches(data: Any, *, limit: int | None = None) -> Iterator[Any]:
    """The batches of `data` in whatever form the loss takes: one batch (see `is_batch`), or a loader's batches.

    A list or tuple of tensors is ONE batch ((x, y) as a DataLoader yields it); pass several tensor batches as a
    DataLoader or a generator."""
    if is_batch(data):
        return iter([data])
    if data is None or isinstance(data, (str, bytes)) or not isinstance(data, Iterable):
        raise TypeError(f"data must be one batch (a tensor, a tuple of tensors, a dict of tensors) or an iterable of "
                        f"batches such as a DataLoader, got {type(data).__name__}")
    return iter(data) if limit is None else islice(data, limit)


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


def to_device(obj: Any, device: torch.device | str | None) -> Any:
    """`obj` with every tensor in it (inside dicts, tuples and lists too; a PackedSequence) moved to `device`."""
    if device is None:
        return obj
    if isinstance(obj, Mapping):
        return {k: to_device(v, device) for k, v in obj.items()}
    if _is_args(obj):
        return type(obj)(to_device(v, device) for v in obj)
    return obj.to(device) if isinstance(obj, torch.Tensor) or hasattr(obj, "_fields") and hasattr(obj, "to") else obj


def call(model: Callable, inputs: Any) -> Any:
    """model(**inputs) for a dict, model(*inputs) for a plain tuple/list, else model(inputs)."""
    if isinstance(inputs, Mapping):
        return model(**inputs)
    return model(*inputs) if _is_args(inputs) else model(inputs)


def example_input(model: Any, input_shape: Any = None, batch_size: int = 1) -> torch.Tensor:
    """A seeded random input (batch_size, *input_shape) on the model's device; input_shape defaults to `model.in_shape`."""
    if input_shape is None:
        input_shape = getattr(model, "in_shape", None)
        if input_shape is None:
            raise ValueError("input_shape is required (e.g. (1, 28, 28) for float inputs) for a model without "
                             "`.in_shape`, or pass example_inputs= (a tensor, tuple or dict, as the model takes them: "
                             "token ids included)")
    batch_size = arguments.integer(batch_size, "batch_size", low=1)
    return torch.randn(batch_size, *input_shape, generator=torch.Generator().manual_seed(0)).to(model_device(model))


def example_inputs(model: Any, input_shape: Any = None, inputs: Any = None, batch_size: int = 1) -> Any:
    """What one forward pass gets: `inputs` as given (tensors moved to the model's device), or `example_input`."""
    if inputs is None:
        return example_input(model, input_shape, batch_size)
    if input_shape is not None:
        raise ValueError("pass either example_inputs= or input_shape=, not both")
    if not isinstance(inputs, (torch.Tensor, Mapping, tuple, list)):
        raise TypeError("example_inputs must be a tensor, a tuple of tensors or a dict of tensors (what model(...) "
                        f"takes), got {type(inputs).__name__}")
    return to_device(inputs, model_device(model))


def leading_size(inputs: Any) -> int:
    """The batch size of model inputs: dim 0 of the first tensor found (1 if there is none)."""
    if isinstance(inputs, torch.Tensor):
        return int(inputs.shape[0]) if inputs.dim() else 1
    items = inputs.values() if isinstance(inputs, Mapping) else inputs if _is_args(inputs) else ()
    return next((leading_size(v) for v in items if isinstance(v, (torch.Tensor, Mapping, tuple, list))), 1)


@dataclass(frozen=True)
class BatchLoss:
    """The loss of one batch: `fn(model, batch)`, or for a torch loss (`on_pairs`) fn(model(x), y) on an (x, y) pair."""

    fn: Callable
    on_pairs: bool

    def forward(self, model: nn.Module, batch: Any) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(loss, the model's output when this loss computed it on an (x, y) pair, else None)."""
        batch = to_device(batch, model_device(model))
        if not self.on_pairs:
            return self.fn(model, batch), None
        x, y = _pair(batch)
        out = model(x)
        return self.fn(out, y), out

    def __call__(self, model: nn.Module, batch: Any) -> torch.Tensor:
        return self.forward(model, batch)[0]

    def __repr__(self) -> str:
        name = getattr(self.fn, "__name__", type(self.fn).__name__)
        return f"BatchLoss({name}{'(model(x), y)' if self.on_pairs else '(model, batch)'})"


def batch_loss(loss_fn: Callable | BatchLoss | None = None) -> BatchLoss:
    """THE loss of a batch: None = cross-entropy on (x, y); a torch loss = loss(model(x), y); else loss_fn(model, batch).

    A torch loss is an nn.Module (nn.CrossEntropyLoss(), nn.MSELoss(), ...) or a function of torch.nn.functional.
    """
    if isinstance(loss_fn, BatchLoss):
        return loss_fn
    if loss_fn is None:
        return BatchLoss(F.cross_entropy, True)
    arguments.function(loss_fn, "loss_fn", signature="loss_fn(model, batch) -> loss, or a torch loss such as "
                                                     "nn.CrossEntropyLoss()")
    torch_loss = isinstance(loss_fn, nn.Module) or getattr(loss_fn, "__module__", None) == F.__name__
    return BatchLoss(loss_fn, torch_loss)
