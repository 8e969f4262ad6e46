"""Techniques in the optimizer and the training procedure.

Weight decay is an optimizer argument (its ``optimizer`` hook). SAM wraps the model in its own train step
(``wrap_model``); the strength schedule and SWA are callbacks (``callbacks``): ``kreg.lab.trial.procedures``
asks these hooks. Early stopping (it watches the search's objective) and the bagged ensemble (it trains
other members) are run by the trial itself (``kreg.lab.trial.fit``, ``kreg.lab.trial.ensemble``).
"""

from __future__ import annotations

from kreg.lab.techniques.base import SMALL_VALIDATION
from kreg.lab.techniques.base import Default
from kreg.lab.techniques.base import Technique
from kreg.lab.techniques.base import collect


class WeightDecay(Technique):
    name = "weight_decay"
    position = 11
    defaults = (Default(50, {"min": 1e-4, "max": 1e-1, "scale": "log"}, needs="normalized", group="weight penalty",
            why="the model normalizes its hidden blocks, where an L2 penalty on the kernels before a normalization "
                "only changes the effective learning rate: decoupled weight decay is the penalty that acts",
            source="Loshchilov and Hutter 2019 (AdamW); van Laarhoven 2017 (L2 and normalization); "
                   "Keras' AdamW default 0.004 lies inside"),
                Default(70, {"min": 1e-4, "max": 1e-1, "scale": "log"}, group="weight penalty",
            why="the weight penalty kreg can add without placing anything in the model (the optimizer applies it)",
            source="Loshchilov and Hutter 2019 (AdamW); Keras' AdamW default 0.004 lies inside"),)
    params = (("strength", "strength"),)
    acts_on = "optimizer"
    summary = "decoupled weight decay of the optimizer"

    def optimizer(self, value):
        return {"weight_decay": value}


class EarlyStopping(Technique):
    name = "early_stopping"
    position = 15
    defaults = (Default(110, {"patience": {"values": [5, 10]}}, min_validation=SMALL_VALIDATION,
            why="stops when the validation figure stops improving and keeps the best epoch: an implicit L2 "
                "(alpha ~ 1/(eta t))",
            source="Prechelt 1998; seed 004; kreg's early_stopping_l2 study (alpha*(t) ~ t^-0.96)"),)
    params = (("patience", "count", 10), ("restore_best", "bool", True))
    acts_on = "training"
    summary = "stop when the objective stops improving"
    stronger = -1


class Schedule(Technique):
    name = "schedule"
    position = 19
    params = (("warmup", "ratio", 0.2), ("off_last", "rate", 0.0))
    acts_on = "training"
    summary = "ramp every rate and penalty in over the warm-up, off for the last fraction"
    stronger = 0

    def callbacks(self, value, site):
        from kreg.callbacks import RegularizationSchedule, schedulable_objects
        from kreg.callbacks.schedule import KINDS

        # The model's schedulable objects and the data pipeline's mixing layers (their alpha ramps too);
        # with nothing to ramp, no callback (the trial logs 0 targets).
        site.scheduled = len(schedulable_objects(site.model)) + len(site.batch_maps)
        if not site.scheduled:
            return []
        return [RegularizationSchedule(targets=[*KINDS, *site.batch_maps], **value.callback_args(site.epochs))]


class SWA(Technique):
    name = "swa"
    position = 20
    params = (("start", "rate", 0.75),)
    acts_on = "training"
    summary = "stochastic weight averaging from this fraction of the epochs"
    stronger = -1
    value_is_spec = True  # plan.swa.start (room for more parameters)

    def callbacks(self, value, site):
        from kreg.callbacks import SWA as Averaging

        site.averager = Averaging(start_epoch=min(site.epochs - 1, int(value.start * site.epochs)),
                                  bn_data=site.bn_data[0])
        return [site.averager]


class SAM(Technique):
    name = "sam"
    position = 21
    params = (("rho", "positive"),)
    acts_on = "training"
    summary = "sharpness-aware minimization (radius rho)"

    def wrap_model(self, value, model):
        from kreg.training import SAM as Sharpness

        return Sharpness(model, rho=value)


class Ensemble(Technique):
    name = "ensemble"
    position = 22
    params = (("members", "count"),)
    acts_on = "training"
    summary = "bagged ensemble of this many members"

    def is_off(self, value):
        return value is None or value < 2


TECHNIQUES = collect(globals())
