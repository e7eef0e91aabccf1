"""The pruning course's helper library. Notebooks import everything they need from here:

    from course import setup, load_dataset, train_or_load, prune_unstructured, report

Names resolve lazily (PEP 562), so `import course` stays fast and a notebook pays only for what it uses.
"""
from __future__ import annotations

import importlib

from course.config import FAST, device, fast, seed_everything, setup

# `train` and `show` are both functions and the submodules that define them. Python binds a submodule as an attribute
# of its package when it is first imported, so a lazy lookup would hand back the *module* once anything had imported
# `course.train`. Importing them here, in this order, binds the functions last, and later imports never rebind.
from course.show import show  # noqa: E402
from course.train import train  # noqa: E402

_EXPORTS = {
    "course.data": ["load_dataset", "make_loaders", "held_out_batch", "input_shape", "available",
                    "DataUnavailableError", "DatasetInfo"],
    "course.models": ["build_model", "LeNet300100", "LeNet5", "VGGSmall", "TinyResNet", "MODELS"],
    "course.train": ["evaluate", "train_or_load"],
    "course.metrics": ["count_params", "size_bytes", "size_table", "count_flops", "latency", "report"],
    "course.export": ["save_pruned", "load_pruned"],
    "course.sweeps": ["prune_and_evaluate", "sparsity_curve"],
    "course.capstone": ["choose_dataset", "sensitivity_scan"],
    "course.sensitivity": ["allocate_sparsity", "prune_per_layer"],
    "course.pruning": [
        "prune_unstructured", "prune_structured", "layer_sparsity", "detect_layer_collapse", "score",
        "CRITERIA", "LayerCollapseWarning", "unit_scores", "structured_masks", "mask_structured",
        "apply_masks", "get_masks", "remove_masks", "reapply_masks", "enforce_masks", "has_masks",
        "to_torch_prune", "from_torch_prune", "prunable_layers", "to_sparse_csr", "SparseLinear",
        "cubic_sparsity", "one_shot", "iterative_pruning", "gradual_pruning", "lottery_ticket", "finetuner",
        "prune_with_torch_pruning", "dependency_groups",
    ],
}
_WHERE = {name: module for module, names in _EXPORTS.items() for name in names}

__all__ = ["FAST", "device", "fast", "seed_everything", "setup", "show", "train", *_WHERE]


def __getattr__(name: str):
    if name in _WHERE:
        return getattr(importlib.import_module(_WHERE[name]), name)
    raise AttributeError(f"module 'course' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
