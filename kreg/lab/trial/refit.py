"""The refit: the chosen plan trained once more on training + validation, tested once, saved.

After a search, the chosen plan is retrained from the search's seed on the
pooled training and validation data for the epochs its trial kept (the
median over folds with cross-validation), with no early stopping (nothing is
held out to stop on; the kept epochs already say when). The test split is
evaluated once. A bagged-ensemble plan trains its members the same way and
is saved as one Keras model that averages them.

The model's per-example test predictions come back too: the paired
comparison with the baseline (``kreg.lab.analysis.compare``) needs both
models' answers on the same examples.
"""

from __future__ import annotations

import dataclasses
import math

import keras
import numpy as np

from kreg.lab.data.folds import pooled
from kreg.lab.trial import ensemble
from kreg.lab.trial.fit import fit_plan
from kreg.lab.trial.measure import evaluate
from kreg.lab.trial.predict import inference_outputs
from kreg.lab.trial.problem import Problem


@dataclasses.dataclass
class Refitted:
    """A refit model, its test figures (``test_*``) and its per-example test outputs."""

    plan: object
    epochs: int
    model: object  # keras.Model
    metrics: dict
    outputs: np.ndarray  # (n_test, ...) probabilities (classification) or standardized predictions
    activation: str


def refit_epochs(record) -> int:
    """Epochs to refit for: the median kept epoch over folds (CV), else the trial's kept epoch."""
    value = record.metrics.get("cv_median_kept_epoch", record.metrics.get("kept_epoch"))
    return max(1, int(math.ceil(value))) if value is not None and math.isfinite(value) else 1


def pooled_search(problem: Problem):
    """``search`` whose training split is training + validation (validation kept only so Keras has one)."""
    x, y = pooled(problem.splits)
    return dataclasses.replace(problem, splits=dataclasses.replace(problem.splits, x_train=x, y_train=y))


def refit(problem: Problem, plan, epochs: int) -> Refitted:
    """Trains ``plan`` on training + validation for ``epochs`` epochs from the problem's seed; tests it."""
    keras.backend.clear_session()
    keras.utils.set_random_seed(problem.seed)
    pooled = pooled_search(problem)
    plan = plan.replace(early_stopping=None) if plan.early_stopping is not None else plan
    sample = pooled.splits.train_sample(problem.train_eval_samples)
    fitted = fit_plan(pooled, plan, epochs, sample, seed=problem.seed)
    model, activation = fitted.model, fitted.built.output_activation
    x_test, y_test = problem.splits.x_test, problem.splits.y_test
    if plan.ensemble and plan.ensemble > 1:
        members = ensemble.train_members(pooled, plan, epochs, sample, problem.seed)
        model, activation = averaged([model, *members], activation, problem.task.kind == "classification")
    raw = inference_outputs(model, x_test).astype(np.float64)
    classification = problem.task.kind == "classification"
    outputs = problem.task.probabilities(raw, activation) if classification else raw
    if plan.ensemble and plan.ensemble > 1:  # the members' average has no compiled metrics of its own
        test = problem.task.figures(outputs, y_test)
    else:
        test = evaluate(model, problem.splits.eval_dataset("test"))
    return Refitted(plan, epochs, model, {f"test_{k}": v for k, v in test.items()}, outputs, activation)


def averaged(models, activation: str, classification: bool):
    """One Keras model that averages its members' probabilities (classification: logits go through their
    softmax or sigmoid first) or predictions (regression); returns it and its output activation."""
    inputs = keras.Input(models[0].input_shape[1:])
    outs = [m(inputs) for m in models]
    if classification and activation == "linear":
        outs, activation = [keras.layers.Softmax()(o) for o in outs], "softmax"
    elif activation == "binary_logit":
        outs, activation = [keras.layers.Activation("sigmoid")(o) for o in outs], "sigmoid"
    return keras.Model(inputs, keras.layers.Average(name="ensemble_average")(outs), name="kreg_ensemble"), activation

