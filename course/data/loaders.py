"""Data loaders: seeded stratified subsets, the normalised view they iterate over, and a held-out batch.

    train_loader, test_loader = make_loaders("mnist", batch_size=128)     # normalised float32 (B, C, H, W), int64
    train_loader, val_loader, test_loader = make_loaders("mnist", val_size=800)   # a validation split too
    X, y = held_out_batch("mnist", 1000)                                  # a stratified batch of test images

Fast mode (`COURSE_FAST=1`) shrinks the splits to stratified subsets; it never changes which code runs.
Introduced in 00_setup_and_baselines
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from course import arguments, config
from course.data.loading import load_dataset, load_splits, normalization

__all__ = ["stratified_indices", "NormalizedDataset", "keep_batch", "make_loaders", "held_out_batch"]


def stratified_indices(labels: torch.Tensor | np.ndarray, n: int, seed: int = 0) -> np.ndarray:
    """`n` sorted indices with class c drawn n * N_c / N times (largest-remainder rounding), seeded."""
    labels = np.asarray(labels)
    total = len(labels)
    n = arguments.integer(n, "n", low=1, high=total, meaning="the number of items")
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


def _size(value: int | None, total: int, fast_default: int, name: str) -> int | None:
    """The subset size: `value`, or in fast mode min(fast_default, total) when None (None: the whole split)."""
    if value is None:
        return min(fast_default, total) if config.FAST else None
    return arguments.integer(value, name, low=1, high=total, meaning="the split's size")


def make_loaders(
    name: str, *, batch_size: int = 128, test_batch_size: int = 1000, root: str | Path | None = None,
    download: bool = True, train_size: int | None = None, test_size: int | None = None, seed: int = 0,
    num_workers: int = 0, val_size: int | None = None,
) -> tuple[DataLoader, ...]:
    """(train_loader, test_loader) of normalised float32 (B, C, H, W) and int64 labels; seeded shuffle and subsets.

    `val_size=n` carves a stratified validation split of n images out of the *training* images first (seeded by
    `seed`, never from the test images), draws `train_size` from the rest, and returns (train, val, test) loaders.
    Choose recipes on the validation split and report the test accuracy only at the end.
    """
    batch_size = arguments.integer(batch_size, "batch_size", low=1)
    test_batch_size = arguments.integer(test_batch_size, "test_batch_size", low=1)
    train, test = load_splits(name, root=root, download=download)
    mean, std = normalization(name)
    pool = np.arange(len(train))                                         # training images the train split draws from
    val_idx = None
    if val_size is not None:
        val_size = arguments.integer(val_size, "val_size", low=1, high=len(train) - 1,
                                     meaning="validation images taken from the training split")
        val_idx = stratified_indices(train.labels, val_size, seed)
        pool = np.setdiff1d(pool, val_idx)
    n_train = _size(train_size, len(pool), 2000, "train_size")
    n_test = _size(test_size, len(test), 1000, "test_size")
    train_idx = None if n_train is None and val_idx is None else \
        pool if n_train is None else pool[stratified_indices(train.labels[pool], n_train, seed)]
    test_idx = None if n_test is None else stratified_indices(test.labels, n_test, seed)
    train_ds = NormalizedDataset(train.images, train.labels, mean, std, train_idx)
    test_ds = NormalizedDataset(test.images, test.labels, mean, std, test_idx)
    sets = [(train_ds, train), (test_ds, test)]
    if val_idx is not None:
        val_ds = NormalizedDataset(train.images, train.labels, mean, std, val_idx)
        sets.append((val_ds, train))
    for ds, src in sets:
        ds.info, ds.classes = src.info, src.classes
    gen = torch.Generator().manual_seed(seed)
    train_loader = DataLoader(train_ds, batch_size=batch_size, shuffle=True, generator=gen,
                              num_workers=num_workers, collate_fn=keep_batch)
    test_loader = DataLoader(test_ds, batch_size=test_batch_size, shuffle=False,
                             num_workers=num_workers, collate_fn=keep_batch)
    if val_idx is None:
        return train_loader, test_loader
    val_loader = DataLoader(val_ds, batch_size=test_batch_size, shuffle=False, num_workers=num_workers,
                            collate_fn=keep_batch)
    return train_loader, val_loader, test_loader


def held_out_batch(name: str, n: int = 1000, seed: int = 0, *, root: str | Path | None = None,
                   download: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """A seeded stratified batch of `n` test images: X float32 (n, C, H, W) normalised, y int64 (n,)."""
    test = load_dataset(name, "test", root=root, download=download)
    mean, std = normalization(name)
    return NormalizedDataset(test.images, test.labels, mean, std, stratified_indices(test.labels, n, seed)).tensors()
