"""The control the pruning-at-initialisation literature asks for: a mask shuffled within each layer.

Frankle et al. (ICLR 2021, "Pruning neural networks at initialization: why are we missing the mark?") shuffled the
masks of SNIP, GraSP and SynFlow within each layer and found that accuracy barely changed: those methods choose how
many weights each layer keeps, not which. A shuffled mask keeps every layer's density exactly and moves its kept
positions to a uniformly random place, so comparing a method with its own shuffle separates the two.

    shuffled = apply_masks(init, shuffle_within_layers(get_masks(snip_model), seed=0))

Introduced in 06_when_to_prune
"""
from __future__ import annotations

import torch

from course import arguments

__all__ = ["shuffle_within_layers"]


def shuffle_within_layers(masks: dict[str, torch.Tensor], *, seed: int = 0) -> dict[str, torch.Tensor]:
    """{key: mask.flatten()[π_key].view_as(mask)} with π_key a seeded random permutation: same count kept per layer.

    The permutations come from one `torch.Generator` seeded with `seed`, drawn in the order of `masks`. Inputs are
    not changed; each output mask is a new bool tensor on its input's device.
    """
    gen = torch.Generator().manual_seed(arguments.integer(seed, "seed", low=0))
    out = {}
    for key, mask in _checked(masks).items():
        flat = mask.flatten()                                                   # (n,)
        perm = torch.randperm(flat.numel(), generator=gen).to(flat.device)     # (n,) a permutation of 0..n-1
        out[key] = flat[perm].view_as(mask).clone()
    return out


def _checked(masks: object) -> dict[str, torch.Tensor]:
    """`masks` if it is a non-empty {str: bool tensor} dict, else a TypeError/ValueError saying how to get one."""
    if not isinstance(masks, dict):
        raise TypeError(f"masks must be a dict {{key: bool tensor}} such as get_masks(model), got "
                        f"{type(masks).__name__}")
    if not masks:
        raise ValueError("masks is empty: pass get_masks(model) of a pruned model (apply_masks or prune_* first)")
    for key, mask in masks.items():
        if not isinstance(mask, torch.Tensor) or mask.dtype != torch.bool:
            got = f"a {str(mask.dtype).replace('torch.', '')} tensor" if isinstance(mask, torch.Tensor) \
                else type(mask).__name__
            raise TypeError(f"masks[{key!r}] must be a bool tensor (True = kept), got {got}; "
                            f"use mask.bool() or get_masks(model)")
    return masks
