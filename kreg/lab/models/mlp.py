"""A multilayer perceptron for tabular data and flattened sequences."""

from __future__ import annotations

import keras

from kreg import _validation as v
from kreg.lab.models import blocks
from kreg.lab.plan import RegularizationPlan


def build_mlp(spec, plan=None, *, width=128, depth=2, seed=0):
    """``depth`` hidden layers of ``width`` units (ReLU), then a linear classifier.

    Inputs of any rank are augmented in their own shape, then flattened.

    Example:
        >>> model = build_mlp(InputSpec((30,), 2, "tabular"), RegularizationPlan(dropout=0.3))
    """
    v.check_positive_int("width", width)
    v.check_non_negative_int("depth", depth)
    ctx = blocks.context(plan or RegularizationPlan(), spec.modality, seed)
    inputs, x = blocks.input_stack(spec, ctx)
    if len(spec.shape) > 1:
        x = keras.layers.Flatten(name="flatten")(x)
    for i in range(depth):
        x = blocks.dense_block(x, width, ctx, f"dense{i + 1}")
    return keras.Model(inputs, blocks.classifier_head(x, spec, ctx), name="mlp")
