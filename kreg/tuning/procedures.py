"""The training procedures of a plan: SAM around the model, mixed batches, schedule and SWA callbacks.

Shared by a trial's model and by the extra members of a bagged ensemble, so
every member is trained by the same recipe.
"""

from __future__ import annotations

import functools

from kreg.augment import mix_batches, mixing_layers
from kreg.callbacks import SWA, RegularizationSchedule, schedulable_objects
from kreg.callbacks.schedule import KINDS
from kreg.models import build_model, compile_model
from kreg.plan import RegularizationPlan
from kreg.training import SAM


def build_for_plan(cfg, spec, plan: RegularizationPlan, seed: int):
    """The pipeline's model for ``plan``, wrapped in SAM if the plan asks, compiled."""
    model = build_model(cfg.model.type, spec, plan, seed=seed, **cfg.model.capacity())
    if plan.sam:
        model = SAM(model, rho=plan.sam)
    compile_model(model, plan, optimizer=cfg.training.optimizer, learning_rate=cfg.training.learning_rate)
    return model


def train_data(splits, plan: RegularizationPlan, batch_size: int, seed: int):
    """``(dataset, mixers)``: the training pipeline, with the plan's MixUp / CutMix mapped onto its batches.

    With mixing on, the training labels are soft; ``compile_model`` gives
    such plans a loss and metrics that take both kinds of labels.
    """
    mixers = mixing_layers(splits.spec.modality, plan.augmentation, splits.spec.num_classes, seed=seed + 11)
    batch_map = functools.partial(mix_batches, layers=mixers) if mixers else None
    return splits.train_dataset(batch_size, batch_map=batch_map), mixers


def procedure_callbacks(plan: RegularizationPlan, model, epochs: int, bn_data, mixers=()) -> tuple[list, SWA | None, int]:
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
