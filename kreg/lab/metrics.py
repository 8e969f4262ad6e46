"""Metrics in the targets' own units for models trained on standardized regression targets."""

from __future__ import annotations

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="kreg_lab")
class InUnits(keras.metrics.Metric):
    """Wraps a regression metric so it sees targets and predictions times ``scale`` (per target).

    The lab trains regression models on standardized targets; wrapping
    ``MeanAbsoluteError(name="mae")`` with the targets' standard deviations
    reports the MAE in the targets' units under the same name.

    Args:
        metric: A Keras metric over ``(y_true, y_pred)``.
        scale: One factor per target (the training targets' standard deviations).
    """

    def __init__(self, metric, scale, name=None, dtype=None):
        metric = keras.metrics.get(metric) if not isinstance(metric, keras.metrics.Metric) else metric
        super().__init__(name=name or metric.name, dtype=dtype)
        self.metric = metric
        self.scale = [float(s) for s in scale]

    def update_state(self, y_true, y_pred, sample_weight=None):
        scale = ops.convert_to_tensor(self.scale, dtype=y_pred.dtype)
        y_true = ops.cast(ops.reshape(y_true, ops.shape(y_pred)), y_pred.dtype)
        self.metric.update_state(y_true * scale, y_pred * scale, sample_weight)

    def result(self):
        return self.metric.result()

    def reset_state(self):
        self.metric.reset_state()

    def get_config(self):
        return {"metric": keras.metrics.serialize(self.metric), "scale": self.scale, "name": self.name}

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["metric"] = keras.metrics.deserialize(config["metric"])
        return cls(**config)


@keras.saving.register_keras_serializable(package="kreg_lab")
class BinaryHeadCrossentropy(keras.losses.BinaryCrossentropy):
    """Keras' binary cross-entropy for a one-unit head whose labels are a vector of 0/1 class indices.

    Keras compares ``(batch,)`` labels with ``(batch, 1)`` outputs only on its
    probability path; with ``from_logits=True`` it refuses the rank mismatch,
    so the labels take the output's shape first.
    """

    def call(self, y_true, y_pred):
        return super().call(ops.reshape(ops.cast(y_true, y_pred.dtype), ops.shape(y_pred)), y_pred)
