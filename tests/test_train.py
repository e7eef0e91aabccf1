"""course.training and course.checkpoints: training that keeps pruned weights at zero, and verified train-or-load."""
from __future__ import annotations

import json

import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

from course import checkpoints, config
from course.checkpoints import ArchitectureError, ChecksumError
from course.export import to_bytes
from course.files import unseal
from course.metrics import size_bytes
from course.models import build_model
from course.pruning.masks import apply_masks
from course.pruning.targets import prunable_layers
from course import evaluate, train


def blobs(n: int = 256, seed: int = 0, batch_size: int = 32, shuffle: bool = True):
    """Synthetic 1x28x28 images whose class sets the mean of a block of pixels (unit tests only)."""
    gen = torch.Generator().manual_seed(seed)
    y = torch.randint(0, 10, (n,), generator=gen)
    x = torch.randn(n, 1, 28, 28, generator=gen) * 0.5
    for c in range(10):
        x[y == c, 0, 2 * c: 2 * c + 3, :] += 2.0
    return DataLoader(TensorDataset(x, y), batch_size=batch_size, shuffle=shuffle,
                      generator=torch.Generator().manual_seed(seed))


def half_masked(name: str = "lenet300", seed: int = 0):
    torch.manual_seed(seed)
    model = build_model(name)
    gen = torch.Generator().manual_seed(seed + 12345)          # independent of the data's generator
    return apply_masks(model, {n: torch.rand(m.weight.shape, generator=gen) < 0.5 for n, m in prunable_layers(model)})


def test_evaluate_is_accuracy_and_restores_the_mode():
    loader = blobs(shuffle=False)
    model = build_model("lenet5").train()
    with torch.no_grad():
        model.eval()
        expected = sum(int((model(x).argmax(1) == y).sum()) for x, y in loader) / 256
        model.train()
    assert evaluate(model, loader) == pytest.approx(expected)
    assert model.training
    with pytest.raises(ValueError, match="no samples"):
        evaluate(model, [])


def test_train_learns_and_reports_history():
    model = build_model("lenet300")
    history = train(model, blobs(), epochs=3, lr=0.05, schedule="cosine", progress=False, val_loader=blobs(seed=1))
    assert len(history.loss) == len(history.train_acc) == len(history.val_acc) == 3
    assert history.loss[-1] < history.loss[0] and history.train_acc[-1] > 0.9
    assert history.val_acc[-1] > 0.8 and history.seconds > 0
    assert history.lr[-1] < 0.05 / 10                        # cosine decays towards 0
    assert "epoch   3" in repr(history)


def test_train_with_the_same_seed_is_repeatable():
    weights = []
    for _ in range(2):
        torch.manual_seed(0)
        model = build_model("lenet300")
        train(model, blobs(), epochs=1, lr=0.05, progress=False, seed=0)
        weights.append(model.fc1.weight.detach().clone())
    assert torch.equal(weights[0], weights[1])


@pytest.mark.parametrize("optimizer, kwargs", [
    ("sgd", {"momentum": 0.9, "weight_decay": 5e-4}),
    ("adam", {"weight_decay": 1e-4}),
])
def test_pruned_weights_stay_exactly_zero(optimizer, kwargs):
    model = half_masked()
    before = {n: m.weight.detach().clone() for n, m in prunable_layers(model)}
    train(model, blobs(), epochs=2, lr=0.01, optimizer=optimizer, progress=False, **kwargs)
    for name, m in prunable_layers(model):
        pruned = ~m.prune_mask
        assert pruned.any() and torch.count_nonzero(m.weight[pruned]) == 0
        assert not torch.equal(m.weight[m.prune_mask], before[name][m.prune_mask])   # kept weights did train


def test_without_the_mask_hooks_the_same_step_would_revive_pruned_weights():
    # the oracle for the test above: with the masks as bare buffers (no hooks), a plain momentum step regrows them
    from course.pruning.masks import get_masks, remove_masks

    masked = half_masked()
    model = remove_masks(masked)
    for name, mask in get_masks(masked).items():
        model.get_submodule(name).register_buffer("prune_mask", mask)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    x, y = next(iter(blobs()))
    torch.nn.functional.cross_entropy(model(x), y).backward()
    opt.step()
    assert torch.count_nonzero(model.fc1.weight[~model.fc1.prune_mask]) > 0
    opt = torch.optim.SGD(masked.parameters(), lr=0.01, momentum=0.9)       # with them: a plain loop keeps zeros
    torch.nn.functional.cross_entropy(masked(x), y).backward()
    opt.step()
    assert torch.count_nonzero(masked.fc1.weight[~masked.fc1.prune_mask]) == 0


def test_train_restores_mode_and_rejects_bad_arguments():
    model = build_model("lenet300").eval()
    train(model, blobs(n=64), epochs=1, lr=0.01, progress=False)
    assert not model.training
    with pytest.raises(ValueError, match="'sgd', 'adam'"):
        train(model, blobs(n=64), epochs=1, lr=0.01, optimizer="rmsprop", progress=False)
    with pytest.raises(ValueError, match="'constant', 'cosine'"):
        train(model, blobs(n=64), epochs=1, lr=0.01, schedule="step", progress=False)
    with pytest.raises(ValueError, match="epochs"):
        train(model, blobs(n=64), epochs=-1, lr=0.01, progress=False)


# --- checkpoints -------------------------------------------------------------------------------------------

class Synthetic:
    """A DataProvider of synthetic blobs (unit tests only) with the variant name "synthetic"."""

    def __init__(self, training_allowed: bool = True):
        self.training_allowed = training_allowed

    def variant(self, name):
        return "synthetic"

    def input_shape(self, name):
        return (1, 28, 28)

    def loaders(self, name, batch_size, seed):
        if not self.training_allowed:
            raise AssertionError("training was attempted although a matching checkpoint exists")
        return blobs(batch_size=batch_size), blobs(seed=1)


class NoTraining(checkpoints.DiskData):
    """The real data on disk, but asking for loaders (i.e. training) fails the test."""

    def loaders(self, name, batch_size, seed):
        raise AssertionError("training was attempted although a matching checkpoint exists")


def test_train_or_load_trains_saves_then_loads_without_training(tmp_path):
    recipe = {"epochs": 1, "lr": 0.05}
    model, info = checkpoints.train_or_load("lenet300", "fashion-mnist", recipe=recipe, root=tmp_path,
                                            progress=False, provider=Synthetic())
    assert info["source"] == "trained" and not model.training
    local = tmp_path / "local"
    manifest = json.loads((local / "manifest.json").read_text())["checkpoints"]
    entry = manifest[info["key"]]
    assert info["key"] == checkpoints.checkpoint_key("lenet300", "fashion-mnist", "synthetic",
                                                     checkpoints.resolve_recipe("lenet300", recipe))
    assert entry["sha256"] == checkpoints.file_sha256(local / entry["file"])
    assert entry["test_accuracy"] == pytest.approx(evaluate(model, blobs(seed=1)), abs=1e-4)
    for field in ("model", "dataset", "variant", "epochs", "seed", "torch", "recipe", "train_seconds"):
        assert field in entry
    assert sorted(p.name for p in local.iterdir()) == sorted(["manifest.json", entry["file"]])   # no temp files

    frozen = Synthetic(training_allowed=False)
    again, info2 = checkpoints.train_or_load("lenet300", "fashion-mnist", recipe=recipe, root=tmp_path,
                                             provider=frozen)
    assert info2["source"] == "local" and info2["key"] == info["key"]
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), again.state_dict().values()))
    with pytest.raises(AssertionError, match="training was attempted"):     # another recipe -> would train
        checkpoints.train_or_load("lenet300", "fashion-mnist", recipe={"epochs": 2}, root=tmp_path, provider=frozen)


def test_shipped_checkpoint_is_loaded_without_training(tmp_path):
    torch.manual_seed(3)
    original = build_model("lenet5")
    recipe = checkpoints.resolve_recipe("lenet5")
    key = checkpoints.checkpoint_key("lenet5", "mnist", "synthetic", recipe)
    checkpoints.save_checkpoint(original, tmp_path, key, {"model": "lenet5", "recipe": recipe})
    model, info = checkpoints.train_or_load("lenet5", "mnist", root=tmp_path, provider=Synthetic(False))
    assert info["source"] == "shipped"
    assert all(torch.equal(a, b) for a, b in zip(original.state_dict().values(), model.state_dict().values()))


def test_checksum_mismatch_names_the_file_and_the_fix(tmp_path):
    recipe = checkpoints.resolve_recipe("lenet300")
    key = checkpoints.checkpoint_key("lenet300", "mnist", "synthetic", recipe)
    entry = checkpoints.save_checkpoint(build_model("lenet300"), tmp_path, key, {"model": "lenet300"})
    path = tmp_path / entry["file"]
    data = bytearray(path.read_bytes())
    data[-100] ^= 0xFF                                    # flip one byte
    path.write_bytes(bytes(data))
    with pytest.raises(ChecksumError, match=rf"{entry['file']}.*damaged.*python -m course.checkpoints"):
        checkpoints.train_or_load("lenet300", "mnist", root=tmp_path, provider=Synthetic())


def test_wrong_architecture_is_a_clear_error(tmp_path):
    entry = checkpoints.save_checkpoint(build_model("lenet300"), tmp_path, "k", {})
    path = tmp_path / entry["file"]
    with pytest.raises(ArchitectureError, match=r"does not fit this LeNet5: missing keys \['conv1.bias'"):
        checkpoints.load_state(path, build_model("lenet5"), sha256=entry["sha256"])
    with pytest.raises(ArchitectureError, match=r"shape mismatches \['fc1.weight: checkpoint \(300, 784\)"):
        checkpoints.load_state(path, build_model("lenet300", (3, 32, 32)))


def test_recipes_are_validated_and_independent_of_fast_mode(monkeypatch):
    key = checkpoints.checkpoint_key("vgg", "fashion-mnist", "full", checkpoints.resolve_recipe("vgg"))
    monkeypatch.setattr(config, "FAST", True)
    assert checkpoints.checkpoint_key("vgg", "fashion-mnist", "full", checkpoints.resolve_recipe("vgg")) == key
    assert checkpoints.resolve_recipe("vgg", {"epochs": 1}) != checkpoints.resolve_recipe("vgg")
    with pytest.raises(ValueError, match="unknown recipe keys \\['epoch'\\]"):
        checkpoints.resolve_recipe("vgg", {"epoch": 1})
    with pytest.raises(ValueError, match="unknown model 'resnet50'"):
        checkpoints.resolve_recipe("resnet50")
    with pytest.raises(ValueError, match="unknown dataset 'svhn'"):
        checkpoints.train_or_load("vgg", "svhn")


def test_cli_needs_all_or_a_model_and_a_dataset():
    with pytest.raises(SystemExit):
        checkpoints.main(["--model", "lenet300"])
    with pytest.raises(SystemExit):
        checkpoints.main(["--all", "--model", "lenet300"])


# --- the shipped baselines ---------------------------------------------------------------------------------

SHIPPED = checkpoints.read_manifest(config.CHECKPOINT_DIR)


@pytest.mark.skipif(not SHIPPED, reason="no shipped baselines in course/shipped/checkpoints/ yet")
@pytest.mark.parametrize("key", sorted(SHIPPED))
def test_shipped_baselines_verify_and_match_current_recipes(key):
    from course.data import input_shape

    entry = SHIPPED[key]
    path = config.CHECKPOINT_DIR / entry["file"]
    assert entry["recipe"] == checkpoints.resolve_recipe(entry["model"], dataset=entry["dataset"]), \
        "recipe changed: retrain the baseline"
    assert key == checkpoints.checkpoint_key(entry["model"], entry["dataset"], entry["variant"], entry["recipe"])
    model = checkpoints.load_state(path, build_model(entry["model"], input_shape(entry["dataset"])),
                                   sha256=entry["sha256"])
    # only the state_dict (shipped before files carried a checksum trailer: compare what is inside the trailer)
    assert len(unseal(path.read_bytes())) == len(unseal(to_bytes(model, "dense"))) < 2_000_000
    assert 0.85 < entry["test_accuracy"] <= 1.0


@pytest.mark.skipif(not any(e["dataset"] == "mnist" for e in SHIPPED.values()), reason="no shipped MNIST baseline")
def test_shipped_lenet300_mnist_reproduces_its_recorded_accuracy():
    from course.data import available

    if not available("mnist"):
        pytest.skip("MNIST is not on disk")
    model, info = checkpoints.train_or_load("lenet300", "mnist", progress=False, provider=NoTraining())
    assert info["source"] == "shipped"
    _, test_loader = checkpoints.DiskData().loaders("mnist", 128, 0)   # the full test split, also in fast mode
    assert evaluate(model, test_loader) == pytest.approx(info["test_accuracy"], abs=1e-4)


def test_callbacks_see_every_step_and_epoch_and_backward_masks_gradients():

    model = half_masked()
    steps, epochs = [], []
    train(model, blobs(n=64), epochs=2, lr=0.05, progress=False,
          on_step=lambda m, *, step, epoch, loss: steps.append((step, epoch, loss)),
          on_epoch=lambda m, *, epoch, history: epochs.append((epoch, len(history.loss))))
    assert [s[:2] for s in steps] == [(t, 1 + (t - 1) // 2) for t in range(1, 5)]       # 64 / 32 = 2 steps/epoch
    assert epochs == [(1, 1), (2, 2)] and all(s[2] > 0 for s in steps)
    x, y = next(iter(blobs()))
    torch.nn.functional.cross_entropy(model(x), y).backward()         # the gradient hook masks during backward
    assert model.fc1.weight.grad[~model.fc1.prune_mask].abs().sum() == 0
    assert model.fc1.weight.grad[model.fc1.prune_mask].abs().sum() > 0


def test_one_optimizer_factory():
    from course.training import make_optimizer

    model = build_model("lenet300")
    assert isinstance(make_optimizer(model, "sgd", lr=0.1, momentum=0.5), torch.optim.SGD)
    assert isinstance(make_optimizer(model, "adam", lr=0.1), torch.optim.Adam)
    with pytest.raises(ValueError, match=r"choose one of \['sgd', 'adam', 'adamw'\]"):
        make_optimizer(model, "rmsprop", lr=0.1)
