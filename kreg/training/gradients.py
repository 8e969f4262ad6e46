"""Loss and gradients of a model at its current weights, for each backend.

Callbacks that probe the loss surface (``SharpnessProbe``) need gradients
outside ``fit``; Keras has no backend-agnostic gradient op, so this is the one
place that branches on the backend.
"""

from __future__ import annotations

import keras
from keras import ops
from kreg.errors import InputError


def data_loss_fn(model):
    """The compiled data loss of ``model`` (without weight penalties), as ``fn(y, y_pred)``."""
    loss = getattr(model, "loss", None)
    if loss is None:
        raise InputError("The model has no loss: compile it before probing its loss surface.")
    if isinstance(loss, (list, tuple, dict)):
        raise InputError(f"Probing needs a single-output model with one loss. Received: loss={loss!r}")
    return keras.losses.get(loss) if isinstance(loss, str) else loss


def loss_value(model, x, y, loss_fn) -> float:
    """Mean data loss in inference mode (a loss function's per-example values are averaged)."""
    return float(ops.convert_to_numpy(ops.mean(loss_fn(y, model(x, training=False)))))


def loss_and_gradients(model, x, y, loss_fn):
    """``(loss, [gradient per trainable variable])`` in inference mode, as NumPy."""
    backend = keras.backend.backend()
    variables = model.trainable_variables
    if backend == "tensorflow":
        import tensorflow as tf

        with tf.GradientTape() as tape:
            loss = ops.mean(loss_fn(y, model(x, training=False)))
        grads = tape.gradient(loss, variables)
    elif backend == "jax":
        import jax

        non_trainable = [v.value for v in model.non_trainable_variables]

        def f(trainable):
            y_pred, _ = model.stateless_call(trainable, non_trainable, x, training=False)
            return ops.mean(loss_fn(y, y_pred))

        loss, grads = jax.value_and_grad(f)([v.value for v in variables])
    elif backend == "torch":
        import torch

        model.zero_grad()
        loss = ops.mean(loss_fn(y, model(x, training=False)))
        loss.backward()
        grads = [v.value.grad for v in variables]
        loss = loss.detach()
    else:
        raise NotImplementedError(f"Gradients are not implemented for the {backend!r} backend.")
    to_np = ops.convert_to_numpy
    return float(to_np(loss)), [None if g is None else to_np(g) for g in grads]
