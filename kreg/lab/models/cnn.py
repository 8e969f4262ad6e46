"""Convolutional classifiers: a 1D CNN for sequences, a small 2D CNN for images."""

from __future__ import annotations

import keras

from kreg import _validation as v
from kreg.lab.models.blocks import activate
from kreg.lab.models.blocks import classifier_head
from kreg.lab.models.blocks import dense_block
from kreg.lab.models.blocks import dropout
from kreg.lab.models.blocks import input_stack
from kreg.lab.models.blocks import kernel_constraint
from kreg.lab.models.blocks import kernel_regularizer
from kreg.layers import DropBlock1D
from kreg.layers import DropBlock2D
from kreg.layers import ScheduledSpatialDropout1D
from kreg.layers import ScheduledSpatialDropout2D
from kreg.lab.plan import RegularizationPlan


_POOLING = ("flatten", "max", "avg")


def _conv_net(spec, plan, *, conv, spatial_dropout, pools, width, depth, kernel_size, dense_units,
              strides, pooling, seed, name):
    v.check_positive_int("width", width)
    v.check_positive_int("strides", strides)
    v.check_choice("pooling", pooling, _POOLING)
    v.check_positive_int("depth", depth)
    v.check_positive_int("kernel_size", kernel_size)
    v.check_non_negative_int("dense_units", dense_units)
    plan = plan or RegularizationPlan()
    inputs, x = input_stack(spec, plan, seed)
    for i in range(depth):
        # The first layer keeps full resolution; later ones downsample by
        # `strides` (2 as in MNIST-1D's reference CNN).
        x = conv(
            width,
            kernel_size,
            strides=1 if i == 0 else strides,
            padding="same",
            use_bias=not plan.batch_norm,
            kernel_regularizer=kernel_regularizer(plan),
            kernel_constraint=kernel_constraint(plan),
            name=f"conv{i + 1}",
        )(x)
        x = activate(x, plan, f"conv{i + 1}")
        if plan.drop_block is not None:
            block = DropBlock1D if len(spec.shape) == 2 else DropBlock2D
            x = block(plan.drop_block.rate, plan.drop_block.block_size, seed=seed + 17 * (i + 1),
                      name=f"conv{i + 1}_dropblock")(x)
        if plan.spatial_dropout:
            # (Keras' layer, the variable-rate one a schedule can ramp)
            sdrop = spatial_dropout[plan.schedule is not None]
            x = sdrop(plan.spatial_dropout, seed=seed + 11 * (i + 1), name=f"conv{i + 1}_sdrop")(x)
    # Global max pooling makes the features invariant to where a pattern
    # sits, which suits translated signals such as MNIST-1D's.
    x = {"flatten": keras.layers.Flatten, "max": pools[0], "avg": pools[1]}[pooling](name=pooling)(x)
    if plan.dropout and not dense_units:
        x = dropout(plan, seed + 3, "flatten_dropout")(x)
    if dense_units:
        x = dense_block(x, dense_units, plan, "dense", seed + 5)
    return keras.Model(inputs, classifier_head(x, spec, plan), name=name)


def build_cnn1d(spec, plan=None, *, width=64, depth=3, kernel_size=5, dense_units=0, strides=2,
                pooling="flatten", seed=0):
    """A 1D CNN for ``(steps, channels)`` inputs such as MNIST-1D.

    ``depth`` convolutions of ``width`` filters (the first at stride 1, then
    ``strides``), ReLU, optional batch norm and spatial dropout per the plan,
    ``pooling`` ("flatten", "max" or "avg" over time) and a linear classifier
    (plus ``dense_units`` hidden units if > 0).

    Example:
        >>> spec = InputSpec((40, 1), 10, "sequence")
        >>> model = build_cnn1d(spec, RegularizationPlan(spatial_dropout=0.1))
    """
    if len(spec.shape) != 2:
        raise v.invalid("input shape", "(steps, channels) for cnn1d", spec.shape)
    return _conv_net(
        spec, plan, conv=keras.layers.Conv1D,
        spatial_dropout=(keras.layers.SpatialDropout1D, ScheduledSpatialDropout1D),
        pools=(keras.layers.GlobalMaxPooling1D, keras.layers.GlobalAveragePooling1D),
        width=width, depth=depth, kernel_size=kernel_size, dense_units=dense_units, strides=strides,
        pooling=pooling, seed=seed, name="cnn1d",
    )


def build_cnn2d(spec, plan=None, *, width=32, depth=2, kernel_size=3, dense_units=64, strides=2,
                pooling="flatten", seed=0):
    """A small 2D CNN for ``(height, width, channels)`` images such as digits."""
    if len(spec.shape) != 3:
        raise v.invalid("input shape", "(height, width, channels) for cnn2d", spec.shape)
    return _conv_net(
        spec, plan, conv=keras.layers.Conv2D,
        spatial_dropout=(keras.layers.SpatialDropout2D, ScheduledSpatialDropout2D),
        pools=(keras.layers.GlobalMaxPooling2D, keras.layers.GlobalAveragePooling2D),
        width=width, depth=depth, kernel_size=kernel_size, dense_units=dense_units, strides=strides,
        pooling=pooling, seed=seed, name="cnn2d",
    )
