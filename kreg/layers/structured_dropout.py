"""Structured dropout layers: DropBlock, StochasticDepth (DropPath), DropConnect."""

from __future__ import annotations

import keras
from keras import ops

from kreg import _validation as v
from kreg.layers import drop
from kreg.layers._rate import ScheduledRateMixin


class _DropBlock(ScheduledRateMixin, keras.layers.Layer):
    rank = 2

    def __init__(self, rate=0.1, block_size=3, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.block_size = v.check_positive_int("block_size", block_size)
        self.seed = v.check_optional_seed("seed", seed)
        self.seed_generator = keras.random.SeedGenerator(seed)
        self._init_rate(rate)

    def build(self, input_shape):
        if len(input_shape) != self.rank + 2:
            raise v.invalid("input shape", f"rank {self.rank + 2} (batch, spatial..., channels)", tuple(input_shape))

    def call(self, inputs, training=False):
        if not training:
            return inputs
        return drop.drop_block(inputs, self._rate, self.block_size, self.seed_generator)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update(rate=self.rate, block_size=self.block_size, seed=self.seed)
        return config


@keras.saving.register_keras_serializable(package="kreg")
class DropBlock1D(_DropBlock):
    """DropBlock for ``(batch, steps, channels)``: drops runs of ``block_size`` steps.

    Args:
        rate: Fraction of activations to drop, in [0, 1). Default 0.1.
            Schedulable: assign ``layer.rate`` between epochs.
        block_size: Length of a dropped run. Default 3.
        seed: Integer seed. Default None.

    Call arguments:
        inputs: Channels-last tensor. training: drops only when True.

    Example:
        >>> x = kreg.layers.DropBlock1D(0.1, block_size=5, seed=0)(x, training=True)

    References:
        Ghiasi, Lin and Le, "DropBlock: A regularization method for
        convolutional networks", NeurIPS 2018.
    """

    rank = 1


@keras.saving.register_keras_serializable(package="kreg")
class DropBlock2D(_DropBlock):
    """DropBlock for ``(batch, height, width, channels)``: drops square regions.

    Neighbouring activations of a feature map are correlated, so dropping
    single ones (Dropout) hardly removes information; DropBlock drops
    ``block_size x block_size`` regions, per channel, and rescales the rest so
    the expectation is kept.

    Args:
        rate: Fraction of activations to drop, in [0, 1). Default 0.1.
            Schedulable: assign ``layer.rate`` between epochs.
        block_size: Side of a dropped square. Default 3 (7 in the paper's
            ResNet-50 on 224x224 images).
        seed: Integer seed. Default None.

    Example:
        >>> x = kreg.layers.DropBlock2D(0.1, block_size=3, seed=0)(x, training=True)

    References:
        Ghiasi, Lin and Le, "DropBlock: A regularization method for
        convolutional networks", NeurIPS 2018.
    """

    rank = 2


@keras.saving.register_keras_serializable(package="kreg")
class StochasticDepth(ScheduledRateMixin, keras.layers.Layer):
    """Drops a residual branch for whole examples (DropPath).

    Called on ``[shortcut, residual]`` it returns ``shortcut + residual``
    with the residual dropped per example with probability ``rate`` (and
    scaled by ``1 / (1 - rate)`` when kept); called on one tensor it returns
    that branch dropped the same way (timm's ``DropPath``).

    Args:
        rate: Probability of dropping the branch, in [0, 1). Default 0.1.
            Schedulable. Use ``drop_path_rates`` for the linear depth rule.
        seed: Integer seed. Default None.

    Example:
        >>> y = kreg.layers.StochasticDepth(0.1)([x, block(x)])

    References:
        Huang et al., "Deep networks with stochastic depth", ECCV 2016.
    """

    def __init__(self, rate=0.1, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.seed = v.check_optional_seed("seed", seed)
        self.seed_generator = keras.random.SeedGenerator(seed)
        self._init_rate(rate)

    def call(self, inputs, training=False):
        pair = isinstance(inputs, (list, tuple))
        if pair and len(inputs) != 2:
            raise v.invalid("inputs", "[shortcut, residual] or one tensor", f"{len(inputs)} tensors")
        residual = inputs[1] if pair else inputs
        if training:
            residual = drop.drop_path(residual, self._rate, self.seed_generator)
        return inputs[0] + residual if pair else residual

    def compute_output_shape(self, input_shape):
        return input_shape[1] if isinstance(input_shape, (list, tuple)) and isinstance(input_shape[0], (list, tuple)) else input_shape

    def get_config(self):
        config = super().get_config()
        config.update(rate=self.rate, seed=self.seed)
        return config


def drop_path_rates(depth, max_rate):
    """The linear rule of stochastic depth: block ``i`` of ``depth`` drops with
    ``max_rate * i / (depth - 1)``, 0 for the first block, ``max_rate`` for the last.

    Example:
        >>> drop_path_rates(5, 0.2)
        [0.0, 0.05, 0.1, 0.15, 0.2]
    """
    depth = v.check_positive_int("depth", depth)
    max_rate = v.check_rate("max_rate", max_rate)
    if depth == 1:
        return [max_rate]
    return [max_rate * i / (depth - 1) for i in range(depth)]


@keras.saving.register_keras_serializable(package="kreg")
class DropConnect(ScheduledRateMixin, keras.layers.Layer):
    """A dense layer whose weights (not activations) are dropped in training.

    Each kernel entry is zeroed with probability ``rate`` and the rest scaled
    by ``1 / (1 - rate)``; one mask is drawn per batch (a per-example mask,
    as in the paper's analysis, costs a kernel copy per example). The bias is
    not dropped. At inference the full kernel is used.

    Args:
        units: Output size, a positive integer.
        rate: Probability of dropping a weight, in [0, 1). Default 0.5.
            Schedulable.
        activation: As in ``keras.layers.Dense``; so are ``use_bias``,
            ``kernel_initializer``, ``bias_initializer``, ``kernel_regularizer``,
            ``bias_regularizer``, ``kernel_constraint`` and ``bias_constraint``.
        seed: Integer seed. Default None.

    Example:
        >>> layer = kreg.layers.DropConnect(64, rate=0.3, activation="relu")

    References:
        Wan et al., "Regularization of neural networks using DropConnect",
        ICML 2013.
    """

    def __init__(self, units, rate=0.5, activation=None, use_bias=True,
                 kernel_initializer="glorot_uniform", bias_initializer="zeros",
                 kernel_regularizer=None, bias_regularizer=None,
                 kernel_constraint=None, bias_constraint=None, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.units = v.check_positive_int("units", units)
        self.activation = keras.activations.get(activation)
        self.use_bias = bool(use_bias)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.bias_initializer = keras.initializers.get(bias_initializer)
        self.kernel_regularizer = keras.regularizers.get(kernel_regularizer)
        self.bias_regularizer = keras.regularizers.get(bias_regularizer)
        self.kernel_constraint = keras.constraints.get(kernel_constraint)
        self.bias_constraint = keras.constraints.get(bias_constraint)
        self.seed = v.check_optional_seed("seed", seed)
        self.seed_generator = keras.random.SeedGenerator(seed)
        self._init_rate(rate)

    def build(self, input_shape):
        self.kernel = self.add_weight(
            shape=(input_shape[-1], self.units), initializer=self.kernel_initializer,
            regularizer=self.kernel_regularizer, constraint=self.kernel_constraint, name="kernel",
        )
        self.bias = None
        if self.use_bias:
            self.bias = self.add_weight(
                shape=(self.units,), initializer=self.bias_initializer,
                regularizer=self.bias_regularizer, constraint=self.bias_constraint, name="bias",
            )

    def call(self, inputs, training=False):
        kernel = self.kernel
        if training:
            kernel = drop.drop_connect(kernel, self._rate, self.seed_generator)
        x = ops.matmul(inputs, kernel)
        if self.bias is not None:
            x = ops.add(x, self.bias)
        return self.activation(x)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (self.units,)

    def get_config(self):
        config = super().get_config()
        ser = keras.saving.serialize_keras_object
        config.update(
            units=self.units, rate=self.rate, activation=ser(self.activation), use_bias=self.use_bias,
            kernel_initializer=ser(self.kernel_initializer), bias_initializer=ser(self.bias_initializer),
            kernel_regularizer=ser(self.kernel_regularizer), bias_regularizer=ser(self.bias_regularizer),
            kernel_constraint=ser(self.kernel_constraint), bias_constraint=ser(self.bias_constraint),
            seed=self.seed,
        )
        return config
