"""The lab: kreg's search over regularization for your model, your data and your task.

``kreg.lab.tune`` (also ``kreg.tune``) runs a search; ``kreg.lab.regularize``
(also ``kreg.regularize``) applies a plan to any Keras model. The library
(``kreg.layers``, ``kreg.regularizers``, ...) never imports the lab. Names
load lazily so ``kreg validate`` does not import Keras.
"""

import importlib

_LAZY = {
    "tune": "kreg.lab.search.tune",
    "regularize": "kreg.lab.apply",
    "apply_plan": "kreg.lab.apply",
    "RegularizationPlan": "kreg.lab.plan",
    "Classification": "kreg.lab.task",
    "Regression": "kreg.lab.task",
    # Every error the lab raises on purpose (all kreg.KregError; the table of exit codes: kreg.lab.errors).
    "KregError": "kreg.errors",
    "ConfigError": "kreg.lab.errors",
    "DataError": "kreg.lab.errors",
    "ResumeError": "kreg.lab.errors",
    "PipelineSyntaxError": "kreg.lab.errors",
    "BuilderError": "kreg.lab.errors",
    "JoinError": "kreg.lab.search.worker",
    "StoreError": "kreg.lab.tracking.mlflow",
    "ChiefLost": "kreg.lab.search.rpc",
    "BaselineBlocked": "kreg.lab.analysis.blockers",
    "Diverged": "kreg.lab.trial.fit",
    "SearchInterrupted": "kreg.lab.search.signals",
    "SearchSpace": "kreg.lab.search.space",
}

__all__ = sorted(_LAZY)


def __getattr__(name):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'kreg.lab' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_LAZY))
