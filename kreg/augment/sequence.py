"""Augmentation layers for sequences and time series shaped (batch, steps, channels).

These are the shift-and-scale augmentations MNIST-1D's generator is built
from (Greydanus 2020: every example is a template translated and stretched in
time), applied again at training time so the model sees new translations and
stretches every epoch. Keras 3 has no sequence augmentation, so kreg adds it.

Both layers are active only when ``training=True``, return their input
unchanged at strength 0, draw randomness from a ``keras.random.SeedGenerator``
and work inside a model or a ``tf.data`` map.
"""

from __future__ import annotations

import keras
from keras import ops

from kreg import _validation as v


def _as_steps(x):
    """Rank-2 input (batch, steps) is treated as one channel."""
    if len(x.shape) == 2:
        return ops.expand_dims(x, -1), True
    return x, False


def _gather_steps(x, index):
    """Per-example gather along the time axis: x (B, L, C), index (B, L)."""
    index = ops.expand_dims(index, -1)
    index = ops.broadcast_to(index, ops.shape(x))
    return ops.take_along_axis(x, index, axis=1)


@keras.saving.register_keras_serializable(package="kreg")
class RandomShift1D(keras.layers.Layer):
    """Shifts every sequence in time by a random number of steps.

    Args:
        max_shift: Largest shift. A float in [0, 1) is a fraction of the
            sequence length, an integer >= 1 a number of steps. Each example
            gets an integer shift drawn uniformly from
            ``[-max_shift, max_shift]``. Default 0.1.
        mode: ``"circular"`` rolls the sequence around (default);
            ``"constant"`` shifts in ``fill_value``.
        fill_value: Value shifted in when ``mode="constant"``. Default 0.
        seed: Integer seed for the layer's ``SeedGenerator``. Default None.

    Call arguments:
        inputs: Tensor of shape ``(batch, steps)`` or ``(batch, steps, channels)``.
        training: The layer only shifts when True.

    Returns:
        A tensor of the input's shape and dtype.

    Example:
        >>> layer = kreg.augment.RandomShift1D(0.2, seed=0)
        >>> x = np.arange(10, dtype="float32").reshape(1, 10, 1)
        >>> layer(x, training=True).shape
        (1, 10, 1)

    References:
        Greydanus, "Scaling down deep learning" (MNIST-1D), 2020.
    """

    def __init__(self, max_shift=0.1, mode="circular", fill_value=0.0, seed=None, **kwargs):
        super().__init__(**kwargs)
        if isinstance(max_shift, bool) or not isinstance(max_shift, (int, float)):
            raise v.invalid("max_shift", "a fraction in [0, 1) or an integer number of steps", max_shift)
        if isinstance(max_shift, float):
            v.check_rate("max_shift", max_shift)
        else:
            v.check_non_negative_int("max_shift", max_shift)
        self.max_shift = max_shift
        self.mode = v.check_choice("mode", mode, ("circular", "constant"))
        self.fill_value = float(fill_value)
        self.seed = v.check_optional_seed("seed", seed)
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.supports_masking = True

    def _max_steps(self, length):
        if isinstance(self.max_shift, float):
            return int(self.max_shift * length)
        return min(int(self.max_shift), length - 1)

    def call(self, inputs, training=False):
        if not training:
            return inputs
        x, squeezed = _as_steps(inputs)
        length = x.shape[1]
        max_steps = self._max_steps(length)
        if max_steps == 0:
            return inputs
        batch = ops.shape(x)[0]
        shift = keras.random.randint(
            (batch, 1), -max_steps, max_steps + 1, seed=self.seed_generator
        )
        source = ops.expand_dims(ops.arange(length), 0) - shift
        if self.mode == "circular":
            out = _gather_steps(x, ops.mod(source, length))
        else:
            inside = ops.logical_and(source >= 0, source < length)
            out = _gather_steps(x, ops.clip(source, 0, length - 1))
            inside = ops.expand_dims(ops.cast(inside, x.dtype), -1)
            out = out * inside + (1.0 - inside) * ops.cast(self.fill_value, x.dtype)
        return ops.squeeze(out, -1) if squeezed else out

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update(
            max_shift=self.max_shift, mode=self.mode, fill_value=self.fill_value, seed=self.seed
        )
        return config


@keras.saving.register_keras_serializable(package="kreg")
class RandomTimeScale1D(keras.layers.Layer):
    """Stretches or compresses every sequence in time about its centre.

    Each example gets a factor ``s`` drawn uniformly from
    ``[1 - factor, 1 + factor]``; output step ``t`` reads the input at
    ``c + (t - c) / s`` (``c`` the centre) by linear interpolation, so
    ``s > 1`` stretches the signal. Steps that read outside the input get
    ``fill_value``.

    Args:
        factor: Largest relative change of the time scale, in [0, 1).
            Default 0.1.
        fill_value: Value for steps read from outside the input. Default 0.
        seed: Integer seed for the layer's ``SeedGenerator``. Default None.

    Call arguments:
        inputs: Tensor of shape ``(batch, steps)`` or ``(batch, steps, channels)``.
        training: The layer only rescales when True.

    Returns:
        A tensor of the input's shape and dtype.

    Example:
        >>> layer = kreg.augment.RandomTimeScale1D(0.2, seed=0)
        >>> layer(np.ones((2, 40, 1), "float32"), training=True).shape
        (2, 40, 1)

    References:
        Greydanus, "Scaling down deep learning" (MNIST-1D), 2020.
    """

    def __init__(self, factor=0.1, fill_value=0.0, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.factor = v.check_rate("factor", factor)
        self.fill_value = float(fill_value)
        self.seed = v.check_optional_seed("seed", seed)
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, inputs, training=False):
        if not training or self.factor == 0:
            return inputs
        x, squeezed = _as_steps(inputs)
        length = x.shape[1]
        batch = ops.shape(x)[0]
        scale = keras.random.uniform(
            (batch, 1), 1.0 - self.factor, 1.0 + self.factor, seed=self.seed_generator
        )
        centre = (length - 1) / 2.0
        steps = ops.expand_dims(ops.arange(length, dtype="float32"), 0)
        source = centre + (steps - centre) / scale
        left = ops.floor(source)
        weight = ops.expand_dims(ops.cast(source - left, x.dtype), -1)
        left = ops.cast(left, "int32")
        lo = _gather_steps(x, ops.clip(left, 0, length - 1))
        hi = _gather_steps(x, ops.clip(left + 1, 0, length - 1))
        out = lo * (1.0 - weight) + hi * weight
        inside = ops.logical_and(source >= 0.0, source <= length - 1.0)
        inside = ops.expand_dims(ops.cast(inside, x.dtype), -1)
        out = out * inside + (1.0 - inside) * ops.cast(self.fill_value, x.dtype)
        return ops.squeeze(out, -1) if squeezed else out

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update(factor=self.factor, fill_value=self.fill_value, seed=self.seed)
        return config
