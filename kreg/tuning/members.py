"""A trial's bagged ensemble: extra members on bootstrap resamples, figures of the whole.

The trial's own model is member 0 (trained on the full training split, with
every per-epoch figure logged); members 1..k-1 are trained by the same
recipe on bootstrap resamples for the epochs the trial kept. The trial's
train/validation/test figures then become the ensemble's (probabilities
averaged), the single model's are kept as ``single_*``, and the test split
gets the error decomposition of ``kreg.training.error_decomposition``.
"""

from __future__ import annotations

import dataclasses

import keras
import numpy as np

from kreg.callbacks.gap import penalized_loss
from kreg.metrics import ExpectedCalibrationError
from kreg.training import Ensemble
from kreg.tuning.procedures import build_for_plan, procedure_callbacks, train_data


def bootstrap(splits, seed: int):
    """``splits`` with the training split resampled with replacement."""
    rng = np.random.default_rng(seed)
    index = rng.integers(0, len(splits.y_train), len(splits.y_train))
    return dataclasses.replace(splits, x_train=splits.x_train[index], y_train=splits.y_train[index], seed=seed)


def _figures(probs, y) -> dict:
    y = np.asarray(y).reshape(-1).astype(int)
    picked = np.clip(probs[np.arange(len(y)), y], 1e-12, 1.0)
    ece = ExpectedCalibrationError()
    ece.update_state(y, probs.astype("float32"))
    return {"accuracy": float(np.mean(probs.argmax(-1) == y)), "loss": float(-np.mean(np.log(picked))),
            "ece": float(keras.ops.convert_to_numpy(ece.result()))}


def train_members(cfg, splits, plan, first_model, epochs: int, train_sample, seed: int) -> Ensemble:
    """Trains ``plan.ensemble - 1`` members on bootstrap resamples; returns the ensemble."""
    members = [first_model]
    batch_size = plan.batch_size or cfg.training.batch_size
    for i in range(1, plan.ensemble):
        keras.utils.set_random_seed(seed + 1000 * i)
        resampled = bootstrap(splits, seed + 1000 * i)
        model = build_for_plan(cfg, splits.spec, plan, seed=seed + 1000 * i)
        data, mixers = train_data(resampled, plan, batch_size, seed + 1000 * i)
        callbacks, _, _ = procedure_callbacks(plan, model, epochs, train_sample, mixers)
        history = model.fit(data, epochs=epochs, shuffle=False, verbose=0,
                            callbacks=[keras.callbacks.TerminateOnNaN(), *callbacks])
        if not np.all(np.isfinite(history.history["loss"])):
            raise FloatingPointError(f"ensemble member {i + 1} diverged")
        members.append(model)
    return Ensemble(members, from_logits=True)


def ensemble_metrics(ensemble, splits, train_sample, penalty: float | None) -> dict:
    """The ensemble's train (sample) / validation / test figures and test decomposition."""
    parts = [train_sample, splits.arrays("validation"), splits.arrays("test")]
    # One prediction pass per member over all three sets.
    preds = ensemble.member_predictions(np.concatenate([x for x, _ in parts]))
    bounds = np.cumsum([0] + [len(y) for _, y in parts])
    per_set = [preds[:, a:b] for a, b in zip(bounds[:-1], bounds[1:])]
    train, val, test = (_figures(ensemble.combine_predictions(p), y) for p, (_, y) in zip(per_set, parts))
    metrics = {f"train_{k}": v for k, v in train.items()}
    metrics.update({f"val_{k}": v for k, v in val.items()})
    metrics.update({f"test_{k}": v for k, v in test.items()})
    metrics["val_penalized_loss"] = penalized_loss(val["loss"], train["loss"], penalty)
    decomposition = ensemble.evaluate_predictions(per_set[2], parts[2][1])
    for key in ("mean_member_error", "covariance", "ensemble_error", "diversity", "mean_member_accuracy"):
        metrics[f"test_{key}"] = decomposition[key]
    metrics["ensemble_members"] = decomposition["members"]
    return metrics
