"""Notebook 10's experiments: where a transformer's weights are, post-training pruning compared, outlier features,
and accuracy as attention heads are removed.

    weight_census(vit)                                     # attention (q, k, v, o) against the MLP, counted
    compare_post_training(vit, test_loader, calibration)   # magnitude vs Wanda vs SparseGPT at 50/60/70% and 2:4
    outlier_table(activation_norms(vit, calibration))      # how far the largest input feature stands out, per layer
    heads_curve(vit, head_scores(vit, "gate", data), test_loader)   # one-shot accuracy vs heads removed

The model is never changed. Introduced in 10_transformers
"""
from __future__ import annotations

import time
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import torch
from torch import nn
from tqdm.auto import tqdm

from course import arguments
from course.metrics import evaluate
from course.pruning.heads import attention_layers, head_masks, remove_heads
from course.pruning.masks import apply_masks, get_masks
from course.pruning.nm import NMSkipWarning, parse_pattern
from course.pruning.sparsegpt import sparsegpt
from course.pruning.unstructured import prune_unstructured
from course.table import Table

__all__ = ["weight_census", "POST_TRAINING", "compare_post_training", "outlier_table", "heads_curve"]

#: The layers the LLM and ViT pruning codes prune: the Linears inside the blocks (embedding and classifier stay dense).
BLOCKS_ONLY = ("patch_embed", "head")


def weight_census(model: nn.Module) -> Table:
    """Weights by part: attention (q, k, v, o of every `attention_layers` module), MLP (the other Linears inside the
    attention layers' blocks), the other Linears by name, and everything else (biases, norms, tokens, positions)."""
    attn = [getattr(m, p).weight for _, m in attention_layers(model) for p in "qkvo"]
    blocks = {n.rsplit(".", 1)[0] for n, _ in attention_layers(model) if "." in n}
    parts = {"attention q/k/v/o": sum(w.numel() for w in attn), "MLP": 0}
    for name, m in model.named_modules():
        if not isinstance(m, nn.Linear) or any(m.weight is w for w in attn):
            continue
        part = "MLP" if any(name.startswith(b + ".") for b in blocks) else f"{name} (Linear)"
        parts[part] = parts.get(part, 0) + m.weight.numel()
    total = sum(p.numel() for p in model.parameters())
    parts["other (biases, norms, tokens, positions)"] = total - sum(parts.values())
    rows = [(part, n, n / total) for part, n in parts.items()] + [("total", total, 1.0)]
    return Table(["part", "parameters", "share"], rows, title="Where the parameters are",
                 formats={"parameters": "count", "share": ".1%"})


#: A ViT's class token and position table: parameters, not layers that multiply an input; never pruned here (named
#: in `exclude` so the engine does not warn that the model as a whole missed the sparsity because of them).
POSITIONS = ("cls_token", "pos_embed")


def _keep_positions(model: nn.Module, exclude: Sequence[str]) -> list[str]:
    return [*exclude, *(n for n in POSITIONS if isinstance(getattr(model, n, None), nn.Parameter))]


def _magnitude(scope: str) -> Callable:
    def prune(model: nn.Module, s: float, pattern: str | None, data: Any, exclude: Sequence[str]) -> nn.Module:
        kw = {"pattern": pattern} if pattern else {"scope": scope}
        return prune_unstructured(model, s, exclude=_keep_positions(model, exclude), **kw)
    return prune


def _wanda(model: nn.Module, s: float, pattern: str | None, data: Any, exclude: Sequence[str]) -> nn.Module:
    return prune_unstructured(model, s, criterion="wanda", pattern=pattern, data=data,
                              exclude=_keep_positions(model, exclude))


def _sparsegpt(model: nn.Module, s: float, pattern: str | None, data: Any, exclude: Sequence[str]) -> nn.Module:
    return sparsegpt(model, s, data, pattern=pattern, exclude=exclude, progress=False)


def _sparsegpt_mask_only(model: nn.Module, s: float, pattern: str | None, data: Any, exclude: Sequence[str]) -> nn.Module:
    """SparseGPT's mask on the original weights: what the OBS update adds is the difference to `sparsegpt`."""
    return apply_masks(model, get_masks(_sparsegpt(model, s, pattern, data, exclude)))


#: Post-training methods: name -> fn(model, sparsity, pattern, calibration data, exclude) -> pruned copy.
POST_TRAINING: dict[str, Callable] = {
    "magnitude": _magnitude("local"), "magnitude (global)": _magnitude("global"), "magnitude (row)": _magnitude("row"),
    "wanda": _wanda, "sparsegpt": _sparsegpt, "sparsegpt mask, no update": _sparsegpt_mask_only,
}


def compare_post_training(model: nn.Module, loader: Iterable, calibration: Any,
                          targets: Sequence[float | str] = (0.5, 0.6, 0.7, "2:4"), *,
                          methods: Sequence[str] = ("magnitude", "wanda", "sparsegpt"),
                          exclude: Iterable[str] = BLOCKS_ONLY, progress: bool = True) -> Table:
    """Prune `model` to every target (a sparsity, or a pattern "N:M") with every method, no fine-tuning: one row per
    (target, method) with the test accuracy on `loader` and the seconds the pruning took (calibration included).

    Layers a pattern cannot tile (input dimension not a multiple of M) stay dense, as the engine's warning says.
    """
    methods = [arguments.choice(m, POST_TRAINING, "method") for m in methods]
    exclude = list(arguments.names(exclude, "exclude"))
    rows = []
    for target, method in tqdm([(t, m) for t in targets for m in methods], desc="post-training pruning",
                               disable=not progress, leave=False):
        pattern = target if isinstance(target, str) else None
        n, m = parse_pattern(pattern) if pattern else (None, None)
        s = 1 - n / m if pattern else arguments.sparsity(target)
        start = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", NMSkipWarning)
            pruned = POST_TRAINING[method](model, s, pattern, calibration, exclude)
        seconds = time.perf_counter() - start
        rows.append((str(target) if pattern else f"{s:.0%}", method, evaluate(pruned, loader), seconds))
    return Table(["target", "method", "accuracy", "seconds"], rows, title="Post-training pruning, no fine-tuning",
                 formats={"accuracy": ".2%", "seconds": ".2f"},
                 note=f"dense layers: {', '.join(exclude) or 'none'}; seconds on this machine")


def outlier_table(norms: Mapping[str, torch.Tensor]) -> Table:
    """Per layer: its input features, max/median and p99/median of ‖X_j‖₂, and the three largest features."""
    rows = []
    for name, v in norms.items():
        med = float(v.median())
        rows.append((name, v.numel(), float(v.max()) / med, float(v.quantile(0.99)) / med,
                     str(torch.argsort(v, descending=True)[:3].tolist())))
    return Table(["layer", "features", "max / median", "p99 / median", "largest features"], rows,
                 title="Input-feature norms ‖X_j‖₂ on the calibration set",
                 formats={"max / median": ".2f", "p99 / median": ".2f"})


def heads_curve(model: nn.Module, scores: Mapping[str, torch.Tensor], loader: Iterable, *, scope: str = "global",
                counts: Sequence[int] | None = None) -> Table:
    """One-shot accuracy with k heads removed (default: 0 up to all but one per layer, local: a multiple of the
    number of layers), `head_masks(scores, k / total, scope)`; the heads each layer keeps."""
    total, layers = sum(len(s) for s in scores.values()), len(scores)
    if counts is None:
        counts = [k for k in range(total - layers + 1) if scope == "global" or k % layers == 0]
    rows = []
    for k in counts:
        keep = head_masks(dict(scores), k / total, scope)
        rows.append((k, "/".join(str(int(v.sum())) for v in keep.values()), evaluate(remove_heads(model, keep), loader)))
    return Table(["heads removed", "heads kept per layer", "accuracy"], rows,
                 title=f"Removing attention heads ({scope} scope), no fine-tuning", formats={"accuracy": ".2%"},
                 note=f"{total} heads in {layers} layers; every layer keeps at least one")
