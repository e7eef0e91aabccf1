"""course.capstone: choosing the dataset (real CIFAR-10 format fixture, real fallbacks) and the sensitivity scan."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import matplotlib
import pytest
import torch
from torch import nn
from torch.nn.utils import prune as torch_prune

matplotlib.use("Agg")

from course import download  # noqa: E402
from course.capstone import DatasetChoice, choose_dataset, sensitivity_scan  # noqa: E402
from course.download import Checksum, DataUnavailableError  # noqa: E402
from course.train import evaluate  # noqa: E402

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "cifar10"
CIFAR_TGZ = FIXTURES / "cifar-10-python.tar.gz"
needs_fashion = pytest.mark.skipif(not Path("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz").exists(),
                                   reason="needs Debian's dataset-fashion-mnist")


@pytest.fixture(autouse=True)
def _isolated(monkeypatch):
    monkeypatch.setattr(download, "_unreachable", set())
    monkeypatch.delenv("COURSE_MIRROR", raising=False)


@pytest.fixture
def cifar_sums() -> dict[str, tuple[Checksum, ...]]:
    record = json.loads((FIXTURES / "checksums.json").read_text())["files"]
    return {name: (Checksum("md5", h),) for name, h in record.items()}


# --- choose_dataset -----------------------------------------------------------------------------------------------

def test_cifar10_downloaded_from_a_mirror_is_used_without_a_banner_warning(http_server, tmp_path, cifar_sums):
    http_server.files["cifar-10-python.tar.gz"] = CIFAR_TGZ.read_bytes()
    choice = choose_dataset("cifar10", root=tmp_path, mirrors=[http_server.url], checksums=cifar_sums)
    assert (choice.name, choice.variant, choice.fallback, choice.reason) == ("cifar10", "full", False, "")
    assert "Running on CIFAR-10 (full, real)" in choice._repr_html_()
    again = choose_dataset("cifar10", root=tmp_path, download=False)     # now on disk: no second download
    assert again.name == "cifar10" and http_server.requests == ["cifar-10-python.tar.gz"]


def test_cifar10_archive_placed_by_hand_is_used_offline(tmp_path, cifar_sums):
    cache = tmp_path / "downloads" / "cifar10"
    cache.mkdir(parents=True)
    shutil.copy(CIFAR_TGZ, cache / CIFAR_TGZ.name)
    choice = choose_dataset("cifar10", root=tmp_path, download=False, checksums=cifar_sums)
    assert choice.name == "cifar10" and not choice.fallback


@needs_fashion
def test_offline_falls_back_to_full_fashion_mnist_and_says_why(tmp_path, dead_url):
    choice = choose_dataset("cifar10", root=tmp_path, mirrors=[dead_url])
    assert (choice.name, choice.variant, choice.fallback) == ("fashion-mnist", "full", True)
    assert "download failed" in choice.reason and "To get it" not in choice.reason and "\n" not in choice.reason
    text = choice.message()
    assert text.startswith("CIFAR-10 is not available on this machine: no copy on disk, and the download failed")
    assert "Running the same recipe on Fashion-MNIST (full, real) instead" in text and "make data" in text
    page = choice._repr_html_()
    assert "⚠ CIFAR-10 is not available" in page and "<code>make data</code>" in page
    assert repr(choice).startswith("⚠ CIFAR-10 is not available")


@needs_fashion
def test_a_full_fallback_wins_over_a_subset_listed_first(tmp_path):
    choice = choose_dataset("cifar10", ("mnist", "fashion-mnist"), root=tmp_path, download=False)
    assert choice.name == "fashion-mnist" and "download=False" in choice.reason


def test_the_shipped_mnist_subset_is_the_last_resort(tmp_path):
    choice = choose_dataset("cifar10", ("mnist",), root=tmp_path, download=False)
    assert (choice.name, choice.variant) == ("mnist", "10k-subset")
    assert "MNIST (10k-subset, real)" in choice.message()


def test_no_real_fallback_raises_instead_of_inventing_data(tmp_path):
    with pytest.raises(DataUnavailableError, match="no fallback"):
        choose_dataset("cifar10", (), root=tmp_path, download=False)


def test_unknown_dataset_names_are_rejected_with_the_choices():
    with pytest.raises(ValueError, match="valid names: mnist, fashion-mnist, cifar10"):
        choose_dataset("cifar100")
    with pytest.raises(ValueError, match="'svhn'"):
        choose_dataset("cifar10", ("svhn",))


def test_dataset_choice_of_the_wanted_dataset_is_not_a_fallback():
    choice = DatasetChoice("cifar10", "cifar10", "full")
    assert not choice.fallback and "Using CIFAR-10 (full, real)" in choice.message()


# --- sensitivity_scan ---------------------------------------------------------------------------------------------

def _net_and_data():
    """A bias-free conv chain (so zeroing a filter == removing it) and a fixed synthetic batch (unit test only)."""
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(1, 6, 3, padding=1, bias=False), nn.ReLU(), nn.MaxPool2d(2),
                        nn.Conv2d(6, 8, 3, padding=1, bias=False), nn.ReLU(), nn.AdaptiveAvgPool2d(2),
                        nn.Flatten(), nn.Linear(32, 12, bias=False), nn.ReLU(), nn.Linear(12, 4, bias=False))
    x = torch.randn(700, 1, 8, 8)
    with torch.no_grad():
        y = net(x + 0.3 * torch.randn_like(x)).argmax(1)       # labels the net gets mostly right
    return net, (x, y)


def _oracle(net, data, layer: str, ratio: float, structured: bool) -> float:
    """Accuracy with `layer` pruned by torch.nn.utils.prune (L1 filters / smallest |w|)."""
    import copy

    twin = copy.deepcopy(net)
    module = dict(twin.named_modules())[layer]
    if structured:
        torch_prune.ln_structured(module, "weight", amount=round(ratio * module.weight.shape[0]), n=1, dim=0)
    else:
        torch_prune.l1_unstructured(module, "weight", amount=round(ratio * module.weight.numel()))
    return evaluate(twin, [data])


@pytest.mark.parametrize("kind", ["structured", "unstructured"])
def test_scan_matches_torch_prune_one_layer_at_a_time(kind):
    net, data = _net_and_data()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    scan = sensitivity_scan(net, [0.5, 0.25], data, kind=kind, progress=False)
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())       # model untouched
    expected_layers = ["0", "3", "7"] if kind == "structured" else ["0", "3", "7", "9"]   # classifier: weights only
    assert scan.layers == expected_layers and scan.ratios == [0.25, 0.5] and scan.n_samples == 700
    assert scan.baseline == evaluate(net, [data])
    for layer in scan.layers:
        for r in scan.ratios:
            assert scan.accuracy[layer][r] == pytest.approx(_oracle(net, data, layer, r, kind == "structured"))
            assert scan.drop(layer, r) == pytest.approx(scan.baseline - scan.accuracy[layer][r])
    assert any(scan.drop(layer, 0.5) > 0 for layer in scan.layers)     # pruning half of a layer costs something


def test_scan_table_plot_and_lookups():
    net, data = _net_and_data()
    scan = sensitivity_scan(net, [0.5], data, kind="unstructured", layers=["3", "9"], progress=False)
    assert scan.column("weights") == [6 * 8 * 9, 12 * 4] and scan.columns[-1] == "50%"
    assert "one layer pruned" in str(scan) and "<table>" in scan._repr_html_()
    import matplotlib.pyplot as plt

    stray = plt.figure().gca()
    stray.plot([0, 1], [0, 1])                     # a figure some earlier code left current
    ax = scan.plot()
    assert ax is not stray and len(stray.get_lines()) == 1       # drawn on a fresh figure, not over the stray one
    assert len(ax.get_lines()) == 3 and ax.get_xlabel() == "% of weights zeroed"
    plt.close("all")
    with pytest.raises(KeyError, match="ratios: \\[0.5\\]"):
        scan.drop("3", 0.25)
    with pytest.raises(KeyError, match="layers: \\['3', '9'\\]"):
        scan.drop("0", 0.5)


@pytest.mark.parametrize("kwargs, error, match", [
    ({"ratios": [0.0, 0.5]}, ValueError, "in \\(0, 1\\)"),
    ({"ratios": [0.5, 0.5]}, ValueError, "distinct"),
    ({"ratios": []}, ValueError, "non-empty"),
    ({"kind": "channels"}, ValueError, "choose one of \\['structured', 'unstructured'\\]"),
    ({"layers": ["9"]}, ValueError, "choose from \\['0', '3', '7'\\]"),
])
def test_scan_rejects_bad_arguments(kwargs, error, match):
    net, data = _net_and_data()
    args = {"ratios": [0.5], "kind": "structured"} | kwargs
    with pytest.raises(error, match=match):
        sensitivity_scan(net, args.pop("ratios"), data, progress=False, **args)


def test_scan_rejects_a_one_shot_iterator():
    net, (x, y) = _net_and_data()
    with pytest.raises(TypeError, match="re-iterable"):
        sensitivity_scan(net, [0.5], iter([(x, y)]), progress=False)
