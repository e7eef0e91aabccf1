"""Real datasets for the course (MNIST, Fashion-MNIST, CIFAR-10), found in a fixed order and always verified.

    load_dataset("mnist", "test")              # .images uint8 (N, C, H, W), .labels int64 (N,), .info
    make_loaders("fashion-mnist")              # normalised (train_loader, test_loader)
    choose_dataset("cifar10")                  # the dataset a notebook runs on, with a banner when it falls back

Modules: `catalog` (facts), `formats` (IDX, CIFAR pickle), `download` (mirrors, checksums), `loading` (the
resolution order), `loaders` (subsets, loaders, held-out batch), `choice` (dataset choice), `cli`
(`python -m course.data prepare|download`).
Introduced in 00_setup_and_baselines
"""
from course.data.catalog import DATASET_NAMES, SPECS, SPLITS, DatasetSpec
from course.data.choice import DatasetChoice, choose_dataset
from course.data.download import Checksum, ChecksumError, DataUnavailableError
from course.data.loaders import NormalizedDataset, held_out_batch, make_loaders, stratified_indices
from course.data.loading import (
    CourseDataset, DatasetInfo, Location, available, input_shape, load_dataset, locate, normalization,
)

__all__ = [
    "DATASET_NAMES", "SPECS", "SPLITS", "DatasetSpec", "DatasetChoice", "choose_dataset", "Checksum",
    "ChecksumError", "DataUnavailableError", "NormalizedDataset", "held_out_batch", "make_loaders",
    "stratified_indices", "CourseDataset", "DatasetInfo", "Location", "available", "input_shape", "load_dataset",
    "locate", "normalization",
]
