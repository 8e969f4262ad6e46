"""Optimizer, loss and metrics for a plan: the regularizers that live outside layers."""

from __future__ import annotations

import keras

from kreg import _validation as v
from kreg.losses import ConfidencePenalty
from kreg.losses import SparseCategoricalCrossentropy
from kreg.metrics import ExpectedCalibrationError, TopClassAccuracy
from kreg.plan import RegularizationPlan
from kreg.techniques import MIXING_AUGMENTATIONS

OPTIMIZERS = ("adam", "sgd", "rmsprop")


def make_optimizer(name: str, learning_rate: float, weight_decay: float | None = None):
    """Adam / SGD (momentum 0.9) / RMSprop, with decoupled weight decay if asked.

    Keras 3 optimizers all take ``weight_decay`` (decoupled, as in AdamW), so
    the plan's weight decay needs no optimizer swap.
    """
    v.check_choice("optimizer", name, OPTIMIZERS)
    v.check_positive("learning_rate", learning_rate)
    kwargs = {"learning_rate": learning_rate}
    if weight_decay:
        kwargs["weight_decay"] = weight_decay
    if name == "adam":
        return keras.optimizers.AdamW(**kwargs) if weight_decay else keras.optimizers.Adam(**kwargs)
    if name == "sgd":
        return keras.optimizers.SGD(momentum=0.9, **kwargs)
    return keras.optimizers.RMSprop(**kwargs)


def compile_model(model, plan: RegularizationPlan | None = None, *, optimizer="adam", learning_rate=1e-3):
    """Compiles a kreg classifier (logits output, integer labels) for ``plan``.

    The plan's ``learning_rate`` overrides the one given here; its
    ``weight_decay`` and ``label_smoothing`` go to the optimizer and the loss.
    Metrics: ``accuracy`` and ``ece`` (expected calibration error, 15 bins).
    The plan's ``confidence_penalty`` switches the loss to
    ``kreg.losses.ConfidencePenalty`` (with the same label smoothing). With
    MixUp / CutMix in the plan the training labels are soft: both losses take
    them, and accuracy is ``kreg.metrics.TopClassAccuracy`` (either kind).
    """
    plan = plan or RegularizationPlan()
    lr = plan.learning_rate or learning_rate
    smoothing = plan.label_smoothing or 0.0
    if plan.confidence_penalty:
        loss = ConfidencePenalty(plan.confidence_penalty, from_logits=True, label_smoothing=smoothing)
    else:
        loss = SparseCategoricalCrossentropy(label_smoothing=smoothing, from_logits=True)
    mixing = any(plan.augmentation.get(name) for name in MIXING_AUGMENTATIONS)
    accuracy = TopClassAccuracy() if mixing else keras.metrics.SparseCategoricalAccuracy(name="accuracy")
    model.compile(
        optimizer=make_optimizer(optimizer, lr, plan.weight_decay),
        loss=loss,
        metrics=[accuracy,
                 ExpectedCalibrationError(from_logits=True, name="ece")],
    )
    return model
