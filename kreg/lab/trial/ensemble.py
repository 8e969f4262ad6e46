"""A trial's bagged ensemble: extra members on bootstrap resamples, figures of the whole.

The trial's own model is member 0 (trained on the full training split, with
every per-epoch figure logged); members 1..k-1 are trained by the same
recipe on bootstrap resamples for the epochs the trial kept. The trial's
train/validation/test figures then become the ensemble's (probabilities or
predictions averaged), the single model's are kept as ``single_*``, and the
test split gets the error decomposition of
``kreg.training.error_decomposition`` (squared error of the probabilities
for classification, of the predictions for regression).
"""

from __future__ import annotations

import dataclasses

import keras
import numpy as np

from kreg.callbacks.gap import penalized_loss
from kreg.lab.trial.fit import Diverged, SignalCheckpoint, StopOnNaN
from kreg.lab.trial.procedures import build_for_plan, precise_bn, procedure_callbacks, train_data
from kreg.training import error_decomposition
from kreg.training.ensemble import _quiet_retracing
from kreg.lab.trial.problem import Problem


def train_members(problem: Problem, plan, epochs: int, train_sample, seed: int) -> list:
    """Trains ``plan.ensemble - 1`` members on bootstrap resamples; returns them."""
    members = []
    batch_size = plan.batch_size or problem.training.batch_size
    for i in range(1, plan.ensemble):
        member_seed = seed + 1000 * i
        keras.utils.set_random_seed(member_seed)
        resampled = dataclasses.replace(problem, splits=problem.splits.bootstrap(member_seed))
        model, _ = build_for_plan(resampled, plan, seed=member_seed)
        data, mixers = train_data(resampled.splits, plan, batch_size, member_seed)
        callbacks, _, _ = procedure_callbacks(plan, model, epochs, train_sample, mixers)
        precise, _ = precise_bn(resampled, model, resampled.splits, batch_size, member_seed, every=None)
        callbacks += [precise] if precise is not None else []  # after SWA: the statistics of the final weights
        history = model.fit(data, epochs=epochs, shuffle=False, verbose=0,
                            callbacks=[SignalCheckpoint(), StopOnNaN(), *callbacks])
        if not np.all(np.isfinite(history.history["loss"])):
            raise Diverged(f"ensemble member {i + 1} diverged")
        members.append(model)
    return members


def _predictions(models, dataset, task, activation) -> np.ndarray:
    """``(members, n, outputs)``: probabilities (classification) or predictions (regression)."""
    out = []
    with _quiet_retracing():
        for model in models:
            raw = np.asarray(model.predict(dataset, verbose=0), np.float64)
            out.append(task.probabilities(raw, activation) if task.kind == "classification" else raw)
    return np.stack(out)


def ensemble_metrics(problem: Problem, models, activation, train_sample) -> dict:
    """The ensemble's train (sample) / validation / test figures and the test decomposition."""
    import tensorflow as tf

    task, splits = problem.task, problem.splits
    sets = {
        "train": (tf.data.Dataset.from_tensor_slices(train_sample[0]).batch(256), train_sample[1]),
        "val": (splits.eval_dataset("validation").map(lambda x, y: x), splits.labels("validation")),
        "test": (splits.eval_dataset("test").map(lambda x, y: x), splits.labels("test")),
    }
    metrics, test_preds = {}, None
    for prefix, (dataset, y) in sets.items():
        preds = _predictions(models, dataset, task, activation)
        for key, value in task.figures(preds.mean(axis=0), y).items():
            metrics[f"{prefix}_{key}"] = value
        if prefix == "test":
            test_preds = preds
    m = problem.penalty_metric
    metrics["val_penalized_loss"] = penalized_loss(metrics[f"val_{m}"], metrics[f"train_{m}"], problem.penalty)
    y_test = sets["test"][1]
    if task.kind == "classification":
        labels = np.asarray(y_test).reshape(-1).astype(int)
        decomposition = error_decomposition(test_preds, np.eye(test_preds.shape[-1])[labels])
        metrics["test_mean_member_accuracy"] = float(np.mean(test_preds.argmax(-1) == labels[None]))
    else:
        decomposition = error_decomposition(test_preds, np.asarray(y_test).reshape(test_preds.shape[1:]))
    for key in ("mean_member_error", "covariance", "ensemble_error", "diversity"):
        metrics[f"test_{key}"] = decomposition[key]
    metrics["ensemble_members"] = len(models)
    return metrics
