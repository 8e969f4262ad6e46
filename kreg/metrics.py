"""Calibration metrics: does a predicted probability of 0.8 come true 80% of the time?

Streaming (state kept in variables across batches, reset per epoch), for
integer labels and predicted probabilities (or logits with
``from_logits=True``), usable in ``compile(metrics=...)``.
"""

from __future__ import annotations

import keras
from keras import ops

from kreg import _validation as v
from kreg.losses import is_soft


def _probabilities(y_pred, from_logits):
    return ops.softmax(y_pred, axis=-1) if from_logits else y_pred


def hard_labels(y_true, y_pred):
    """Integer labels, flat: soft labels (MixUp, CutMix) count as their top class."""
    if is_soft(y_true, y_pred):
        return ops.argmax(y_true, axis=-1)
    return ops.reshape(y_true, (-1,))


@keras.saving.register_keras_serializable(package="kreg")
class TopClassAccuracy(keras.metrics.MeanMetricWrapper):
    """Accuracy for integer labels or soft labels: is the top predicted class the label's?

    ``keras.metrics.SparseCategoricalAccuracy`` takes integer labels only; in
    a model trained on MixUp/CutMix batches the training labels are soft and
    the validation labels integers. Soft labels count as their top class.

    Args:
        name, dtype: As in ``keras.metrics.Metric``. Default name ``"accuracy"``.

    Example:
        >>> model.compile("adam", kreg.losses.SparseCategoricalCrossentropy(from_logits=True),
        ...               metrics=[kreg.metrics.TopClassAccuracy()])
    """

    def __init__(self, name="accuracy", dtype=None):
        def top_class(y_true, y_pred):
            labels = ops.cast(hard_labels(y_true, y_pred), "int32")
            return ops.cast(ops.equal(ops.cast(ops.argmax(y_pred, axis=-1), "int32"), labels), "float32")

        super().__init__(top_class, name=name, dtype=dtype)

    def get_config(self):
        return {"name": self.name, "dtype": self.dtype}


class _BinnedCalibration(keras.metrics.Metric):
    """Per-bin counts, summed confidence and summed correctness of the top class."""

    def __init__(self, num_bins=15, from_logits=False, name=None, dtype=None):
        super().__init__(name=name, dtype=dtype)
        self.num_bins = v.check_positive_int("num_bins", num_bins)
        self.from_logits = bool(from_logits)
        shape = (self.num_bins,)
        self.counts = self.add_variable(shape=shape, initializer="zeros", name="counts")
        self.confidence = self.add_variable(shape=shape, initializer="zeros", name="confidence")
        self.correct = self.add_variable(shape=shape, initializer="zeros", name="correct")

    def update_state(self, y_true, y_pred, sample_weight=None):
        probs = ops.cast(_probabilities(y_pred, self.from_logits), "float32")
        confidence = ops.max(probs, axis=-1)
        predicted = ops.argmax(probs, axis=-1)
        labels = ops.cast(hard_labels(y_true, y_pred), predicted.dtype)
        correct = ops.cast(ops.equal(predicted, labels), "float32")
        # Bin b holds confidences in (b/B, (b+1)/B]; a confidence of exactly 0 goes to bin 0.
        bins = ops.clip(ops.cast(ops.ceil(confidence * self.num_bins) - 1, "int32"), 0, self.num_bins - 1)
        one_hot = ops.one_hot(bins, self.num_bins)
        weight = ops.ones_like(confidence) if sample_weight is None else ops.cast(
            ops.reshape(sample_weight, (-1,)), "float32")
        one_hot = one_hot * weight[:, None]
        self.counts.assign_add(ops.sum(one_hot, axis=0))
        self.confidence.assign_add(ops.sum(one_hot * confidence[:, None], axis=0))
        self.correct.assign_add(ops.sum(one_hot * correct[:, None], axis=0))

    def _totals(self):
        # Plain tensors: some backends (JAX) do not take Variables in every op.
        return (ops.convert_to_tensor(self.counts), ops.convert_to_tensor(self.confidence),
                ops.convert_to_tensor(self.correct))

    def _bin_gaps(self):
        counts, confidence, correct = self._totals()
        safe = ops.maximum(counts, 1.0)
        return ops.abs(correct / safe - confidence / safe)

    def reset_state(self):
        for var in (self.counts, self.confidence, self.correct):
            var.assign(ops.zeros(var.shape, dtype=var.dtype))

    def get_config(self):
        return {"num_bins": self.num_bins, "from_logits": self.from_logits, "name": self.name, "dtype": self.dtype}


@keras.saving.register_keras_serializable(package="kreg")
class ExpectedCalibrationError(_BinnedCalibration):
    """ECE: ``sum_b (n_b / N) * |accuracy_b - confidence_b|`` over equal-width bins.

    Args:
        num_bins: Number of equal-width confidence bins. Default 15.
        from_logits: Whether predictions are logits. Default False.

    Example:
        >>> model.compile("adam", "sparse_categorical_crossentropy",
        ...               metrics=[kreg.metrics.ExpectedCalibrationError()])

    References:
        Naeini et al., "Obtaining well calibrated probabilities using Bayesian
        binning", AAAI 2015; Guo et al., "On calibration of modern neural
        networks", ICML 2017.
    """

    def __init__(self, num_bins=15, from_logits=False, name="ece", dtype=None):
        super().__init__(num_bins=num_bins, from_logits=from_logits, name=name, dtype=dtype)

    def result(self):
        counts = self._totals()[0]
        total = ops.maximum(ops.sum(counts), 1.0)
        return ops.sum(counts / total * self._bin_gaps())


@keras.saving.register_keras_serializable(package="kreg")
class MaxCalibrationError(_BinnedCalibration):
    """MCE: the largest ``|accuracy_b - confidence_b|`` over non-empty bins."""

    def __init__(self, num_bins=15, from_logits=False, name="mce", dtype=None):
        super().__init__(num_bins=num_bins, from_logits=from_logits, name=name, dtype=dtype)

    def result(self):
        return ops.max(ops.where(self._totals()[0] > 0, self._bin_gaps(), 0.0))


@keras.saving.register_keras_serializable(package="kreg")
class BrierScore(keras.metrics.MeanMetricWrapper):
    """Mean over examples of ``sum_k (p_k - y_k)^2`` (integer labels)."""

    def __init__(self, from_logits=False, name="brier", dtype=None):
        self.from_logits = bool(from_logits)

        def brier(y_true, y_pred):
            probs = _probabilities(y_pred, self.from_logits)
            target = ops.one_hot(ops.cast(ops.reshape(y_true, (-1,)), "int32"), ops.shape(probs)[-1])
            return ops.sum(ops.square(probs - ops.cast(target, probs.dtype)), axis=-1)

        super().__init__(fn=brier, name=name, dtype=dtype)

    def get_config(self):
        return {"from_logits": self.from_logits, "name": self.name, "dtype": self.dtype}
