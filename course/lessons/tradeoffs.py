"""Trade-offs: measure pruned operating points, extract Pareto fronts, pick the best one under a budget.

An operating point is one configuration (`Config`: kind, amount, scope, and optionally a quantization) re-pruned from
the kept original, fine-tuned, quantized, and measured: a dict with "name", "kind", "amount", "scope", "quant",
"bits", "accuracy", "size_bytes" and "format" (the model's `stored_size`: its smallest lossless file, so a quantized
point is stored as int8 or as a codebook), "nonzero", "flops" (effective), "latency_ms" (median; a quantized model
runs as a float model). The same config built twice with `build` gives the same model (the fine-tuning shuffle is
reseeded), so the chosen point can always be re-made.
Introduced in 07_metrics_tradeoffs (quantized points in 09_beyond_pruning)
"""
from __future__ import annotations

import copy
import statistics
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader, RandomSampler
from tqdm.auto import tqdm

from course import arguments
from course.metrics import count_flops, count_params, evaluate, stored_size
from course.pruning.structured import prune_structured
from course.pruning.unstructured import prune_unstructured
from course.quantization import METHODS, quantize
from course.table import Table
from course.timing import best_of_rounds, latency, timed_rounds
from course.training import train

__all__ = ["KINDS", "SCOPES", "LIMITS", "Config", "prune_config", "build", "latencies", "speedups", "measure", "sweep",
           "dominates", "pareto_front", "pick", "points_table"]

KINDS = ("dense", "unstructured", "structured")
#: Budget argument -> (point key, comparison): a point meets a limit at or within it.
LIMITS = {"max_size": ("size_bytes", "<="), "max_latency": ("latency_ms", "<="), "min_accuracy": ("accuracy", ">=")}


SCOPES = ("local", "global")


@dataclass(frozen=True)
class Config:
    """A pruning configuration: kind "dense", "unstructured" (amount = sparsity) or "structured" (amount = ratio),
    the scope that compares scores ("local": per layer, "global": over the whole network), and optionally a
    quantization applied after fine-tuning: quant "linear" (int-`bits` per channel) or "kmeans" (a 2^bits codebook
    per layer), see `course.quantization.quantize`."""

    kind: str
    amount: float = 0.0
    scope: str = "local"
    quant: str | None = None
    bits: int = 8

    def __post_init__(self) -> None:
        arguments.choice(self.kind, KINDS, "kind")
        arguments.choice(self.scope, SCOPES, "scope")
        a = arguments.fraction(self.amount, "amount", meaning="sparsity or ratio of units removed")
        if self.kind == "dense" and a != 0:
            raise ValueError(f"a dense config prunes nothing: amount must be 0, got {a!r}")
        if self.quant is not None:
            arguments.choice(self.quant, METHODS, "quant")
            arguments.integer(self.bits, "bits", low=2 if self.quant == "linear" else 1, high=8)

    @property
    def name(self) -> str:
        """A short label: 'dense', 'unstructured 90%', 'structured 50%', ' global' for the global scope, then the
        quantization: ' + int8' (linear) or ' + 4-bit k-means'."""
        base = "dense" if self.kind == "dense" else \
            f"{self.kind} {100 * self.amount:.4g}%" + (" global" if self.scope == "global" else "")
        if self.quant is None:
            return base
        return base + (f" + int{self.bits}" if self.quant == "linear" else f" + {self.bits}-bit k-means")

    @classmethod
    def of(cls, point: Mapping) -> "Config":
        """The config a point dict was measured from (its "kind", "amount", "scope", "quant" and "bits")."""
        return cls(point["kind"], point["amount"], point.get("scope", "local"), point.get("quant"),
                   point.get("bits") or 8)

    def __repr__(self) -> str:
        return f"Config({self.name})"


def prune_config(original: nn.Module, config: Config, **prune_kwargs: Any) -> nn.Module:
    """A new model: `original` pruned as `config` says (prune_unstructured / prune_structured); `original` untouched."""
    if not isinstance(config, Config):
        raise TypeError(f"config must be a Config (from course import Config), got {type(config).__name__}")
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
    """Re-prune `original` as `config` says, fine-tune `epochs` epochs (SGD, lr) on a reseeded shuffle, then quantize
    as `config.quant` says (no fine-tuning after it).

    The same arguments give the same model (on the same machine): the loader is re-made with a generator
    seeded `seed` and torch is seeded `seed`. Dense configs and epochs=0 are not fine-tuned.
    """
    model = prune_config(original, config, **prune_kwargs)
    if config.kind != "dense" and epochs > 0:
        if train_loader is None:
            raise ValueError("fine-tuning needs train_loader (or pass epochs=0)")
        train(model, _reseeded(train_loader, seed), epochs=epochs, lr=lr, seed=seed, progress=progress)
    if config.quant is not None:
        quantize(model, config.bits, method=config.quant, inplace=True)
    return model.cpu().eval()


def latencies(models: Mapping[str, nn.Module], batch_size: int = 64, *, repeats: int = 3, min_run_time: float = 0.2,
              input_shape=None, progress: bool = False, timer: Callable = latency) -> dict[str, float]:
    """Latency (ms) per model = its fastest of `repeats` interleaved rounds (`course.timing.best_of_rounds`).

    Taking turns spreads slow spells of a busy machine over all models; the minimum keeps the run least disturbed.
    """
    repeats = arguments.integer(repeats, "repeats", low=1)
    bar = tqdm(total=repeats * len(models), desc="latency", disable=not progress, leave=False)
    ms = best_of_rounds(models, [batch_size], repeats, bar, timer=timer, input_shape=input_shape,
                        min_run_time=min_run_time)
    bar.close()
    return {name: ms[name, batch_size] for name in models}


def speedups(models: Mapping[str, nn.Module], reference: str, batch_size: int = 64, *, repeats: int = 9,
             min_run_time: float = 0.2, input_shape=None, progress: bool = False,
             timer: Callable = latency) -> dict[str, dict[str, float]]:
    """Per model: "ms" (its fastest round) and the speedup t_reference / t_model of each round, paired within the round:
    its "median", "q25" and "q75" (the interquartile range) over `repeats` interleaved rounds (ABBA order, fresh
    copies; `course.timing.timed_rounds`).

    Give a second copy of the reference as one of the models to see the noise: its speedup should be 1.
    """
    repeats = arguments.integer(repeats, "repeats", low=1)
    if reference not in models:
        raise ValueError(f"reference {reference!r} is not one of the models {list(models)}")
    bar = tqdm(total=repeats * len(models), desc="latency", disable=not progress, leave=False)
    rounds = timed_rounds(models, [batch_size], repeats, timer=timer, alternate=True, bar=bar,
                          input_shape=input_shape, min_run_time=min_run_time)
    bar.close()
    ref = [r.median_ms for r in rounds[reference, batch_size]]
    out = {}
    for name in models:
        ms = [r.median_ms for r in rounds[name, batch_size]]
        ratios = [a / b for a, b in zip(ref, ms)]
        q25, _, q75 = statistics.quantiles(ratios, n=4, method="inclusive") if len(ratios) > 1 else ratios * 3
        out[name] = {"ms": min(ms), "median": statistics.median(ratios), "q25": q25, "q75": q75,
                     "rounds": len(ratios)}
    return out


def measure(model: nn.Module, config: Config, test_loader: Iterable, *, latency_ms: float | None = None,
            batch_size: int = 64, min_run_time: float = 0.2, input_shape=None) -> dict:
    """One operating point: accuracy on `test_loader`, smallest lossless bytes, nonzero params, FLOPs, latency.

    `latency_ms=None` measures it here (one `latencies` round); pass a value measured elsewhere to reuse it.
    """
    if latency_ms is None:
        latency_ms = latencies({config.name: model}, batch_size, repeats=1, min_run_time=min_run_time,
                               input_shape=input_shape)[config.name]
    form, size = stored_size(model)
    return {"name": config.name, "kind": config.kind, "amount": float(config.amount), "scope": config.scope,
            "quant": config.quant, "bits": config.bits if config.quant else None,
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
    return arguments.number(point[key], f"point[{key!r}]")


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
    limits = {arg: arguments.number(lim, arg, none=True, meaning="None = no limit")
              for arg, lim in (("max_size", max_size), ("max_latency", max_latency), ("min_accuracy", min_accuracy))}

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
