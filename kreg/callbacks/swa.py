"""Stochastic weight averaging, with the batch-normalization refresh it needs."""

from __future__ import annotations

import copy
import warnings

import keras
import numpy as np

from kreg.errors import ArgumentError
from kreg import _validation as v


def _bn_layers(model):
    return [l for l in model._flatten_layers(include_self=False, recursive=True)
            if isinstance(l, keras.layers.BatchNormalization)]


def _batches(data, batch_size):
    """Input batches from arrays, ``(x, y)`` arrays or a dataset of ``x`` / ``(x, ...)``."""
    if isinstance(data, (tuple, list)):
        data = data[0]
    if isinstance(data, np.ndarray):
        for i in range(0, len(data), batch_size):
            yield data[i:i + batch_size]
        return
    for batch in data:
        yield batch[0] if isinstance(batch, (tuple, list)) else batch


def refresh_batch_norm(model, data, batch_size=128):
    """Recomputes every BatchNormalization layer's statistics over ``data``.

    Averaged weights do not match running statistics collected along the
    trajectory; SWA therefore recomputes them with one pass over the
    training data. The moving mean and variance become the plain average of
    the per-batch statistics (Keras' momentum set to ``n / (n + 1)`` at batch
    ``n``).
    """
    layers = _bn_layers(model)
    if not layers:
        return 0
    saved = [layer.momentum for layer in layers]
    for layer in layers:
        layer.moving_mean.assign(np.zeros(layer.moving_mean.shape, "float32"))
        layer.moving_variance.assign(np.ones(layer.moving_variance.shape, "float32"))
    count = 0
    try:
        for batch in _batches(data, batch_size):
            for layer in layers:
                layer.momentum = count / (count + 1.0)
            model(batch, training=True)
            count += 1
    finally:
        for layer, momentum in zip(layers, saved):
            layer.momentum = momentum
    return count


@keras.saving.register_keras_serializable(package="kreg")
class SWA(keras.callbacks.Callback):
    """Stochastic weight averaging: the model ends with the mean of its late weights.

    From ``start_epoch`` on, the trainable weights are added to a running
    mean every ``frequency`` epochs; at the end of training the model gets
    the mean, and batch-normalization statistics are recomputed on
    ``bn_data`` (the running statistics belong to the individual weights,
    not to their average). Averaging points along the trajectory of SGD with
    a high constant learning rate lands in the middle of a wide, flat region.
    It adds no cost to a training step.

    Keras' optimizer EMA (``use_ema=True`` with ``SwapEMAWeights``) keeps an
    exponential moving average of every step, with a decay, from the start,
    and no batch-norm refresh; SWA takes an equal-weight mean of epoch-end
    snapshots of the late phase only, optionally at a constant ``swa_lr``.

    Args:
        start_epoch: First epoch (0-based, as in Keras' callbacks) whose
            weights enter the average. Default 0.
        frequency: Average every this many epochs. Default 1.
        swa_lr: If set, the optimizer's learning rate from ``start_epoch``
            on (the paper's constant SWA learning rate). Default None.
        bn_data: Training inputs to recompute batch-norm statistics (arrays,
            ``(x, y)`` or a batched dataset). Required when the model has
            ``BatchNormalization`` layers.
        bn_batch_size: Batch size for array ``bn_data``. Default 128.

    Example:
        >>> swa = kreg.callbacks.SWA(start_epoch=20, bn_data=x_train)
        >>> model.fit(x_train, y_train, epochs=30, callbacks=[swa])
        >>> # model now holds the average of epochs 20..29

    References:
        Izmailov et al., "Averaging weights leads to wider optima and better
        generalization", UAI 2018.
    """

    def __init__(self, start_epoch=0, frequency=1, swa_lr=None, bn_data=None, bn_batch_size=128):
        super().__init__()
        self.start_epoch = v.check_non_negative_int("start_epoch", start_epoch)
        self.frequency = v.check_positive_int("frequency", frequency)
        self.swa_lr = None if swa_lr is None else v.check_positive("swa_lr", swa_lr)
        self.bn_data = bn_data
        self.bn_batch_size = v.check_positive_int("bn_batch_size", bn_batch_size)
        self._reset()

    def _reset(self):
        self.averaged_weights = None
        self.models_averaged = 0

    def __deepcopy__(self, memo):
        clone = copy.copy(self)  # share bn_data (read-only)
        clone._reset()
        return clone

    def get_config(self):
        return {"start_epoch": self.start_epoch, "frequency": self.frequency, "swa_lr": self.swa_lr,
                "bn_batch_size": self.bn_batch_size}

    @classmethod
    def from_config(cls, config):
        return cls(**config)  # without `bn_data` (data is not config): pass it again to refresh batch norm

    def on_train_begin(self, logs=None):
        self._reset()
        if _bn_layers(self.model) and self.bn_data is None:
            raise ArgumentError(
                "Invalid value received for argument `bn_data`. Expected training inputs to recompute "
                "batch-normalization statistics (the model has BatchNormalization layers). Received: bn_data=None"
            )

    def on_epoch_begin(self, epoch, logs=None):
        if self.swa_lr is not None and epoch >= self.start_epoch:
            self.model.optimizer.learning_rate = self.swa_lr

    def on_epoch_end(self, epoch, logs=None):
        if epoch >= self.start_epoch and (epoch - self.start_epoch) % self.frequency == 0:
            current = [keras.ops.convert_to_numpy(w) for w in self.model.trainable_variables]
            n = self.models_averaged
            if self.averaged_weights is None:
                self.averaged_weights = [w.astype("float64") for w in current]
            else:
                for avg, w in zip(self.averaged_weights, current):
                    avg += (w - avg) / (n + 1)
            self.models_averaged = n + 1
        if logs is not None:
            logs["swa_models"] = float(self.models_averaged)

    def on_train_end(self, logs=None):
        if not self.models_averaged:
            warnings.warn(f"SWA: training ended before start_epoch={self.start_epoch}; weights left as they are.")
            return
        for variable, avg in zip(self.model.trainable_variables, self.averaged_weights):
            variable.assign(avg.astype(variable.dtype))
        if self.bn_data is not None:
            refresh_batch_norm(self.model, self.bn_data, self.bn_batch_size)
