"""kreg: regularization for Keras 3, and a lab that finds which regularization a model needs.

Library: ``kreg.regularizers``, ``kreg.losses``, ``kreg.augment``,
``kreg.callbacks``, ``kreg.models``. Lab: ``kreg.config`` (pipelines),
``kreg.pipeline.tune`` and the ``kreg`` command.

Submodules load lazily so ``import kreg`` (and ``kreg validate``) stays fast
and does not import TensorFlow until a Keras piece is used. Saved models
still load after ``import kreg``: kreg registers every serializable object
with Keras as soon as Keras is imported (before or after kreg; see
``kreg._register``).
"""

import importlib

from kreg import _register

from kreg.plan import DropBlockSpec
from kreg.plan import EarlyStoppingSpec
from kreg.plan import ElasticNetSpec
from kreg.plan import RegularizationPlan
from kreg.plan import ScheduleSpec
from kreg.plan import SWASpec

__version__ = "0.1.0"

_SUBMODULES = (
    "augment",
    "callbacks",
    "config",
    "constraints",
    "data",
    "layers",
    "losses",
    "metrics",
    "models",
    "pipeline",
    "regularizers",
    "schedules",
    "tracking",
    "training",
    "tuning",
)

__all__ = [
    "DropBlockSpec",
    "EarlyStoppingSpec",
    "ElasticNetSpec",
    "RegularizationPlan",
    "SWASpec",
    "ScheduleSpec",
    "__version__",
    "predict_mc",
    *_SUBMODULES,
]


_register.install()  # kreg's Keras objects get registered now, or right after Keras is imported


def predict_mc(model, x, samples=30, batch_size=None):
    """Monte Carlo dropout predictions: ``(mean, std)``; see ``kreg.layers.predict_mc``."""
    from kreg.layers import predict_mc as _predict_mc

    return _predict_mc(model, x, samples=samples, batch_size=batch_size)


def __getattr__(name):
    if name in _SUBMODULES:
        return importlib.import_module(f"kreg.{name}")
    raise AttributeError(f"module 'kreg' has no attribute {name!r}")
