"""kreg: regularization for Keras 3, and a lab that finds which regularization a model needs.

Library: ``kreg.layers``, ``kreg.regularizers``, ``kreg.constraints``,
``kreg.losses``, ``kreg.metrics``, ``kreg.augment``, ``kreg.callbacks``,
``kreg.training``, ``kreg.schedules``. Lab (``kreg.lab``, which the library
never imports): ``kreg.tune`` (search your model on your data),
``kreg.regularize`` (a plan onto any Keras model), ``kreg.study`` (a
claim of the seeds measured on your model), ``kreg.data`` (data
sources), ``kreg.models`` (built-in builders) and the ``kreg`` command.

Submodules load lazily so ``import kreg`` (and ``kreg validate``) stays fast
and does not import TensorFlow until a Keras piece is used. Saved models
still load after ``import kreg``: kreg registers every serializable object
with Keras as soon as Keras is imported (before or after kreg; see
``kreg._register``).
"""

import importlib

from kreg import _register
from kreg.errors import KregError  # the base of every error kreg raises on purpose

from kreg.lab.plan import DropBlockSpec
from kreg.lab.plan import EarlyStoppingSpec
from kreg.lab.plan import ElasticNetSpec
from kreg.lab.plan import RegularizationPlan
from kreg.lab.plan import ScheduleSpec
from kreg.lab.plan import SWASpec

__version__ = "0.1.0"

_SUBMODULES = (
    "augment",
    "callbacks",
    "constraints",
    "data",
    "lab",
    "layers",
    "losses",
    "metrics",
    "models",
    "regularizers",
    "schedules",
    "training",
)
# The lab's entry points, loaded on first use (they import Keras, MLflow, keras-tuner).
_LAB = {"tune": "kreg.lab.search.tune", "regularize": "kreg.lab.apply", "study": "kreg.lab.studies"}

__all__ = [
    "DropBlockSpec",
    "EarlyStoppingSpec",
    "ElasticNetSpec",
    "KregError",
    "RegularizationPlan",
    "SWASpec",
    "ScheduleSpec",
    "__version__",
    "predict_mc",
    "regularize",
    "study",
    "tune",
    *_SUBMODULES,
]


# kreg's Keras objects get registered now, or right after Keras is imported; with them the lab's compiled
# metrics (regression figures in the targets' units, a binary head's cross-entropy), which a model saved by a
# search carries in its compile config.
_register.install(extra=("kreg.lab.metrics",))


def predict_mc(model, x, samples=30, batch_size=None):
    """Monte Carlo dropout predictions: ``(mean, std)``; see ``kreg.layers.predict_mc``."""
    from kreg.layers import predict_mc as _predict_mc

    return _predict_mc(model, x, samples=samples, batch_size=batch_size)


def __getattr__(name):
    if name in _SUBMODULES:
        return importlib.import_module(f"kreg.{name}")
    if name in _LAB:
        return getattr(importlib.import_module(_LAB[name]), name)
    raise AttributeError(f"module 'kreg' has no attribute {name!r}")
