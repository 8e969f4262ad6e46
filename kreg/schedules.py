"""Shapes of a regularization strength over training: multipliers per epoch.

A schedule maps ``(epoch, epochs)`` (0-based epoch, total epochs) to a
multiplier of the strength a layer or regularizer was built with. Plain
Python, no Keras: ``kreg.callbacks.RegularizationSchedule`` applies it, and
``kreg.callbacks`` registers each schedule with Keras (``"kreg>LinearWarmup"``,
...) so ``keras.saving.serialize_keras_object`` / ``deserialize_keras_object``
round-trip it.

Example:
    >>> s = LinearWarmup(warmup_epochs=4)
    >>> [s(e, 8) for e in range(6)]
    [0.25, 0.5, 0.75, 1.0, 1.0, 1.0]
"""

from __future__ import annotations

import math

from kreg import _validation as v


class Schedule:
    """Base class: ``schedule(epoch, epochs) -> multiplier >= 0``."""

    name = "schedule"

    def __call__(self, epoch: int, epochs: int) -> float:
        raise NotImplementedError

    def get_config(self) -> dict:
        return {}

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def __repr__(self):
        args = ", ".join(f"{k}={val!r}" for k, val in self.get_config().items())
        return f"{type(self).__name__}({args})"


class Constant(Schedule):
    """The built strength throughout (with the callback's ``off_last``: a switch-off)."""

    name = "constant"

    def __call__(self, epoch, epochs):
        return 1.0


class LinearWarmup(Schedule):
    """Ramps linearly from ``start`` to 1 over the first ``warmup_epochs`` epochs.

    Epoch ``e`` (0-based) gets ``start + (1 - start) * (e + 1) / warmup_epochs``,
    so the first epoch already trains with some regularization unless
    ``warmup_epochs`` is large.

    Args:
        warmup_epochs: Length of the ramp, a positive integer.
        start: Multiplier before the first epoch, in [0, 1]. Default 0.
    """

    name = "warmup"

    def __init__(self, warmup_epochs, start=0.0):
        self.warmup_epochs = v.check_positive_int("warmup_epochs", warmup_epochs)
        self.start = v.check_rate("start", start, allow_one=True)

    def __call__(self, epoch, epochs):
        progress = min(1.0, (epoch + 1) / self.warmup_epochs)
        return self.start + (1.0 - self.start) * progress

    def get_config(self):
        return {"warmup_epochs": self.warmup_epochs, "start": self.start}


class Step(Schedule):
    """Piecewise constant: ``values[i]`` from epoch ``boundaries[i-1]`` on.

    Args:
        boundaries: Increasing epochs (0-based) where the multiplier changes.
        values: ``len(boundaries) + 1`` multipliers >= 0.

    Example:
        >>> Step([10, 20], [0.0, 0.5, 1.0])(15, 30)
        0.5
    """

    name = "step"

    def __init__(self, boundaries, values):
        boundaries = list(boundaries)
        values = list(values)
        for b in boundaries:
            v.check_non_negative_int("boundaries", b)
        if boundaries != sorted(set(boundaries)):
            raise v.invalid("boundaries", "strictly increasing epochs", boundaries)
        if len(values) != len(boundaries) + 1:
            raise v.invalid("values", f"{len(boundaries) + 1} multipliers (one more than boundaries)", values)
        self.boundaries = boundaries
        self.values = [v.check_non_negative("values", x) for x in values]

    def __call__(self, epoch, epochs):
        index = sum(1 for b in self.boundaries if epoch >= b)
        return self.values[index]

    def get_config(self):
        return {"boundaries": self.boundaries, "values": self.values}


class Cosine(Schedule):
    """Half-cosine from ``start`` to ``end`` over the whole training.

    ``Cosine(0, 1)`` ramps regularization up smoothly; ``Cosine(1, 0)``
    anneals it away (as a learning-rate cosine does).

    Args:
        start: Multiplier at the first epoch, >= 0. Default 0.
        end: Multiplier at the last epoch, >= 0. Default 1.
    """

    name = "cosine"

    def __init__(self, start=0.0, end=1.0):
        self.start = v.check_non_negative("start", start)
        self.end = v.check_non_negative("end", end)

    def __call__(self, epoch, epochs):
        progress = epoch / max(1, epochs - 1)
        weight = 0.5 * (1.0 - math.cos(math.pi * min(1.0, progress)))
        return self.start + (self.end - self.start) * weight

    def get_config(self):
        return {"start": self.start, "end": self.end}


SCHEDULES = {cls.name: cls for cls in (Constant, LinearWarmup, Step, Cosine)}


def get(identifier) -> Schedule:
    """A schedule from an instance, a name (``"warmup"`` needs arguments, so
    use a dict), a dict ``{"name": ..., **args}`` or a callable ``(epoch, epochs)``."""
    if isinstance(identifier, Schedule) or (callable(identifier) and not isinstance(identifier, type)):
        return identifier
    if isinstance(identifier, str):
        v.check_choice("schedule", identifier, tuple(SCHEDULES))
        return SCHEDULES[identifier]()
    if isinstance(identifier, dict) and "name" in identifier:
        args = dict(identifier)
        name = args.pop("name")
        v.check_choice("schedule", name, tuple(SCHEDULES))
        return SCHEDULES[name](**args)
    raise v.invalid("schedule", "a Schedule, one of its names, a dict with `name`, or a callable", identifier)
