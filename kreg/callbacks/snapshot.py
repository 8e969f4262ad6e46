"""Snapshot ensembles: cyclic cosine learning rate, a snapshot at the end of each cycle."""

from __future__ import annotations

import copy
import math

import keras
import numpy as np

from kreg.errors import InputError
from kreg import _validation as v


@keras.saving.register_keras_serializable(package="kreg")
class SnapshotEnsemble(keras.callbacks.Callback):
    """Collects an ensemble for the price of one training run.

    Training is split into ``cycles`` equal cycles; in each, the learning
    rate falls from ``lr_max`` to ``lr_min`` along a cosine (set per epoch),
    so the model settles into a minimum and is then kicked out of it by the
    restart. The weights at the end of each cycle are kept; ``ensemble()``
    returns them as a ``kreg.training.Ensemble``. Logs ``learning_rate``.

    Args:
        cycles: Number of cycles (and snapshots), an integer >= 1. Default 5.
        lr_max: Learning rate at the start of each cycle. Default: the
            optimizer's learning rate when training starts.
        lr_min: Learning rate at the end of each cycle. Default 0.
        keep: Keep only the last this many snapshots (None: all). Default None.

    Example:
        >>> snaps = kreg.callbacks.SnapshotEnsemble(cycles=4)
        >>> model.fit(x, y, epochs=40, callbacks=[snaps])
        >>> snaps.ensemble(from_logits=True).evaluate(x_test, y_test)

    References:
        Huang et al., "Snapshot ensembles: train 1, get M for free", ICLR
        2017; Loshchilov and Hutter, "SGDR", ICLR 2017.
    """

    def __init__(self, cycles=5, lr_max=None, lr_min=0.0, keep=None):
        super().__init__()
        self.cycles = v.check_positive_int("cycles", cycles)
        self.lr_max = None if lr_max is None else v.check_positive("lr_max", lr_max)
        self.lr_min = v.check_non_negative("lr_min", lr_min)
        self.keep = None if keep is None else v.check_positive_int("keep", keep)
        self.snapshots = []

    def __deepcopy__(self, memo):
        clone = copy.copy(self)
        clone.snapshots = []
        return clone

    def get_config(self):
        return {"cycles": self.cycles, "lr_max": self.lr_max, "lr_min": self.lr_min, "keep": self.keep}

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def on_train_begin(self, logs=None):
        self.snapshots = []
        epochs = (self.params or {}).get("epochs") or self.cycles
        if epochs < self.cycles:
            raise v.invalid("cycles", f"at most the number of epochs ({epochs})", self.cycles)
        self._cycle_length = epochs / self.cycles
        self._lr_max = self.lr_max or float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate))

    def learning_rate_at(self, epoch: int) -> float:
        position = (epoch % self._cycle_length) / self._cycle_length
        return self.lr_min + 0.5 * (self._lr_max - self.lr_min) * (1 + math.cos(math.pi * position))

    def on_epoch_begin(self, epoch, logs=None):
        self._lr = self.learning_rate_at(epoch)
        self.model.optimizer.learning_rate = self._lr

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["learning_rate"] = self._lr
        # End of a cycle: the next epoch starts a new cycle (or training ends).
        if math.floor((epoch + 1) / self._cycle_length + 1e-9) > math.floor(epoch / self._cycle_length + 1e-9):
            self.snapshots.append([np.array(w) for w in self.model.get_weights()])
            if self.keep is not None:
                self.snapshots = self.snapshots[-self.keep:]

    def ensemble(self, task="classification", combine="mean", from_logits=False):
        """The snapshots as a ``kreg.training.Ensemble`` of cloned models."""
        from kreg.training.ensemble import Ensemble

        if not self.snapshots:
            raise InputError("SnapshotEnsemble has no snapshots: train with this callback first.")
        members = []
        for weights in self.snapshots:
            clone = keras.models.clone_model(self.model)
            clone.set_weights(weights)
            members.append(clone)
        return Ensemble(members, task=task, combine=combine, from_logits=from_logits)
