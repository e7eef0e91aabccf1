"""Choose a baseline's epochs on a validation split carved from the TRAINING images (never the test split).

    python scripts/choose_recipe.py vit fashion-mnist --epochs 10 20 30 --val 5000

For each epoch budget it trains `RECIPES[model]` (epochs overridden, the cosine schedule spans them) on the training
split minus `--val` stratified images, and prints one JSON line with the final validation accuracy. The test split is
never read. Used for the ViT's Fashion-MNIST epochs (10_transformers).
"""
from __future__ import annotations

import argparse
import json

import numpy as np
import torch
from torch.utils.data import DataLoader

from course import config
from course.checkpoints import RECIPES, OPTIONAL
from course.data import input_shape, load_dataset, normalization
from course.data.loaders import NormalizedDataset, keep_batch, stratified_indices
from course.metrics import evaluate
from course.models import build_model
from course.training import train


def validate(model_name: str, dataset: str, epochs: int, val_size: int) -> dict:
    """Train on train minus a stratified validation slice; return the recipe and the validation accuracy."""
    recipe = RECIPES[model_name] | {"epochs": epochs}
    images = load_dataset(dataset, "train", download=False)
    mean, std = normalization(dataset)
    val_idx = stratified_indices(images.labels, val_size, seed=0)
    rest = np.setdiff1d(np.arange(len(images)), val_idx)
    train_ds = NormalizedDataset(images.images, images.labels, mean, std, rest)
    val_ds = NormalizedDataset(images.images, images.labels, mean, std, val_idx)
    gen = torch.Generator().manual_seed(recipe["seed"])
    train_loader = DataLoader(train_ds, batch_size=recipe["batch_size"], shuffle=True, generator=gen,
                              collate_fn=keep_batch)
    val_loader = DataLoader(val_ds, batch_size=1000, collate_fn=keep_batch)
    config.seed_everything(recipe["seed"])
    model = build_model(model_name, input_shape(dataset))
    history = train(model, train_loader, epochs=epochs, lr=recipe["lr"], optimizer=recipe["optimizer"],
                    weight_decay=recipe["weight_decay"], schedule=recipe["schedule"], progress=False,
                    seed=recipe["seed"], **{k: recipe.get(k, v) for k, v in OPTIONAL.items()})
    return {"model": model_name, "dataset": dataset, "recipe": recipe, "train_size": len(rest), "val_size": val_size,
            "val_accuracy": round(evaluate(model, val_loader), 4), "train_accuracy": round(history.train_acc[-1], 4),
            "seconds": round(history.seconds, 1), "threads": torch.get_num_threads()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", choices=sorted(RECIPES))
    parser.add_argument("dataset")
    parser.add_argument("--epochs", type=int, nargs="+", required=True)
    parser.add_argument("--val", type=int, default=5000)
    args = parser.parse_args(argv)
    for epochs in args.epochs:
        print(json.dumps(validate(args.model, args.dataset, epochs, args.val)), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
