"""Settings: tuned like techniques, never switched off (the training reads them)."""

from __future__ import annotations

from kreg.lab.techniques.base import Technique
from kreg.lab.techniques.base import collect


class BatchSize(Technique):
    name = "batch_size"
    position = 16
    params = (("value", "count"),)
    acts_on = "setting"
    summary = "mini-batch size (small batches regularize)"
    stronger = -1


class LearningRate(Technique):
    name = "learning_rate"
    position = 17
    params = (("value", "positive"),)
    acts_on = "setting"
    summary = "learning rate"
    stronger = 0

    def optimizer(self, value):
        return {"learning_rate": value}


TECHNIQUES = collect(globals())
