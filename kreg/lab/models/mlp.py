"""A multilayer perceptron for tabular data and flattened sequences."""

from __future__ import annotations

import keras

from kreg import _validation as v
from kreg.lab.models.blocks import classifier_head
from kreg.lab.models.blocks import dense_block
from kreg.lab.models.blocks import input_stack
from kreg.lab.plan import RegularizationPlan


def build_mlp(spec, plan=None, *, width=128, depth=2, seed=0):
    """``depth`` hidden layers of ``width`` units (ReLU), then a linear classifier.

    Inputs of any rank are augmented in their own shape, then flattened.

    Example:
        >>> model = build_mlp(InputSpec((30,), 2, "tabular"), RegularizationPlan(dropout=0.3))
    """
    v.check_positive_int("width", width)
    v.check_non_negative_int("depth", depth)
    plan = plan or RegularizationPlan()
    inputs, x = input_stack(spec, plan, seed)
    if len(spec.shape) > 1:
        x = keras.layers.Flatten(name="flatten")(x)
    for i in range(depth):
        x = dense_block(x, width, plan, f"dense{i + 1}", seed + 13 * (i + 1))
    return keras.Model(inputs, classifier_head(x, spec, plan), name="mlp")
