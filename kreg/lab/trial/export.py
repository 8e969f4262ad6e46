"""What leaves the lab: the refit model with the data's preparation inside it.

Inside a search every trial trains on prepared data: inputs standardized with
training statistics, CSV categories one-hot encoded, regression targets
standardized, a channel axis added to ``(n, steps)`` or ``(n, h, w)`` inputs.
A model handed to a user without those steps predicts wrongly on the user's
raw inputs, and says nothing. ``whole_model`` puts them in the model with
Keras' own layers, so the saved ``.keras`` file (and the MLflow model made
from it) takes raw inputs and answers in the user's units:

- ``Reshape`` for the channel axis kreg added;
- ``Normalization`` with the training mean and variance (per feature or global);
- for CSV/DataFrame data, one named input per source column: numbers as they
  are, categories through ``StringLookup`` one-hot with the training
  categories (a category unseen in training is all zeros, as in the search);
- ``Rescaling`` back to the targets' units for regression.

The trials' own models stay as they were trained. Data kreg did not prepare
(a ``tf.data`` stream, ``standardize="none"`` on classification arrays of the
model's own shape) gives back exactly the user's model.

``Exported`` also carries what the model cannot: the class names of string
labels and the source columns, for the MLflow model's signature and its
``predict`` (``kreg.lab.tracking.logged_model``).
"""

from __future__ import annotations

import dataclasses
import re

import numpy as np


@dataclasses.dataclass(frozen=True)
class Exported:
    """The model a search hands over, and what its raw inputs and outputs are.

    Args:
        model: ``keras.Model`` over raw inputs (a dict of named columns for tables).
        kind: ``"classification"`` or ``"regression"``.
        inputs: ``"array"`` or ``"columns"``.
        shape: Per-example shape of raw array inputs (``"array"``).
        columns: Source column -> ``(input name, kind)`` (``"columns"``), kind as MLflow's schema names
            it: ``"double"``, ``"long"``, ``"boolean"`` (numbers to the model) or ``"string"`` (a category).
        classes: Class names (string labels, in output order), else None.
        activation: The output's activation (``"softmax"``, ``"linear"`` logits, ``"sigmoid"``, ...).
        targets: Regression target count.
        dtype: dtype of the raw array inputs the user had (``"float64"``, ``"uint8"``...).
    """

    model: object
    kind: str
    inputs: str = "array"
    shape: tuple = ()
    columns: dict = dataclasses.field(default_factory=dict)
    classes: tuple | None = None
    activation: str = "linear"
    targets: int = 1
    dtype: str = "float32"

    def feed(self, data):
        """Raw data as the model takes it: a DataFrame (or mapping) of source columns -> a dict of named
        input columns; an array -> float32, with a channel axis added where the raw shape has one more axis."""
        if self.inputs == "columns":
            if not hasattr(data, "keys"):
                raise TypeError("This model takes named columns: pass a pandas DataFrame or a dict of columns "
                                f"{list(self.columns)}. Received: {type(data).__name__}")
            missing = [c for c in self.columns if c not in data.keys()]
            if missing:
                raise ValueError(f"Columns {missing} are missing from the input. Expected: {list(self.columns)}")
            out = {}
            for column, (name, kind) in self.columns.items():
                values = np.asarray(data[column])
                # Keras takes strings as Python objects (NumPy's fixed-width str dtypes are refused).
                out[name] = values.astype(str).astype(object) if kind == "string" else values.astype(np.float32)
            return out
        x = np.asarray(data)
        if x.ndim == len(self.shape) and self.shape[-1:] == (1,) and x.shape[1:] == self.shape[:-1]:
            x = x[..., None]  # (n, 40) given for a (40, 1) input
        return x.astype(np.float32)

    def predict(self, data, batch_size: int = 256):
        """The model's outputs on raw ``data`` (probabilities for classification, target units for regression)."""
        import keras

        return keras.ops.convert_to_numpy(self.model.predict(self.feed(data), batch_size=batch_size, verbose=0))

    @classmethod
    def from_description(cls, model, description: dict) -> "Exported":
        """The inverse of ``describe`` (a loaded model and its ``kreg_model.json``)."""
        d = dict(description)
        return cls(model, d["kind"], d.get("inputs", "array"), tuple(d.get("shape", ())),
                   {c: tuple(v) for c, v in d.get("columns", {}).items()},
                   None if d.get("classes") is None else tuple(d["classes"]), d.get("activation", "linear"),
                   int(d.get("targets", 1)), d.get("dtype", "float32"))

    def describe(self) -> dict:
        """JSON-ready: everything but the model (``kreg_model.json`` beside the saved model)."""
        out = dataclasses.asdict(dataclasses.replace(self, model=None))
        out.pop("model")
        out["shape"] = list(self.shape)
        out["columns"] = {c: list(v) for c, v in self.columns.items()}
        out["classes"] = None if self.classes is None else [str(c) for c in self.classes]
        return out


def input_name(column: str, taken: set) -> str:
    """A Keras input name for a source column: the column's own name when Keras accepts it."""
    name = re.sub(r"[^A-Za-z0-9_.\-]", "_", str(column)).strip("_.-") or "column"
    if name[0].isdigit():
        name = f"c_{name}"
    base, i = name, 1
    while name in taken:
        i += 1
        name = f"{base}_{i}"
    taken.add(name)
    return name


def whole_model(model, splits, task, activation: str = "linear") -> Exported:
    """``model`` (trained on ``splits``' prepared data) wrapped to take raw inputs and answer in target units."""
    import keras

    classes = getattr(task, "classes", None)
    dtype = getattr(splits, "raw_dtype", None) or "float32"
    kind = task.kind
    targets = getattr(task, "targets", 1)
    if not getattr(splits, "in_memory", False):  # a stream the user prepared: their model as it is
        return Exported(model, kind, shape=tuple(splits.spec.shape), classes=classes, activation=activation,
                        targets=targets, dtype=dtype)
    spec_shape = tuple(splits.spec.shape)
    raw_shape = tuple(splits.raw_shape) if splits.raw_shape is not None else spec_shape
    scaler = splits.scaler
    to_units = kind == "regression" and getattr(task, "scale", None) is not None
    encoder = splits.encoder
    if encoder is None and scaler.mode == "none" and raw_shape == spec_shape and not to_units:
        return Exported(model, kind, shape=spec_shape, classes=classes, activation=activation, targets=targets,
                        dtype=dtype)

    columns = {}
    if encoder is not None:
        inputs, parts, taken = {}, [], set()
        for column in encoder.features:
            categorical = column in encoder.categories
            name = input_name(column, taken)
            columns[column] = (name, "string" if categorical else getattr(encoder, "kinds", {}).get(column, "double"))
            raw = keras.Input(shape=(), dtype="string" if categorical else "float32", name=name)
            inputs[name] = raw
            if categorical:
                parts.append(_one_hot(raw, encoder.categories[column], name))
            else:
                parts.append(keras.layers.Reshape((1,), name=f"{name}_column")(raw))
        x = parts[0] if len(parts) == 1 else keras.layers.Concatenate(name="features")(parts)
    else:
        inputs = keras.Input(shape=raw_shape, name="inputs")
        x = inputs
        if raw_shape != spec_shape:
            x = keras.layers.Reshape(spec_shape, name="add_channel")(x)
    if scaler.mode != "none":
        x = _normalization(scaler, len(spec_shape))(x)
    y = model(x)
    if to_units:
        y = keras.layers.Rescaling(scale=[float(s) for s in task.scale], offset=[float(o) for o in task.offset],
                                   name="to_target_units")(y)
    whole = keras.Model(inputs, y, name="kreg_answer")
    return Exported(whole, kind, "columns" if encoder is not None else "array", raw_shape, columns, classes,
                    activation, targets, dtype)


def _normalization(scaler, rank: int):
    """Keras' ``Normalization`` with the splits' training statistics (``(x - mean) / std``)."""
    import keras

    std = np.asarray(scaler.std, np.float64)
    if scaler.mode == "global":
        return keras.layers.Normalization(axis=None, mean=float(scaler.mean), variance=float(std ** 2),
                                          name="standardize")
    axis = tuple(range(1, rank + 1)) if rank > 1 else -1
    return keras.layers.Normalization(axis=axis, mean=np.asarray(scaler.mean, np.float32),
                                      variance=(std ** 2).astype(np.float32), name="standardize")


def _one_hot(raw, categories, name: str):
    """One 0/1 column per training category, all zeros for an unseen one (as ``TableEncoder`` does).

    ``StringLookup`` puts its out-of-vocabulary column first; ``Cropping1D``
    drops it (Keras has no slicing layer, and a ``Lambda`` would not load
    in safe mode).
    """
    import keras

    k = len(categories)
    hot = keras.layers.StringLookup(vocabulary=[str(c) for c in categories], num_oov_indices=1,
                                    output_mode="one_hot", dtype="float32", name=f"{name}_lookup")(raw)
    hot = keras.layers.Reshape((k + 1, 1), name=f"{name}_stack")(hot)
    hot = keras.layers.Cropping1D((1, 0), name=f"{name}_known")(hot)
    return keras.layers.Reshape((k,), name=f"{name}_onehot")(hot)


def raw_example(splits, rows: int = 5):
    """The first ``rows`` test examples as the user's raw data: the standardization undone, the channel
    axis kreg added removed, and for tables a DataFrame of the source columns (categories decoded)."""
    if not getattr(splits, "in_memory", False):
        return None
    x = splits.scaler.invert(splits.x_test[:rows])
    encoder = splits.encoder
    if encoder is None:
        raw_shape = tuple(splits.raw_shape) if splits.raw_shape is not None else tuple(splits.spec.shape)
        x = x.reshape((len(x), *raw_shape))
        dtype = np.dtype(getattr(splits, "raw_dtype", None) or "float32")
        return (np.rint(x) if dtype.kind in "iub" else x).astype(dtype)
    import pandas as pd

    out, at = {}, 0
    for column in encoder.features:
        if column in encoder.categories:
            categories = encoder.categories[column]
            block = x[:, at:at + len(categories)]
            out[column] = [categories[i] for i in block.argmax(axis=1)]
            at += len(categories)
        else:
            kind = getattr(encoder, "kinds", {}).get(column, "double")
            values = x[:, at]
            out[column] = (values > 0.5 if kind == "boolean" else
                           np.rint(values).astype(np.int64) if kind == "long" else values)
            at += 1
    return pd.DataFrame(out)
