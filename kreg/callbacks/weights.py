"""WeightMonitor: per-layer weight norms and exact-zero fractions, per epoch."""

from __future__ import annotations

import keras
import numpy as np

from kreg import _validation as v


def weight_statistics(model, per_layer=True) -> dict:
    """Norms and exact-zero fractions of the kernels (variables of rank >= 2).

    Returns ``weight_norm`` (L2 norm of all kernels together), ``weight_l1``,
    ``zero_fraction`` (share of kernel entries exactly 0: L1 by a proximal
    step produces them, L2 only shrinks) and, with ``per_layer``,
    ``weight_norm/<layer>`` and ``zero_fraction/<layer>``.
    """
    stats, total_sq, total_l1, zeros, count = {}, 0.0, 0.0, 0, 0
    for variable in model.trainable_variables:
        if len(variable.shape) < 2:
            continue  # biases, scales: not what a penalty prunes
        w = keras.ops.convert_to_numpy(variable)
        sq, n_zero = float(np.sum(np.square(w, dtype="float64"))), int(np.count_nonzero(w == 0))
        total_sq, total_l1 = total_sq + sq, total_l1 + float(np.sum(np.abs(w), dtype="float64"))
        zeros, count = zeros + n_zero, count + w.size
        if per_layer:
            parts = variable.path.split("/")  # [model/]layer/kernel: name by the layer
            name = parts[-2] if len(parts) > 1 else variable.name
            stats[f"weight_norm/{name}"] = sq ** 0.5
            stats[f"zero_fraction/{name}"] = n_zero / w.size
    stats["weight_norm"] = total_sq ** 0.5
    stats["weight_l1"] = total_l1
    stats["zero_fraction"] = zeros / count if count else 0.0
    return stats


@keras.saving.register_keras_serializable(package="kreg")
class WeightMonitor(keras.callbacks.Callback):
    """Adds weight norms and the fraction of exactly-zero weights to each epoch's logs.

    Shows the seeds' contrast between penalties at work: L2 shrinks every
    weight (norms fall, no zeros), L1 applied as a proximal step
    (``kreg.constraints.SoftThreshold``) sets many to exactly zero, group
    lasso zeroes whole units. See ``weight_statistics`` for the keys.

    Args:
        per_layer: Also log each layer's norm and zero fraction. Default True.
        every: Every this many epochs. Default 1.

    Example:
        >>> history = model.fit(x, y, epochs=10, callbacks=[kreg.callbacks.WeightMonitor()])
        >>> history.history["zero_fraction"]

    References:
        Tibshirani, "Regression shrinkage and selection via the lasso", 1996.
    """

    def __init__(self, per_layer=True, every=1):
        super().__init__()
        if not isinstance(per_layer, bool):
            raise v.invalid("per_layer", "a boolean", per_layer)
        self.per_layer = per_layer
        self.every = v.check_positive_int("every", every)
        self.last = {}

    def get_config(self):
        return {"per_layer": self.per_layer, "every": self.every}

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def on_train_begin(self, logs=None):
        self.last = {}

    def on_epoch_end(self, epoch, logs=None):
        if (epoch + 1) % self.every:
            return
        self.last = weight_statistics(self.model, self.per_layer)
        if logs is not None:
            logs.update(self.last)
