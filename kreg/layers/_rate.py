"""A layer ``rate`` held in a non-trainable variable (see ``kreg._variables``)."""

from __future__ import annotations

from kreg import _validation as v
from kreg._variables import variable_property


class ScheduledRateMixin:
    """Gives a layer a ``rate`` property backed by a scalar variable.

    Changing ``layer.rate`` between epochs takes effect in the compiled train
    step without rebuilding or recompiling the model.
    """

    schedule_kind = "dropout"
    schedule_attr = "rate"
    rate = variable_property("rate", v.check_rate)

    def _init_rate(self, rate):
        self.rate = rate
