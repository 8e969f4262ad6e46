"""Pruning rules: moved to ``kreg.lab.trial.pruning`` (a trial asks them after every epoch, and the trial layer is
below the search's); re-exported here for the code and tests that import them from the search."""

from kreg.lab.trial.pruning import (  # noqa: F401
    PRUNE_RULES,
    AshaRule,
    FoldRule,
    MedianRule,
    Pruner,
    best_so_far,
    default_warmup_epochs,
    epochs_saved,
    one_se_margin,
    parent_metrics,
    pruner_for,
    pruner_from,
    summary_line,
)
