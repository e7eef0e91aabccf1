"""The pruning course's helper library. Notebooks import everything they need from here:

    from course import setup, load_dataset, train_or_load, prune_unstructured, report

Names resolve lazily (PEP 562), so `import course` stays fast and a notebook pays only for what it uses. No
submodule shares a name with a function (the loop lives in `course.training`, `show` in `course.source`), so
`course.train` is always the function. The layers, bottom up (docs/DESIGN.md has the map):

    config, arguments, files, table, source, inputs        foundation
    data/                                                   datasets, loaders, `python -m course.data`
    models                                                  LeNet-300-100, LeNet-5, VGGSmall, TinyResNet, ViT
    pruning/, quantization                                  the engine (never imports training); quantized weights
    timing, metrics, export, quantized_forms                the one timer, what pruning buys, small files
    training, quantized_training, checkpoints               the masked training loop, fine-tuning quantized models
    lessons/, widgets/, checks/                             notebook experiments, explorers, exercise checks
"""
from __future__ import annotations

import importlib

from course.config import FAST, device, fast, seed_everything, setup

_EXPORTS = {
    "course.table": ["Table"],
    "course.files": ["FileFormatError"],
    "course.inputs": ["batch_loss"],
    "course.source": ["show"],
    "course.data": ["load_dataset", "make_loaders", "held_out_batch", "input_shape", "available", "locate",
                    "normalization", "choose_dataset", "DatasetChoice", "DataUnavailableError", "DatasetInfo",
                    "DATASET_NAMES", "SPECS"],
    "course.models": ["build_model", "LeNet300100", "LeNet5", "VGGSmall", "TinyResNet", "ViT", "MODELS"],
    "course.pruning": [
        "prune_unstructured", "prune_structured", "layer_sparsity", "detect_layer_collapse", "score",
        "CRITERIA", "UNIT_CRITERIA", "Criterion", "register", "LayerCollapseWarning", "unit_scores",
        "structured_masks", "mask_structured", "select", "unstructured_masks", "apply_masks", "get_masks",
        "remove_masks", "reapply_masks", "mask_gradients", "enforce_masks", "has_masks", "to_torch_prune",
        "from_torch_prune", "prunable_layers", "to_sparse_csr", "SparseLinear", "cubic_sparsity", "step_sparsities",
        "one_shot", "iterative_pruning", "GradualPruning", "lottery_ticket", "prune_with_torch_pruning",
        "dependency_groups", "UnsupportedModelError", "remove_units", "zero_units", "chain_links", "unit_inputs",
        "prune_out_units", "prune_in_units", "prune_norm_units", "NMSkipWarning", "is_nm_sparse", "nm_mask",
        "nm_metadata_bytes", "parse_pattern", "prunable_weights", "Prunable", "weight_matrices", "check_masks",
        "MaskMismatchError", "check_plain", "NotPrunedWarning",
        "sparsegpt", "sparsegpt_layer", "obs_step", "inverse_hessian_factor", "activation_norms", "wanda_scores",
        "prune_heads", "mask_heads", "head_scores", "head_masks", "remove_heads", "zero_heads", "attention_layers",
        "shuffle_within_layers",
        "recalibrate_bn", "bn_gamma_scores", "next_layer_scores", "unit_taylor_scores", "unit_taylor_terms",
        "unit_l1_scores",
    ],
    "course.pruning.criteria": ["magnitude_scores", "gradient_scores", "taylor_scores", "snip_scores",
                                "random_scores", "taylor_signed_mean_scores"],
    "course.pruning.curvature": ["obd_scores", "ggn_diagonal", "fisher_diagonal", "hessian_diagonal"],
    "course.pruning.lamp": ["lamp_scores", "lamp_score"],
    "course.timing": ["latency", "LatencyResult", "fastest_rounds", "best_of_rounds"],
    "course.metrics": ["evaluate", "count_params", "size_bytes", "stored_size", "size_table", "count_flops", "report"],
    "course.export": ["save_pruned", "load_pruned", "to_bytes", "FORMATS", "LOSSLESS", "EXACT_ON_GRID", "exact_for",
                      "lossless_forms"],
    "course.quantization": ["quantize", "linear_quantize", "kmeans_1d", "shared_codebook", "int_grid"],
    "course.quantized_training": ["finetune_centroids", "finetune_linear_quantized", "SharedWeights",
                                  "StraightThrough"],
    "course.training": ["train", "finetuner", "gradual_pruning", "make_optimizer", "History", "masked_step"],
    "course.checkpoints": ["train_or_load", "RECIPES", "checkpoint_key", "find_checkpoint"],
    "course.lessons.sweeps": ["prune_and_evaluate", "sparsity_curve", "largest_sparsity_within"],
    "course.lessons.speedups": ["csr_sweep", "slim_sweep", "break_even"],
    "course.lessons.oracle": ["sample_weights", "loss_change", "gather", "spearman", "spearman_by_layer"],
    "course.lessons.sensitivity": ["sensitivity_scan", "SensitivityScan", "allocate_sparsity", "prune_per_layer"],
    "course.lessons.tradeoffs": ["Config", "prune_config", "build", "latencies", "measure", "sweep", "pareto_front",
                                 "pick", "points_table", "speedups"],
    "course.lessons.diagrams": ["draw_dependency_group"],
    "course.lessons.claims": ["claim", "ClaimError"],
    "course.lessons.semi_structured": ["draw_nm_pattern", "semi_structured_speedup"],
    "course.lessons.quantization": ["quantization_sweep", "dynamic_int8"],
    "course.lessons.coding": ["file_breakdown", "coding_costs", "entropy_bits", "huffman_bits", "relative_index"],
    "course.lessons.transformers": ["weight_census", "compare_post_training", "POST_TRAINING", "outlier_table",
                                    "heads_curve"],
    "course.widgets": ["sparsity_explorer", "scope_explorer", "explore_sparsity", "compare_scopes"],
}
_WHERE = {name: module for module, names in _EXPORTS.items() for name in names}

__all__ = ["FAST", "device", "fast", "seed_everything", "setup", *_WHERE]


def __getattr__(name: str):
    if name in _WHERE:
        return getattr(importlib.import_module(_WHERE[name]), name)
    raise AttributeError(f"module 'course' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
