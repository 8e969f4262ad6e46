"""What a trial trains: a ``Problem`` (the model source, the data, the task, how it trains) and its ``Objective``.

A search resolves one (``kreg.lab.search.prepare``) and adds what only a
search has (the space, the tuner, the selection rule); a study resolves one
(``prepare.prepare_problem``) and trains chosen plans on it, searching
nothing. The trial's functions (``fit.fit_plan``, ``measure.final_metrics``,
``procedures.build_for_plan``, ``refit.refit``, ``ensemble``) take a
``Problem`` and read its fields only; so does ``TrialRunner``, which its
caller hands the folds and the pruner (the search builds them from its own
settings: ``Search.trial_runner``). (A ``Search`` has every field of a
``Problem``, so a caller of the search's layer may still hand one over.)
"""

from __future__ import annotations

import dataclasses
from typing import Any


@dataclasses.dataclass(frozen=True)
class Objective:
    """What the oracle optimizes: a logged name (``val_accuracy``) and ``"max"``/``"min"``."""

    name: str
    direction: str


@dataclasses.dataclass(frozen=True)
class Problem:
    """A model, its data and task, and how it trains: what a trial needs, and nothing of a search.

    ``model`` is a ``kreg.lab.models.source.ModelSource``, ``splits`` the
    resolved data (``kreg.lab.data``), ``task`` a ``kreg.lab.task.Task``,
    ``training`` the trial's training settings (``epochs``, ``batch_size``,
    ``learning_rate``, ``optimizer``, ``precise_bn``; declared with the
    search's settings). ``objective`` picks the kept weights, ``monitor``
    what is watched per epoch, ``penalty`` the gap penalty when the
    objective is gap-penalized.
    """

    model: Any
    splits: Any
    task: Any
    training: Any
    seed: int = 0
    loss: Any = None  # the user's own loss and metrics, if given
    metrics: Any = None
    train_eval_samples: int | None = 500
    objective: Objective | None = None
    monitor: Any = None
    penalty: float | None = None

    @property
    def penalty_metric(self) -> str:
        """The figure the gap penalty compares: the task's data loss (``nll``, ``mse``), not Keras'
        ``loss``, which includes the weight penalties; ``loss`` when the user compiles their own metrics."""
        return self.task.data_loss if self.metrics is None else "loss"
