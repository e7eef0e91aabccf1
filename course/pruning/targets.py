"""What pruning may touch: every weight matrix of the layers users have, one (module, parameter) pair at a time.

By default a model's prunable weights are the `weight` of every Linear, Conv1d/2d/3d (grouped and depthwise too)
and ConvTranspose1d/2d/3d, MultiheadAttention's `in_proj_weight` (or its q/k/v_proj_weight) and, through its
`out_proj` Linear, the output projection, and every weight matrix of an LSTM/GRU/RNN (`weight_ih_l*`,
`weight_hh_l*`, `weight_hr_l*`). Embeddings and anything else are opt-in: `include=[nn.Embedding]` (layer types)
or `include=["embed", "pos_embed"]` (keys or parameter names). Biases and norm parameters are never prunable.
A unit is a `Prunable`: its key ("fc1" for a module's weight, "lstm.weight_hh_l1" otherwise; see
`course.pruning.masks`), the module that owns it and the attribute. `exclude` takes keys, parameter names or module
names (a module excludes every prunable weight inside it).
Introduced in 01_what_is_pruning
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import torch
from torch import nn
from torch.nn.parameter import UninitializedParameter

from course import arguments
from course.pruning.masks import mask_name, owners, weight_key
from course.pruning.reparam import check_plain

__all__ = ["LAYERS", "Prunable", "weight_matrices", "prunable_weights", "prunable_layers"]

#: Layers whose `weight` is prunable by default (a ConvTranspose is a _ConvNd too).
WEIGHT_LAYERS = (nn.Linear, nn.modules.conv._ConvNd)
#: Layers whose every weight matrix is prunable by default, with their `weight` layers: the default selection.
LAYERS = WEIGHT_LAYERS + (nn.MultiheadAttention, nn.RNNBase)


@dataclass(frozen=True)
class Prunable:
    """One prunable parameter: `attr` of `module` (named `module_name`), known by `name` (its key).

    It unpacks as (name, itself), so code written for (name, module) pairs reads the same:
    `for name, layer in prunable_weights(model): layer.weight ...`, and `dict(prunable_weights(model))` maps keys.
    """

    name: str
    module_name: str
    module: nn.Module = field(repr=False, compare=False)
    attr: str
    aliases: tuple[str, ...] = ()          # the keys of the other owners of a tied parameter

    def __iter__(self):
        return iter((self.name, self))

    def __getitem__(self, i: int):
        return (self.name, self)[i]

    def __len__(self) -> int:
        return 2

    @property
    def weight(self) -> nn.Parameter:
        """The parameter itself."""
        return self.module._parameters[self.attr]

    @property
    def mask(self) -> torch.Tensor | None:
        """Its course mask (True = kept), or None."""
        return self.module._buffers.get(mask_name(self.attr))

    @property
    def param_name(self) -> str:
        """Its name as `named_parameters` gives it ("fc1.weight")."""
        return f"{self.module_name}.{self.attr}" if self.module_name else self.attr


def _is_matrix(p: torch.Tensor | None) -> bool:
    return p is not None and not isinstance(p, UninitializedParameter) and p.dim() >= 2


def _default(module: nn.Module, attr: str) -> bool:
    """Whether parameter `attr` of `module` is prunable by default."""
    if isinstance(module, WEIGHT_LAYERS):
        return attr == "weight"
    return isinstance(module, (nn.MultiheadAttention, nn.RNNBase))


def weight_matrices(model: nn.Module) -> list[Prunable]:
    """Every parameter with two or more dimensions (each tied one once, by its first owner): what sparsity is over."""
    out = []
    for key, places in owners(model).items():
        mname, module, attr = places[0]
        if _is_matrix(module._parameters[attr]):
            out.append(Prunable(key, mname, module, attr, tuple(weight_key(m, a) for m, _, a in places[1:])))
    return out


def _names_of(t: Prunable) -> set[str]:
    return {t.name, t.param_name, *t.aliases}


def _selected(t: Prunable, places: list, include_types: tuple, include_names: set) -> bool:
    """Default layers, or an included type or name (any owner of a tied parameter counts)."""
    if _names_of(t) & include_names or any(f"{m}.{a}" in include_names for m, _, a in places):
        return True
    return any(_default(o, a) or isinstance(o, include_types) for _, o, a in places)


def _split_include(include: Iterable | None) -> tuple[tuple[type, ...], set[str]]:
    if include is None:
        return (), set()
    if isinstance(include, (str, type)):
        include = [include]
    items = list(include) if isinstance(include, Iterable) else [include]
    types = tuple(i for i in items if isinstance(i, type) and issubclass(i, nn.Module))
    names = [i for i in items if not (isinstance(i, type) and issubclass(i, nn.Module))]
    bad = [i for i in names if not isinstance(i, str)]
    if bad:
        raise TypeError(f"include must list layer types (e.g. nn.Embedding) or parameter names (str), got {bad[0]!r}")
    return types, set(names)


def prunable_weights(model: nn.Module, *, include: Iterable | None = None, exclude: Iterable[str] = ()
                     ) -> list[Prunable]:
    """The weights pruning may touch: the default layers' weight matrices (see the module docstring), plus `include`
    (layer types or names), minus `exclude` (keys, parameter names or module names); unknown names: ValueError.
    A weight another mechanism recomputes (torch.nn.utils.prune, parametrize) is no parameter any more, so it would
    silently drop out of the list: such a model is refused by name (`check_plain`) instead."""
    check_plain(model)
    exclude = set(arguments.names(exclude, "exclude"))
    include_types, include_names = _split_include(include)
    places = owners(model)
    matrices = weight_matrices(model)
    known = {n for t in matrices for n in _names_of(t)}
    modules = {n for n, _ in model.named_modules()}
    unknown = sorted((include_names - known) | (exclude - known - modules))
    if unknown:
        raise ValueError(f"{unknown} name no weight matrix or module of the model; weight matrices: "
                         f"{[t.name for t in matrices]}")
    out = []
    for t in matrices:
        if not _selected(t, places[t.name], include_types, include_names):
            continue
        names = _names_of(t)
        owners_of = [m for m, _, _ in places[t.name]]
        if names & exclude or any(m == e or m.startswith(e + ".") for m in owners_of for e in exclude if e):
            continue
        out.append(t)
    return out


def prunable_layers(model: nn.Module, exclude: Iterable[str] = ()) -> list[tuple[str, nn.Module]]:
    """(name, module) of every layer whose `weight` is prunable by default (Linear, Conv, ConvTranspose), as before
    issue 11; `prunable_weights` lists every prunable parameter (attention and recurrent weights too)."""
    return [(t.name, t.module) for t in prunable_weights(model, exclude=exclude)
            if t.attr == "weight" and isinstance(t.module, WEIGHT_LAYERS)]
