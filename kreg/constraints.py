"""Constraints Keras 3 lacks: the proximal step of L1."""

from __future__ import annotations

import keras
from keras import ops

from kreg import _validation as v


@keras.saving.register_keras_serializable(package="kreg")
class SoftThreshold(keras.constraints.Constraint):
    """Soft-thresholding, ``sign(w) * max(|w| - threshold, 0)``, after every update.

    Keras applies a constraint after each optimizer step, which turns plain
    gradient descent on the data loss into proximal gradient descent (ISTA)
    for an L1 penalty: with SGD at learning rate ``lr`` and
    ``threshold = lr * alpha`` the weights converge to the lasso solution with
    strength ``alpha``, and reach exact zeros. An L1 penalty added to the loss
    (``keras.regularizers.L1``) only gets a subgradient, so weights oscillate
    around zero and almost never equal it.

    Args:
        threshold: Non-negative float subtracted from every ``|w|`` after each
            update. Default 1e-4.

    Example:
        >>> lr, alpha = 0.1, 0.01
        >>> dense = keras.layers.Dense(
        ...     1, kernel_constraint=kreg.constraints.SoftThreshold(lr * alpha))

    References:
        Tibshirani, "Regression shrinkage and selection via the lasso", 1996;
        Beck and Teboulle, "A fast iterative shrinkage-thresholding algorithm",
        SIAM J. Imaging Sciences 2009.
    """

    def __init__(self, threshold=1e-4):
        self.threshold = v.check_non_negative("threshold", threshold)

    def __call__(self, w):
        return ops.sign(w) * ops.maximum(ops.abs(w) - self.threshold, 0.0)

    def get_config(self):
        return {"threshold": self.threshold}


def get(identifier):
    """Resolves a constraint from None, a name, a config dict or an instance."""
    if identifier is None or isinstance(identifier, keras.constraints.Constraint):
        return identifier
    if identifier in ("soft_threshold", "SoftThreshold"):
        return SoftThreshold()
    if isinstance(identifier, dict) and identifier.get("class_name") in ("soft_threshold", "SoftThreshold"):
        return SoftThreshold(**identifier.get("config", {}))
    return keras.constraints.get(identifier)
