"""Trade-offs: measure pruned operating points, extract Pareto fronts, pick the best one under a budget.

An operating point is one configuration (`Config`: kind, amount, scope) re-pruned from the kept original, fine-tuned
and measured: a dict with "name", "kind", "amount", "scope", "accuracy", "size_bytes" (its smallest lossless file),
"format", "nonzero", "flops" (effective), "latency_ms" (median). The same config built twice with `build`
gives the same model (the fine-tuning shuffle is reseeded), so the chosen point can always be re-made.
Introduced in 07_metrics_tradeoffs
"""
from __future__ import annotations

import copy
import math
import numbers
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader, RandomSampler
from tqdm.auto import tqdm

from course.export import to_bytes
from course.table import Table

__all__ = ["KINDS", "SCOPES", "LOSSLESS", "LIMITS", "Config", "prune_config", "build", "smallest_form", "latencies", "measure",
           "sweep", "dominates", "pareto_front", "pick", "points_table"]

KINDS = ("dense", "unstructured", "structured")
#: Storage forms that keep every weight exactly (bitmask_fp16 rounds values, so it is left out).
LOSSLESS = ("dense", "csr", "bitmask_fp32")
#: Budget argument -> (point key, comparison): a point meets a limit at or within it.
LIMITS = {"max_size": ("size_bytes", "<="), "max_latency": ("latency_ms", "<="), "min_accuracy": ("accuracy", ">=")}


SCOPES = ("local", "global")


@dataclass(frozen=True)
class Config:
    """A pruning configuration: kind "dense", "unstructured" (amount = sparsity) or "structured" (amount = ratio),
    and the scope that compares scores ("local": per layer, "global": over the whole network)."""

    kind: str
    amount: float = 0.0
    scope: str = "local"

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown kind {self.kind!r}; choose one of {list(KINDS)}")
        if self.scope not in SCOPES:
            raise ValueError(f"unknown scope {self.scope!r}; choose one of {list(SCOPES)}")
        a = self.amount
        if isinstance(a, bool) or not isinstance(a, numbers.Real) or math.isnan(a) or not 0.0 <= a < 1.0:
            raise ValueError(f"amount must be a number in [0, 1) (sparsity or ratio of units removed), got {a!r}")
        if self.kind == "dense" and a != 0:
            raise ValueError(f"a dense config prunes nothing: amount must be 0, got {a!r}")

    @property
    def name(self) -> str:
        """A short label: 'dense', 'unstructured 90%', 'structured 50%', with ' global' for the global scope."""
        if self.kind == "dense":
            return "dense"
        return f"{self.kind} {100 * self.amount:.4g}%" + (" global" if self.scope == "global" else "")

    @classmethod
    def of(cls, point: Mapping) -> "Config":
        """The config a point dict was measured from (its "kind", "amount" and "scope")."""
        return cls(point["kind"], point["amount"], point.get("scope", "local"))

    def __repr__(self) -> str:
        return f"Config({self.name})"


def prune_config(original: nn.Module, config: Config, **prune_kwargs: Any) -> nn.Module:
    """A new model: `original` pruned as `config` says (prune_unstructured / prune_structured); `original` untouched."""
    from course.pruning import prune_structured, prune_unstructured

    if not isinstance(config, Config):
        raise TypeError(f"config must be a course.tradeoffs.Config, got {type(config).__name__}")
    prune_kwargs.pop("inplace", None)
    if "scope" in prune_kwargs:
        raise TypeError("give the scope in the Config (Config(kind, amount, scope)), not as a keyword")
    if config.kind == "unstructured":
        return prune_unstructured(original, config.amount, scope=config.scope, **prune_kwargs)
    if config.kind == "structured":
        return prune_structured(original, config.amount, scope=config.scope, **prune_kwargs)
    return copy.deepcopy(original)


def _reseeded(loader: Iterable, seed: int) -> Iterable:
    """A twin of a shuffling DataLoader with its own generator seeded `seed` (same batches every call)."""
    if not isinstance(loader, DataLoader) or not isinstance(loader.sampler, RandomSampler):
        return loader
    return DataLoader(loader.dataset, batch_size=loader.batch_size, shuffle=True, drop_last=loader.drop_last,
                      generator=torch.Generator().manual_seed(seed), collate_fn=loader.collate_fn,
                      num_workers=loader.num_workers)


def build(original: nn.Module, config: Config, train_loader: Iterable | None = None, *, epochs: int = 1,
          lr: float = 0.01, seed: int = 0, progress: bool = False, **prune_kwargs: Any) -> nn.Module:
    """Re-prune `original` as `config` says, then fine-tune `epochs` epochs (SGD, lr) on a reseeded shuffle.

    The same arguments give the same model (on the same machine): the loader is re-made with a generator
    seeded `seed` and torch is seeded `seed`. Dense configs and epochs=0 are not fine-tuned.
    """
    from course.train import train

    model = prune_config(original, config, **prune_kwargs)
    if config.kind != "dense" and epochs > 0:
        if train_loader is None:
            raise ValueError("fine-tuning needs train_loader (or pass epochs=0)")
        train(model, _reseeded(train_loader, seed), epochs=epochs, lr=lr, seed=seed, progress=progress)
    return model.cpu().eval()


def smallest_form(model: nn.Module, forms: Sequence[str] = LOSSLESS) -> tuple[str, int]:
    """(form, bytes) of the smallest storage form: argmin over `forms` of len(to_bytes(model, form))."""
    sizes = [(len(to_bytes(model, f)), f) for f in forms]
    if not sizes:
        raise ValueError("forms is empty; give at least one storage form, e.g. course.tradeoffs.LOSSLESS")
    size, form = min(sizes)
    return form, size


def latencies(models: Mapping[str, nn.Module], batch_size: int = 64, *, repeats: int = 3, min_run_time: float = 0.2,
              input_shape=None, progress: bool = False) -> dict[str, float]:
    """Latency (ms) per model = min over `repeats` round-robin rounds of `course.metrics.latency`'s median.

    Taking turns spreads slow spells of a busy machine over all models; the minimum keeps the run least disturbed.
    """
    from course.metrics import latency

    if isinstance(repeats, bool) or not isinstance(repeats, int) or repeats < 1:
        raise ValueError(f"repeats must be an int >= 1, got {repeats!r}")
    best = {name: math.inf for name in models}
    rounds = [(r, name) for r in range(repeats) for name in models]
    for _, name in tqdm(rounds, desc="latency", disable=not progress, leave=False):
        result = latency(models[name], batch_size, input_shape=input_shape, min_run_time=min_run_time)
        best[name] = min(best[name], result.median_ms)
    return best


def measure(model: nn.Module, config: Config, test_loader: Iterable, *, latency_ms: float | None = None,
            batch_size: int = 64, min_run_time: float = 0.2, input_shape=None) -> dict:
    """One operating point: accuracy on `test_loader`, smallest lossless bytes, nonzero params, FLOPs, latency.

    `latency_ms=None` measures it here (one `latencies` round); pass a value measured elsewhere to reuse it.
    """
    from course.metrics import count_flops, count_params
    from course.train import evaluate

    if latency_ms is None:
        latency_ms = latencies({config.name: model}, batch_size, repeats=1, min_run_time=min_run_time,
                               input_shape=input_shape)[config.name]
    form, size = smallest_form(model)
    return {"name": config.name, "kind": config.kind, "amount": float(config.amount), "scope": config.scope,
            "accuracy": evaluate(model, test_loader), "size_bytes": size, "format": form,
            "nonzero": count_params(model).nonzero,
            "flops": count_flops(model, input_shape).effective, "latency_ms": float(latency_ms)}


def sweep(original: nn.Module, configs: Iterable[Config], train_loader: Iterable | None, test_loader: Iterable, *,
          epochs: int = 1, lr: float = 0.01, seed: int = 0, batch_size: int = 64, repeats: int = 3,
          min_run_time: float = 0.2, input_shape=None, progress: bool = True, **prune_kwargs: Any) -> list[dict]:
    """`build` every config (each re-pruned from `original`), time them all with `latencies`, `measure` each."""
    configs = list(configs)
    names = [c.name for c in configs]
    if len(set(names)) != len(names):
        raise ValueError(f"configs repeat: {names}; give each configuration once")
    models = {c.name: build(original, c, train_loader, epochs=epochs, lr=lr, seed=seed, **prune_kwargs)
              for c in tqdm(configs, desc="prune + fine-tune", disable=not progress)}
    times = latencies(models, batch_size, repeats=repeats, min_run_time=min_run_time, input_shape=input_shape,
                      progress=progress)
    return [measure(models[c.name], c, test_loader, latency_ms=times[c.name], input_shape=input_shape)
            for c in configs]


def _value(point: Mapping, key: str) -> float:
    """point[key] as a float; a missing key or a non-number raises naming the key."""
    if not isinstance(point, Mapping):
        raise TypeError(f"a point must be a dict, got {type(point).__name__}")
    if key not in point:
        raise ValueError(f"point {point.get('name', point)!r} has no {key!r}; it has {sorted(point)}")
    value = point[key]
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"point[{key!r}] must be a number, got {type(value).__name__} {value!r}")
    return float(value)


def dominates(a: Mapping, b: Mapping, *, x: str = "size_bytes", y: str = "accuracy") -> bool:
    """a dominates b: a[x] ≤ b[x] and a[y] ≥ b[y], strictly better in at least one (x minimised, y maximised)."""
    ax, ay, bx, by = _value(a, x), _value(a, y), _value(b, x), _value(b, y)
    return ax <= bx and ay >= by and (ax < bx or ay > by)


def pareto_front(points: Sequence[Mapping], *, x: str = "size_bytes", y: str = "accuracy") -> list[dict]:
    """The points no other point dominates (see `dominates`), sorted by x ascending (then y descending)."""
    points = list(points)
    front = [p for p in points if not any(dominates(q, p, x=x, y=y) for q in points if q is not p)]
    return sorted(front, key=lambda p: (_value(p, x), -_value(p, y)))


def pick(points: Sequence[Mapping], *, max_size: float | None = None, max_latency: float | None = None,
         min_accuracy: float | None = None) -> dict | None:
    """The most accurate point meeting every given limit (size ≤ max_size, latency ≤ max_latency, accuracy ≥
    min_accuracy; None = no limit), ties to the smaller then the faster; None when nothing fits."""
    limits = {"max_size": max_size, "max_latency": max_latency, "min_accuracy": min_accuracy}
    for arg, lim in limits.items():
        if lim is not None and (isinstance(lim, bool) or not isinstance(lim, numbers.Real) or math.isnan(lim)):
            raise TypeError(f"{arg} must be a number or None (no limit), got {type(lim).__name__} {lim!r}")

    def fits(p: Mapping) -> bool:
        for arg, lim in limits.items():
            if lim is None:
                continue
            key, op = LIMITS[arg]
            v = _value(p, key)
            if (op == "<=" and v > lim) or (op == ">=" and v < lim):
                return False
        return True

    fitting = [p for p in points if fits(p)]
    if not fitting:
        return None
    return dict(min(fitting, key=lambda p: (-_value(p, "accuracy"), _value(p, "size_bytes"),
                                             _value(p, "latency_ms"))))


def points_table(points: Sequence[Mapping], *, front: Sequence[Mapping] = (), title: str = "Operating points") -> Table:
    """A table of points (accuracy, bytes and form, nonzero params, FLOPs, latency); ★ marks points in `front`."""
    on_front = {p["name"] for p in front}
    rows = [(("★ " if p["name"] in on_front else "  ") + p["name"], p["accuracy"], p["size_bytes"], p["format"],
             p["nonzero"], p["flops"], p["latency_ms"]) for p in points]
    return Table(["config", "accuracy", "size", "form", "nonzero", "eff. FLOPs", "latency ms"], rows, title=title,
                 formats={"accuracy": ".2%", "size": "bytes", "nonzero": "count", "eff. FLOPs": "count",
                          "latency ms": ".3f"},
                 note="size = smallest lossless file; latency: median, this machine" +
                      ("; ★ = on the front" if on_front else ""))
