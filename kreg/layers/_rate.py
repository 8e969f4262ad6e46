"""A rate held in a non-trainable variable, so schedules can change it mid-training."""

from __future__ import annotations

import keras

from kreg import _validation as v


class ScheduledRateMixin:
    """Gives a layer a ``rate`` property backed by a scalar variable.

    Changing ``layer.rate`` between epochs takes effect in the compiled train
    step without rebuilding or recompiling the model (a Python float would be
    baked into the traced graph).
    """

    def _init_rate(self, rate, name="rate"):
        v.check_rate(name, rate)
        self._rate_name = name
        self._rate = self.add_weight(
            shape=(), initializer=keras.initializers.Constant(float(rate)), trainable=False,
            name=name, dtype="float32",
        )
        self._initial_rate = float(rate)

    @property
    def rate(self):
        return float(keras.ops.convert_to_numpy(self._rate))

    @rate.setter
    def rate(self, value):
        v.check_rate(self._rate_name, value)
        self._rate.assign(float(value))
