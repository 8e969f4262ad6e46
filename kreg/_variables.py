"""Values held in non-trainable variables, so schedules can change them mid-training.

A Python float read inside ``call`` is baked into the traced train step; a
scalar variable is read afresh at every step. Objects with such values carry
two class attributes that ``kreg.callbacks.RegularizationSchedule`` reads:
``schedule_kind`` (``"dropout"``, ``"noise"``, ``"regularizer"``, ...) and
``schedule_attr`` (the attribute holding the value: ``"rate"``, ...).
Layers and regularizers both use this, so it sits below both.
"""

from __future__ import annotations

import keras
from keras import ops


def variable_property(attr: str, check):
    """A property whose value lives in the scalar variable ``self._<attr>``.

    The first assignment creates the variable (a layer weight when the owner
    is a layer, so it is tracked, saved and passed to JAX's stateless step);
    later ones assign to it. ``check(name, value)`` validates every value.
    """
    var_name = f"_{attr}"

    def fget(self):
        variable = self.__dict__.get(var_name)
        if variable is None:  # not assigned yet (TF's tracking probes attributes)
            raise AttributeError(attr)
        return float(ops.convert_to_numpy(variable))

    def fset(self, value):
        value = check(attr, value)
        variable = self.__dict__.get(var_name)
        if variable is not None:
            variable.assign(float(value))
        elif isinstance(self, keras.layers.Layer):
            setattr(self, var_name, self.add_weight(
                shape=(), initializer=keras.initializers.Constant(float(value)), trainable=False,
                name=attr, dtype="float32",
            ))
        else:
            setattr(self, var_name, keras.Variable(float(value), trainable=False, name=attr, dtype="float32"))

    return property(fget, fset, doc=f"The current `{attr}` (a float; assignable between epochs).")
