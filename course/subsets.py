"""Seeded stratified subsets and the normalised view that the course's data loaders iterate over."""
from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
from torch.utils.data import Dataset


def stratified_indices(labels: torch.Tensor | np.ndarray, n: int, seed: int = 0) -> np.ndarray:
    """`n` sorted indices with class c drawn n * N_c / N times (largest-remainder rounding), seeded."""
    labels = np.asarray(labels)
    total = len(labels)
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)):
        raise TypeError(f"n must be an int, got {type(n).__name__}")
    if not 1 <= n <= total:
        raise ValueError(f"n must be between 1 and {total} (the number of items), got {n}")
    if n == total:
        return np.arange(total)
    classes, counts = np.unique(labels, return_counts=True)
    exact = n * counts / total
    take = np.floor(exact).astype(int)
    top_up = np.argsort(-(exact - take), kind="stable")[: n - take.sum()]  # largest remainders get one more
    take[top_up] += 1
    rng = np.random.default_rng(seed)
    picks = [rng.choice(np.flatnonzero(labels == c), size=k, replace=False) for c, k in zip(classes, take)]
    return np.sort(np.concatenate(picks))


class NormalizedDataset(Dataset):
    """Items ((x / 255 - mean) / std as float32 (C, H, W), label int64); batches are built in one tensor op."""

    def __init__(
        self,
        images: torch.Tensor,
        labels: torch.Tensor,
        mean: Sequence[float],
        std: Sequence[float],
        indices: np.ndarray | None = None,
    ) -> None:
        if images.dtype != torch.uint8 or images.ndim != 4:
            raise TypeError(f"images must be uint8 (N, C, H, W), got {images.dtype} {tuple(images.shape)}")
        if len(mean) != images.shape[1] or len(std) != images.shape[1]:
            raise ValueError(f"mean/std need one value per channel ({images.shape[1]}), got {len(mean)}/{len(std)}")
        if indices is not None:
            index = torch.as_tensor(np.asarray(indices), dtype=torch.long)
            images, labels = images[index], labels[index]
        self.images = images  # (N, C, H, W) uint8
        self.labels = labels.to(torch.int64)  # (N,)
        self.mean = torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1)
        self.std = torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1)

    def normalize(self, images: torch.Tensor) -> torch.Tensor:
        """uint8 (B, C, H, W) -> float32 (B, C, H, W) with (x / 255 - mean) / std per channel."""
        return (images.to(torch.float32) / 255.0 - self.mean) / self.std

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.normalize(self.images[i : i + 1])[0], self.labels[i]

    def __getitems__(self, indices: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
        """A whole batch at once (DataLoader calls this instead of __getitem__ per item)."""
        index = torch.as_tensor(indices, dtype=torch.long)
        return self.normalize(self.images[index]), self.labels[index]

    def tensors(self) -> tuple[torch.Tensor, torch.Tensor]:
        """All items as (X float32 (N, C, H, W), y int64 (N,))."""
        return self.normalize(self.images), self.labels.clone()

    def __repr__(self) -> str:
        return f"NormalizedDataset({len(self)} items, images {tuple(self.images.shape[1:])})"


def keep_batch(batch: tuple[torch.Tensor, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """collate_fn for NormalizedDataset: __getitems__ already returns the batch (X, y)."""
    return batch
