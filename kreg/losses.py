"""Losses Keras 3 lacks: label smoothing for integer labels (and for the soft labels of mixing)."""

from __future__ import annotations

import keras
from keras import ops

from kreg import _validation as v


def smooth_sparse_targets(labels, num_classes, label_smoothing, smoothing="uniform"):
    """Soft targets for integer labels.

    ``"uniform"`` is Keras' rule: ``one_hot * (1 - eps) + eps / K``.
    ``"others"`` gives ``1 - eps`` to the true class and ``eps / (K - 1)`` to
    each other class.
    """
    one_hot = ops.one_hot(ops.cast(ops.reshape(labels, (-1,)), "int32"), num_classes)
    eps = label_smoothing
    if smoothing == "uniform":
        return one_hot * (1.0 - eps) + eps / num_classes
    return one_hot * (1.0 - eps) + (1.0 - one_hot) * (eps / (num_classes - 1))


def is_soft(y_true, y_pred) -> bool:
    """Soft labels (a distribution per example, e.g. from MixUp) rather than integer labels.

    Decided on static shapes: labels of the predictions' rank whose last axis
    has one entry per class.
    """
    return (len(y_true.shape) == len(y_pred.shape) and y_pred.shape[-1] not in (None, 1)
            and y_true.shape[-1] == y_pred.shape[-1])


def smooth_soft_targets(targets, label_smoothing, smoothing="uniform"):
    """Label smoothing applied to soft labels: the same rules, so the rows still sum to 1."""
    num_classes = targets.shape[-1]
    eps = label_smoothing
    if smoothing == "uniform":
        return targets * (1.0 - eps) + eps / num_classes
    return targets * (1.0 - eps) + (1.0 - targets) * (eps / (num_classes - 1))


def targets_for(y_true, y_pred, label_smoothing, smoothing="uniform"):
    """Smoothed target distributions for integer or soft labels, in the predictions' dtype."""
    if is_soft(y_true, y_pred):
        targets = smooth_soft_targets(ops.cast(y_true, y_pred.dtype), label_smoothing, smoothing)
    else:
        targets = smooth_sparse_targets(y_true, y_pred.shape[-1], label_smoothing, smoothing)
    return ops.cast(targets, y_pred.dtype)


@keras.saving.register_keras_serializable(package="kreg")
class SparseCategoricalCrossentropy(keras.losses.Loss):
    """Cross-entropy for integer labels with label smoothing.

    Keras 3.15's ``SparseCategoricalCrossentropy`` has no ``label_smoothing``;
    this loss keeps labels sparse in the data pipeline and smooths inside.
    It also takes soft labels ``(batch, classes)`` (what ``kreg.augment.MixUp``
    and ``CutMix`` yield) and smooths them by the same rule, so mixing and
    label smoothing compose.

    Args:
        label_smoothing: Epsilon in [0, 1). Default 0 (plain cross-entropy).
        smoothing: ``"uniform"`` (Keras' rule, ``eps / K`` to every class,
            default) or ``"others"`` (``1 - eps`` to the true class and
            ``eps / (K - 1)`` to every other class).
        from_logits: Whether predictions are logits. Default False.
        reduction, name: As in ``keras.losses.Loss``.

    Example:
        >>> loss = kreg.losses.SparseCategoricalCrossentropy(0.1, from_logits=True)
        >>> float(loss(np.array([0]), np.array([[2.0, 0.0, 0.0]])))  # doctest: +SKIP

    References:
        Szegedy et al., "Rethinking the Inception architecture", CVPR 2016;
        Müller et al., "When does label smoothing help?", NeurIPS 2019.
    """

    def __init__(
        self,
        label_smoothing=0.0,
        smoothing="uniform",
        from_logits=False,
        reduction="sum_over_batch_size",
        name="sparse_categorical_crossentropy",
        dtype=None,
    ):
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        self.label_smoothing = v.check_rate("label_smoothing", label_smoothing)
        self.smoothing = v.check_choice("smoothing", smoothing, ("uniform", "others"))
        self.from_logits = bool(from_logits)

    def call(self, y_true, y_pred):
        if self.label_smoothing == 0 and not is_soft(y_true, y_pred):
            return keras.losses.sparse_categorical_crossentropy(
                y_true, y_pred, from_logits=self.from_logits
            )
        targets = targets_for(y_true, y_pred, self.label_smoothing, self.smoothing)
        return keras.losses.categorical_crossentropy(
            targets, y_pred, from_logits=self.from_logits
        )

    def get_config(self):
        config = super().get_config()
        config.update(
            label_smoothing=self.label_smoothing,
            smoothing=self.smoothing,
            from_logits=self.from_logits,
        )
        return config


@keras.saving.register_keras_serializable(package="kreg")
class ConfidencePenalty(keras.losses.Loss):
    """Cross-entropy minus ``beta`` times the entropy of the prediction.

    Penalizing low-entropy (over-confident) output distributions regularizes
    like label smoothing, but pulls toward the model's own distribution
    rather than the uniform one.

    Args:
        beta: Strength of the entropy bonus, a non-negative float. Default 0.1.
        from_logits: Whether predictions are logits. Default False.
        sparse: Integer labels (True, default; soft labels of the
            predictions' shape are recognized too) or one-hot labels.
        label_smoothing: Uniform label smoothing of integer labels, in
            [0, 1). Default 0.
        reduction, name: As in ``keras.losses.Loss``.

    Example:
        >>> model.compile("adam", kreg.losses.ConfidencePenalty(0.1, from_logits=True))

    References:
        Pereyra et al., "Regularizing neural networks by penalizing confident
        output distributions", ICLR workshop 2017.
    """

    def __init__(self, beta=0.1, from_logits=False, sparse=True, label_smoothing=0.0,
                 reduction="sum_over_batch_size", name="confidence_penalty", dtype=None):
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        self.beta = v.check_non_negative("beta", beta)
        self.label_smoothing = v.check_rate("label_smoothing", label_smoothing)
        self.from_logits = bool(from_logits)
        self.sparse = bool(sparse)

    def call(self, y_true, y_pred):
        if self.sparse and (self.label_smoothing or is_soft(y_true, y_pred)):
            targets = targets_for(y_true, y_pred, self.label_smoothing)
            ce = keras.losses.categorical_crossentropy(targets, y_pred, from_logits=self.from_logits)
        elif self.sparse:
            ce = keras.losses.sparse_categorical_crossentropy(y_true, y_pred, from_logits=self.from_logits)
        else:
            ce = keras.losses.categorical_crossentropy(y_true, y_pred, from_logits=self.from_logits)
        if self.from_logits:
            log_p = ops.log_softmax(y_pred, axis=-1)
        else:
            log_p = ops.log(ops.clip(y_pred, keras.config.epsilon(), 1.0))
        entropy = -ops.sum(ops.exp(log_p) * log_p, axis=-1)
        return ce - self.beta * entropy

    def get_config(self):
        config = super().get_config()
        config.update(beta=self.beta, from_logits=self.from_logits, sparse=self.sparse,
                      label_smoothing=self.label_smoothing)
        return config
