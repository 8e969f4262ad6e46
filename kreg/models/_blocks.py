"""Building blocks shared by the model builders: how a plan becomes layers."""

from __future__ import annotations

import keras

from kreg import regularizers as kreg_regularizers
from kreg.augment import augmentation_layers
from kreg.constraints import SoftThreshold
from kreg.layers import DropConnect
from kreg.layers import ScheduledDropout
from kreg.layers import ScheduledGaussianNoise
from kreg.plan import RegularizationPlan


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


def input_stack(spec, plan: RegularizationPlan, seed: int):
    """Input, then the training-only augmentation and input noise of the plan."""
    inputs = keras.Input(shape=spec.shape, name="inputs")
    x = inputs
    for layer in augmentation_layers(spec.modality, plan.augmentation, seed=seed):
        x = layer(x)
    if plan.input_noise:
        noise = ScheduledGaussianNoise if plan.schedule is not None else keras.layers.GaussianNoise
        x = noise(plan.input_noise, seed=seed + 7, name="input_noise")(x)
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
    """Logits over the classes (the loss works from logits)."""
    return keras.layers.Dense(
        spec.num_classes, kernel_regularizer=kernel_regularizer(plan, hidden=False),
        kernel_constraint=kernel_constraint(plan), name="logits",
    )(x)
