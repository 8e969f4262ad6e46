"""Callbacks for any ``model.fit``."""

from kreg.callbacks.gap import GeneralizationGap
from kreg.callbacks.gap import gap_value
from kreg.callbacks.gap import lower_is_better

__all__ = [
    "GeneralizationGap",
    "gap_value",
    "lower_is_better",
]
