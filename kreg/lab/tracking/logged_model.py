"""The search's answer as an MLflow model: Keras' flavor, and a pyfunc that takes the user's raw rows.

``log_answer`` logs the refit model (``kreg.lab.trial.export.Exported``:
preprocessing inside) as an MLflow 3 ``LoggedModel`` of the search's parent
run, optionally registered in the Model Registry:

- the ``keras`` flavor, written by ``mlflow.keras.save_model``:
  ``mlflow.keras.load_model(uri)`` gives the ``keras.Model`` (``import kreg``
  first when the plan put kreg layers in it: Keras finds them by their
  registered names);
- a ``python_function`` flavor whose loader is this module:
  ``mlflow.pyfunc.load_model(uri)`` imports kreg itself (so kreg's layers are
  registered), and its ``predict`` takes raw arrays, or a pandas DataFrame of
  raw rows for table data, and returns a DataFrame: the class probabilities
  (one column per class, named by the class names of string labels) and
  ``label``, or ``prediction`` columns in the targets' units;
- the signature of the raw inputs (a tensor, or the source columns) and an
  input example of five raw test rows, shown on the model's page;
- ``kreg_model.json``: the raw inputs, the classes and the output activation.

kreg is not on a package index, so the model's requirements list the packages
kreg runs on (TensorFlow, Keras, MLflow, ...) at their installed versions, and
the environment that loads the pyfunc must have kreg installed (``pip install``
of the kreg checkout), as it must for ``mlflow models serve --env-manager local``.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import numpy as np

_DESCRIPTION = "kreg_model.json"
# What the logged model needs to load (kreg itself is installed from its checkout: see the module docstring).
_REQUIREMENTS = ("tensorflow", "keras", "mlflow", "numpy", "pandas", "scikit-learn", "pydantic", "pyyaml")


def requirements() -> list[str]:
    """The packages kreg runs on, pinned to the installed versions."""
    from importlib import metadata

    out = []
    for name in _REQUIREMENTS:
        try:
            out.append(f"{name}=={metadata.version(name)}")
        except metadata.PackageNotFoundError:
            out.append(name)
    return out


def signature(exported):
    """The raw inputs' schema (a float32 tensor, or one column per source column) and the outputs'."""
    from mlflow.models.signature import ModelSignature
    from mlflow.types.schema import ColSpec, Schema, TensorSpec

    if exported.inputs == "columns":
        inputs = Schema([ColSpec(kind, name=column)
                         for column, (_, kind) in exported.columns.items()])
    else:
        inputs = Schema([TensorSpec(np.dtype(exported.dtype), (-1, *exported.shape))])
    outputs = Schema([ColSpec("double" if name != "label" or exported.classes is None else "string", name=name)
                      for name in output_columns(exported)] if exported.kind == "classification" else
                     [ColSpec("double", name=name) for name in output_columns(exported)])
    return ModelSignature(inputs=inputs, outputs=outputs)


def output_columns(exported) -> list[str]:
    """``p_<class>`` ... and ``label`` (classification), ``prediction`` (regression; ``prediction_<i>`` for several)."""
    if exported.kind == "classification":
        classes = exported.classes if exported.classes is not None else range(_class_count(exported))
        return [f"p_{c}" for c in classes] + ["label"]
    return ["prediction"] if exported.targets == 1 else [f"prediction_{i}" for i in range(exported.targets)]


def _class_count(exported) -> int:
    units = int(exported.model.outputs[0].shape[-1]) if exported.model is not None else 2
    return 2 if units == 1 else units


class _Quiet(logging.Filter):
    def filter(self, record):  # the Keras flavor warns that it got no signature: kreg sets one itself
        return "without specifying model signature" not in record.getMessage()


def save_model(exported, path, mlflow_model=None, signature=None, input_example=None, metadata=None, **kwargs):
    """MLflow's flavor hook (``Model.log(flavor=this module)``): the Keras flavor, then kreg's pyfunc loader."""
    import mlflow.keras
    from mlflow.models import Model
    from mlflow.models.utils import _save_example

    mlflow_model = mlflow_model or Model()
    quiet = _Quiet()
    logger = logging.getLogger("mlflow.keras.save")
    logger.addFilter(quiet)
    try:
        mlflow.keras.save_model(exported.model, path, mlflow_model=mlflow_model, metadata=metadata,
                                pip_requirements=requirements())
    finally:
        logger.removeFilter(quiet)
    (Path(path) / _DESCRIPTION).write_text(json.dumps(exported.describe(), indent=1))
    mlflow_model.flavors["python_function"]["loader_module"] = __name__
    mlflow_model.signature = signature
    if input_example is not None:
        _save_example(mlflow_model, input_example, path)
    mlflow_model.save(os.path.join(path, "MLmodel"))


def _tracking_uri(uri: str):
    """``Model.log`` and the registry read MLflow's global tracking URI: kreg's store for the block
    (MLflow's own context manager, which puts the previous URI back after)."""
    from mlflow.tracking._tracking_service.utils import _use_tracking_uri

    return _use_tracking_uri(uri)


def log_answer(exported, tracking_uri: str, run_id: str, example=None, register: str | None = None,
               name: str = "model"):
    """Logs ``exported`` as a ``LoggedModel`` of ``run_id`` (and a version of ``register``); returns its info."""
    import sys

    from mlflow.models import Model

    from mlflow.utils import logging_utils

    logging.getLogger("mlflow.models.model").setLevel(logging.ERROR)  # serving-input chatter
    logging.getLogger("mlflow.tracking._model_registry.fluent").setLevel(logging.WARNING)  # "Created version"
    # MLflow prints "Successfully registered model ..." / "Created version ..." to stderr; kreg's console
    # says it in its own line (and the parent's tag kreg.registered_model).
    was = logging_utils.MLFLOW_LOGGING_STREAM.enabled
    logging_utils.MLFLOW_LOGGING_STREAM.enabled = False
    try:
        with _tracking_uri(tracking_uri):
            return Model.log(None, name=name, flavor=sys.modules[__name__], exported=exported, run_id=run_id,
                             signature=signature(exported), input_example=example, registered_model_name=register,
                             await_registration_for=0 if register is None else 60, model_type="keras")
    finally:
        logging_utils.MLFLOW_LOGGING_STREAM.enabled = was


def link_metrics(client, run_id: str, model_id: str, metrics: dict) -> None:
    """``metrics`` on ``run_id``, linked to the logged model (shown on the model's page)."""
    import math
    import time

    from mlflow.entities import Metric

    now = int(time.time() * 1000)
    batch = [Metric(k, float(v), now, 0, model_id=model_id) for k, v in metrics.items()
             if isinstance(v, (int, float)) and math.isfinite(float(v))]
    if batch:
        client.log_batch(run_id, metrics=batch)


# --------------------------------------------------------------------- loading (mlflow.pyfunc)
class KregPyfunc:
    """What ``mlflow.pyfunc.load_model`` returns inside its wrapper: raw inputs in, a DataFrame out."""

    def __init__(self, exported):
        self.exported = exported

    def get_raw_model(self):
        return self.exported.model

    def predict(self, data, params=None):
        import pandas as pd

        from kreg.lab.task import Classification

        ex = self.exported
        if ex.inputs == "array" and isinstance(data, pd.DataFrame):
            data = data.to_numpy()
        elif ex.inputs == "array" and isinstance(data, dict) and len(data) == 1:
            data = next(iter(data.values()))
        outputs = np.asarray(ex.predict(data), np.float64)
        index = data.index if isinstance(data, pd.DataFrame) else None
        columns = output_columns(ex)
        if ex.kind == "classification":
            probabilities = Classification.probabilities(outputs, ex.activation)
            frame = pd.DataFrame(probabilities, columns=columns[:-1], index=index)
            top = probabilities.argmax(axis=1)
            frame["label"] = [ex.classes[i] for i in top] if ex.classes is not None else top
            return frame
        return pd.DataFrame(outputs.reshape(len(outputs), -1), columns=columns, index=index)


def _load_pyfunc(path):
    """MLflow's pyfunc loader hook: imports kreg (its Keras objects registered), then the Keras model."""
    import keras

    import kreg  # noqa: F401  (registers kreg's layers, regularizers... with Keras)
    from kreg.lab.trial.export import Exported

    root = Path(path)
    if not (root / "MLmodel").is_file():
        root = root.parent
    description = json.loads((root / _DESCRIPTION).read_text())
    model = keras.saving.load_model(root / "data" / "model.keras")
    return KregPyfunc(Exported.from_description(model, description))
