"""How a plan's non-structural techniques train: the compiled model, the data pipeline, the callbacks.

Shared by a trial's model and by the extra members of a bagged ensemble, so
every member is trained by the same recipe. The structure of the model comes
from the search's model source (built-in builder, the user's builder or
model with the plan applied); here the plan's loss (label smoothing,
confidence penalty), optimizer (weight decay, learning rate), data (MixUp,
CutMix, batch size) and training (SAM, schedule, SWA) are added.
"""

from __future__ import annotations

import functools

from kreg.augment import mix_batches, mixing_layers
from kreg.callbacks import SWA, RegularizationSchedule, schedulable_objects
from kreg.callbacks.schedule import KINDS
from kreg.lab.models.compile import compile_model
from kreg.training import SAM


def build_for_plan(search, plan, seed: int):
    """``(model, built)``: the search's model for ``plan``, wrapped in SAM if asked, compiled for the task.

    ``built`` says where each structural technique went and what the output
    layer is (``kreg.lab.models.source.Built``).
    """
    built = search.model.build(search.splits.spec, plan, seed=seed)
    model = built.model
    if plan.sam:
        model = SAM(model, rho=plan.sam)
    compile_model(model, plan, optimizer=search.training.optimizer, learning_rate=search.training.learning_rate,
                  task=search.task, activation=built.output_activation, loss=search.loss, metrics=search.metrics)
    return model, built


def train_data(splits, plan, batch_size: int, seed: int):
    """``(dataset, mixers)``: the training pipeline, with the plan's MixUp / CutMix mapped onto its batches.

    With mixing on, the training labels are soft; the task's loss and
    metrics take both kinds of labels.
    """
    spec = splits.spec
    mixers = mixing_layers(spec.modality, plan.augmentation, spec.num_classes, seed=seed + 11) \
        if spec.num_classes else []
    batch_map = functools.partial(mix_batches, layers=mixers) if mixers else None
    return splits.train_dataset(batch_size, batch_map=batch_map), mixers


def procedure_callbacks(plan, model, epochs: int, bn_data, mixers=()) -> tuple[list, SWA | None, int]:
    """``(callbacks, swa, scheduled)``: the plan's schedule and SWA as callbacks.

    ``scheduled`` counts the objects the schedule ramps (the model's and the
    data pipeline's mixing layers, whose alpha it ramps too); a plan with a
    schedule but nothing schedulable gets no schedule callback, and the
    trial logs 0.
    """
    callbacks, swa, scheduled = [], None, 0
    if plan.schedule is not None:
        scheduled = len(schedulable_objects(model)) + len(mixers)
        if scheduled:
            callbacks.append(RegularizationSchedule(targets=[*KINDS, *mixers], **plan.schedule.callback_args(epochs)))
    if plan.swa is not None:
        swa = SWA(start_epoch=min(epochs - 1, int(plan.swa.start * epochs)), bn_data=bn_data[0])
        callbacks.append(swa)
    return callbacks, swa, scheduled
