"""Interactive sparsity: the sparsity explorer, the local-vs-global explorer, and their plain twins.

    ui = sparsity_explorer(model, X, y, input_shape=(1, 28, 28))       # a widget; move the slider
    numbers, fig = explore_sparsity(model, X, y, 0.8, input_shape=(1, 28, 28))   # the same numbers, no widgets

Introduced in 01_what_is_pruning (sparsity explorer) and 05_local_vs_global (scope explorer).
"""
from course.widgets.engine import GRANULARITIES, UNIT_CRITERIA, EngineResult, ExplorerNumbers, PruningEngine
from course.widgets.explorers import ScopeExplorer, SparsityExplorer, scope_explorer, sparsity_explorer
from course.widgets.views import ScopeComparison, ScopeView, SparsityView, compare_scopes, explore_sparsity

__all__ = [
    "sparsity_explorer", "scope_explorer", "explore_sparsity", "compare_scopes",
    "SparsityExplorer", "ScopeExplorer", "ExplorerNumbers", "ScopeComparison",
    "PruningEngine", "EngineResult", "SparsityView", "ScopeView", "GRANULARITIES", "UNIT_CRITERIA",
]
