"""SharpnessProbe: how much the training loss rises when the weights are nudged."""

from __future__ import annotations

import copy

import keras
import numpy as np

from kreg import _validation as v
from kreg.training.gradients import data_loss_fn
from kreg.training.gradients import loss_and_gradients
from kreg.training.gradients import loss_value


def _scaled(direction, weight, rho):
    """``direction`` rescaled to norm ``rho * ||weight||`` (0 for a zero weight)."""
    norm = np.linalg.norm(direction)
    if norm == 0:
        return np.zeros_like(weight)
    return direction * (rho * np.linalg.norm(weight) / norm)


def measure_sharpness(model, x, y, rho=0.05, samples=5, seed=0, adversarial=True, loss_fn=None) -> dict:
    """Loss rise under weight perturbations of relative radius ``rho``.

    Each trainable variable ``w_l`` is moved by a perturbation of norm
    ``rho * ||w_l||`` (relative to its own size, so the figure does not depend
    on how the weights are scaled): along a random Gaussian direction for
    ``sharpness`` (the mean rise over ``samples`` directions, drawn from
    ``seed`` so every call uses the same ones), and along the gradient for
    ``sharpness_adversarial`` (the one-step worst case that SAM minimizes).
    The loss is the compiled data loss, in inference mode, without weight
    penalties. The weights are restored afterwards.

    Returns:
        ``{"sharpness": ..., "sharpness_adversarial": ..., "probe_loss": ...}``
        (no adversarial entry when ``adversarial`` is False).
    """
    loss_fn = loss_fn or data_loss_fn(model)
    variables = model.trainable_variables
    original = [keras.ops.convert_to_numpy(w) for w in variables]
    rng = np.random.default_rng(seed)

    def loss_at(deltas):
        for var, w, d in zip(variables, original, deltas):
            var.assign((w + d).astype(w.dtype))
        return loss_value(model, x, y, loss_fn)

    try:
        if adversarial:
            base, grads = loss_and_gradients(model, x, y, loss_fn)
        else:
            base, grads = loss_value(model, x, y, loss_fn), None
        rises = []
        for _ in range(samples):
            deltas = [_scaled(rng.standard_normal(w.shape).astype(w.dtype), w, rho) for w in original]
            rises.append(loss_at(deltas) - base)
        result = {"sharpness": float(np.mean(rises)), "probe_loss": base}
        if adversarial:
            deltas = [np.zeros_like(w) if g is None else _scaled(g, w, rho) for w, g in zip(original, grads)]
            result["sharpness_adversarial"] = loss_at(deltas) - base
    finally:
        for var, w in zip(variables, original):
            var.assign(w)
    return result


@keras.saving.register_keras_serializable(package="kreg")
class SharpnessProbe(keras.callbacks.Callback):
    """Logs ``sharpness`` (and ``sharpness_adversarial``) of the training loss per epoch.

    Flat minima generalize better than sharp ones: a small change of the
    weights barely moves the loss. This callback makes that measurable with
    ``measure_sharpness`` on a fixed data sample at the end of every
    ``every``-th epoch, adding ``sharpness``, ``sharpness_adversarial`` and
    ``probe_loss`` to the logs (for MLflow, EarlyStopping, keras-tuner).

    Args:
        data: ``(x, y)`` arrays, a fixed sample of training data (a few
            hundred examples suffice).
        rho: Relative perturbation radius, a float > 0. Default 0.05.
        samples: Random directions per measurement, a positive integer.
            Default 5.
        every: Measure every this many epochs (and at the last). Default 1.
        adversarial: Also measure along the gradient. Default True.
        seed: Seed of the random directions (the same every epoch). Default 0.

    Example:
        >>> probe = kreg.callbacks.SharpnessProbe((x_train[:512], y_train[:512]))
        >>> history = model.fit(x_train, y_train, epochs=20, callbacks=[probe])
        >>> history.history["sharpness"]

    References:
        Keskar et al., "On large-batch training for deep learning:
        generalization gap and sharp minima", ICLR 2017; Foret et al., "SAM",
        ICLR 2021.
    """

    def __init__(self, data, rho=0.05, samples=5, every=1, adversarial=True, seed=0):
        super().__init__()
        if not isinstance(data, (tuple, list)) or len(data) != 2:
            raise v.invalid("data", "a pair (x, y) of training arrays", type(data).__name__)
        self.data = (np.asarray(data[0]), np.asarray(data[1]))
        self.rho = v.check_positive("rho", rho)
        self.samples = v.check_positive_int("samples", samples)
        self.every = v.check_positive_int("every", every)
        if not isinstance(adversarial, bool):
            raise v.invalid("adversarial", "a boolean", adversarial)
        self.adversarial = adversarial
        self.seed = v.check_non_negative_int("seed", seed)
        self.last = {}

    def __deepcopy__(self, memo):
        clone = copy.copy(self)  # the data sample is shared, read-only
        clone.last = {}
        return clone

    def get_config(self):
        return {"rho": self.rho, "samples": self.samples, "every": self.every,
                "adversarial": self.adversarial, "seed": self.seed}

    def on_train_begin(self, logs=None):
        self.last = {}
        self._epochs = (self.params or {}).get("epochs")

    def on_epoch_end(self, epoch, logs=None):
        last_epoch = self._epochs is not None and epoch + 1 >= self._epochs
        if (epoch + 1) % self.every and not last_epoch:
            return
        self.last = measure_sharpness(self.model, *self.data, rho=self.rho, samples=self.samples,
                                      seed=self.seed, adversarial=self.adversarial)
        if logs is not None:
            logs.update(self.last)
