"""Pruning engine: masks, criteria, scopes, structured surgery, schedules."""
from course.pruning.masks import (
    apply_masks, enforce_masks, from_torch_prune, get_masks, has_masks, prunable_layers,
    reapply_masks, remove_masks, to_torch_prune,
)
