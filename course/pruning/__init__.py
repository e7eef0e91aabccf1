"""The pruning engine: masks, criteria, scopes, structured surgery, schedules. It never imports a training loop.

    masks.py        the mask convention; hooks that hold masks in any training loop (01_what_is_pruning)
    targets.py      what is prunable: every weight matrix of the usual layers    (01_what_is_pruning)
    reparam.py      torch.nn.utils.prune both ways; parametrize refused          (02_unstructured)
    criteria.py     one registry of weight and unit criteria; your own functions  (03_structured, 04_criteria)
    gradients.py    per-batch and mean gradients of a few batches                 (04_criteria)
    curvature.py    Gauss-Newton / Fisher diagonals; the "obd" criterion          (04_criteria)
    lamp.py         the "lamp" criterion (scope "global")                        (05_local_vs_global)
    unstructured.py the selection: per layer, per row or one global threshold     (01, 02, 05)
    nm.py           N:M semi-structured masks (2:4)                               (09_beyond_pruning)
    stats.py        per-layer sparsity, layer collapse                           (01, 05)
    structured.py   unit scores and selection; surgery.py cuts the units out     (03_structured)
    unit_criteria.py  BN-γ, next-layer norm, the cited group Taylor (units)       (03_structured)
    torch_pruning_interop.py   any graph through Torch-Pruning                  (03_structured)
    sparse.py       CSR Linear layers                                            (02_unstructured)
    schedules.py, lottery.py   when to prune (fine-tuning is a callable you pass) (06_when_to_prune)
    controls.py     a mask shuffled within each layer (Frankle et al. 2021)      (06_when_to_prune)
    calibration.py  a layer's inputs on calibration batches (hooks -> X)          (10_transformers)
    wanda.py        the "wanda" criterion |W|·‖X_j‖₂ (scope "row")                (10_transformers)
    sparsegpt.py    SparseGPT: layer-wise OBS pruning with weight updates         (10_transformers)
    heads.py        attention heads: scores, removal, the masked twin             (10_transformers)
"""
from course.pruning.masks import (
    MaskMismatchError, apply_masks, check_masks, enforce_masks, get_masks, has_masks, mask_gradients, reapply_masks,
    remove_masks,
)
from course.pruning.targets import Prunable, prunable_layers, prunable_weights, weight_matrices
from course.pruning.reparam import check_plain, from_torch_prune, to_torch_prune
from course.pruning.criteria import CRITERIA, UNIT_CRITERIA, Criterion, criterion_for, register, score
from course.pruning.curvature import fisher_diagonal, ggn_diagonal, hessian_diagonal, obd_scores
from course.pruning.lamp import lamp_score, lamp_scores
from course.pruning.stats import LayerCollapseWarning, detect_layer_collapse, layer_sparsity, masked_sparsity
from course.pruning.unstructured import NotPrunedWarning, prune_unstructured, select, unstructured_masks
from course.pruning.nm import NMSkipWarning, is_nm_sparse, nm_mask, nm_metadata_bytes, parse_pattern
from course.pruning.schedules import (
    GradualPruning, cubic_sparsity, iterative_pruning, lottery_ticket, one_shot, step_sparsities,
)
from course.pruning.controls import shuffle_within_layers
from course.pruning.sparse import SparseLinear, to_sparse_csr
from course.pruning.structured import mask_structured, prune_structured, structured_masks, unit_scores
from course.pruning.surgery import (
    UnsupportedModelError, chain_links, prune_in_units, prune_norm_units, prune_out_units, remove_units, unit_inputs,
    zero_units,
)
from course.pruning.surgery import recalibrate_bn
from course.pruning.criteria import unit_l1_scores
from course.pruning.unit_criteria import (
    bn_gamma_scores, next_layer_scores, unit_taylor_abs_mean_scores, unit_taylor_scores, unit_taylor_terms,
)
from course.pruning.torch_pruning_interop import DependencyGroup, dependency_groups, prune_with_torch_pruning
from course.pruning.calibration import InputStats, calibration_inputs, collect_stats
from course.pruning.wanda import activation_norms, wanda_scores
from course.pruning.sparsegpt import inverse_hessian_factor, obs_step, sparsegpt, sparsegpt_layer
from course.pruning.heads import (
    attention_layers, head_masks, head_scores, mask_heads, prune_heads, remove_heads, zero_heads,
)
