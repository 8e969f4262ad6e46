"""Checks every data source runs before it returns: each failure one ``DataError`` naming the problem.

The sources call these before any MLflow run exists, so bad data stops the
lab with a sentence that names the argument or split and the value, never
with a shape error from inside Keras halfway through a search.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from kreg.lab.errors import DataError
from kreg.lab.task import Classification, Task

SPLITS = ("train", "validation", "test")


def invalid(name: str, expected: str, value: Any) -> DataError:
    """The Keras-worded message (house rule 2), as a ``DataError``."""
    return DataError(f"Invalid value received for argument `{name}`. Expected {expected}. "
                     f"Received: {name}={value!r}")


def check_split(split: str) -> str:
    if split not in SPLITS:
        raise invalid("split", f"one of {', '.join(map(repr, SPLITS))}", split)
    return split


def check_fraction(name: str, value: Any) -> float:
    """A fraction strictly between 0 and 1."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.floating)) \
            or not math.isfinite(value) or not 0 < value < 1:
        raise invalid(name, "a float between 0 and 1 (exclusive)", value)
    return float(value)


def as_inputs(x: Any, name: str) -> np.ndarray:
    """``x`` as a numeric array with a batch axis and at least one feature axis."""
    if isinstance(x, dict):
        raise DataError(f"`{name}` must be one array; dict (multi-input) data is not supported. "
                        f"Received a dict with keys {sorted(x)}")
    try:
        arr = np.asarray(x)
    except ValueError as exc:  # ragged nested lists
        raise DataError(f"`{name}` must be a rectangular numeric array ({exc}).") from None
    if arr.dtype.kind not in "biuf":
        raise DataError(f"`{name}` must hold numbers. Received dtype {arr.dtype} "
                        "(encode strings or categories first, or use from_csv, which one-hot encodes them)")
    if arr.ndim < 2:
        raise DataError(f"`{name}` must have a batch axis and at least one feature axis. "
                        f"Received: shape {arr.shape} (one feature per example? reshape to (n, 1))")
    return arr


def as_labels(y: Any, name: str) -> np.ndarray:
    if y is None:
        raise DataError(f"`{name}` is required. Received: {name}=None")
    y = np.asarray(y)
    if y.ndim == 0:
        raise DataError(f"`{name}` must have one label per example. Received a scalar: {name}={y!r}")
    return y


def check_pair(x: Any, y: Any, x_name: str, y_name: str) -> bool:
    """True when both are given; a DataError when only one is."""
    if (x is None) != (y is None):
        given, missing = (x_name, y_name) if y is None else (y_name, x_name)
        raise DataError(f"`{x_name}` and `{y_name}` go together: received `{given}` but {missing}=None.")
    return x is not None


def check_lengths(x: np.ndarray, y: np.ndarray, split: str) -> None:
    if len(x) != len(y):
        raise DataError(f"Inputs and labels of the {split} split differ in length: "
                        f"{len(x)} inputs, {len(y)} labels.")
    if len(x) == 0:
        raise DataError(f"The {split} split is empty (0 examples).")


def check_finite(x: np.ndarray, split: str) -> None:
    if x.dtype.kind != "f":
        return
    bad = ~np.isfinite(x)
    if bad.any():
        examples = int(bad.reshape(len(x), -1).any(axis=1).sum())
        raise DataError(f"Inputs of the {split} split contain {int(bad.sum())} NaN or infinite values "
                        f"(in {examples} of {len(x)} examples). Impute or drop them first.")


def check_same_shape(shapes: dict) -> None:
    """Every split's per-example input shape equals the training split's."""
    train = shapes["train"]
    for split, shape in shapes.items():
        if shape != train:
            raise DataError(f"Inputs of the {split} split have per-example shape {shape}; "
                            f"the train split's is {train}.")


def class_names(task: Task, indices) -> list:
    names = getattr(task, "classes", None)
    return [names[i] if names else int(i) for i in indices]


def check_classes(y: np.ndarray, task: Task, split: str, minimum: int = 1, why: str = "") -> None:
    """Every class occurs at least ``minimum`` times in ``y`` (encoded class indices)."""
    if not isinstance(task, Classification):
        return
    counts = np.bincount(y, minlength=task.num_classes)
    short = np.flatnonzero(counts < minimum)
    if short.size == 0:
        return
    names = class_names(task, short[:10])
    if minimum == 1:
        raise DataError(f"Class(es) {names} never occur in the {split} split ({len(y)} examples, "
                        f"{task.num_classes} classes); a model cannot learn a class it never sees.")
    raise DataError(f"Class(es) {names} have fewer than {minimum} examples in the {split} split "
                    f"(counts {counts[short[:10]].tolist()}){why}.")


def carve(x: np.ndarray, y: np.ndarray, fraction: float, seed: int, task: Task, part: str, whole: str):
    """Splits ``part`` (a ``fraction``) off ``whole``: stratified for classification.

    Returns ``(x_rest, x_part, y_rest, y_part)``; refuses splits too small
    for every class to appear on both sides.
    """
    from sklearn.model_selection import train_test_split

    n = len(y)
    n_part = math.ceil(fraction * n)  # sklearn's rounding of a float test_size
    n_rest = n - n_part
    classes = task.num_classes if isinstance(task, Classification) else 1
    if n_part < classes or n_rest < classes:
        raise DataError(f"The {whole} split ({n} examples) is too small to carve a {part} split of "
                        f"{fraction:g}: it would hold {n_part} examples and leave {n_rest}, and each side "
                        f"needs at least {classes} (one per class). Give more data, or the {part} split itself.")
    stratified = isinstance(task, Classification)
    if stratified:
        check_classes(y, task, whole, minimum=2,
                      why=f"; carving a stratified {part} split needs at least 2 of each class")
    x_rest, x_part, y_rest, y_part = train_test_split(
        x, y, test_size=fraction, stratify=y if stratified else None, random_state=seed)
    check_classes(y_rest, task, f"{whole} split left after carving the {part}")
    return x_rest, x_part, y_rest, y_part
