"""What is being predicted: classification or regression, and everything that follows from it.

A task decides the loss (the plan's techniques edit it through their ``loss``
hooks: label smoothing, the confidence penalty), the metrics and their honest
gaps, the default objective and its direction, the end-of-trial test figures
and the headline metric of the search summary. It is inferred from the labels
(integers, strings, booleans or one-hot rows: classification; floats:
regression) or declared.

Importable without Keras: the loss and metrics are built on demand.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from kreg.lab.errors import DataError

TASK_KINDS = ("classification", "regression")


@dataclasses.dataclass(frozen=True)
class Task:
    """Base of the two tasks; see ``Classification`` and ``Regression``."""

    kind = ""
    # The headline metric: summary tables, gains, progress lines.
    primary = "loss"
    default_objective = "val_loss"
    data_loss = "loss"  # the logged figure the gap-penalized objective uses

    def metric_names(self) -> tuple[str, ...]:
        """Figures every trial reports for train (inference mode), validation and test."""
        return ("loss", self.primary)

    def higher_is_better(self, metric: str) -> bool:
        from kreg.callbacks.gap import lower_is_better

        return not lower_is_better(metric)

    def direction(self, objective: str) -> str:
        """``"max"`` or ``"min"`` for an objective such as ``val_accuracy``."""
        if objective == "val_penalized_loss":
            return "min"
        return "max" if self.higher_is_better(objective.removeprefix("val_")) else "min"

    def objectives(self) -> tuple[str, ...]:
        return (*(f"val_{m}" for m in self.metric_names()), "gap_penalized")

    def describe(self) -> str:
        return self.kind


@dataclasses.dataclass(frozen=True)
class Classification(Task):
    """Integer class labels ``0..num_classes-1`` (one-hot or string labels are encoded to them).

    Args:
        num_classes: Number of classes (2 or more).
        classes: Names of the classes when the labels were strings, in index order.
    """

    num_classes: int = 2
    classes: tuple | None = None

    kind = "classification"
    primary = "accuracy"
    default_objective = "val_accuracy"
    # The data loss without the weight penalties, label smoothing or confidence penalty that
    # Keras adds into ``loss``: what the gap-penalized objective and ensembles compare.
    data_loss = "nll"

    def metric_names(self) -> tuple[str, ...]:
        return ("loss", "nll", "accuracy", "ece")

    def __post_init__(self):
        if isinstance(self.num_classes, bool) or not isinstance(self.num_classes, (int, np.integer)) \
                or self.num_classes < 2:
            raise DataError(f"A classification task needs at least 2 classes. Received: num_classes={self.num_classes!r}")

    def describe(self) -> str:
        return f"classification ({self.num_classes} classes)"

    def encode(self, y, split: str = "train") -> np.ndarray:
        """Labels as int64 class indices, checked against the task."""
        y = np.asarray(y)
        if self.classes is not None and y.dtype.kind in "OUSb":
            index = {c: i for i, c in enumerate(self.classes)}
            unknown = sorted({str(c) for c in y.reshape(-1) if c not in index})
            if unknown:
                raise DataError(f"Labels of the {split} split are not among the training classes "
                                f"{list(self.classes)}. Received: {unknown[:5]}")
            return np.array([index[c] for c in y.reshape(-1)], np.int64)
        if y.ndim == 2 and y.shape[1] > 1:
            if y.shape[1] != self.num_classes:
                raise DataError(f"One-hot labels of the {split} split have {y.shape[1]} columns; "
                                f"the task has {self.num_classes} classes.")
            if not _is_one_hot(y):
                raise DataError(f"Labels of the {split} split are rows of {y.shape[1]} values that are not one-hot "
                                "(one 1 and the rest 0 per row); soft labels are made by MixUp/CutMix, not given.")
            return y.argmax(axis=1).astype(np.int64)
        y = y.reshape(-1) if y.ndim == 2 and y.shape[1] == 1 else y
        if y.ndim != 1:
            raise DataError(f"Labels of the {split} split must be a vector of class indices. "
                            f"Received: shape {tuple(y.shape)}")
        if y.dtype.kind == "b":
            y = y.astype(np.int64)
        if y.dtype.kind == "f":
            if not np.all(np.isfinite(y)) or not np.all(y == np.round(y)):
                bad = y[~(np.isfinite(y) & (y == np.round(y)))][:3]
                raise DataError(f"Labels of the {split} split must be class indices for a classification task. "
                                f"Received non-integer values such as {bad.tolist()}")
        elif y.dtype.kind not in "iu":
            raise DataError(f"Labels of the {split} split must be class indices. Received dtype {y.dtype}")
        y = y.astype(np.int64)
        if y.size and (y.min() < 0 or y.max() >= self.num_classes):
            raise DataError(f"Labels of the {split} split must lie in [0, {self.num_classes - 1}]. "
                            f"Received values from {y.min()} to {y.max()}")
        return y

    def stratify(self, y) -> np.ndarray:
        return np.asarray(y)

    # --------------------------------------------------------- model side
    def output_units(self, activation: str) -> int:
        """Units the model's output needs: 1 for a binary head (sigmoid or one logit), else one per class."""
        return 1 if activation in ("sigmoid", "binary_logit") else self.num_classes

    def loss(self, plan, activation: str = "linear"):
        """Cross-entropy, edited by the plan's techniques' ``loss`` hooks (label smoothing, the
        confidence penalty: ``kreg.lab.techniques.losses``).

        ``activation`` is the output layer's: ``"linear"`` (logits),
        ``"softmax"``, ``"sigmoid"`` (one unit, binary) or ``"binary_logit"``
        (one linear unit, binary).
        """
        from kreg.lab.techniques import placing
        from kreg.lab.techniques.base import LossSite

        if activation in ("sigmoid", "binary_logit"):
            from kreg.lab.metrics import BinaryHeadCrossentropy

            site = LossSite(self.kind, "binary", BinaryHeadCrossentropy, {"from_logits": activation == "binary_logit"})
        else:
            from kreg.losses import SparseCategoricalCrossentropy

            site = LossSite(self.kind, "categorical", SparseCategoricalCrossentropy,
                            {"from_logits": activation != "softmax"})
        return placing.loss(plan, site)

    def metrics(self, plan, activation: str = "linear", mixing: bool = False) -> list:
        """``accuracy`` (top class; soft labels of mixing count as their top class) and ``ece``."""
        import keras

        from kreg.metrics import ExpectedCalibrationError, TopClassAccuracy

        from kreg.losses import SparseCategoricalCrossentropy

        if activation in ("sigmoid", "binary_logit"):
            logit = activation == "binary_logit"
            from kreg.lab.metrics import BinaryHeadCrossentropy

            return [keras.metrics.MeanMetricWrapper(BinaryHeadCrossentropy(from_logits=logit), name="nll"),
                    keras.metrics.BinaryAccuracy(name="accuracy", threshold=0.0 if logit else 0.5)]
        from_logits = activation != "softmax"
        # kreg's loss as a metric: no smoothing, and it takes the soft labels of mixed batches too.
        nll = keras.metrics.MeanMetricWrapper(SparseCategoricalCrossentropy(from_logits=from_logits), name="nll")
        accuracy = TopClassAccuracy() if mixing else keras.metrics.SparseCategoricalAccuracy(name="accuracy")
        return [nll, accuracy, ExpectedCalibrationError(from_logits=from_logits, name="ece")]

    @staticmethod
    def probabilities(outputs: np.ndarray, activation: str) -> np.ndarray:
        """Class probabilities ``(n, num_classes)`` from the model's raw outputs."""
        outputs = np.asarray(outputs, np.float64)
        if activation in ("sigmoid", "binary_logit"):
            p = outputs.reshape(-1)
            if activation == "binary_logit":
                p = 1 / (1 + np.exp(-p))
            return np.stack([1 - p, p], axis=1)
        if activation == "softmax":
            return outputs
        z = outputs - outputs.max(axis=1, keepdims=True)
        e = np.exp(z)
        return e / e.sum(axis=1, keepdims=True)

    def figures(self, probabilities: np.ndarray, y) -> dict:
        """Loss (cross-entropy), accuracy and ECE of averaged probabilities (ensembles)."""
        y = np.asarray(y).reshape(-1).astype(int)
        picked = np.clip(probabilities[np.arange(len(y)), y], 1e-12, 1.0)
        nll = float(-np.mean(np.log(picked)))
        return {"loss": nll, "nll": nll,
                "accuracy": float(np.mean(probabilities.argmax(-1) == y)),
                "ece": _ece(probabilities, y)}

    def resampled_figures(self, probabilities: np.ndarray, y, index: np.ndarray) -> dict:
        """``figures`` of every resample ``probabilities[i], y[i]`` for the rows ``i`` of ``index``
        (``(rounds, n)``, a bootstrap), as arrays of ``rounds`` values, computed for all rows at once.

        The loss, NLL and accuracy are computed as ``figures`` computes them; the ECE bins each example as
        kreg's ``ExpectedCalibrationError`` does (float32 confidences) and sums in float64, so it agrees
        with the metric to float32 rounding (about 1e-7), where ``figures`` runs the Keras metric once a
        resample (about 9 ms each: 2000 resamples were 18 s of a search's end).
        """
        y = np.asarray(y).reshape(-1).astype(int)
        rounds, n = index.shape
        picked = np.clip(probabilities[np.arange(len(y)), y], 1e-12, 1.0)
        log_picked = np.log(picked)
        nll = -np.array([np.mean(log_picked[i]) for i in index])
        right = probabilities.argmax(-1) == y
        accuracy = np.array([np.mean(right[i]) for i in index])
        bins = 15  # ExpectedCalibrationError's default, as ``_ece`` uses it
        confidence = np.max(probabilities.astype(np.float32), axis=-1)
        which = np.clip(np.ceil(confidence * np.float32(bins)).astype(np.int64) - 1, 0, bins - 1)
        slot = (which[index] + bins * np.arange(rounds)[:, None]).ravel()
        counts = np.bincount(slot, minlength=rounds * bins).reshape(rounds, bins)
        conf_sum = np.bincount(slot, weights=confidence.astype(np.float64)[index].ravel(),
                               minlength=rounds * bins).reshape(rounds, bins)
        correct = probabilities.astype(np.float32).argmax(-1) == y
        correct_sum = np.bincount(slot, weights=correct.astype(np.float64)[index].ravel(),
                                  minlength=rounds * bins).reshape(rounds, bins)
        safe = np.maximum(counts, 1)
        ece = np.sum(counts / n * np.abs(correct_sum / safe - conf_sum / safe), axis=1)
        return {"loss": nll, "nll": nll, "accuracy": accuracy, "ece": ece}


@dataclasses.dataclass(frozen=True)
class Regression(Task):
    """Real-valued targets, one or several per example.

    Targets are trained standardized (``offset``/``scale``: the training
    targets' mean and standard deviation, set by the data source), as the
    inputs are, so weight penalties mean the same whatever the targets'
    units; ``loss`` is the MSE of the standardized targets, while ``mse``,
    ``mae`` and ``rmse`` are reported in the targets' own units (``r2`` has
    none).

    Args:
        targets: Number of target values per example. Default 1.
        offset: Per-target mean subtracted before training. Default None (0).
        scale: Per-target standard deviation divided out. Default None (1).
    """

    targets: int = 1
    offset: tuple | None = None
    scale: tuple | None = None

    kind = "regression"
    primary = "rmse"
    # ``loss`` holds the weight penalties Keras adds; ``mse`` is the data's own error (in the targets' units).
    default_objective = "val_mse"
    data_loss = "mse"

    def metric_names(self) -> tuple[str, ...]:
        return ("loss", "mse", "mae", "rmse", "r2")

    def describe(self) -> str:
        return "regression" + (f" ({self.targets} targets)" if self.targets > 1 else "")

    def standardized(self, y_train) -> "Regression":
        """The same task with the training targets' mean and standard deviation as offset and scale."""
        y = np.asarray(y_train, np.float64).reshape(-1, self.targets)
        std = y.std(axis=0)
        return dataclasses.replace(self, offset=tuple(float(m) for m in y.mean(axis=0)),
                                   scale=tuple(float(s) if s > 0 else 1.0 for s in std))

    def to_training(self, y) -> np.ndarray:
        """Targets in the units the model trains on (standardized when the task has a scale)."""
        if self.scale is None:
            return y
        return ((np.asarray(y, np.float64) - np.array(self.offset)) / np.array(self.scale)).astype(np.float32)

    def to_units(self, z) -> np.ndarray:
        """Model outputs back in the targets' own units."""
        if self.scale is None:
            return np.asarray(z)
        return np.asarray(z, np.float64) * np.array(self.scale) + np.array(self.offset)

    def encode(self, y, split: str = "train") -> np.ndarray:
        """Targets as float32 ``(n, targets)``, checked finite."""
        y = np.asarray(y)
        if y.dtype.kind not in "fiub":
            raise DataError(f"Targets of the {split} split must be numbers for a regression task. "
                            f"Received dtype {y.dtype}")
        y = y.astype(np.float32)
        y = y.reshape(-1, 1) if y.ndim == 1 else y
        if y.ndim != 2 or y.shape[1] != self.targets:
            raise DataError(f"Targets of the {split} split must have shape (n, {self.targets}). "
                            f"Received: shape {tuple(y.shape)}")
        if not np.all(np.isfinite(y)):
            raise DataError(f"Targets of the {split} split contain NaN or infinite values "
                            f"({int(np.sum(~np.isfinite(y)))} of {y.size}).")
        return y

    def stratify(self, y):
        return None  # plain random splits

    def output_units(self, activation: str) -> int:
        return self.targets

    def loss(self, plan, activation: str = "linear"):
        """The mean squared error (of the standardized targets), edited by the ``loss`` hooks of the plan's
        techniques that fit regression (none of kreg's does)."""
        import keras

        from kreg.lab.techniques import placing
        from kreg.lab.techniques.base import LossSite

        return placing.loss(plan, LossSite(self.kind, "regression", keras.losses.MeanSquaredError, {"name": "loss"}))

    def metrics(self, plan, activation: str = "linear", mixing: bool = False) -> list:
        """``mse``, ``mae``, ``rmse`` in the targets' units and ``r2``."""
        import keras

        from kreg.lab.metrics import InUnits

        scale = list(self.scale) if self.scale is not None else [1.0] * self.targets
        return [InUnits(keras.metrics.MeanSquaredError(name="mse"), scale),
                InUnits(keras.metrics.MeanAbsoluteError(name="mae"), scale),
                InUnits(keras.metrics.RootMeanSquaredError(name="rmse"), scale),
                keras.metrics.R2Score(name="r2")]

    def figures(self, predictions: np.ndarray, y) -> dict:
        """Loss (standardized MSE), MSE, MAE, RMSE (targets' units) and R2 of averaged predictions (ensembles)."""
        y = np.asarray(y, np.float64).reshape(predictions.shape)
        err = predictions - y
        units = err * (np.array(self.scale) if self.scale is not None else 1.0)
        mse = float(np.mean(units ** 2))
        ss_tot = np.sum((y - y.mean(axis=0)) ** 2, axis=0)
        r2 = 1 - np.sum(err ** 2, axis=0) / np.where(ss_tot > 0, ss_tot, np.nan)
        return {"loss": float(np.mean(err ** 2)), "mse": mse, "mae": float(np.mean(np.abs(units))),
                "rmse": float(np.sqrt(mse)), "r2": float(np.nanmean(r2))}


def _ece(probabilities: np.ndarray, y: np.ndarray) -> float:
    """kreg's own ``ExpectedCalibrationError`` (15 bins) over probabilities already averaged."""
    import keras

    from kreg.metrics import ExpectedCalibrationError

    ece = ExpectedCalibrationError()
    ece.update_state(y, probabilities.astype("float32"))
    return float(keras.ops.convert_to_numpy(ece.result()))


def _is_one_hot(y: np.ndarray) -> bool:
    return bool(np.all((y == 0) | (y == 1)) and np.all(y.sum(axis=1) == 1))


def infer_task(y, declared: str | Task | None = None, num_classes: int | None = None) -> Task:
    """The task the training labels ``y`` mean, or the declared one checked against them.

    Integers, booleans and strings are class labels; rows of 0/1 summing to 1
    are one-hot class labels; floats are regression targets (declare
    ``"classification"`` for float class indices). ``num_classes`` overrides
    the count seen in the labels (a class absent from training is then an error).
    """
    if isinstance(declared, Task):
        return declared
    if declared is not None and declared not in TASK_KINDS:
        raise DataError(f"Invalid value received for `task`. Expected one of {', '.join(TASK_KINDS)}. "
                        f"Received: task={declared!r}")
    y = np.asarray(y)
    if y.size == 0:
        raise DataError("The training split has no labels.")
    if declared is None:
        if y.ndim == 2 and y.shape[1] > 1:
            # Several columns: one-hot rows are classes; anything else (integer counts too) is targets.
            declared = "classification" if _is_one_hot(y) else "regression"
        else:
            declared = "classification" if y.dtype.kind in "iubOUS" else "regression"
    if declared == "regression":
        return Regression(targets=1 if y.ndim == 1 else int(np.prod(y.shape[1:])))
    if y.dtype.kind in "OUS":
        classes = tuple(sorted({c.item() if hasattr(c, "item") else c for c in y.reshape(-1)}, key=str))
        return Classification(num_classes=len(classes), classes=classes)
    if y.ndim == 2 and y.shape[1] > 1:
        return Classification(num_classes=int(y.shape[1]))
    if num_classes is not None and (isinstance(num_classes, bool) or not isinstance(num_classes, (int, np.integer))
                                    or num_classes < 2):
        raise DataError("Invalid value received for `num_classes`. Expected an integer of at least 2. "
                        f"Received: num_classes={num_classes!r}")
    flat = y.reshape(-1)
    if flat.dtype.kind == "f" and not np.all(np.isfinite(flat) & (flat == np.round(flat))):
        bad = flat[~(np.isfinite(flat) & (flat == np.round(flat)))][:3]
        raise DataError("Labels of the train split must be class indices for a classification task. "
                        f"Received non-integer values such as {bad.tolist()}")
    if flat.size and flat.min() < 0:
        raise DataError("Labels of the train split must be class indices 0..num_classes-1. Received values "
                        f"from {flat.min()} to {flat.max()} (map them to 0..k-1, or pass them as strings).")
    seen = int(flat.max()) + 1 if flat.size else 0
    count = num_classes or seen
    if count < seen:
        raise DataError(f"Invalid value received for `num_classes`. Expected at least {seen} "
                        f"(the largest label is {seen - 1}). Received: num_classes={num_classes}")
    task = Classification(num_classes=max(count, 2))
    present = set(np.unique(flat.astype(np.int64)).tolist())
    missing = sorted(set(range(task.num_classes)) - present)
    if missing:
        raise DataError(f"Class(es) {missing[:10]} never occur in the training split "
                        f"({task.num_classes} classes); a model cannot learn a class it never sees. Class "
                        "indices run from 0 to num_classes-1 (labels such as 1..k: subtract 1 or pass them as "
                        "strings; real-valued targets: declare task='regression').")
    return task
