"""Defaults that depend on the data's size: how trials are scored, how the answer is chosen, the batch size.

Regularization matters most on small data, and there a holdout validation
split is too small to choose with: 14 validation examples tied 7 of 10 trials
and picked a plan that tested significantly worse than none. So the search's
``cv``, ``select`` and ``batch_size`` default to ``"auto"``, resolved here
once the data is loaded (``kreg.lab.search.prepare.prepare``); a value the user
gives is always kept. Each decision comes back as one line for the console
and the parent run.

``cv="auto"``: cross-validation when the holdout validation split would have
fewer than ``AUTO_CV_BELOW`` (400) examples, the holdout split otherwise.
Why 400: the standard error of a validation accuracy p on n examples is
sqrt(p(1-p)/n); at n = 400 it is 1.5 points at p = 0.9 and 2.5 points at
p = 0.5, the size of the gains regularization brings on these data (kreg's
studies: 1-3 points). Below it, a holdout's figure moves more between two
random splits than between two plans, and the choice is noise. Under
cross-validation every pooled example is validated once per repeat, so the
objective rests on the whole pool (train + validation) instead of the
validation fifth, and its spread across folds gives the one-SE rule its
standard error. A regression objective (a mean squared error) has relative
standard error about sqrt(2/n), 7% at 400: the same threshold. Folds: 3
(stratified for classification; ``kfold`` otherwise), and 2 repeats when the
pool has fewer than 100 examples, where a single 3-way split still leaves
folds of a few dozen. Streamed (tf.data) sources have no pool to fold:
holdout.

``select="auto"``: the one-standard-error rule whenever there are folds
(the most regularized plan within the noise of the best), the best objective
otherwise. Ties are broken toward the more regularized plan in both
(``kreg.lab.analysis.selection``), never by trial order.

``batch_size="auto"``: the largest power of two at most a eighth of the
training examples, between 8 and 64: at least about eight optimizer steps
an epoch on small data (36 training series at 64 made an epoch one step, and
batch norm's moving statistics never converged), and 64 from 512 examples on.
"""

from __future__ import annotations

import dataclasses

AUTO_CV_BELOW = 400  # validation examples below which cv="auto" cross-validates (see the module docstring)
AUTO_CV_FOLDS = 3
AUTO_CV_REPEAT_BELOW = 100  # pooled examples below which the auto folds are drawn twice
BATCH_MIN, BATCH_MAX, STEPS_PER_EPOCH = 8, 64, 8


@dataclasses.dataclass(frozen=True)
class Resolved:
    settings: object  # SearchSettings with cv and select resolved
    training: object  # Training with the batch size resolved
    notes: tuple[str, ...]  # one line per decision taken for the user


def auto_batch_size(n_train: int) -> int:
    """The largest power of two <= n_train / 8, clamped to [8, 64]."""
    target = max(1, int(n_train) // STEPS_PER_EPOCH)
    power = 1 << (target.bit_length() - 1)
    return int(min(BATCH_MAX, max(BATCH_MIN, power)))


def auto_cv(n_val: int, n_pool: int, in_memory: bool) -> dict | None:
    """The cross-validation ``cv="auto"`` means for these sizes (a ``CrossValidation`` mapping), or None."""
    if not in_memory or n_val >= AUTO_CV_BELOW:
        return None
    return {"folds": AUTO_CV_FOLDS, "repeats": 2 if n_pool < AUTO_CV_REPEAT_BELOW else 1, "scheme": "auto"}


def resolve(settings, training, splits) -> Resolved:
    """``settings`` and ``training`` with every ``"auto"`` replaced by its value for ``splits``."""
    from kreg.lab.search.settings import CrossValidation

    notes = []
    n_train = len(splits.x_train) if splits.in_memory else None
    n_val = len(splits.x_val) if splits.in_memory else None
    updates = {}
    if settings.cv == "auto":
        chosen = auto_cv(n_val or 0, (n_train or 0) + (n_val or 0), splits.in_memory)
        if chosen is None:
            updates["cv"] = None
            why = (f"{n_val} validation examples (at least {AUTO_CV_BELOW})" if splits.in_memory
                   else "a streamed source (no pool to fold)")
            notes.append(f"scored on the holdout validation split (cv auto: {why})")
        else:
            updates["cv"] = CrossValidation(**chosen)
            repeats = f" x {chosen['repeats']} repeats" if chosen["repeats"] > 1 else ""
            notes.append(f"scored by {chosen['folds']}-fold cross-validation{repeats} of the {n_train + n_val} "
                         f"training + validation examples (cv auto: a holdout of {n_val} validation examples is "
                         f"too small to choose with, below {AUTO_CV_BELOW}; cv=None keeps it)")
    cv = updates.get("cv", settings.cv)
    if settings.select == "auto":
        updates["select"] = "one_se" if cv is not None else "best"
        if cv is not None:
            notes.append("answer: the most regularized trial within one standard error of the best (select auto: "
                         "folds give the objective's standard error)")
    if updates:
        settings = settings.model_copy(update=updates)
    if training.batch_size is None:
        size = auto_batch_size(n_train) if n_train else BATCH_MAX
        training = training.model_copy(update={"batch_size": size})
        if n_train:
            steps = -(-n_train // size)
            notes.append(f"batch size {size} (auto: {n_train} training examples, {steps} steps an epoch; "
                         "batch_size= keeps yours)")
    return Resolved(settings, training, tuple(notes))
