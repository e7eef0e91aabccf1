"""The values of a quantized layer in a storage form: "bitmask_int8" and "bitmask_codebook" (used by `course.export`).

For a Linear/Conv2d weight with k kept values (the positions are the form's packed bitmask, as in "bitmask_fp32"):
  - "bitmask_int8":     q int8 (k bytes) + one fp32 scale per output channel, value = q·scale[row]. Exact for a
                        model from `quantize(..., method="linear")` (any bits ≤ 8, per channel or per tensor): the
                        integers and scales are recovered from the weights (`int_grid`). Any other model is rounded
                        to the 8-bit per-channel grid on the way (lossy, like fp16).
  - "bitmask_codebook": b-bit indices packed MSB-first (ceil(k·b / 8) bytes) + the codebook (K fp32 values), with
                        b = max(1, ceil(log2 K)) for K distinct kept values (Han et al. 2016, Eq. 1). Needs a
                        weight-shared model (`quantize(..., method="kmeans")`); refuses one with more than 256 values.
Both load back bit for bit (the scales and the codebook are the exact fp32 numbers in the weights).
`exact(module, form)` says whether a form gives back a layer's weights exactly; `course.export.lossless_forms` uses it.
Introduced in 09_beyond_pruning
"""
from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from course.quantization import MAX_CODEBOOK, int_grid, is_on_int_grid, is_weight_shared, kept_positions, \
    linear_quantize, shared_codebook

__all__ = ["QUANTIZED_FORMATS", "index_bits", "pack_indices", "unpack_indices", "encode_values", "decode_values",
           "exact"]

QUANTIZED_FORMATS = ("bitmask_int8", "bitmask_codebook")


def index_bits(codebook_size: int) -> int:
    """Bits per index for a codebook of K values: max(1, ceil(log2 K))."""
    return max(1, math.ceil(math.log2(max(codebook_size, 1))))


def pack_indices(index: torch.Tensor, bits: int) -> torch.Tensor:
    """Indices < 2^bits (k,) -> uint8 (ceil(k·bits / 8),): each index as `bits` bits, most significant first."""
    idx = index.to(torch.int64).cpu().numpy().astype(np.uint8)
    shifts = np.arange(bits - 1, -1, -1, dtype=np.uint8)
    planes = (idx[:, None] >> shifts) & 1                                 # (k, bits)
    return torch.from_numpy(np.packbits(planes.astype(np.uint8).reshape(-1)))


def unpack_indices(packed: torch.Tensor, bits: int, count: int) -> torch.Tensor:
    """Inverse of `pack_indices`: (count,) int64."""
    planes = np.unpackbits(packed.numpy(), count=count * bits).reshape(count, bits)   # (k, bits)
    weights = (1 << np.arange(bits - 1, -1, -1)).astype(np.int64)
    return torch.from_numpy(planes.astype(np.int64) @ weights)


def encode_values(module: nn.Module, fmt: str) -> dict:
    """The entry fields that hold `module`'s kept weights in form `fmt` (row-major order of the kept positions)."""
    w, kept = module.weight.detach().float().cpu(), kept_positions(module).cpu()
    if fmt == "bitmask_int8":
        grid = int_grid(w, kept)
        q, scale = grid if grid is not None else linear_quantize(w, 8, kept)[1:]
        return {"q": q[kept].contiguous(), "scale": scale.contiguous()}  # (k,) int8, (out,) fp32
    codebook, index, _ = shared_codebook(module)
    nbits = index_bits(codebook.numel())
    return {"nbits": nbits, "codebook": codebook, "index": pack_indices(index, nbits)}


def decode_values(entry: dict, kept: torch.Tensor, fmt: str) -> torch.Tensor:
    """The kept values (k,) fp32 of one entry, in the row-major order of `kept` (shaped like the weight)."""
    if fmt == "bitmask_int8":
        rows = kept.reshape(kept.shape[0], -1).nonzero()[:, 0]            # (k,) output channel of each kept value
        return entry["q"].float() * entry["scale"][rows]
    index = unpack_indices(entry["index"], entry["nbits"], int(kept.sum()))
    if index.numel() and int(index.max()) >= entry["codebook"].numel():
        raise ValueError(f"an index ({int(index.max())}) points past the codebook ({entry['codebook'].numel()} values)")
    return entry["codebook"][index]


def exact(module: nn.Module, fmt: str) -> bool:
    """Whether form `fmt` stores `module`'s weight exactly: fp16 when every kept value is an fp16 number, int8 when
    the weights are on a linear grid (`int_grid`), codebook when they take at most 256 values."""
    if fmt == "bitmask_fp16":
        w = module.weight.detach()
        kept = kept_positions(module)
        return all(torch.equal(v.half().float(), v.float()) for v in (w[0][kept[0]], w[kept]))   # row 0 first
    if fmt == "bitmask_int8":
        return is_on_int_grid(module)
    if fmt == "bitmask_codebook":
        return is_weight_shared(module, MAX_CODEBOOK)
    raise ValueError(f"exact() knows the forms that are exact only for some models, not {fmt!r}")
