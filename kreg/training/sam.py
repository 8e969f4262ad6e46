"""Sharpness-aware minimization (SAM) as a Keras model wrapper, for TensorFlow and JAX."""

from __future__ import annotations

import keras
from keras import ops

from kreg import _validation as v


def sam_perturbation(weights, grads, rho, adaptive=False):
    """SAM's ascent step ``e(w)`` for each weight (``keras.ops``, any backend).

    ``e = rho * g / ||g||`` over all weights together; the adaptive variant
    (ASAM) scales by ``|w|``: ``e = rho * w^2 g / || |w| g ||``.
    """
    pairs = [(w, g) for w, g in zip(weights, grads)]
    scaled = [(ops.abs(w) * g if adaptive else g) if g is not None else None for w, g in pairs]
    norm = ops.sqrt(sum(ops.sum(ops.square(s)) for s in scaled if s is not None)) + 1e-12
    out = []
    for (w, g), s in zip(pairs, scaled):
        if g is None:
            out.append(ops.zeros_like(w))
        else:
            out.append(rho * (ops.abs(w) * s if adaptive else s) / norm)
    return out


@keras.saving.register_keras_serializable(package="kreg")
class SAM(keras.Model):
    """Trains a model with sharpness-aware minimization.

    Each step computes the gradient at ``w``, moves to the worst nearby point
    ``w + e(w)`` within radius ``rho`` (one gradient-ascent step), takes the
    gradient there, and applies it at ``w``. The result prefers flat minima,
    where the loss stays low in a whole neighbourhood. It costs two forward
    and two backward passes per step (about 2x a plain step).

    Wrap any Keras model; compile and fit the wrapper as usual. The wrapper
    predicts with the wrapped model, which holds the trained weights
    (``sam.inner``). Under TensorFlow the second pass runs dropout with a new
    mask and updates batch-norm statistics a second time; under JAX both
    passes share the dropout mask and the statistics of the first pass are
    kept.

    Args:
        model: The Keras model to train.
        rho: Neighbourhood radius, a float > 0. Default 0.05 (Foret et al.);
            0.5 to 2 for ``adaptive``.
        adaptive: ASAM's scale-invariant radius (``|w|``-scaled). Default False.

    Example:
        >>> sam = kreg.training.SAM(build_model(), rho=0.05)
        >>> sam.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
        >>> sam.fit(x, y, epochs=10)
        >>> sam.inner.save("model.keras")

    References:
        Foret et al., "Sharpness-aware minimization for efficiently improving
        generalization", ICLR 2021; Kwon et al., "ASAM", ICML 2021.
    """

    def __init__(self, model, rho=0.05, adaptive=False, **kwargs):
        if not isinstance(model, keras.Model):
            raise v.invalid("model", "a keras.Model", model)
        kwargs.setdefault("name", f"sam_{model.name}")
        super().__init__(**kwargs)
        if keras.backend.backend() not in ("tensorflow", "jax"):
            raise NotImplementedError(f"SAM supports the tensorflow and jax backends, not {keras.backend.backend()!r}.")
        self.inner = model
        self.rho = v.check_positive("rho", rho)
        if not isinstance(adaptive, bool):
            raise v.invalid("adaptive", "a boolean", adaptive)
        self.adaptive = adaptive

    def call(self, inputs, training=None):
        return self.inner(inputs, training=training)

    def build(self, input_shape=None):
        self.built = True

    # ------------------------------------------------------------- train step
    def train_step(self, *args):
        if keras.backend.backend() == "jax":
            return self._jax_train_step(*args)
        return self._tf_train_step(*args)

    def _tf_train_step(self, data):
        import tensorflow as tf

        x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
        weights = self.trainable_variables
        with tf.GradientTape() as tape:
            y_pred = self(x, training=True)
            loss = self.compute_loss(x=x, y=y, y_pred=y_pred, sample_weight=sample_weight, training=True)
        self._loss_tracker.update_state(loss, sample_weight=tf.shape(tf.nest.flatten(x)[0])[0])
        grads = tape.gradient(loss, weights)
        eps = sam_perturbation(weights, grads, self.rho, self.adaptive)
        for w, e in zip(weights, eps):
            w.assign_add(e)
        with tf.GradientTape() as tape:
            y_adv = self(x, training=True)
            loss_adv = self.compute_loss(x=x, y=y, y_pred=y_adv, sample_weight=sample_weight, training=True)
            loss_adv = self.optimizer.scale_loss(loss_adv)
        grads_adv = tape.gradient(loss_adv, weights)
        for w, e in zip(weights, eps):
            w.assign_sub(e)
        self.optimizer.apply_gradients(zip(grads_adv, weights))
        return self.compute_metrics(x, y, y_pred, sample_weight=sample_weight)

    def _jax_train_step(self, state, data):
        import jax

        trainable, non_trainable, optimizer_vars, metrics_vars = state
        x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
        grad_fn = jax.value_and_grad(self.compute_loss_and_updates, has_aux=True)
        (_, aux), grads = grad_fn(trainable, non_trainable, metrics_vars, x, y, sample_weight,
                                  training=True, optimizer_variables=optimizer_vars)
        unscaled_loss, y_pred, new_non_trainable, new_metrics_vars = aux
        eps = sam_perturbation(trainable, grads, self.rho, self.adaptive)
        perturbed = [w + e for w, e in zip(trainable, eps)]
        _, grads_adv = grad_fn(perturbed, non_trainable, metrics_vars, x, y, sample_weight,
                               training=True, optimizer_variables=optimizer_vars)
        trainable, optimizer_vars = self.optimizer.stateless_apply(optimizer_vars, grads_adv, trainable)
        logs, new_metrics_vars = self._update_metrics_variables(
            new_metrics_vars, unscaled_loss, x, y, y_pred, sample_weight)
        return logs, (trainable, new_non_trainable, optimizer_vars, new_metrics_vars)

    # ------------------------------------------------------------ serialization
    def get_config(self):
        return {"model": keras.saving.serialize_keras_object(self.inner), "rho": self.rho,
                "adaptive": self.adaptive, "name": self.name}

    @classmethod
    def from_config(cls, config, custom_objects=None):
        config = dict(config)
        model = keras.saving.deserialize_keras_object(config.pop("model"), custom_objects=custom_objects)
        return cls(model, **config)
