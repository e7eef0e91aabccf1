"""Readers and writers for the two on-disk formats the course's datasets use: IDX (MNIST family) and CIFAR pickle batches.

Introduced in 00_setup_and_baselines
"""
from __future__ import annotations

import gzip
import io
import pickle
from pathlib import Path
from typing import Iterable

import numpy as np

#: IDX element types: the third byte of the magic number -> numpy dtype (big-endian on disk).
IDX_DTYPES: dict[int, np.dtype] = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
_IDX_CODES = {dt.newbyteorder(">") if dt.itemsize > 1 else dt: code for code, dt in IDX_DTYPES.items()}


class FormatError(ValueError):
    """A file does not hold what its format promises (bad magic number, wrong size or shape)."""


def parse_idx(raw: bytes, *, name: str = "<bytes>") -> np.ndarray:
    """Parse IDX bytes: magic `00 00 <dtype> <ndim>`, ndim big-endian uint32 sizes, then the data (C order)."""
    if len(raw) < 4:
        raise FormatError(f"{name}: {len(raw)} bytes is too short for an IDX header (needs at least 4)")
    zero1, zero2, code, ndim = raw[0], raw[1], raw[2], raw[3]
    if zero1 != 0 or zero2 != 0 or code not in IDX_DTYPES:
        raise FormatError(
            f"{name}: bad IDX magic number {raw[:4].hex()} (expected 0000XXNN with XX in "
            f"{sorted(f'{c:02x}' for c in IDX_DTYPES)}); is this really an IDX file?"
        )
    if ndim == 0:
        raise FormatError(f"{name}: IDX header says 0 dimensions")
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise FormatError(f"{name}: truncated IDX header ({len(raw)} bytes, needs {header})")
    shape = tuple(int(d) for d in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4))
    dtype = IDX_DTYPES[code]
    expected = int(np.prod(shape)) * dtype.itemsize
    if len(raw) - header != expected:
        raise FormatError(
            f"{name}: IDX header promises shape {shape} ({expected} data bytes) but the file holds "
            f"{len(raw) - header} data bytes (truncated or corrupt)"
        )
    return np.frombuffer(raw, dtype=dtype, offset=header).reshape(shape).astype(dtype.newbyteorder("="))


def encode_idx(array: np.ndarray) -> bytes:
    """Encode an array as IDX bytes (the inverse of `parse_idx`)."""
    array = np.asarray(array)
    big = array.dtype.newbyteorder(">") if array.dtype.itemsize > 1 else array.dtype
    if big not in _IDX_CODES:
        raise TypeError(f"IDX cannot store dtype {array.dtype}; use one of uint8, int8, int16, int32, float32, float64")
    if not 1 <= array.ndim <= 255:
        raise ValueError(f"IDX stores 1 to 255 dimensions, got {array.ndim}")
    head = bytes([0, 0, _IDX_CODES[big], array.ndim]) + np.asarray(array.shape, dtype=">u4").tobytes()
    return head + np.ascontiguousarray(array, dtype=big).tobytes()


def read_bytes(path: Path) -> bytes:
    """The file's content, gunzipped when the name ends in .gz."""
    path = Path(path)
    data = path.read_bytes()
    if path.suffix == ".gz":
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError, ValueError) as err:  # BadGzipFile is an OSError
            raise FormatError(f"{path}: not a valid gzip file ({err})") from err
    return data


def check_image_label_pair(images: np.ndarray, labels: np.ndarray, *, name: str, num_classes: int = 10) -> None:
    """Raise FormatError unless images are (N, H, W[, C]) uint8 and labels are N ints in [0, num_classes)."""
    if images.dtype != np.uint8 or images.ndim not in (3, 4):
        raise FormatError(f"{name}: images must be uint8 (N, H, W), got {images.dtype} {images.shape}")
    if labels.ndim != 1 or len(labels) != len(images):
        raise FormatError(f"{name}: {len(images)} images but labels of shape {labels.shape}")
    if len(labels) and (labels.min() < 0 or labels.max() >= num_classes):
        raise FormatError(f"{name}: labels outside [0, {num_classes}): min {labels.min()}, max {labels.max()}")


class _ArrayUnpickler(pickle.Unpickler):
    """Unpickle plain containers and numpy arrays only, so a crafted file cannot run code."""

    _ALLOWED = {
        ("_codecs", "encode"),  # how protocol-2 pickles written by Python 3 store bytes
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
    }

    def find_class(self, module: str, name: str):  # noqa: ANN201 - pickle API
        if (module, name) not in self._ALLOWED:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name} (a CIFAR batch holds only arrays)")
        return super().find_class(module, name)


def parse_cifar_batch(raw: bytes, *, name: str = "<bytes>") -> tuple[np.ndarray, np.ndarray]:
    """Parse one CIFAR-10 python batch: a pickled dict with b'data' uint8 (N, 3072) and b'labels' -> (N,3,32,32), (N,)."""
    try:
        entry = _ArrayUnpickler(io.BytesIO(raw), encoding="bytes").load()
    except Exception as err:  # noqa: BLE001 - any unpickling failure means "not a CIFAR batch"
        raise FormatError(f"{name}: not a CIFAR-10 pickle batch ({type(err).__name__}: {err})") from err
    if not isinstance(entry, dict):
        raise FormatError(f"{name}: a CIFAR-10 batch is a dict, got {type(entry).__name__}")
    entry = {k.decode() if isinstance(k, bytes) else k: v for k, v in entry.items()}
    if "data" not in entry or "labels" not in entry:
        raise FormatError(f"{name}: a CIFAR-10 batch needs keys 'data' and 'labels', has {sorted(entry)}")
    data = np.asarray(entry["data"])
    labels = np.asarray(entry["labels"], dtype=np.int64)
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3 * 32 * 32:
        raise FormatError(f"{name}: CIFAR-10 'data' must be uint8 (N, 3072), got {data.dtype} {data.shape}")
    images = data.reshape(-1, 3, 32, 32)  # rows are R(1024) G(1024) B(1024), each 32x32 row-major
    check_image_label_pair(images, labels, name=name)
    return images, labels


def encode_cifar_batch(images: np.ndarray, labels: Iterable[int], *, batch_label: str = "fixture") -> bytes:
    """Pickle images (N,3,32,32) uint8 and labels into the CIFAR-10 python batch format (protocol 2, bytes keys)."""
    images = np.asarray(images)
    if images.dtype != np.uint8 or images.shape[1:] != (3, 32, 32):
        raise ValueError(f"images must be uint8 (N, 3, 32, 32), got {images.dtype} {images.shape}")
    entry = {
        b"batch_label": batch_label.encode(),
        b"labels": [int(v) for v in labels],
        b"data": images.reshape(len(images), -1),
        b"filenames": [f"image_{i:05d}.png".encode() for i in range(len(images))],
    }
    return pickle.dumps(entry, protocol=2)
