"""The base of kreg's augmentation layers: training only, seeded, any backend, any pipeline.

kreg's augmentations derive from Keras' own ``DataLayer`` (the base of
Keras' image augmentation layers): inside a model they run on the model's
backend; inside a ``tf.data`` map they switch to TensorFlow ops, so the same
layer works in an input pipeline under JAX or PyTorch too. Their math is
written against ``self.backend`` (``self.np`` is its NumPy namespace), which
is what makes that switch possible.
"""

from __future__ import annotations

import keras
from keras.src.layers.preprocessing.data_layer import DataLayer

from kreg import _validation as v


class Augmentation(DataLayer):
    """A training-only, seeded augmentation layer of unchanged shape.

    Subclasses implement ``augment(inputs)`` (called only in training, and
    only when ``is_active()``) with ``self.np`` / ``self.backend`` ops and
    draw randomness with ``self.rng()``.

    Like Keras' augmentation layers, ``training`` defaults to True, so
    ``dataset.map(layer)`` augments; inside a model, Keras passes
    ``training=False`` at inference and the layer returns its input.
    """

    def __init__(self, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.seed = v.check_optional_seed("seed", seed)
        self.generator = keras.random.SeedGenerator(seed)
        self.supports_masking = True

    @property
    def np(self):
        """The NumPy-like op namespace of the backend this call runs on."""
        return self.backend.numpy

    def rng(self):
        """The seed generator for the backend this call runs on."""
        return self._get_seed_generator(self.backend._backend)

    def is_active(self) -> bool:
        """False when the strength is zero: the layer is then the identity."""
        return True

    def call(self, inputs, training=True):
        if not training or not self.is_active():
            return inputs
        return self.augment(inputs)

    def augment(self, inputs):  # pragma: no cover - every subclass defines it
        raise NotImplementedError

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config["seed"] = self.seed
        return config

    # Helpers shared by the sequence and audio layers.

    def batch_size(self, x):
        return self.backend.shape(x)[0]

    def gather_steps(self, x, index):
        """Per-example gather along axis 1: ``x`` (B, L, C), ``index`` (B, L') -> (B, L', C)."""
        np = self.np
        index = np.expand_dims(index, -1)
        shape = self.backend.shape(index)[:2] + (self.backend.shape(x)[2],)
        return np.take_along_axis(x, np.broadcast_to(index, shape), axis=1)

    def interpolate_steps(self, x, source, fill_value=0.0):
        """Reads ``x`` (B, L, C) at fractional steps ``source`` (B, L') by linear interpolation.

        Steps read from outside ``[0, L - 1]`` get ``fill_value``.
        """
        np, length = self.np, x.shape[1]
        left = np.floor(source)
        weight = np.expand_dims(self.backend.cast(source - left, x.dtype), -1)
        left = self.backend.cast(left, "int32")
        lo = self.gather_steps(x, np.clip(left, 0, length - 1))
        hi = self.gather_steps(x, np.clip(left + 1, 0, length - 1))
        out = lo * (1.0 - weight) + hi * weight
        inside = np.logical_and(source >= 0.0, source <= length - 1.0)
        inside = np.expand_dims(self.backend.cast(inside, x.dtype), -1)
        return out * inside + (1.0 - inside) * self.backend.cast(fill_value, x.dtype)


def as_steps(np, x):
    """Rank-2 input (batch, steps) is treated as one channel; returns (x3, squeezed)."""
    if len(x.shape) == 2:
        return np.expand_dims(x, -1), True
    return x, False
