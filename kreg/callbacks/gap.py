"""The honest train/validation gap, per epoch.

Keras' ``loss`` and ``accuracy`` during ``fit`` are running means over the
epoch, computed with dropout, noise and augmentation active and the weights
changing under them. The honest training figure is an evaluation in inference
mode over the training data (or a fixed sample of it) with the epoch's final
weights. This callback adds it to the epoch logs as ``train_<name>``, and the
gap as ``gap_<name>`` (positive means overfitting: ``val - train`` for losses
and errors, ``train - val`` for higher-is-better metrics), so EarlyStopping,
ModelCheckpoint, keras-tuner and MLflow can all use them.
"""

from __future__ import annotations

import copy

import keras
import numpy as np

from kreg import _validation as v

_LOWER_IS_BETTER = ("loss", "error", "crossentropy", "mse", "mae", "hinge", "brier", "ece", "mce", "nll",
                    "divergence", "perplexity")


def lower_is_better(metric_name: str) -> bool:
    """Whether a metric name denotes something to minimise (a loss or an error)."""
    return any(token in metric_name for token in _LOWER_IS_BETTER)


def gap_value(name: str, train_value: float, val_value: float) -> float:
    """Positive when the model does better on training data than on validation."""
    if lower_is_better(name):
        return float(val_value) - float(train_value)
    return float(train_value) - float(val_value)


def penalized_loss(val_loss: float, train_loss: float, penalty: float | None) -> float:
    """The gap-penalized objective ``val_loss + penalty * max(0, val_loss - train_loss)``."""
    return float(val_loss) + (penalty or 0.0) * max(0.0, float(val_loss) - float(train_loss))


class GeneralizationGap(keras.callbacks.Callback):
    """Adds ``train_*`` (inference-mode) and ``gap_*`` to every epoch's logs.

    Args:
        train_data: ``(x, y)`` arrays of training data, or a batched
            ``tf.data.Dataset`` of ``(x, y)``. For speed pass a fixed sample
            (kreg's pipeline uses 500 by default).
        every: Evaluate every this many epochs (and always at the last).
            Default 1.
        batch_size: Batch size of the evaluation for array input. Default
            1024. Array data that fits in one batch is evaluated with a
            single ``test_on_batch`` call, which avoids ``evaluate``'s
            per-call set-up (the difference is most of the callback's cost
            on small models).
        penalty: If not None, also log ``val_penalized_loss`` =
            ``val_m + penalty * max(0, val_m - train_m)`` for the metric
            ``penalty_metric``, a selection objective that prefers models
            that generalize. Default None (not logged).
        penalty_metric: The figure ``m`` it penalizes. Default ``"loss"``;
            note that Keras' ``loss`` includes the weight penalties, so a
            penalty-free metric (a cross-entropy or MSE metric compiled into
            the model) compares plans with different penalties fairly.

    Example:
        >>> gap = kreg.callbacks.GeneralizationGap((x_train[:1000], y_train[:1000]))
        >>> model.fit(x_train, y_train, validation_data=(x_val, y_val),
        ...           callbacks=[gap, keras.callbacks.EarlyStopping("gap_loss")])

    References:
        Goodfellow, Bengio and Courville, "Deep Learning", ch. 5.2 and 7.
    """

    def __init__(self, train_data, every=1, batch_size=1024, penalty=None, penalty_metric="loss"):
        super().__init__()
        self.train_data = train_data
        self.every = v.check_positive_int("every", every)
        self.batch_size = v.check_positive_int("batch_size", batch_size)
        self.penalty = None if penalty is None else v.check_non_negative("penalty", penalty)
        if not isinstance(penalty_metric, str) or not penalty_metric:
            raise v.invalid("penalty_metric", "the name of a compiled metric, e.g. 'loss'", penalty_metric)
        self.penalty_metric = penalty_metric
        self._dataset = None
        self.last_train_logs: dict = {}

    def __deepcopy__(self, memo):
        # keras-tuner deep-copies callbacks for every trial; share the data
        # (read-only) instead of copying it, and drop the built dataset.
        clone = copy.copy(self)
        clone._dataset = None
        clone.last_train_logs = {}
        return clone

    def on_train_begin(self, logs=None):
        self.last_train_logs = {}
        self._epochs = self.params.get("epochs") if self.params else None

    def _data(self):
        if self._dataset is None:
            if isinstance(self.train_data, (tuple, list)):
                import tensorflow as tf

                x, y = (np.asarray(a) for a in self.train_data)
                self._dataset = tf.data.Dataset.from_tensor_slices((x, y)).batch(self.batch_size).cache()
            else:
                self._dataset = self.train_data
        return self._dataset

    def _single_batch(self):
        """``(x, y)`` arrays when the data fits in one batch, else None."""
        if isinstance(self.train_data, (tuple, list)) and len(self.train_data[1]) <= self.batch_size:
            return self.train_data
        return None

    def evaluate(self, model=None) -> dict:
        """Inference-mode evaluation over the training data: ``{"train_loss": ...}``."""
        model = model or self.model
        batch = self._single_batch()
        if batch is not None:
            results = model.test_on_batch(batch[0], batch[1], return_dict=True)
        else:
            results = model.evaluate(self._data(), verbose=0, return_dict=True)
        return {f"train_{k}": float(val) for k, val in results.items()}

    def on_epoch_end(self, epoch, logs=None):
        if logs is None:
            return
        last = self._epochs is not None and epoch + 1 >= self._epochs
        if (epoch + 1) % self.every and not last:
            return
        train = self.evaluate()
        self.last_train_logs = train
        logs.update(train)
        for key, value in train.items():
            name = key[len("train_"):]
            if f"val_{name}" in logs:
                logs[f"gap_{name}"] = gap_value(name, value, logs[f"val_{name}"])
        m = self.penalty_metric
        if self.penalty is not None and f"gap_{m}" in logs:
            logs["val_penalized_loss"] = penalized_loss(logs[f"val_{m}"], logs[f"train_{m}"], self.penalty)
