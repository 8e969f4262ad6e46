"""How a plan's non-structural techniques train: the compiled model, the data pipeline, the callbacks.

Shared by a trial's model and by the extra members of a bagged ensemble, so
every member is trained by the same recipe. The structure of the model comes
from the search's model source (built-in builder, the user's builder or
model with the plan applied); here the plan's techniques add the rest through
their hooks (``kreg.lab.techniques.base``): the loss (``loss``: label
smoothing, confidence penalty, through the task), the optimizer (``optimizer``:
weight decay, learning rate), the data (``data``: MixUp, CutMix; the batch
size is a setting), the model that trains (``wrap_model``: SAM) and the
callbacks (``callbacks``: schedule, SWA). No technique is named here.
"""

from __future__ import annotations

import functools

from kreg.augment import mix_batches
from kreg.callbacks import SWA
from kreg.lab.models.compile import compile_model
from kreg.lab.techniques import placing
from kreg.lab.techniques.base import DataSite
from kreg.lab.techniques.base import TrainingSite
from kreg.training import PreciseBatchNorm
from kreg.training.precise_bn import DEFAULT_MAX_EXAMPLES, batch_norm_layers
from kreg.lab.trial.problem import Problem


def build_for_plan(problem: Problem, plan, seed: int):
    """``(model, built)``: the problem's model for ``plan``, wrapped by the techniques that train it through a
    step of their own (SAM), compiled for the task.

    ``built`` says where each structural technique went and what the output
    layer is (``kreg.lab.models.source.Built``).
    """
    built = problem.model.build(problem.splits.spec, plan, seed=seed)
    model = placing.wrap_model(plan, built.model)
    compile_model(model, plan, optimizer=problem.training.optimizer, learning_rate=problem.training.learning_rate,
                  task=problem.task, activation=built.output_activation, loss=problem.loss, metrics=problem.metrics)
    return model, built


def train_data(splits, plan, batch_size: int, seed: int):
    """``(dataset, mixers)``: the training pipeline, with the batch maps the plan's ``data`` hooks give
    (MixUp, CutMix) mapped onto its batches; several take turns batch by batch.

    With mixing on, the training labels are soft; the task's loss and
    metrics take both kinds of labels.
    """
    spec = splits.spec
    mixers = placing.data(plan, DataSite(spec.modality, spec.num_classes, seed + 11))
    batch_map = functools.partial(mix_batches, layers=mixers) if mixers else None
    return splits.train_dataset(batch_size, batch_map=batch_map), mixers


def procedure_callbacks(plan, model, epochs: int, bn_data, mixers=()) -> tuple[list, SWA | None, int]:
    """``(callbacks, averager, scheduled)``: the callbacks the plan's ``callbacks`` hooks give (the schedule,
    SWA), the weight-averaging one among them (``kreg.callbacks.SWA``, or None) and the objects a schedule
    ramps.

    ``scheduled`` counts the objects the schedule ramps (the model's and the
    data pipeline's mixing layers, whose alpha it ramps too); a plan with a
    schedule but nothing schedulable gets no schedule callback, and the
    trial logs 0.
    """
    site = TrainingSite(model, epochs, bn_data, tuple(mixers))
    callbacks = placing.callbacks(plan, site)
    return callbacks, site.averager, site.scheduled


def precise_bn(problem: Problem, model, splits, batch_size: int, seed: int, every: int | None = 1, epoch_data=None):
    """``(callback, tag)``: the ``PreciseBatchNorm`` that ``training.precise_bn`` asks for (None when off or
    when the model has no BatchNormalization), and what the trial run's tag ``kreg.precise_bn`` says.

    The statistics come from the training split's inputs as inference sees them (no MixUp / CutMix), at most
    ``DEFAULT_MAX_EXAMPLES`` of them (a seeded sample, the same every time), in batches of the training batch
    size. ``every=1``: also before every validation, so each epoch's validation figures (the objective, early
    stopping, pruning) and the honest gap are measured with the statistics of that epoch's weights; those
    per-epoch recomputes read ``epoch_data`` (the honest gap's fixed training sample), about what the gap's own
    evaluation costs (a pass over the demo's 3200-example split costs a fifth of an epoch; the sample 6%:
    ``scripts/bench_precise_bn.py``). The end of training (the end figures, the refit, the saved model) reads
    the split.
    """
    if problem.training.precise_bn is False:
        return None, "off (training.precise_bn: false)"
    if not batch_norm_layers(model):
        return None, "off (no BatchNormalization layer)"
    data = splits.x_train if splits.in_memory else splits.train_sample(DEFAULT_MAX_EXAMPLES)[0]
    return PreciseBatchNorm(data, every=every, batch_size=batch_size, seed=seed, epoch_data=epoch_data), "on"


def precise_bn_tag(callback, tag: str) -> str:
    """The tag once training ended: ``on (3 layers, 28 examples in 1 batch at the end; 28 before each
    validation)``."""
    if callback is None or callback.result is None:
        return tag
    text = f"on ({callback.result.describe()} at the end"
    if callback.every:
        sample = callback.epoch_data if callback.epoch_data is not None else callback.data
        text += f"; {len(sample)} before each validation" if hasattr(sample, "__len__") else \
            "; before each validation"
    return text + ")"
