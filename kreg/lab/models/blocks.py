"""How a plan's structural techniques become layers: shared by the built-in builders,
``kreg.regularize`` and the plan's helpers for builders that take the plan."""

from __future__ import annotations

from typing import TYPE_CHECKING

import keras

from kreg import regularizers as kreg_regularizers
from kreg.augment import augmentation_layers
from kreg.constraints import SoftThreshold
from kreg.layers import DropConnect
from kreg.layers import ScheduledDropout
from kreg.layers import ScheduledGaussianNoise

if TYPE_CHECKING:  # the plan reads these helpers; a run-time import would be a circle
    from kreg.lab.plan import RegularizationPlan


def kernel_regularizer(plan: RegularizationPlan, hidden: bool = True):
    """The weight penalty of a plan: L1, L2, L1L2, elastic net, group lasso, or their sum.

    Group lasso applies to hidden layers only (zeroing a class's logit row
    would remove the class). With a strength schedule in the plan the
    penalty is wrapped in ``Schedulable`` so the schedule can ramp it.
    """
    terms = []
    if plan.elastic_net is not None:
        terms.append(kreg_regularizers.ElasticNet(plan.elastic_net.alpha, plan.elastic_net.l1_ratio))
    if plan.l1 and plan.l2:
        terms.append(keras.regularizers.L1L2(l1=plan.l1, l2=plan.l2))
    elif plan.l1:
        terms.append(keras.regularizers.L1(plan.l1))
    elif plan.l2:
        terms.append(keras.regularizers.L2(plan.l2))
    if plan.group_lasso and hidden:
        terms.append(kreg_regularizers.GroupLasso(plan.group_lasso))
    if not terms:
        return None
    penalty = kreg_regularizers.Sum(terms) if len(terms) > 1 else terms[0]
    return kreg_regularizers.Schedulable(penalty) if plan.schedule is not None else penalty


def dropout(plan: RegularizationPlan, seed: int, name: str):
    """Keras' Dropout at the plan's rate; the variable-rate one when a schedule ramps it."""
    cls = ScheduledDropout if plan.schedule is not None else keras.layers.Dropout
    return cls(plan.dropout, seed=seed, name=name)


def kernel_constraint(plan: RegularizationPlan):
    """The proximal L1 step: ``SoftThreshold(learning_rate * alpha)`` (exact zeros)."""
    if not plan.proximal_l1:
        return None
    return SoftThreshold((plan.learning_rate or 1e-3) * plan.proximal_l1)


def input_layers(plan: RegularizationPlan, modality: str, seed: int | None = 0) -> list:
    """The training-only augmentation layers, then the input noise, of the plan."""
    seed = seed or 0
    layers = list(augmentation_layers(modality, plan.augmentation, seed=seed))
    if plan.input_noise:
        noise = ScheduledGaussianNoise if plan.schedule is not None else keras.layers.GaussianNoise
        layers.append(noise(plan.input_noise, seed=seed + 7, name="input_noise"))
    return layers


def conv_dropout(plan: RegularizationPlan, rank: int, seed: int | None = 0, name: str | None = None):
    """DropBlock (if the plan has it) or spatial dropout for ``rank``-D feature maps; None for neither."""
    from kreg.layers import DropBlock1D, DropBlock2D, ScheduledSpatialDropout1D, ScheduledSpatialDropout2D

    seed = seed or 0
    if plan.drop_block is not None:
        block = {1: DropBlock1D, 2: DropBlock2D}[rank]
        return block(plan.drop_block.rate, plan.drop_block.block_size, seed=seed, name=name)
    if plan.spatial_dropout:
        scheduled = plan.schedule is not None
        cls = {1: (keras.layers.SpatialDropout1D, ScheduledSpatialDropout1D),
               2: (keras.layers.SpatialDropout2D, ScheduledSpatialDropout2D)}[rank][scheduled]
        return cls(plan.spatial_dropout, seed=seed, name=name)
    return None


def input_stack(spec, plan: RegularizationPlan, seed: int):
    """Input, then the training-only augmentation and input noise of the plan."""
    inputs = keras.Input(shape=spec.shape, name="inputs")
    x = inputs
    for layer in input_layers(plan, spec.modality, seed):
        x = layer(x)
    return inputs, x


def activate(x, plan: RegularizationPlan, name: str):
    """Optional batch normalization, then ReLU."""
    if plan.batch_norm:
        x = keras.layers.BatchNormalization(name=f"{name}_bn")(x)
    return keras.layers.Activation("relu", name=f"{name}_relu")(x)


def dense_block(x, units: int, plan: RegularizationPlan, name: str, seed: int):
    use_bias = not plan.batch_norm  # batch norm's beta replaces the bias
    common = dict(use_bias=use_bias, kernel_regularizer=kernel_regularizer(plan),
                  kernel_constraint=kernel_constraint(plan), name=name)
    if plan.drop_connect:
        x = DropConnect(units, rate=plan.drop_connect, seed=seed + 1, **common)(x)
    else:
        x = keras.layers.Dense(units, **common)(x)
    x = activate(x, plan, name)
    if plan.dropout:
        x = dropout(plan, seed, f"{name}_dropout")(x)
    return x


def classifier_head(x, spec, plan: RegularizationPlan):
    """The linear output layer: logits over the classes (the loss works from logits), or the regression targets."""
    return keras.layers.Dense(
        spec.output_units, kernel_regularizer=kernel_regularizer(plan, hidden=False),
        kernel_constraint=kernel_constraint(plan), name="logits",
    )(x)
