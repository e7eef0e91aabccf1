"""Pruning engine: masks, criteria, scopes, structured surgery, schedules."""
from course.pruning.masks import (
    apply_masks, enforce_masks, from_torch_prune, get_masks, has_masks, prunable_layers,
    reapply_masks, remove_masks, to_torch_prune,
)
from course.pruning.criteria import CRITERIA, score
from course.pruning.unstructured import (
    LayerCollapseWarning, detect_layer_collapse, layer_sparsity, prune_unstructured,
)
from course.pruning.schedules import (
    cubic_sparsity, finetuner, gradual_pruning, iterative_pruning, lottery_ticket, one_shot,
)
from course.pruning.sparse import SparseLinear, to_sparse_csr
from course.pruning.structured import mask_structured, prune_structured, structured_masks, unit_scores
from course.pruning.surgery import UnsupportedModelError, chain_links, remove_units, zero_units
from course.pruning.torch_pruning_interop import DependencyGroup, dependency_groups, prune_with_torch_pruning
