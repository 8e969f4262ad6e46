"""Baselines that make a search meaningless: stop before spending the budget, and say what to change.

Every trial is compared with the baseline (trial 0, no regularization). Some
baselines make that comparison, and so every later trial, meaningless; the
search stops after the baseline with one line, instead of running the other
trials in the same state (kreg's own diagnosis once said "batch-norm moving
statistics have not converged" and then ran nine more trials at chance):

- the baseline's training diverged (its loss became NaN or infinite):
  every plan shares its learning rate and data;
- ``inference_collapse`` on the baseline (training-mode figure far above
  the inference-mode one on the same data): with precise batch-norm
  statistics on, what is left is something regularization does not change
  (small-batch normalization, a layer that behaves differently at inference);
  with them off, the line says to turn them on;
- the baseline does not learn at all (classification): its honest training
  *and* validation accuracy are within 5 points of chance (the majority
  class's share of the training labels). A baseline that fits its training
  data but validates at chance is overfitting, which is what regularization
  is for: that one goes on.

A parallel search records the same diagnosis but goes on (its other trials
already run beside the baseline).
"""

from __future__ import annotations

import math

from kreg.errors import KregError

import numpy as np

CHANCE_MARGIN = 0.05  # accuracy points above chance that still count as "not learning"


def chance_accuracy(y_train, num_classes: int) -> float:
    """The accuracy of always answering the most frequent training class (1/k without labels at hand)."""
    if y_train is None:
        return 1.0 / num_classes
    y = np.asarray(y_train)
    labels = y.argmax(axis=-1) if y.ndim > 1 and y.shape[-1] > 1 else y.reshape(-1).astype(int)
    if labels.size == 0:
        return 1.0 / num_classes
    return float(np.bincount(labels, minlength=num_classes).max() / labels.size)


def blocking_line(record, problem) -> str | None:
    """One line saying why the baseline ``record`` (trained on ``problem``, a ``kreg.lab.trial.problem.Problem``)
    makes the rest of the search meaningless, or None."""
    if record.status == "FAILED":
        reason = (record.reason or "").strip().splitlines()[-1:] or [""]
        if "NaN" in reason[0] or "infinite" in reason[0]:
            return (f"stopped after the baseline: {reason[0].removeprefix('Diverged: ')}; every plan shares its "
                    f"learning rate ({problem.training.learning_rate:g}) and data: lower the learning rate, or "
                    "look for NaN or infinite values in the inputs")
        return None
    collapse = next((d for d in record.diagnoses or [] if d["kind"] == "inference_collapse"), None)
    if collapse is not None:
        return (f"stopped after the baseline: inference collapse ({collapse['evidence']}): every trial would be "
                f"scored in this state; {collapse['advice']}")
    task = problem.task
    if task.kind != "classification":
        return None
    metric = task.primary
    train, val = record.metrics.get(f"train_{metric}"), record.metrics.get(f"val_{metric}")
    if metric != "accuracy" or train is None or val is None or not all(map(math.isfinite, (train, val))):
        return None
    chance = chance_accuracy(getattr(problem.splits, "y_train", None), task.num_classes)
    if train <= chance + CHANCE_MARGIN and val <= chance + CHANCE_MARGIN:
        return (f"stopped after the baseline: it does not learn (honest training accuracy {train:.3f}, validation "
                f"{val:.3f}, chance {chance:.3f}): regularization cannot help a model that does not fit; raise the "
                f"learning rate ({problem.training.learning_rate:g}) or the epochs ({problem.training.epochs}), "
                "or check that the labels match the inputs")
    return None


class BaselineBlocked(KregError, RuntimeError):
    """The baseline makes every later trial meaningless: the search stops with ``line``."""

    def __init__(self, line: str):
        super().__init__(line)
        self.line = line
