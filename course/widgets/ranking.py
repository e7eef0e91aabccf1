"""Scores sorted once, so a slider move picks the k lowest weights in O(n) instead of sorting again.

`SortedScores` makes exactly the selection of `course.pruning.unstructured.unstructured_masks` (min_density=None):
local drops max(round(s·n), already pruned) lowest scores per layer; global drops the
k = max(round(s·N), already pruned) lowest scores of all layers together. Ties go to the lower flat index
(stable sort) and weights an existing `prune_mask` pruned score -inf, as in the library.
"""
from __future__ import annotations

import math

import torch
from torch import nn

from course.pruning.masks import MASK

__all__ = ["SortedScores"]


class SortedScores:
    """One criterion's scores, stably sorted per layer and over all layers: masks for any sparsity in O(n)."""

    def __init__(self, layers: list[tuple[str, nn.Module]], scores: dict[str, torch.Tensor]):
        self.names = [n for n, _ in layers]
        self.shapes = [m.weight.shape for _, m in layers]
        self.scores = scores
        flat = []
        for name, module in layers:
            s = scores[name].detach().flatten().float().cpu().clone()          # (n,)
            old = getattr(module, MASK, None)
            if old is not None:
                s[~old.flatten().cpu()] = -math.inf                              # already pruned: lowest of all
            flat.append(s)
        self.sizes = [s.numel() for s in flat]
        self.already = [int(torch.isneginf(s).sum()) for s in flat]
        ranked = [torch.sort(s, stable=True) for s in flat]
        self.values = [r.values for r in ranked]                                 # (n,) ascending
        self.order = [r.indices for r in ranked]                                 # (n,) flat index, lowest first
        owner = torch.repeat_interleave(torch.arange(len(flat)), torch.tensor(self.sizes))      # (N,)
        self.global_owner = owner[torch.sort(torch.cat(flat), stable=True).indices]             # (N,) lowest first

    def __repr__(self) -> str:
        return f"SortedScores(layers={self.names}, weights={sum(self.sizes):,})"

    def counts(self, sparsity: float, scope: str) -> list[int]:
        """Weights pruned per layer: local max(round(s·n_l), a_l); global the owners of the k lowest overall."""
        if scope == "local":
            return [max(round(sparsity * n), a) for n, a in zip(self.sizes, self.already)]
        k = max(round(sparsity * sum(self.sizes)), sum(self.already))
        return torch.bincount(self.global_owner[:k], minlength=len(self.sizes)).tolist()

    def masks(self, counts: list[int]) -> dict[str, torch.Tensor]:
        """Keep-masks (True = kept) shaped like the weights, dropping each layer's `counts` lowest scores."""
        out = {}
        for name, shape, order, n, c in zip(self.names, self.shapes, self.order, self.sizes, counts):
            keep = torch.ones(n, dtype=torch.bool)
            keep[order[:c]] = False
            out[name] = keep.view(shape)
        return out

    def thresholds(self, counts: list[int]) -> dict[str, float | None]:
        """Per layer, the largest pruned score (every score at or below it went), None when nothing was pruned."""
        return {name: (float(v[c - 1]) if c > 0 else None) for name, v, c in zip(self.names, self.values, counts)}
