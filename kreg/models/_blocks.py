"""Building blocks shared by the model builders: how a plan becomes layers."""

from __future__ import annotations

import keras

from kreg import regularizers as kreg_regularizers
from kreg.augment import augmentation_layers
from kreg.plan import RegularizationPlan


def kernel_regularizer(plan: RegularizationPlan):
    """The weight penalty of a plan: L1, L2, both (L1L2) or elastic net."""
    if plan.elastic_net is not None:
        return kreg_regularizers.ElasticNet(plan.elastic_net.alpha, plan.elastic_net.l1_ratio)
    if plan.l1 and plan.l2:
        return keras.regularizers.L1L2(l1=plan.l1, l2=plan.l2)
    if plan.l1:
        return keras.regularizers.L1(plan.l1)
    if plan.l2:
        return keras.regularizers.L2(plan.l2)
    return None


def input_stack(spec, plan: RegularizationPlan, seed: int):
    """Input, then the training-only augmentation and input noise of the plan."""
    inputs = keras.Input(shape=spec.shape, name="inputs")
    x = inputs
    for layer in augmentation_layers(spec.modality, plan.augmentation, seed=seed):
        x = layer(x)
    if plan.input_noise:
        x = keras.layers.GaussianNoise(plan.input_noise, seed=seed + 7, name="input_noise")(x)
    return inputs, x


def activate(x, plan: RegularizationPlan, name: str):
    """Optional batch normalization, then ReLU."""
    if plan.batch_norm:
        x = keras.layers.BatchNormalization(name=f"{name}_bn")(x)
    return keras.layers.Activation("relu", name=f"{name}_relu")(x)


def dense_block(x, units: int, plan: RegularizationPlan, name: str, seed: int):
    use_bias = not plan.batch_norm  # batch norm's beta replaces the bias
    x = keras.layers.Dense(
        units, use_bias=use_bias, kernel_regularizer=kernel_regularizer(plan), name=name
    )(x)
    x = activate(x, plan, name)
    if plan.dropout:
        x = keras.layers.Dropout(plan.dropout, seed=seed, name=f"{name}_dropout")(x)
    return x


def classifier_head(x, spec, plan: RegularizationPlan):
    """Logits over the classes (the loss works from logits)."""
    return keras.layers.Dense(
        spec.num_classes, kernel_regularizer=kernel_regularizer(plan), name="logits"
    )(x)
