"""Where the bytes of a compressed model go, and what entropy coding can still take out of them.

`file_breakdown` takes a storage-form file apart: per layer the position bitmask, the stored values (fp32 values,
int8 values + scales, or packed indices + codebook), then the dense extras (biases) and the `torch.save` container.
`coding_costs` compares, for each layer of a weight-shared model, ways to entropy-code its two streams of symbols:
  - positions as Han et al.'s relative index (the gap to the previous kept weight, one byte each, a gap over 255
    inserting a filler entry; Sec. 2, Fig. 2), the symbols Deep Compression Huffman-codes;
  - indices (one per kept weight, Deep Compression, Sec. 4);
with the order-0 entropy bound of those symbols (n·H, what any coder of independent symbols can reach at best), a
Huffman code of them (code tables left out), LZMA2 (the coder inside xz) on the same symbols, one byte each, and
LZMA2 on the bytes the course's "bitmask_codebook" file stores instead (a bitmask; packed b-bit indices).
Introduced in 09_beyond_pruning
"""
from __future__ import annotations

import heapq
import io
import lzma
import math
from collections import Counter

import numpy as np
import torch
from torch import nn

from course.export import to_bytes
from course.pruning.targets import prunable_layers
from course.quantization import kept_positions, shared_codebook
from course.quantized_forms import index_bits, pack_indices
from course.table import Table

__all__ = ["entropy_bits", "huffman_bits", "relative_index", "lzma_bytes", "file_breakdown", "coding_costs"]


def entropy_bits(symbols) -> float:
    """n·H(empirical distribution) in bits, H = -Σ p·log2 p: the bound of any order-0 entropy coder."""
    counts = np.array(list(Counter(np.asarray(symbols).tolist()).values()), dtype=float)
    return float(-(counts * np.log2(counts / counts.sum())).sum()) if counts.size else 0.0


def huffman_bits(symbols) -> int:
    """Total bits of an optimal prefix (Huffman) code for `symbols`, code table not counted."""
    heap = list(Counter(np.asarray(symbols).tolist()).values())
    if len(heap) <= 1:
        return len(np.asarray(symbols))                                   # one symbol still takes a bit each
    heapq.heapify(heap)
    total = 0
    while len(heap) > 1:
        a, b = heapq.heappop(heap), heapq.heappop(heap)
        total += a + b                                                    # each merge adds a bit to every symbol below
        heapq.heappush(heap, a + b)
    return total


def relative_index(mask: torch.Tensor, bits: int) -> tuple[np.ndarray, int]:
    """(gaps, fillers): Han et al.'s relative index of `mask` (row-major): the gap from each stored entry to the
    previous one, at most 2^bits - 1, with a filler entry inserted wherever a gap is longer."""
    pos = np.flatnonzero(mask.detach().cpu().flatten().numpy())
    gaps = np.diff(np.concatenate([[-1], pos]))                           # (k,) >= 1
    top = (1 << bits) - 1
    fillers = (gaps - 1) // top                                           # fillers before each kept weight
    out = np.full(int(len(gaps) + fillers.sum()), top, dtype=np.int64)
    out[np.cumsum(fillers + 1) - 1] = gaps - fillers * top                # where each real entry lands
    return out, int(fillers.sum())


def lzma_bytes(data: bytes) -> int:
    """Bytes of `data` after raw LZMA2 at preset 9 + extreme (xz without its ~60-byte header and check)."""
    return len(lzma.compress(data, format=lzma.FORMAT_RAW,
                             filters=[{"id": lzma.FILTER_LZMA2, "preset": 9 | lzma.PRESET_EXTREME}]))


def _nbytes(x) -> int:
    return x.numel() * x.element_size() if isinstance(x, torch.Tensor) else 0


def file_breakdown(model: nn.Module, fmt: str = "bitmask_codebook") -> Table:
    """Bytes of each part of `to_bytes(model, fmt)` for a sparse form: positions, values, extras, container."""
    data = to_bytes(model, fmt)
    payload = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    rows = []
    for name, entry in payload["sparse"].items():
        positions = sum(_nbytes(entry[k]) for k in ("bits", "crow", "col") if k in entry)
        values = sum(_nbytes(entry[k]) for k in ("values", "q", "index") if k in entry)
        tables = sum(_nbytes(entry[k]) for k in ("scale", "codebook") if k in entry)
        rows.append((name, int(torch.Size(entry["shape"]).numel()), positions, values, tables))
    extras = sum(_nbytes(t) for t in payload["dense"].values())
    container = len(data) - extras - sum(r[2] + r[3] + r[4] for r in rows)
    rows += [("biases and other tensors", None, None, extras, None), ("torch.save container", None, None, container,
                                                                        None)]
    total = ("file", None, sum(r[2] or 0 for r in rows), sum(r[3] or 0 for r in rows), sum(r[4] or 0 for r in rows))
    return Table(["part", "weights", "positions", "values", "scales / codebook"], rows + [total],
                 title=f"Where the {len(data):,} bytes of the {fmt} file go",
                 formats={"weights": "count", "positions": "bytes", "values": "bytes", "scales / codebook": "bytes"},
                 note="file row: sums per column; their total is the file's length")


def coding_costs(model: nn.Module, *, rel_bits: int = 8) -> Table:
    """Per layer and stream (positions, indices): stored bytes, entropy bound, Huffman (no tables), LZMA2 of the same
    symbols, LZMA2 of the stored bytes. Needs a weight-shared model (`quantize(..., method="kmeans")`)."""
    rows = []
    for name, module in prunable_layers(model):
        codebook, index, _ = shared_codebook(module)
        kept = kept_positions(module).cpu()
        gaps, _ = relative_index(kept, rel_bits)
        mask = np.packbits(kept.flatten().numpy()).tobytes()
        b = index_bits(codebook.numel())
        packed = pack_indices(index, b).numpy().tobytes()
        for stream, symbols, stored in (("positions", gaps, mask), (f"indices ({b} bits)", index.numpy(), packed)):
            rows.append((name, stream, len(stored), entropy_bits(symbols) / 8, huffman_bits(symbols) / 8,
                         lzma_bytes(symbols.astype(np.uint8).tobytes()), lzma_bytes(stored)))
    rows.append(("all layers", "both", *[sum(r[i] for r in rows) for i in range(2, 7)]))
    return Table(["layer", "stream", "stored", "entropy bound", "Huffman", "LZMA2, same symbols", "LZMA2, stored"],
                 rows, title="Entropy coding the positions and the indices",
                 formats={c: "bytes" for c in ("stored", "entropy bound", "Huffman", "LZMA2, same symbols",
                                               "LZMA2, stored")},
                 note=f"positions as {rel_bits}-bit relative gaps (Han et al. 2016), stored as a bitmask; indices, "
                      "stored packed; Huffman without its code tables; LZMA2 = xz's coder, each stream alone")
