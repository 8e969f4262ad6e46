"""Augmentation layers for sequences and time series shaped (batch, steps, channels).

Shift and time scale are the augmentations MNIST-1D's generator is built
from (Greydanus 2020: every example is a template translated and stretched in
time), applied again at training time so the model sees new translations and
stretches every epoch; time warping is their smooth, non-uniform cousin
(Um et al. 2017). Keras 3 has no sequence augmentation, so kreg adds it.

Rank-2 inputs ``(batch, steps)`` are treated as one channel. All layers are
active only in training, return their input unchanged at strength 0, are
seeded, and work inside a model or a ``tf.data`` map under any backend.
"""

from __future__ import annotations

import keras

from kreg import _validation as v
from kreg.augment._base import Augmentation, as_steps


@keras.saving.register_keras_serializable(package="kreg")
class RandomShift1D(Augmentation):
    """Shifts every sequence in time by a random number of steps.

    Args:
        max_shift: Largest shift. A float in [0, 1) is a fraction of the
            sequence length, an integer >= 1 a number of steps. Each example
            gets an integer shift drawn uniformly from
            ``[-max_shift, max_shift]``. Default 0.1.
        mode: ``"circular"`` rolls the sequence around (default);
            ``"constant"`` shifts in ``fill_value`` (padding).
        fill_value: Value shifted in when ``mode="constant"``. Default 0.
        seed: Integer seed. Default None.

    Call arguments:
        inputs: Tensor of shape ``(batch, steps)`` or ``(batch, steps, channels)``.
        training: The layer only shifts when True (the default).

    Returns:
        A tensor of the input's shape and dtype.

    Example:
        >>> layer = kreg.augment.RandomShift1D(0.2, seed=0)
        >>> x = np.arange(10, dtype="float32").reshape(1, 10, 1)
        >>> layer(x).shape
        (1, 10, 1)

    References:
        Greydanus, "Scaling down deep learning" (MNIST-1D), 2020.
    """

    def __init__(self, max_shift=0.1, mode="circular", fill_value=0.0, seed=None, **kwargs):
        super().__init__(seed=seed, **kwargs)
        if isinstance(max_shift, bool) or not isinstance(max_shift, (int, float)):
            raise v.invalid("max_shift", "a fraction in [0, 1) or an integer number of steps", max_shift)
        if isinstance(max_shift, float):
            v.check_rate("max_shift", max_shift)
        else:
            v.check_non_negative_int("max_shift", max_shift)
        self.max_shift = max_shift
        self.mode = v.check_choice("mode", mode, ("circular", "constant"))
        self.fill_value = float(fill_value)

    def _max_steps(self, length):
        if isinstance(self.max_shift, float):
            return int(self.max_shift * length)
        return min(int(self.max_shift), length - 1)

    def augment(self, inputs):
        np = self.np
        x, squeezed = as_steps(np, inputs)
        length = x.shape[1]
        max_steps = self._max_steps(length)
        if max_steps == 0:
            return inputs
        shift = self.backend.random.randint(
            (self.batch_size(x), 1), -max_steps, max_steps + 1, seed=self.rng()
        )
        source = np.expand_dims(np.arange(length, dtype="int32"), 0) - shift
        if self.mode == "circular":
            out = self.gather_steps(x, np.mod(source, length))
        else:
            out = self.interpolate_steps(x, self.backend.cast(source, "float32"), self.fill_value)
        return np.squeeze(out, -1) if squeezed else out

    def get_config(self):
        config = super().get_config()
        config.update(max_shift=self.max_shift, mode=self.mode, fill_value=self.fill_value)
        return config


@keras.saving.register_keras_serializable(package="kreg")
class RandomTimeScale1D(Augmentation):
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
        seed: Integer seed. Default None.

    Call arguments:
        inputs: Tensor of shape ``(batch, steps)`` or ``(batch, steps, channels)``.
        training: The layer only rescales when True (the default).

    Returns:
        A tensor of the input's shape and dtype.

    Example:
        >>> layer = kreg.augment.RandomTimeScale1D(0.2, seed=0)
        >>> layer(np.ones((2, 40, 1), "float32")).shape
        (2, 40, 1)

    References:
        Greydanus, "Scaling down deep learning" (MNIST-1D), 2020.
    """

    def __init__(self, factor=0.1, fill_value=0.0, seed=None, **kwargs):
        super().__init__(seed=seed, **kwargs)
        self.factor = v.check_rate("factor", factor)
        self.fill_value = float(fill_value)

    def is_active(self):
        return self.factor > 0

    def augment(self, inputs):
        np = self.np
        x, squeezed = as_steps(np, inputs)
        length = x.shape[1]
        scale = self.backend.random.uniform(
            (self.batch_size(x), 1), 1.0 - self.factor, 1.0 + self.factor, seed=self.rng()
        )
        centre = (length - 1) / 2.0
        steps = np.expand_dims(np.arange(length, dtype="float32"), 0)
        out = self.interpolate_steps(x, centre + (steps - centre) / scale, self.fill_value)
        return np.squeeze(out, -1) if squeezed else out

    def get_config(self):
        config = super().get_config()
        config.update(factor=self.factor, fill_value=self.fill_value)
        return config


@keras.saving.register_keras_serializable(package="kreg")
class RandomTimeWarp(Augmentation):
    """Warps time smoothly: some stretches of a sequence play faster, others slower.

    Each example gets ``knots`` random speeds ``~ N(1, sigma)`` (clipped to
    at least 0.1), spread evenly over the sequence and interpolated
    linearly; the running sum of the speed is the warped time, rescaled so
    the first and last steps stay in place. Output step ``t`` reads the input
    at the warped time by linear interpolation, so the length is kept and
    the local tempo changes by the speed.

    Args:
        sigma: Standard deviation of the speeds, >= 0. Default 0.2.
        knots: Number of speed knots, an integer >= 2. Default 4.
        seed: Integer seed. Default None.

    Call arguments:
        inputs: Tensor of shape ``(batch, steps)`` or ``(batch, steps, channels)``.
        training: The layer only warps when True (the default).

    Returns:
        A tensor of the input's shape and dtype.

    Example:
        >>> warp = kreg.augment.RandomTimeWarp(0.2, seed=0)
        >>> warp(np.ones((2, 50, 3), "float32")).shape
        (2, 50, 3)

    References:
        Um et al., "Data augmentation of wearable sensor data for Parkinson's
        disease monitoring using convolutional neural networks", ICMI 2017.
    """

    def __init__(self, sigma=0.2, knots=4, seed=None, **kwargs):
        super().__init__(seed=seed, **kwargs)
        self.sigma = v.check_non_negative("sigma", sigma)
        if isinstance(knots, bool) or not isinstance(knots, int) or knots < 2:
            raise v.invalid("knots", "an integer >= 2", knots)
        self.knots = knots

    def is_active(self):
        return self.sigma > 0

    def augment(self, inputs):
        np = self.np
        x, squeezed = as_steps(np, inputs)
        length = x.shape[1]
        speeds = self.backend.random.normal(
            (self.batch_size(x), self.knots), 1.0, self.sigma, seed=self.rng()
        )
        speeds = np.maximum(speeds, 0.1)
        # The speed at every step: knots spread evenly, linear in between.
        at = np.arange(length, dtype="float32") * ((self.knots - 1) / max(length - 1, 1))
        left = np.clip(self.backend.cast(np.floor(at), "int32"), 0, self.knots - 2)
        frac = np.expand_dims(at - self.backend.cast(left, "float32"), 0)
        lo = np.take(speeds, left, axis=1)
        hi = np.take(speeds, left + 1, axis=1)
        speed = lo * (1.0 - frac) + hi * frac
        # Warped time: cumulative speed from 0, rescaled to end at length - 1.
        warped = np.cumsum(speed, axis=1) - speed[:, :1]
        warped = warped * ((length - 1) / np.maximum(warped[:, -1:], 1e-6))
        # Rounding can put the last step a hair past the end: it must read the last sample.
        out = self.interpolate_steps(x, np.clip(warped, 0.0, length - 1.0))
        return np.squeeze(out, -1) if squeezed else out

    def get_config(self):
        config = super().get_config()
        config.update(sigma=self.sigma, knots=self.knots)
        return config
