"""RegularizationSchedule: ramp dropout rates, noise and penalty strengths over epochs."""

from __future__ import annotations

import copy

import keras

from kreg.errors import InputError
from kreg import _validation as v
from kreg import schedules as kreg_schedules
from kreg.regularizers import schedulable_terms

# The schedules are plain Python (the lab reads them without Keras); they are
# registered here, where Keras is loaded, so a config names them "kreg>Cosine".
for _schedule in kreg_schedules.SCHEDULES.values():
    keras.saving.register_keras_serializable(package="kreg")(_schedule)

KINDS = ("dropout", "noise", "regularizer", "augmentation")
_REGULARIZER_ATTRS = (
    "kernel_regularizer", "bias_regularizer", "activity_regularizer", "depthwise_regularizer",
    "pointwise_regularizer", "recurrent_regularizer", "embeddings_regularizer",
    "beta_regularizer", "gamma_regularizer",
)


def schedulable_objects(model, kinds=KINDS) -> list:
    """Every object in ``model`` whose strength a schedule can change, of the given kinds.

    Layers with a variable-backed strength (kreg's ``DropBlock*``,
    ``DropConnect``, ``StochasticDepth``, ``MCDropout``, ``Scheduled*``) and
    ``kreg.regularizers.Schedulable`` penalties on any layer.
    """
    found, seen = [], set()

    def add(obj):
        if getattr(type(obj), "schedule_kind", None) in kinds and id(obj) not in seen:
            seen.add(id(obj))
            found.append(obj)

    for layer in model._flatten_layers(include_self=False, recursive=True):
        add(layer)
        for attr in _REGULARIZER_ATTRS:
            for term in schedulable_terms(getattr(layer, attr, None)):
                add(term)
    return found


class RegularizationSchedule(keras.callbacks.Callback):
    """Changes regularization strength between epochs by a schedule.

    At the start of each epoch every target gets ``built value * multiplier``,
    where the multiplier comes from ``schedule(epoch, epochs)`` (0 in the last
    ``off_last`` epochs). At the end of training the built values come back,
    so a saved model holds the strengths it was configured with. The epoch
    logs get ``regularization_multiplier``.

    Targets hold their strength in a variable, so the compiled step uses the
    new value without a retrace: kreg's ``DropBlock1D/2D``, ``DropConnect``,
    ``StochasticDepth``, ``MCDropout``, ``ScheduledDropout``,
    ``ScheduledSpatialDropout1D/2D``, ``ScheduledGaussianNoise`` and
    ``kreg.regularizers.Schedulable``. (Under JAX a changed ``Schedulable``
    penalty costs one retrace of the train step: it is not a model variable.)

    Args:
        schedule: A ``kreg.schedules.Schedule`` (``LinearWarmup``, ``Step``,
            ``Cosine``, ``Constant``), a dict ``{"name": ..., **args}`` or a
            callable ``(epoch, epochs) -> multiplier``.
        targets: Kinds to schedule, any of ``"dropout"``, ``"noise"``,
            ``"regularizer"``, ``"augmentation"``; or a list of the objects
            themselves (e.g. one layer). Default: all kinds.
        off_last: Switch the targets off (multiplier 0) for this many final
            epochs, letting the model fit the data unhindered at the end.
            Default 0.

    Example:
        >>> reg = kreg.regularizers.Schedulable(keras.regularizers.L2(1e-4))
        >>> model = keras.Sequential([keras.layers.Dense(64, kernel_regularizer=reg),
        ...                           kreg.layers.ScheduledDropout(0.3), keras.layers.Dense(10)])
        >>> ramp = kreg.callbacks.RegularizationSchedule(
        ...     kreg.schedules.LinearWarmup(5), off_last=2)
        >>> model.fit(x, y, epochs=20, callbacks=[ramp])

    References:
        Morerio et al., "Curriculum dropout", ICCV 2017 (dropout ramped up);
        Liu et al., "Dropout reduces underfitting", ICML 2023 (early and late
        dropout).
    """

    def __init__(self, schedule, targets=KINDS, off_last=0):
        super().__init__()
        self.schedule = kreg_schedules.get(schedule)
        self.off_last = v.check_non_negative_int("off_last", off_last)
        targets = [targets] if isinstance(targets, str) else list(targets)
        if not targets:
            raise v.invalid("targets", f"kinds among {', '.join(KINDS)} or schedulable objects", targets)
        for t in targets:
            if isinstance(t, str):
                v.check_choice("targets", t, KINDS)
            elif getattr(type(t), "schedule_attr", None) is None:
                raise v.invalid("targets", "kinds or objects with a variable-backed strength "
                                "(kreg layers, Schedulable regularizers)", t)
        self.targets = targets
        self._reset()

    def _reset(self):
        self._objects, self._base = [], []
        self.multiplier = None

    def __deepcopy__(self, memo):
        # keras-tuner copies callbacks per trial: share explicit target objects.
        clone = copy.copy(self)
        clone.targets = list(self.targets)
        clone._reset()
        return clone

    def on_train_begin(self, logs=None):
        self._reset()
        kinds = tuple(t for t in self.targets if isinstance(t, str))
        objects = schedulable_objects(self.model, kinds) if kinds else []
        objects += [t for t in self.targets if not isinstance(t, str) and t not in objects]
        if not objects:
            raise InputError(
                f"RegularizationSchedule found nothing to schedule for targets={self.targets!r}: "
                "use layers with a variable-backed strength (kreg.layers.ScheduledDropout, DropBlock2D, "
                "...) or wrap penalties in kreg.regularizers.Schedulable."
            )
        self._objects = objects
        self._base = [getattr(o, type(o).schedule_attr) for o in objects]
        self._epochs = (self.params or {}).get("epochs") or 1

    def multiplier_at(self, epoch: int) -> float:
        """The multiplier for ``epoch`` (0-based) of this training."""
        if self.off_last and epoch >= self._epochs - self.off_last:
            return 0.0
        return float(self.schedule(epoch, self._epochs))

    def _apply(self, multiplier):
        retrace = False
        for obj, base in zip(self._objects, self._base):
            attr = type(obj).schedule_attr
            new = base * multiplier
            if new != getattr(obj, attr):
                setattr(obj, attr, new)
                retrace |= type(obj).schedule_kind == "regularizer"
        if retrace and keras.backend.backend() == "jax" and self.model.train_function is not None:
            self.model.make_train_function(force=True)

    def on_epoch_begin(self, epoch, logs=None):
        self.multiplier = self.multiplier_at(epoch)
        self._apply(self.multiplier)

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None and self.multiplier is not None:
            logs["regularization_multiplier"] = self.multiplier

    def on_train_end(self, logs=None):
        self._apply(1.0)
