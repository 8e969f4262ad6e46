"""Value augmentations for tabular rows and time series: jitter, scaling, feature dropout, swap noise.

They act on the values, not the layout, so they take any shape ``(batch,
...)``: tabular rows ``(batch, features)`` and sequences ``(batch, steps,
channels)`` alike; "feature" means the last axis. Active only in training,
identity at strength 0, seeded, usable inside a model or a ``tf.data`` map
under any backend.
"""

from __future__ import annotations

import keras

from kreg import _validation as v
from kreg.augment._base import Augmentation


def _example_axes(x):
    return tuple(range(1, len(x.shape)))


@keras.saving.register_keras_serializable(package="kreg")
class RandomJitter(Augmentation):
    """Adds Gaussian noise to every value (jitter).

    The same idea as ``keras.layers.GaussianNoise``; this layer also runs in
    a ``tf.data`` map under any backend and can scale the noise to each
    example's own spread (``relative=True``), which is what time-series
    augmentation usually means by jitter.

    Args:
        stddev: Standard deviation of the noise, >= 0; with ``relative`` a
            fraction of each example's standard deviation. Default 0.03.
        relative: Scale the noise by each example's standard deviation over
            its values. Default False.
        seed: Integer seed. Default None.

    Call arguments:
        inputs: A float tensor ``(batch, ...)``.
        training: The layer only adds noise when True (the default).

    Returns:
        A tensor of the input's shape and dtype.

    Example:
        >>> jitter = kreg.augment.RandomJitter(0.05, relative=True, seed=0)
        >>> jitter(np.ones((4, 100, 2), "float32")).shape
        (4, 100, 2)

    References:
        Um et al., "Data augmentation of wearable sensor data for Parkinson's
        disease monitoring using convolutional neural networks", ICMI 2017.
    """

    def __init__(self, stddev=0.03, relative=False, seed=None, **kwargs):
        super().__init__(seed=seed, **kwargs)
        self.stddev = v.check_non_negative("stddev", stddev)
        self.relative = bool(relative)

    def is_active(self):
        return self.stddev > 0

    def augment(self, inputs):
        noise = self.backend.random.normal(self.backend.shape(inputs), 0.0, self.stddev, seed=self.rng())
        noise = self.backend.cast(noise, inputs.dtype)
        if self.relative:
            noise = noise * self.np.std(inputs, axis=_example_axes(inputs), keepdims=True)
        return inputs + noise

    def get_config(self):
        config = super().get_config()
        config.update(stddev=self.stddev, relative=self.relative)
        return config


@keras.saving.register_keras_serializable(package="kreg")
class RandomMagnitudeScale(Augmentation):
    """Multiplies each example (or each of its channels) by a random factor ``~ N(1, stddev)``.

    Args:
        stddev: Standard deviation of the factor, >= 0. Default 0.1.
        per_channel: One factor per example and last-axis channel instead of
            one per example. Default False.
        seed: Integer seed. Default None.

    Call arguments:
        inputs: A float tensor ``(batch, ...)``.
        training: The layer only scales when True (the default).

    Returns:
        A tensor of the input's shape and dtype.

    Example:
        >>> scale = kreg.augment.RandomMagnitudeScale(0.1, seed=0)
        >>> scale(np.ones((4, 50, 1), "float32")).shape
        (4, 50, 1)

    References:
        Um et al., ICMI 2017 (magnitude scaling of sensor signals).
    """

    def __init__(self, stddev=0.1, per_channel=False, seed=None, **kwargs):
        super().__init__(seed=seed, **kwargs)
        self.stddev = v.check_non_negative("stddev", stddev)
        self.per_channel = bool(per_channel)

    def is_active(self):
        return self.stddev > 0

    def augment(self, inputs):
        rank = len(inputs.shape)
        channels = inputs.shape[-1] if self.per_channel else 1
        shape = (self.batch_size(inputs),) + (1,) * (rank - 2) + (channels,)
        factor = self.backend.random.normal(shape, 1.0, self.stddev, seed=self.rng())
        return inputs * self.backend.cast(factor, inputs.dtype)

    def get_config(self):
        config = super().get_config()
        config.update(stddev=self.stddev, per_channel=self.per_channel)
        return config


@keras.saving.register_keras_serializable(package="kreg")
class RandomFeatureDropout(Augmentation):
    """Replaces whole features (last-axis entries) of each example by ``fill_value``.

    Unlike ``keras.layers.Dropout`` the kept values are not rescaled: this
    is an augmentation (a row with missing features), not a noise on the
    activations. On sequences ``(batch, steps, channels)`` a dropped feature
    is a whole channel.

    Args:
        rate: Probability of dropping each feature, in [0, 1). Default 0.1.
        fill_value: Value of a dropped feature (0 is the mean of
            standardized data). Default 0.
        seed: Integer seed. Default None.

    Call arguments:
        inputs: A float tensor ``(batch, ...)``.
        training: The layer only drops when True (the default).

    Returns:
        A tensor of the input's shape and dtype.

    Example:
        >>> drop = kreg.augment.RandomFeatureDropout(0.2, seed=0)
        >>> drop(np.ones((8, 30), "float32")).shape
        (8, 30)

    References:
        Bahri et al., "SCARF: self-supervised contrastive learning using
        random feature corruption", ICLR 2022.
    """

    def __init__(self, rate=0.1, fill_value=0.0, seed=None, **kwargs):
        super().__init__(seed=seed, **kwargs)
        self.rate = v.check_rate("rate", rate)
        self.fill_value = float(fill_value)

    def is_active(self):
        return self.rate > 0

    def augment(self, inputs):
        rank = len(inputs.shape)
        shape = (self.batch_size(inputs),) + (1,) * (rank - 2) + (inputs.shape[-1],)
        keep = self.backend.random.uniform(shape, seed=self.rng()) >= self.rate
        fill = self.backend.cast(self.fill_value, inputs.dtype)
        return self.np.where(keep, inputs, fill)

    def get_config(self):
        config = super().get_config()
        config.update(rate=self.rate, fill_value=self.fill_value)
        return config


@keras.saving.register_keras_serializable(package="kreg")
class SwapNoise(Augmentation):
    """Replaces values by the same feature's value in another row of the batch.

    Each value is swapped with probability ``rate`` for the value of the
    same feature in a row drawn at random from the batch, so every feature
    keeps its marginal distribution while rows are corrupted (the swap
    noise of Porto Seguro's winning denoising autoencoder).

    Args:
        rate: Probability of swapping each value, in [0, 1). Default 0.15.
        seed: Integer seed. Default None.

    Call arguments:
        inputs: A tensor ``(batch, ...)``; batches of one are returned as
            they are.
        training: The layer only swaps when True (the default).

    Returns:
        A tensor of the input's shape and dtype.

    Example:
        >>> swap = kreg.augment.SwapNoise(0.15, seed=0)
        >>> swap(np.random.normal(size=(32, 10)).astype("float32")).shape
        (32, 10)

    References:
        Jahrer, "1st place with representation learning", Porto Seguro's safe
        driver prediction, Kaggle 2018.
    """

    def __init__(self, rate=0.15, seed=None, **kwargs):
        super().__init__(seed=seed, **kwargs)
        self.rate = v.check_rate("rate", rate)

    def is_active(self):
        return self.rate > 0

    def augment(self, inputs):
        np, rng = self.np, self.rng()
        shape = self.backend.shape(inputs)
        rows = self.backend.random.randint(shape, 0, shape[0], seed=rng)
        donors = np.take_along_axis(inputs, rows, axis=0)
        swap = self.backend.random.uniform(shape, seed=rng) < self.rate
        return np.where(swap, donors, inputs)

    def get_config(self):
        config = super().get_config()
        config["rate"] = self.rate
        return config
