"""Verified checkpoints of the dense baselines: recipes, keys, a manifest, and `train_or_load`.

A checkpoint is keyed by model, dataset name + variant ("full" or "10k-subset") and a hash of its recipe:
key = f"{model}_{dataset}_{variant}_{sha256(recipe JSON)[:10]}". Shipped baselines live in
config.CHECKPOINT_DIR (course/shipped/checkpoints/, package data) with manifest.json; ones a learner trains go to
config.LOCAL_CHECKPOINT_DIR (data/checkpoints/local/ in a checkout, git-ignored; the per-user cache once installed).
Each .pt holds only a state_dict, is loaded with `torch.load(weights_only=True)` after its sha256 is checked
against the manifest, and is written atomically (temp file + rename). Fast mode never changes a recipe.
Several processes may share one checkpoint folder: the manifest is changed under a file lock and replaced atomically
(no entry is lost), and one key is trained by one process while the others wait and then load it. A damaged or
foreign manifest or checkpoint is a `course.files.FileFormatError` (ChecksumError is one), never a KeyError or a
JSONDecodeError.

The data a baseline trains on comes from a `DataProvider` (default `DiskData`: the copy on disk, full splits, also
in fast mode); tests pass their own small one. `python -m course.checkpoints --all` (`make baselines`) retrains the
shipped baselines.
Introduced in 00_setup_and_baselines
"""
from __future__ import annotations

import argparse
import io
import hashlib
import json
import pickle
import time
import zipfile
from collections.abc import Iterable
from pathlib import Path
from typing import Protocol

import torch
from torch import nn

from course import arguments, config
from course.data import available, input_shape, load_dataset, locate, make_loaders
from course.export import to_bytes
from course.files import FileFormatError, atomic_write_bytes, file_lock, file_sha256, unseal
from course.metrics import evaluate
from course.models import build_model
from course.training import train

__all__ = ["RECIPES", "DATASET_RECIPES", "DATASETS", "ChecksumError", "ArchitectureError", "FileFormatError", "DataProvider", "DiskData", "recipe_hash",
           "checkpoint_key", "resolve_recipe", "file_sha256", "load_state", "read_manifest", "find_checkpoint",
           "save_checkpoint", "train_or_load", "train_and_save", "available_pairs", "main"]

DATASETS = ("mnist", "fashion-mnist", "cifar10")
MANIFEST = "manifest.json"

#: Baseline recipes for a 2-core CPU: a few minutes for the LeNets, about 10 min for VGG on Fashion-MNIST
#: (when the CPU is not shared). The shipped checkpoints were trained with exactly these.
RECIPES: dict[str, dict] = {
    "lenet300": {"optimizer": "sgd", "lr": 0.05, "momentum": 0.9, "weight_decay": 1e-4, "epochs": 20,
                 "batch_size": 128, "schedule": "cosine", "seed": 0},
    "lenet5": {"optimizer": "sgd", "lr": 0.05, "momentum": 0.9, "weight_decay": 5e-4, "epochs": 20,
               "batch_size": 128, "schedule": "cosine", "seed": 0},
    "vgg": {"optimizer": "sgd", "lr": 0.05, "momentum": 0.9, "weight_decay": 5e-4, "epochs": 6,
            "batch_size": 128, "schedule": "cosine", "seed": 0},
    # VGG's recipe with 3 epochs (a CPU budget, not tuned): the residual network notebook 03 prunes and fine-tunes.
    "resnet": {"optimizer": "sgd", "lr": 0.05, "momentum": 0.9, "weight_decay": 5e-4, "epochs": 3,
               "batch_size": 128, "schedule": "cosine", "seed": 0},
    # Chosen on 1,000 held-out training images of MNIST-10k (10_transformers). Optional keys ("warmup") appear only
    # in the recipes that use them, so adding one never changes the hash (and key) of the other checkpoints.
    "vit": {"optimizer": "adamw", "lr": 4e-3, "weight_decay": 0.05, "epochs": 40, "batch_size": 128,
            "schedule": "cosine", "warmup": 0.1, "seed": 0},
}
#: Per-dataset changes to a model's recipe, chosen on validation like the recipe itself: the ViT's Fashion-MNIST
#: epochs on 5,000 held-out training images (10 epochs: 89.40%, 20: 90.14%; `scripts/choose_recipe.py`).
DATASET_RECIPES: dict[tuple[str, str], dict] = {("vit", "fashion-mnist"): {"epochs": 20}}
#: Keys a recipe may hold; the ones not in every recipe are optional, with these defaults.
OPTIONAL = {"momentum": 0.9, "warmup": 0.0}
_RECIPE_KEYS = frozenset(RECIPES["lenet300"]) | frozenset(OPTIONAL)


class ChecksumError(FileFormatError):
    """A checkpoint file's sha256 differs from the one its manifest records."""


class ArchitectureError(ValueError):
    """A state_dict does not fit the model (missing / unexpected keys or different shapes)."""


def resolve_recipe(model_name: str, recipe: dict | None = None, dataset: str | None = None) -> dict:
    """`RECIPES[model_name]`, then its `DATASET_RECIPES` change for `dataset`, then `recipe` (a partial dict is
    fine); unknown keys raise ValueError."""
    arguments.choice(model_name, RECIPES, "model")
    recipe = dict(recipe or {})
    unknown = set(recipe) - _RECIPE_KEYS
    if unknown:
        raise ValueError(f"unknown recipe keys {sorted(unknown)}; valid keys: {sorted(_RECIPE_KEYS)}")
    return RECIPES[model_name] | DATASET_RECIPES.get((model_name, dataset), {}) | recipe


def recipe_hash(recipe: dict) -> str:
    """sha256 of the recipe as canonical JSON (sorted keys), first 10 hex digits."""
    text = json.dumps(recipe, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:10]


def checkpoint_key(model_name: str, dataset_name: str, variant: str, recipe: dict) -> str:
    """The file stem of a checkpoint: model_dataset_variant_recipehash."""
    return f"{model_name}_{dataset_name}_{variant}_{recipe_hash(recipe)}"


def load_state(path: str | Path, model: nn.Module, *, sha256: str | None = None) -> nn.Module:
    """Check `path`'s sha256 (if given), load its state_dict with weights_only=True into `model` (in place)."""
    path = Path(path)
    if sha256 is not None:
        actual = file_sha256(path)
        if actual != sha256:
            raise ChecksumError(
                f"checkpoint {path} has sha256 {actual[:16]}…, but its manifest records {sha256[:16]}…: the file "
                f"is damaged or was replaced. Fix: delete {path.name} (and its manifest entry) and rerun "
                f"train_or_load / `python -m course.checkpoints` to retrain it, or restore the shipped file "
                f"({_restore(path)}).")
    try:
        state = torch.load(io.BytesIO(unseal(path.read_bytes(), path)), map_location="cpu", weights_only=True)
    except (RuntimeError, pickle.UnpicklingError, EOFError, zipfile.BadZipFile, ValueError) as e:
        if isinstance(e, FileFormatError):
            raise
        raise FileFormatError(f"checkpoint {path} is not a state_dict saved by torch.save, or it is damaged "
                              f"({type(e).__name__}: {str(e)[:200]}). Delete it and rerun train_or_load.") from e
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise FileFormatError(f"checkpoint {path} holds a {type(state).__name__}, not a state_dict of tensors")
    want = model.state_dict()
    missing = sorted(set(want) - set(state))
    extra = sorted(set(state) - set(want))
    shapes = [f"{k}: checkpoint {tuple(state[k].shape)} vs model {tuple(want[k].shape)}"
              for k in sorted(set(want) & set(state)) if state[k].shape != want[k].shape]
    if missing or extra or shapes:
        raise ArchitectureError(
            f"checkpoint {path} does not fit this {type(model).__name__}: missing keys {missing}, unexpected "
            f"keys {extra}, shape mismatches {shapes}. Build the model the checkpoint was trained as.")
    model.load_state_dict(state)
    return model


def read_manifest(directory: str | Path) -> dict:
    """The manifest of a checkpoint folder: {key: entry}; empty when the folder has none. FileFormatError if it is
    not a manifest (bad JSON, no "checkpoints", an entry without "file" and "sha256")."""
    path = Path(directory) / MANIFEST
    if not path.is_file():
        return {}
    try:
        entries = json.loads(path.read_text())["checkpoints"]
        if not isinstance(entries, dict) or not all(isinstance(e, dict) and isinstance(e.get("file"), str)
                                                    and isinstance(e.get("sha256"), str) for e in entries.values()):
            raise TypeError("an entry lacks 'file' or 'sha256'")
    except (ValueError, KeyError, TypeError, UnicodeDecodeError) as e:
        raise FileFormatError(f"{path} is not a checkpoint manifest or it is damaged ({type(e).__name__}: {e}). "
                              f"Restore it (git checkout for the shipped one) or delete it and its .pt files to "
                              f"retrain.") from e
    return entries


def _write_manifest(directory: Path, entries: dict) -> None:
    text = json.dumps({"format": 1, "checkpoints": dict(sorted(entries.items()))}, indent=2) + "\n"
    atomic_write_bytes(directory / MANIFEST, text.encode())


def _restore(path: Path) -> str:
    """How to get a damaged shipped checkpoint back: git in a checkout, a reinstall otherwise."""
    if config.IN_CHECKOUT:
        return f"`git checkout -- {path.relative_to(config.ROOT) if path.is_relative_to(config.ROOT) else path}`"
    return "`pip install --force-reinstall pruning-course`"


def _folders(root: str | Path | None) -> tuple[Path, Path]:
    """(shipped, local) checkpoint folders: config's two, or root and root/local."""
    if root is None:
        return config.CHECKPOINT_DIR, config.LOCAL_CHECKPOINT_DIR
    return Path(root), Path(root) / "local"


def find_checkpoint(key: str, root: str | Path | None = None, *, local: bool = True
                    ) -> tuple[Path, dict, str] | None:
    """(file, manifest entry, "shipped" or "local") for `key`, searching the shipped then the local folder."""
    shipped, trained = _folders(root)
    places = ((shipped, "shipped"), (trained, "local")) if local else ((shipped, "shipped"),)
    for directory, source in places:
        entry = read_manifest(directory).get(key)
        if entry is not None and (directory / entry["file"]).is_file():
            return directory / entry["file"], entry, source
    return None


def save_checkpoint(model: nn.Module, directory: str | Path, key: str, entry: dict) -> dict:
    """Write model.state_dict() (masks removed) to directory/key.pt atomically; record `entry` + file, sha256.

    The manifest is read, changed and replaced under a file lock, so processes saving at once lose no entry."""
    directory = Path(directory)
    data = to_bytes(model, "dense")                  # the state_dict, so file size == size_bytes(model, "dense")
    path = atomic_write_bytes(directory / f"{key}.pt", data)
    entry = dict(entry, file=path.name, sha256=hashlib.sha256(data).hexdigest())
    with file_lock(directory / MANIFEST):
        entries = read_manifest(directory)
        entries[key] = entry
        _write_manifest(directory, entries)
    return entry


class DataProvider(Protocol):
    """What `train_or_load` needs to know about a dataset: its variant, its input shape, and loaders to train on."""

    def variant(self, dataset_name: str) -> str: ...
    def input_shape(self, dataset_name: str) -> tuple[int, int, int]: ...
    def loaders(self, dataset_name: str, batch_size: int, seed: int) -> tuple[Iterable, Iterable]: ...


class DiskData:
    """The default provider: the copy of the dataset on disk (downloaded when absent), full splits even in fast mode."""

    def variant(self, dataset_name: str) -> str:
        """The copy on disk (no download), else whatever a download gives: "full" or "10k-subset"."""
        found = locate(dataset_name)
        return found.variant if found is not None else load_dataset(dataset_name, "train").info.variant

    def input_shape(self, dataset_name: str) -> tuple[int, int, int]:
        """(C, H, W) of one image."""
        return tuple(input_shape(dataset_name))

    def loaders(self, dataset_name: str, batch_size: int, seed: int) -> tuple[Iterable, Iterable]:
        """Full train and test loaders from the copy on disk (a baseline never trains on less, also in fast mode)."""
        sizes = {f"{split}_size": len(load_dataset(dataset_name, split, download=False)) for split in ("train", "test")}
        return make_loaders(dataset_name, batch_size=batch_size, seed=seed, download=False, **sizes)

    def __repr__(self) -> str:
        return "DiskData()"


def train_and_save(model_name: str, dataset_name: str, *, recipe: dict | None = None, root: str | Path | None = None,
                   shipped: bool = False, force: bool = False, progress: bool = True,
                   provider: DataProvider | None = None) -> tuple[nn.Module, dict]:
    """Load the matching checkpoint, or (if none, or `force`) train with the recipe and save it.

    Saves to the shipped folder (shipped=True, as `python -m course.checkpoints` does, in a checkout only) or the
    local one (config.CHECKPOINT_DIR / LOCAL_CHECKPOINT_DIR, or root / root/local). Returns (model on CPU in
    eval mode, info) where info is the manifest entry plus "key", "path" and "source" (shipped/local/trained).
    `provider` (default `DiskData()`) supplies the dataset's variant, input shape and loaders.
    """
    arguments.choice(dataset_name, DATASETS, "dataset")
    if shipped and root is None and not config.IN_CHECKOUT:
        raise ValueError("shipped=True writes the package's own baselines; run it in a git checkout "
                         "(`make baselines`), or pass root= for a folder of your own")
    recipe = resolve_recipe(model_name, recipe, dataset_name)
    provider = DiskData() if provider is None else provider
    variant = provider.variant(dataset_name)
    key = checkpoint_key(model_name, dataset_name, variant, recipe)
    directory = _folders(root)[0 if shipped else 1]
    with file_lock(directory / key):                 # one process trains a key; the others wait, then load it
        return _load_or_train(model_name, dataset_name, recipe, provider, variant, key, root, directory, shipped,
                              force, progress)


def _load_or_train(model_name: str, dataset_name: str, recipe: dict, provider: DataProvider, variant: str, key: str,
                   root: Path | None, directory: Path, shipped: bool, force: bool, progress: bool) -> tuple[nn.Module, dict]:
    model = build_model(model_name, provider.input_shape(dataset_name))
    found = None if force else find_checkpoint(key, root, local=not shipped)   # ship only what was trained for it
    if found is not None:
        path, entry, source = found
        load_state(path, model, sha256=entry["sha256"])
        return model.eval(), dict(entry, key=key, path=str(path), source=source)

    config.seed_everything(recipe["seed"])
    model = build_model(model_name, provider.input_shape(dataset_name))     # rebuilt after seeding: repeatable init
    train_loader, test_loader = provider.loaders(dataset_name, recipe["batch_size"], recipe["seed"])
    optional = {key: recipe.get(key, default) for key, default in OPTIONAL.items()}
    history = train(model, train_loader, epochs=recipe["epochs"], lr=recipe["lr"], optimizer=recipe["optimizer"],
                    weight_decay=recipe["weight_decay"], schedule=recipe["schedule"], progress=progress,
                    val_loader=test_loader, seed=recipe["seed"], **optional)
    model.cpu().eval()
    accuracy = evaluate(model, test_loader)
    entry = {"model": model_name, "dataset": dataset_name, "variant": variant, "test_accuracy": round(accuracy, 4),
             "epochs": recipe["epochs"], "seed": recipe["seed"], "torch": torch.__version__, "recipe": recipe,
             "recipe_hash": recipe_hash(recipe), "train_seconds": round(history.seconds, 1),
             "device": str(config.device()), "threads": torch.get_num_threads(),
             "created": time.strftime("%Y-%m-%d"),
             "history": {k: [None if v is None else round(v, 4) for v in vals]
                         for k, vals in history.as_dict().items() if k != "seconds"}}
    entry = save_checkpoint(model, directory, key, entry)
    return model, dict(entry, key=key, path=str(directory / entry["file"]), source="trained")


def train_or_load(model_name: str, dataset_name: str, *, recipe: dict | None = None, root: str | Path | None = None,
                  progress: bool = True, provider: DataProvider | None = None) -> tuple[nn.Module, dict]:
    """(model, info): the verified checkpoint matching (model, dataset variant, recipe), else train one and save it.

    Looks in the shipped baselines, then in the local folder, where a fresh training run is saved.
    The model comes back on the CPU in eval mode; info["test_accuracy"], info["train_seconds"], info["source"].
    """
    return train_and_save(model_name, dataset_name, recipe=recipe, root=root, shipped=False, progress=progress,
                          provider=provider)


def available_pairs() -> list[tuple[str, str]]:
    """Every (model, dataset) pair whose dataset is present offline (CIFAR-10 only where it exists)."""
    return [(m, d) for d in DATASETS if available(d) for m in RECIPES]


def main(argv: list[str] | None = None) -> int:
    """CLI: train (or verify) baselines and record them in course/shipped/checkpoints/manifest.json."""
    parser = argparse.ArgumentParser(prog="python -m course.checkpoints", description=main.__doc__)
    parser.add_argument("--model", choices=sorted(RECIPES))
    parser.add_argument("--dataset", choices=list(DATASETS))
    parser.add_argument("--all", action="store_true", help="every model x every dataset available offline")
    parser.add_argument("--local", action="store_true", help="write to the local folder (not shipped)")
    parser.add_argument("--force", action="store_true", help="retrain even when a matching checkpoint exists")
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    if args.all == bool(args.model or args.dataset) or (not args.all and not (args.model and args.dataset)):
        parser.error("give either --all, or both --model and --dataset")
    pairs = available_pairs() if args.all else [(args.model, args.dataset)]
    for model_name, dataset_name in pairs:
        print(f"== {model_name} on {dataset_name}", flush=True)
        _, info = train_and_save(model_name, dataset_name, shipped=not args.local, force=args.force,
                                 progress=not args.no_progress)
        print(f"   {info['source']}: {info['file']}  test accuracy {info['test_accuracy']:.4f}  "
              f"({info['train_seconds']:.0f} s training)", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
