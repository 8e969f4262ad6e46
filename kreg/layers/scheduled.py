"""Keras' dropout and noise layers with their strength in a variable.

These subclass Keras' own ``Dropout``, ``SpatialDropout1D/2D`` and
``GaussianNoise`` and change one thing: ``rate`` (or ``stddev``) is held in a
non-trainable scalar variable, so ``kreg.callbacks.RegularizationSchedule``
(or any code) can change it between epochs and the compiled train step uses
the new value without a retrace. With a fixed strength, use Keras' layers.
"""

from __future__ import annotations

import keras
from keras import ops

from kreg import _validation as v
from kreg._variables import variable_property
from kreg.layers import drop
from kreg.layers._rate import ScheduledRateMixin


def _add_seed_generator(layer, seed):
    """Keras creates the generator only for a strength > 0 at construction,
    then locks the layer's state; a schedule may raise a strength from 0."""
    if hasattr(layer, "seed_generator"):
        return
    locked = layer._tracker.locked
    layer._tracker.unlock()
    layer.seed_generator = keras.random.SeedGenerator(seed)
    if locked:
        layer._tracker.lock()


class _ScheduledDropoutBase(ScheduledRateMixin):
    """Dropout's ``call`` without its Python ``rate > 0`` test (rate is a tensor)."""

    def _noise_shape(self, inputs):
        return self.noise_shape

    def call(self, inputs, training=False):
        if not training:
            return inputs
        return drop.dropout(inputs, self._rate, self._noise_shape(inputs), self.seed_generator)


@keras.saving.register_keras_serializable(package="kreg")
class ScheduledDropout(_ScheduledDropoutBase, keras.layers.Dropout):
    """``keras.layers.Dropout`` whose ``rate`` a schedule can change mid-training.

    Args:
        rate: Fraction of units to drop, in [0, 1). Assign ``layer.rate``
            between epochs (``RegularizationSchedule`` does).
        noise_shape, seed: As in ``keras.layers.Dropout``.

    Call arguments:
        inputs: Any tensor. training: drops only when True.

    Example:
        >>> layer = kreg.layers.ScheduledDropout(0.3, seed=0)
        >>> layer.rate = 0.1  # the next train step drops 10%

    References:
        Srivastava et al., "Dropout: a simple way to prevent neural networks
        from overfitting", JMLR 2014.
    """

    def __init__(self, rate, noise_shape=None, seed=None, **kwargs):
        v.check_rate("rate", rate)  # before Keras compares it (a TypeError for a string)
        super().__init__(rate, noise_shape=noise_shape, seed=seed, **kwargs)
        _add_seed_generator(self, seed)


@keras.saving.register_keras_serializable(package="kreg")
class ScheduledSpatialDropout1D(_ScheduledDropoutBase, keras.layers.SpatialDropout1D):
    """``keras.layers.SpatialDropout1D`` with a schedulable ``rate`` (drops whole channels).

    Example:
        >>> layer = kreg.layers.ScheduledSpatialDropout1D(0.1, seed=0)
    """

    def __init__(self, rate, seed=None, **kwargs):
        v.check_rate("rate", rate)  # before Keras compares it (a TypeError for a string)
        super().__init__(rate, seed=seed, **kwargs)
        _add_seed_generator(self, seed)

    def _noise_shape(self, inputs):
        return self._get_noise_shape(inputs)


@keras.saving.register_keras_serializable(package="kreg")
class ScheduledSpatialDropout2D(_ScheduledDropoutBase, keras.layers.SpatialDropout2D):
    """``keras.layers.SpatialDropout2D`` with a schedulable ``rate`` (drops whole feature maps).

    Example:
        >>> layer = kreg.layers.ScheduledSpatialDropout2D(0.1, seed=0)
    """

    def __init__(self, rate, data_format=None, seed=None, **kwargs):
        v.check_rate("rate", rate)  # before Keras compares it (a TypeError for a string)
        super().__init__(rate, data_format=data_format, seed=seed, **kwargs)
        _add_seed_generator(self, seed)

    def _noise_shape(self, inputs):
        return self._get_noise_shape(inputs)


@keras.saving.register_keras_serializable(package="kreg")
class ScheduledGaussianNoise(keras.layers.GaussianNoise):
    """``keras.layers.GaussianNoise`` whose ``stddev`` a schedule can change mid-training.

    Args:
        stddev: Standard deviation of the additive noise, a float >= 0.
        seed: As in ``keras.layers.GaussianNoise``.

    Example:
        >>> layer = kreg.layers.ScheduledGaussianNoise(0.2, seed=0)
        >>> layer.stddev = 0.05

    References:
        Bishop, "Training with noise is equivalent to Tikhonov
        regularization", Neural Computation 1995.
    """

    schedule_kind = "noise"
    schedule_attr = "stddev"
    stddev = variable_property("stddev", v.check_non_negative)

    def __init__(self, stddev, seed=None, **kwargs):
        v.check_non_negative("stddev", stddev)  # before Keras compares it
        super().__init__(stddev, seed=seed, **kwargs)
        _add_seed_generator(self, seed)

    def call(self, inputs, training=False):
        if not training:
            return inputs
        noise = keras.random.normal(ops.shape(inputs), dtype=self.compute_dtype, seed=self.seed_generator)
        return inputs + noise * ops.cast(self._stddev, self.compute_dtype)
