"""Optimizer, loss and metrics for a plan: the regularizers that live outside layers."""

from __future__ import annotations

import keras

from kreg import _validation as v
from kreg.lab.plan import RegularizationPlan
from kreg.lab.task import Classification

OPTIMIZERS = ("adam", "sgd", "rmsprop")  # the search settings' `optimizer` values (a test pins they agree)


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


def compile_model(model, plan: RegularizationPlan | None = None, *, optimizer="adam", learning_rate=1e-3,
                  task=None, activation: str = "linear", loss=None, metrics=None):
    """Compiles ``model`` for ``plan`` and the task.

    The plan's ``learning_rate`` overrides the one given here; its
    ``weight_decay`` goes to the optimizer; its ``label_smoothing`` and
    ``confidence_penalty`` to the task's loss. ``task`` defaults to
    classification with integer labels and ``activation`` (of the output
    layer) to ``"linear"`` (logits), kreg's built-in models. Classification
    metrics: ``accuracy`` and ``ece``; with MixUp / CutMix in the plan the
    training labels are soft and accuracy counts their top class.
    Regression metrics: ``mae``, ``rmse``, ``r2``. ``loss``/``metrics``
    replace the task's.
    """
    from kreg.lab import techniques as registry

    plan = plan or RegularizationPlan()
    task = task or Classification()
    args = {"learning_rate": learning_rate}  # the techniques' optimizer hooks: learning rate, weight decay
    for name, value in plan.items():
        if not registry.REGISTRY[name].is_off(value):
            args.update(registry.REGISTRY[name].optimizer(value))
    mixing = any(registry.REGISTRY[name].acts_on == "data" for name in plan.active_techniques())  # soft labels
    model.compile(
        optimizer=make_optimizer(optimizer, args["learning_rate"], args.get("weight_decay")),
        loss=loss if loss is not None else task.loss(plan, activation),
        metrics=metrics if metrics is not None else task.metrics(plan, activation, mixing=mixing),
    )
    return model
