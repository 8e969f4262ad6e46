"""Convolutional classifiers: a 1D CNN for sequences, a small 2D CNN for images."""

from __future__ import annotations

import keras

from kreg import _validation as v
from kreg.lab.models import blocks
from kreg.lab.plan import RegularizationPlan


_POOLING = ("flatten", "max", "avg")


def _conv_net(spec, plan, *, conv, pools, width, depth, kernel_size, dense_units, strides, pooling, seed, name):
    v.check_positive_int("width", width)
    v.check_positive_int("strides", strides)
    v.check_choice("pooling", pooling, _POOLING)
    v.check_positive_int("depth", depth)
    v.check_positive_int("kernel_size", kernel_size)
    v.check_non_negative_int("dense_units", dense_units)
    ctx = blocks.context(plan or RegularizationPlan(), spec.modality, seed)
    inputs, x = blocks.input_stack(spec, ctx)
    for i in range(depth):
        # The first layer keeps full resolution; later ones downsample by
        # `strides` (2 as in MNIST-1D's reference CNN).
        config = {"filters": width, "kernel_size": kernel_size, "strides": 1 if i == 0 else strides,
                  "padding": "same", "name": f"conv{i + 1}"}
        x = blocks.kernel_block(x, conv, config, ctx, kind="conv", rank=len(spec.shape) - 1)
    # Global max pooling makes the features invariant to where a pattern
    # sits, which suits translated signals such as MNIST-1D's.
    x = {"flatten": keras.layers.Flatten, "max": pools[0], "avg": pools[1]}[pooling](name=pooling)(x)
    if dense_units:
        x = blocks.dense_block(x, dense_units, ctx, "dense")
    else:
        x = blocks.features(x, ctx, "flatten")
    return keras.Model(inputs, blocks.classifier_head(x, spec, ctx), name=name)


def build_cnn1d(spec, plan=None, *, width=64, depth=3, kernel_size=5, dense_units=0, strides=2,
                pooling="flatten", seed=0):
    """A 1D CNN for ``(steps, channels)`` inputs such as MNIST-1D.

    ``depth`` convolutions of ``width`` filters (the first at stride 1, then
    ``strides``), ReLU, and what the plan places in each block,
    ``pooling`` ("flatten", "max" or "avg" over time) and a linear classifier
    (plus ``dense_units`` hidden units if > 0).

    Example:
        >>> spec = InputSpec((40, 1), 10, "sequence")
        >>> model = build_cnn1d(spec, RegularizationPlan(dropout=0.1))
    """
    if len(spec.shape) != 2:
        raise v.invalid("input shape", "(steps, channels) for cnn1d", spec.shape)
    return _conv_net(
        spec, plan, conv=keras.layers.Conv1D,
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
        pools=(keras.layers.GlobalMaxPooling2D, keras.layers.GlobalAveragePooling2D),
        width=width, depth=depth, kernel_size=kernel_size, dense_units=dense_units, strides=strides,
        pooling=pooling, seed=seed, name="cnn2d",
    )
