"""Callbacks for any ``model.fit``."""

from kreg.callbacks.gap import GeneralizationGap
from kreg.callbacks.gap import gap_value
from kreg.callbacks.gap import lower_is_better
from kreg.callbacks.schedule import RegularizationSchedule
from kreg.callbacks.schedule import schedulable_objects
from kreg.callbacks.sharpness import SharpnessProbe
from kreg.callbacks.sharpness import measure_sharpness
from kreg.callbacks.snapshot import SnapshotEnsemble
from kreg.callbacks.swa import SWA
from kreg.callbacks.swa import refresh_batch_norm
from kreg.callbacks.weights import WeightMonitor
from kreg.callbacks.weights import weight_statistics

__all__ = [
    "GeneralizationGap",
    "RegularizationSchedule",
    "SWA",
    "SharpnessProbe",
    "SnapshotEnsemble",
    "WeightMonitor",
    "gap_value",
    "lower_is_better",
    "measure_sharpness",
    "refresh_batch_norm",
    "schedulable_objects",
    "weight_statistics",
]
