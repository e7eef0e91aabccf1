"""Save and load pruned models in small files: CSR, or a bitmask plus the kept values (fp32 or fp16).

Every form is a `torch.save` of plain tensors, strings and dicts, so it loads with `weights_only=True`, followed by
a 46-byte checksum trailer (`course.files.seal`: a tag and the sha256 of the bytes before it; `torch.load` reads the
file as it is, zip readers ignore what follows the archive). `load_pruned` checks it, so a flipped byte is a
`FileFormatError`, not a weight of 1e37. `to_bytes` is the one serialiser: `save_pruned` writes its bytes and
`course.metrics.size_bytes` measures them, so a reported size is the length of the file on disk.

Forms (`FORMATS`), for each weight matrix W (every parameter with 2+ dimensions, tied ones once) with n elements
and k kept (its course mask, else its nonzeros):
  - "dense":        the state_dict without masks; zeros stored densely (4n bytes per weight).
  - "course_masks": the state_dict with the bool mask buffers (4n + n bytes).
  - "torch_prune":  `torch.nn.utils.prune` form, <name>_orig + float <name>_mask (4n + 4n bytes, about 2x dense):
                    what `torch.save(model.state_dict())` writes for a model torch prune pruned from the dense
                    original. <name>_orig keeps every pruned weight's original value, so a course-pruned model (its
                    pruned weights are zeros) needs `original=` (the dense model it was pruned from); without it this
                    form is refused by name, never measured on zeros that compress far better than real values.
  - "csr":          W reshaped to (rows, n/rows) in CSR: int32 row pointers (rows+1), int32 columns (k), fp32 values (k).
  - "bitmask_fp32": `np.packbits` mask (n/8 bytes) + the kept values in fp32 (4k bytes).
  - "bitmask_fp16": the same with fp16 values (2k bytes); lossy: each kept weight is rounded to fp16
                    (relative error <= 2**-11), so outputs match the original only to within that rounding.
  - "bitmask_int8", "bitmask_codebook": the mask + int8 values and per-channel scales, or b-bit packed indices and a
                    codebook, for quantized models (`course.quantized_forms`).
Biases, norm parameters and buffers are stored as they are (fp32) in every form. Sparse entries are named by mask
key ("fc1", "lstm.weight_hh_l1", see `course.pruning.masks`).

A form is lossless *for a model* when it gives back every weight of that model exactly (`exact_for`). `LOSSLESS`
forms are exact for every model; `EXACT_ON_GRID` forms only for models whose weights already lie on their grid (fp16
numbers, a linear int grid, a shared codebook), which is what `course.quantization.quantize` makes. A model's size,
`course.metrics.stored_size`, is the smallest of its `lossless_forms`. course_masks and torch_prune are lossless
too, but they hold the dense tensors plus masks, so they are never smaller than dense.
`compress=True` adds xz (LZMA2, an LZ77 + range coder) on top of any form: the entropy-coding stage.
Introduced in 02_unstructured (the storage forms); files for export in 07_metrics_tradeoffs; quantized forms and
xz in 09_beyond_pruning
"""
from __future__ import annotations

import io
import os
import pickle
import warnings
import zipfile
from collections import OrderedDict
from pathlib import Path

import numpy as np
import torch
from torch import nn

from course import arguments
from course.files import FileFormatError, atomic_write_bytes, seal, unpack_compressed, unseal, xz_bytes
from course.pruning.masks import MASK, apply_masks, check_masks, mask_name, masked_parameters, owners, remove_masks, \
    weight_key
from course.pruning.reparam import to_torch_prune, torch_pruned
from course.pruning.targets import weight_matrices
from course.quantized_forms import QUANTIZED_FORMATS, decode_values, encode_values, exact

__all__ = ["FORMATS", "SPARSE_FORMATS", "LOSSLESS", "EXACT_ON_GRID", "exact_for", "lossless_forms", "to_bytes",
           "save_pruned", "load_pruned"]

SPARSE_FORMATS = ("csr", "bitmask_fp32", "bitmask_fp16") + QUANTIZED_FORMATS
FORMATS = ("dense", "course_masks", "torch_prune") + SPARSE_FORMATS
#: Forms that give back every weight of any model exactly (see the module docstring).
LOSSLESS = ("dense", "csr", "bitmask_fp32")
#: Forms that give back every weight exactly only when the weights already lie on the form's grid.
EXACT_ON_GRID = ("bitmask_fp16",) + QUANTIZED_FORMATS
_VERSION = 2                                        # 1: entries for Linear/Conv2d weights only; 2: every weight matrix


def _state_keys(places: list) -> list[str]:
    """The state_dict keys of a parameter: one per owner ("fc1.weight"; a tied one has several)."""
    return [f"{m}.{a}" if m else a for m, _, a in places]


def _encode_sparse(model: nn.Module, fmt: str) -> dict:
    """The payload dict of a sparse form: dense extras + one entry per weight matrix."""
    places = owners(model)
    matrices = weight_matrices(model)
    skip = {k for t in matrices for m, _, a in places[t.name]
            for k in (f"{m}.{a}" if m else a, f"{m}.{mask_name(a)}" if m else mask_name(a))}
    dense = {k: v.detach().cpu() for k, v in model.state_dict().items() if k not in skip}
    sparse = {}
    for t in matrices:
        w = t.weight.detach().cpu().float()
        kept = (t.mask if t.mask is not None else w != 0).detach().cpu().bool()
        entry: dict = {"shape": list(w.shape)}
        if fmt == "csr":
            w2, k2 = w.reshape(w.shape[0], -1), kept.reshape(w.shape[0], -1)          # (rows, n/rows)
            counts = k2.sum(dim=1)
            entry["crow"] = torch.cat([torch.zeros(1, dtype=torch.int64), counts.cumsum(0)]).to(torch.int32)
            entry["col"] = k2.nonzero()[:, 1].to(torch.int32)                          # row-major order
            entry["values"] = w2[k2].contiguous()
        else:
            bits = np.packbits(kept.flatten().numpy())                                 # (ceil(n/8),) uint8
            entry["bits"] = torch.from_numpy(bits)
            if fmt in QUANTIZED_FORMATS:
                try:
                    entry |= encode_values(t, fmt)
                except ValueError as e:
                    raise ValueError(f"layer {t.name!r}: {e}") from None
            else:
                values = w.flatten()[kept.flatten()]
                entry["values"] = values.half() if fmt == "bitmask_fp16" else values.contiguous()
        sparse[t.name] = entry
    masked = [t.name for t in matrices if t.mask is not None]
    return {"course_format": fmt, "version": _VERSION, "model": type(model).__name__,
            "masked": masked, "dense": dense, "sparse": sparse}


def _dense_state(model: nn.Module) -> OrderedDict:
    """`remove_masks(model).state_dict()` without copying the model: mask buffers dropped, masked weights × mask."""
    state = model.state_dict()
    masks = {k: mask for _, places, _, mask in masked_parameters(model) for k in _state_keys(places)}
    dense = OrderedDict((k, v * masks[k] if k in masks else v) for k, v in state.items()
                        if not k.rpartition(".")[2].endswith(MASK))
    dense._metadata = getattr(state, "_metadata", None)
    return dense


def _torch_prune_state(model: nn.Module, original: nn.Module | None) -> OrderedDict:
    """The state_dict of `model` pruned by torch.nn.utils.prune from `original`; refused when its values are unknown.

    A model torch prune pruned holds them itself; a course-pruned one has zeros where torch keeps the originals.
    """
    if any(torch_pruned(m) for m in model.modules()):
        if original is not None:
            raise ValueError("this model was pruned by torch.nn.utils.prune: it holds its original values in "
                             "<name>_orig already; drop original=")
        return model.state_dict()
    pruned = [key for key, _, _, mask in masked_parameters(model) if not bool(mask.all())]
    if pruned and original is None:
        raise ValueError(
            f"the torch_prune form stores each pruned weight's original value (torch.nn.utils.prune keeps it in "
            f"<name>_orig), and this model holds zeros there ({', '.join(pruned[:4])}{', ...' if len(pruned) > 4 else ''}"
            f"): its size would be wrong. Pass the dense model it was pruned from, e.g. "
            f"size_bytes(model, 'torch_prune', original=dense) or size_table(model, original=dense)")
    return to_torch_prune(model, original if pruned else None).state_dict()


def _payload(model: nn.Module, fmt: str, original: nn.Module | None = None):
    """What `torch.save` receives for `fmt`."""
    arguments.choice(fmt, FORMATS, "storage format")
    if not isinstance(model, nn.Module):
        raise TypeError(f"expected an nn.Module, got {type(model).__name__}")
    if fmt in SPARSE_FORMATS:
        return _encode_sparse(model, fmt)
    if fmt == "dense":
        state = _dense_state(model)
    elif fmt == "torch_prune":
        state = _torch_prune_state(model, original)
    else:                                           # exactly what `torch.save(model.state_dict(), f)` writes
        state = model.state_dict()
    if any(v.device.type != "cpu" for v in state.values()):
        cpu = OrderedDict((k, v.cpu()) for k, v in state.items())
        cpu._metadata = getattr(state, "_metadata", None)
        state = cpu
    return state


def exact_for(model: nn.Module, fmt: str) -> bool:
    """Whether form `fmt` gives back every weight of `model` exactly: always, except for an `EXACT_ON_GRID` form
    whose grid some layer's weights are not on (then the form rounds them)."""
    arguments.choice(fmt, FORMATS, "storage format")
    return fmt not in EXACT_ON_GRID or all(exact(t, fmt) for t in weight_matrices(model))


def lossless_forms(model: nn.Module) -> tuple[str, ...]:
    """The candidates for `model`'s size: `LOSSLESS`, plus each `EXACT_ON_GRID` form that stores it exactly.

    (course_masks and torch_prune are exact too, but hold the dense tensors plus masks: never smaller than dense.)
    """
    return LOSSLESS + tuple(f for f in EXACT_ON_GRID if exact_for(model, f))


def to_bytes(model: nn.Module, fmt: str = "dense", *, original: nn.Module | None = None) -> bytes:
    """The exact bytes of `model` saved in storage form `fmt` (see `FORMATS`), checksum trailer included.

    `original`: the dense model `model` was pruned from; only the torch_prune form reads it (and needs it).
    """
    buf = io.BytesIO()
    torch.save(_payload(model, fmt, original), buf)
    return seal(buf.getvalue())


def save_pruned(model: nn.Module, path: str | os.PathLike, fmt: str = "bitmask_fp16", *,
                compress: bool = False, original: nn.Module | None = None) -> Path:
    """Write `model` to `path` in storage form `fmt` atomically; the file length equals `size_bytes(model, fmt)`.

    `compress=True` xz-compresses the file (length `size_bytes(model, fmt, compressed=True)`); `load_pruned` reads
    raw, xz and gzip files (earlier versions of the course gzipped). `original`: see `to_bytes` (torch_prune only).
    A model whose weights disagree with its masks (written behind them) is refused: `MaskMismatchError`.
    """
    arguments.choice(fmt, FORMATS, "storage format")
    arguments.boolean(compress, "compress")
    if isinstance(model, nn.Module):
        check_masks(model)
    data = to_bytes(model, fmt, original=original)
    return atomic_write_bytes(path, xz_bytes(data) if compress else data)


def _decode_weight(entry: dict, fmt: str) -> tuple[torch.Tensor, torch.Tensor]:
    """(weight, kept mask) of one sparse entry, both shaped `entry['shape']`."""
    shape = torch.Size(entry["shape"])
    n = shape.numel()
    if fmt == "csr":
        size = (shape[0], n // shape[0])                                               # (rows, n/rows)
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")
            # check_invariants: a damaged file raises here instead of reading out of bounds
            csr = torch.sparse_csr_tensor(entry["crow"], entry["col"], entry["values"], size=size,
                                          check_invariants=True)
            kept = torch.sparse_csr_tensor(entry["crow"], entry["col"], torch.ones_like(entry["values"]),
                                           size=size, check_invariants=True)
        return csr.to_dense().reshape(shape), kept.to_dense().bool().reshape(shape)
    kept = torch.from_numpy(np.unpackbits(entry["bits"].numpy(), count=n).astype(bool)).reshape(shape)
    weight = torch.zeros(n, dtype=torch.float32)
    values = decode_values(entry, kept, fmt) if fmt in QUANTIZED_FORMATS else entry["values"]
    weight[kept.flatten()] = values.float()
    return weight.reshape(shape), kept


def _mismatch(template: nn.Module, have: dict[str, torch.Size], want: dict[str, torch.Size], path) -> None:
    """Raise a ValueError naming missing, unexpected and misshapen tensors, if any."""
    missing = sorted(set(want) - set(have))
    extra = sorted(set(have) - set(want))
    shapes = [f"{k}: file {tuple(have[k])} vs model {tuple(want[k])}"
              for k in sorted(set(have) & set(want)) if have[k] != want[k]]
    if missing or extra or shapes:
        raise ValueError(
            f"{path} does not fit a {type(template).__name__} of this shape: missing {missing}, "
            f"unexpected {extra}, shape mismatches {shapes}. Load it into the architecture it was saved from.")


def _read(path: Path):
    """The object in a file `save_pruned` wrote (xz'd, gzip'd or raw), its checksum verified; FileFormatError
    otherwise."""
    try:
        raw = unpack_compressed(path.read_bytes())      # xz or gzip: written by save_pruned(compress=True)
    except ValueError as e:
        raise FileFormatError(f"{path} is {e}; save the model again") from e
    raw = unseal(raw, path)
    try:
        return torch.load(io.BytesIO(raw), map_location="cpu", weights_only=True)
    except (RuntimeError, pickle.UnpicklingError, EOFError, zipfile.BadZipFile, ValueError, KeyError) as e:
        raise FileFormatError(f"{path} is not a model file written by save_pruned or torch.save, or it is damaged "
                              f"({type(e).__name__}: {str(e)[:200]})") from e


def _param_key(state_key: str, suffix: str) -> str:
    """The mask key of "<module>.<attr><suffix>" ("fc1.weight_orig" -> "fc1", "lstm.weight_hh_l0_orig" -> ...)."""
    module, _, attr = state_key[: -len(suffix)].rpartition(".")
    return weight_key(module, attr)


def _parse(data, template: nn.Module) -> tuple[str, str | None, dict, dict]:
    """(form, saved model class or None, state_dict, {key: mask}) of a loaded file; KeyError etc. on a foreign one."""
    if isinstance(data, dict) and "course_format" in data:
        fmt = data["course_format"]
        if fmt not in SPARSE_FORMATS:
            raise FileFormatError(f"unknown course format {fmt!r}; known: {list(SPARSE_FORMATS)}")
        places = owners(template)
        alias = {name: key for key, ps in places.items()
                 for name in {*_state_keys(ps), *(weight_key(m, a) for m, _, a in ps)}}
        state = dict(data["dense"])
        masks = {}
        for name, entry in data["sparse"].items():
            weight, kept = _decode_weight(entry, fmt)
            keys = _state_keys(places[alias[name]]) if name in alias else [name if data["version"] > 1 else
                                                                           f"{name}.weight"]
            state.update({k: weight for k in keys})
            if name in data["masked"]:
                masks[name] = kept
        return fmt, data["model"], state, masks
    if not isinstance(data, dict) or not all(isinstance(k, str) and isinstance(v, torch.Tensor)
                                             for k, v in data.items()):
        raise FileFormatError("it holds neither a course sparse form nor a state_dict")
    state, masks = {}, {}                             # dense, course_masks or torch_prune: a plain state_dict
    for k, v in data.items():
        if k.endswith("_orig") and f"{k[:-5]}_mask" in data:
            mask = data[f"{k[:-5]}_mask"].bool()
            state[k[:-5]], masks[_param_key(k, "_orig")] = v * mask, mask
        elif k.endswith("_mask") and f"{k[:-5]}_orig" in data:
            continue
        elif k.rpartition(".")[2].endswith(MASK):
            module, _, buffer = k.rpartition(".")
            masks[weight_key(module, "weight" if buffer == MASK else buffer[: -len(MASK) - 1])] = v.bool()
        else:
            state[k] = v
    return "state_dict", None, state, masks


def load_pruned(path: str | os.PathLike, model: nn.Module) -> nn.Module:
    """Load a file written by `save_pruned` into a copy of `model` (same architecture); re-attaches course masks.

    Returns a new model; `model` itself is only a template and is not changed. A damaged or foreign file (checksum,
    gzip, zip or pickle errors, missing entries) is a `course.files.FileFormatError`; a file of another architecture a
    ValueError naming what does not fit.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no saved model at {path}")
    data = _read(path)
    new = remove_masks(model)
    try:
        fmt, saved_from, state, masks = _parse(data, new)
    except FileFormatError as e:
        raise FileFormatError(f"{path}: {e}") from e
    except (KeyError, TypeError, AttributeError, IndexError, RuntimeError, ValueError) as e:
        raise FileFormatError(f"{path} is damaged or was not written by save_pruned "
                              f"({type(e).__name__}: {str(e)[:200]})") from e
    if saved_from is not None and saved_from != type(new).__name__:
        raise ValueError(f"{path} was saved from a {saved_from}, not a {type(new).__name__}; "
                         f"pass a {saved_from} as the template")
    want = {k: v.shape for k, v in new.state_dict().items()}
    _mismatch(new, {k: v.shape for k, v in state.items()}, want, path)
    new.load_state_dict(state)
    return apply_masks(new, masks, inplace=True) if masks else new
