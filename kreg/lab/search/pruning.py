"""The search's pruner: built from its settings (``pruner_for``), and what the search says of it at the end.

The rules themselves (median, ASHA, the fold test) are ``kreg.lab.trial.pruning``: a trial asks them after
every epoch, and the trial layer is below the search's. Re-exported here for the code and tests that import
them from the search.
"""

from __future__ import annotations

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
)


def pruner_for(search) -> Pruner | None:
    """The search's pruner, or None: pruning off, or Hyperband (which stops trials by its own brackets).
    A cross-validated search's pruner judges each fold's curve by epoch, against the ended trials' curves on
    the same fold, and the trial across folds (``by_fold``)."""
    return pruner_from(search.settings, search.training.epochs, search.objective.direction)


def pruner_from(settings, epochs: int, direction: str = "max") -> Pruner | None:
    """``pruner_for`` from the search settings alone (``kreg validate`` describes a pipeline's with it)."""
    p = settings.prune
    if p.rule == "none" or settings.tuner == "hyperband":
        return None
    warmup_epochs = p.warmup_epochs if p.warmup_epochs is not None else default_warmup_epochs(epochs)
    cv = settings.cv
    if cv == "auto":  # kreg validate, before the data says which: described as the holdout's
        cv = None
    folds = cv.trainings if cv is not None else 0
    return Pruner(p.rule, direction, epochs, MedianRule(p.warmup_trials, warmup_epochs),
                  AshaRule(p.min_epochs, p.eta), folds=folds, one_se=settings.select == "one_se")


def summary_line(records, search) -> str:
    """``12 of 20 trials pruned by the median rule (...), 58% of the planned epochs saved``; empty when off."""
    pruner = pruner_for(search)
    if pruner is None:
        return ""
    pruned, saved = epochs_saved(records, pruner.max_epochs, pruner.folds)
    return f"{pruned} of {len(records)} trials pruned by {pruner.describe()}, {saved:.0%} of the planned epochs saved"


def parent_metrics(records, search) -> dict:
    """``pruned_epochs_saved`` (a fraction of the planned epochs) when pruning is on."""
    pruner = pruner_for(search)
    if pruner is None:
        return {}
    return {"pruned_epochs_saved": epochs_saved(records, pruner.max_epochs, pruner.folds)[1]}
