"""N:M semi-structured sparsity: in every group of M consecutive weights along the input dimension, keep N.

The grouping follows NVIDIA's ASP (apex/contrib/sparsity/sparse_masklib.py, `create_mask`) and what
`torch.sparse.to_sparse_semi_structured` compresses (groups along the last dimension of a 2-D weight):
  - Linear-like weight (out, in): groups of M along `in`, i.e. along each row (dim 1). For an LSTM/GRU gate matrix
    (4H, I) that is the input dimension; for MultiheadAttention's in_proj_weight (3E, E) the embedding.
  - Conv weight (out, C_in/groups, *kernel): groups of M along the input channels at each kernel position, i.e. the
    weight is viewed as (out, *kernel, C_in) and grouped along C_in. That is the layout an implicit-GEMM convolution
    multiplies (K x C·R·S with C innermost), so it is the one sparse tensor cores can use.
A layer whose grouped dimension is not a multiple of M cannot be N:M sparse: `nm_masks` leaves it dense with an
`NMSkipWarning` that names it (ASP skips such layers too). Metadata: every kept value carries a ceil(log2 M)-bit
position inside its group, 2 bits for 2:4 (Mishra et al. 2021).
Introduced in 09_beyond_pruning
"""
from __future__ import annotations

import math
import re
import warnings

import torch
from torch import nn

from course.pruning.masks import masked_parameters

__all__ = ["NMSkipWarning", "parse_pattern", "group_view", "nm_mask", "nm_masks", "is_nm_sparse",
           "nm_metadata_bytes"]

_PATTERN = re.compile(r"^\s*(\d+)\s*:\s*(\d+)\s*$")


class NMSkipWarning(UserWarning):
    """A layer was left dense because its input dimension is not a multiple of M."""


def parse_pattern(pattern: str) -> tuple[int, int]:
    """"N:M" -> (N, M) with 1 <= N < M; e.g. "2:4" -> (2, 4)."""
    match = _PATTERN.match(pattern) if isinstance(pattern, str) else None
    if match is None:
        raise ValueError(f"pattern must be a string 'N:M' such as '2:4', '1:4' or '4:8', got {pattern!r}")
    n, m = int(match.group(1)), int(match.group(2))
    if not 1 <= n < m:
        raise ValueError(f"pattern {pattern!r} must be 'N:M' with 1 <= N < M (keep N of every M weights), e.g. '2:4'")
    return n, m


def group_view(t: torch.Tensor) -> torch.Tensor:
    """The weight as (rows, grouped dim): (out, in) as is; (out, C, *kernel) -> (out·prod(kernel), C)."""
    if t.dim() < 2:
        raise ValueError(f"N:M grouping needs a weight with at least 2 dimensions, got shape {tuple(t.shape)}")
    if t.dim() == 2:
        return t                                                        # (out, in)
    return t.movedim(1, -1).reshape(-1, t.shape[1])                     # (out·kernel, C_in)


def _from_group_view(g: torch.Tensor, shape: torch.Size) -> torch.Tensor:
    """Inverse of `group_view`."""
    if len(shape) == 2:
        return g
    return g.reshape(shape[0], *shape[2:], shape[1]).movedim(-1, 1).contiguous()   # (out, C_in, *kernel)


def nm_mask(scores: torch.Tensor, n: int, m: int) -> torch.Tensor:
    """Bool keep-mask shaped like `scores`: in each group of m along the input dim, the n highest scores.

    Ties go to the lower index (a stable sort), so the mask is deterministic. A score of -inf (an already pruned
    weight) is never kept, so a group with fewer than n finite scores keeps fewer than n.
    """
    g = group_view(scores.detach().float())                              # (rows, width)
    rows, width = g.shape
    if width % m:
        raise ValueError(f"the grouped dimension ({width}) is not a multiple of M={m}")
    groups = g.reshape(rows, width // m, m)                              # (rows, width/m, m)
    best = torch.sort(groups, dim=-1, descending=True, stable=True).indices[..., :n]   # (rows, width/m, n)
    keep = torch.zeros_like(groups, dtype=torch.bool).scatter_(-1, best, True) & ~torch.isneginf(groups)
    return _from_group_view(keep.reshape(rows, width), scores.shape)


def is_nm_sparse(weight_or_mask: torch.Tensor, n: int, m: int) -> bool:
    """True when every group of m along the input dim holds at most n nonzeros (what sparse tensor cores need)."""
    g = group_view(weight_or_mask.detach() != 0)
    if g.shape[1] % m:
        return False
    return bool((g.reshape(g.shape[0], -1, m).sum(-1) <= n).all())


def nm_masks(scores: dict[str, torch.Tensor], n: int, m: int) -> dict[str, torch.Tensor]:
    """N:M keep-masks for every layer whose grouped dimension is a multiple of m; the others are left out and named
    in one `NMSkipWarning` (pass them in `exclude=` to silence it). Already pruned weights score -inf."""
    skipped = [f"{name} (grouped dimension {group_view(s).shape[1]})" for name, s in scores.items()
               if group_view(s).shape[1] % m]
    if skipped:
        warnings.warn(f"{n}:{m} sparsity needs the input dimension (in_features, or input channels per group) to be a "
                      f"multiple of {m}; left dense: {', '.join(skipped)}. Pass exclude=[...] with these names to "
                      f"silence this warning.", NMSkipWarning, stacklevel=3)
    return {name: nm_mask(s, n, m) for name, s in scores.items() if group_view(s).shape[1] % m == 0}


def nm_metadata_bytes(model: nn.Module, m: int = 4) -> int:
    """Bytes of N:M position metadata: ceil(log2 m) bits per kept weight of every masked weight, rounded up per weight.

    This is what a compressed N:M matrix stores beside its values (2 bits per kept value for 2:4).
    """
    bits = math.ceil(math.log2(m))
    return sum(math.ceil(int(mask.sum()) * bits / 8) for _, _, _, mask in masked_parameters(model))
