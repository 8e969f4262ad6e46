"""In-memory train / validation / test splits, and the input spec a model builder needs.

``DatasetSplits`` holds NumPy arrays that every source (arrays, npz, CSV,
tfds, packaged datasets, loaders) ends up as; ``StreamSplits``
(``kreg.lab.data.stream``) offers the same interface over ``tf.data``
pipelines that are never materialized. Labels inside splits are already
encoded by the task: int64 class indices, or float32 ``(n, targets)``.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Literal

import numpy as np

from kreg.lab.data.checks import check_split, invalid
from kreg.lab.errors import DataError
from kreg.lab.task import Classification, Task

Modality = Literal["tabular", "sequence", "image"]
MODALITIES = ("tabular", "sequence", "image")
STANDARDIZE = ("none", "global", "feature")
# Rank of one example (batch axis excluded) of each modality.
MODALITY_RANK = {"tabular": 1, "sequence": 2, "image": 3}
_RANK_MODALITY = {rank: modality for modality, rank in MODALITY_RANK.items()}


def modality_of(shape) -> Modality:
    """Modality from the per-example shape: 1 axis tabular, 2 sequence, 3 image."""
    return _RANK_MODALITY.get(len(shape), "image")


@dataclasses.dataclass(frozen=True)
class InputSpec:
    """What a model builder needs to know about its input and output.

    Args:
        shape: Shape of one example (no batch axis).
        num_classes: Number of classes; None for regression.
        modality: ``"tabular"``, ``"sequence"`` or ``"image"``.
        dataset: Name of the data source, for reports. Default ``""``.
        task: The task; default ``Classification(num_classes)``.

    Example:
        >>> InputSpec((40, 1), 10, "sequence").output_units
        10
        >>> InputSpec((10,), None, "tabular", task=Regression(1)).output_units
        1
    """

    shape: tuple
    num_classes: int | None
    modality: Modality
    dataset: str = ""
    task: Task | None = None

    def __post_init__(self):
        object.__setattr__(self, "shape", tuple(int(d) for d in self.shape))
        if self.modality not in MODALITIES:
            raise invalid("modality", f"one of {', '.join(MODALITIES)}", self.modality)
        task = self.task
        if task is None:
            if self.num_classes is None:
                raise DataError("InputSpec needs `num_classes` (classification) or a `task`. "
                                "Received: num_classes=None, task=None")
            task = Classification(int(self.num_classes))
            object.__setattr__(self, "task", task)
        if isinstance(task, Classification):
            if self.num_classes is None:
                object.__setattr__(self, "num_classes", task.num_classes)
            elif self.num_classes != task.num_classes:
                raise DataError(f"InputSpec's num_classes={self.num_classes} disagrees with its task "
                                f"({task.describe()}).")
        elif self.num_classes is not None:
            raise DataError(f"InputSpec for a {task.describe()} task takes num_classes=None. "
                            f"Received: num_classes={self.num_classes!r}")

    @property
    def output_units(self) -> int:
        """Units of the model's (linear) output layer."""
        return self.task.output_units("linear")


@dataclasses.dataclass(frozen=True, eq=False)
class Standardization:
    """A z-score fitted on training inputs only, applied to every split and to new inputs.

    Args:
        mode: ``"feature"`` (per input position), ``"global"`` (one mean and
            std) or ``"none"`` (inputs only cast to float32).
        mean: Training mean (array for ``"feature"``, float for ``"global"``).
        std: Training standard deviation, 1 where it is 0.
    """

    mode: str = "none"
    mean: Any = None
    std: Any = None

    @classmethod
    def fit(cls, mode: str, x: np.ndarray) -> Standardization:
        if mode not in STANDARDIZE:
            raise invalid("standardize", f"one of {', '.join(map(repr, STANDARDIZE))}", mode)
        if mode == "none":
            return cls("none")
        axis = 0 if mode == "feature" else None
        # float64 accumulators: a float32 sum over many examples drifts.
        mean = np.asarray(x.mean(axis=axis, dtype=np.float64), np.float32)
        std = np.asarray(x.std(axis=axis, dtype=np.float64), np.float32)
        std = np.where(std > 0, std, np.float32(1.0)).astype(np.float32)
        if mode == "global":
            mean, std = float(mean), float(std)
        return cls(mode, mean, std)

    def apply(self, x) -> np.ndarray:
        x = np.asarray(x, np.float32)
        if self.mode == "none":
            return x
        return ((x - self.mean) / self.std).astype(np.float32)

    def invert(self, x) -> np.ndarray:
        """Standardized inputs back in their raw units (float64)."""
        x = np.asarray(x, np.float64)
        if self.mode == "none":
            return x
        return x * np.asarray(self.std, np.float64) + np.asarray(self.mean, np.float64)

    def as_dict(self) -> dict:
        if self.mode == "none":
            return {"mode": "none"}
        return {"mode": self.mode, "mean": self.mean, "std": self.std}

    def describe(self) -> str:
        return {"none": "not standardized", "global": "standardized globally from training statistics",
                "feature": "standardized per feature from training statistics"}[self.mode]


@dataclasses.dataclass
class DatasetSplits:
    """In-memory splits of one dataset, and ``tf.data`` pipelines over them.

    Inputs are float32 and already standardized; labels are encoded by
    ``spec.task``. Build one with ``kreg.data.from_arrays`` (or any source).

    Example:
        >>> splits = kreg.data.from_arrays(x, y, x_test=x_test, y_test=y_test)
        >>> model.fit(splits.train_dataset(64), validation_data=splits.eval_dataset("validation"))
    """

    spec: InputSpec
    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    seed: int = 0
    scaler: Standardization = dataclasses.field(default_factory=Standardization)
    # Set by from_csv: turns raw DataFrames into the model's feature columns.
    encoder: Any = None
    test_carved: bool = False
    # Shape of one raw example as the user gave it, before kreg added a channel axis (None: ``spec.shape``).
    raw_shape: tuple | None = None
    raw_dtype: str | None = None  # the dtype of the user's raw inputs (the MLflow model's signature)

    @property
    def in_memory(self) -> bool:
        return True

    @property
    def task(self) -> Task:
        return self.spec.task

    def sizes(self) -> dict:
        return {"train": len(self.y_train), "validation": len(self.y_val), "test": len(self.y_test)}

    def describe(self) -> str:
        """One line: source, sizes, task, modality, standardization."""
        s = self.sizes()
        carved = " (carved from training, fixed seed)" if self.test_carved else ""
        return (f"{self.spec.dataset or 'arrays'}: train {s['train']} / validation {s['validation']} / "
                f"test {s['test']}{carved}; {self.spec.task.describe()}; {self.spec.modality} "
                f"{self.spec.shape}; {self.scaler.describe()}")

    def train_dataset(self, batch_size: int, batch_map=None):
        """Shuffled (by seed, reshuffled every epoch), batched, prefetched.

        ``batch_map`` (dataset -> dataset) runs on the batched pipeline, e.g.
        ``kreg.augment.mix_batches`` for MixUp / CutMix.
        """
        import tensorflow as tf

        ds = tf.data.Dataset.from_tensor_slices((self.x_train, self.y_train))
        ds = ds.shuffle(len(self.y_train), seed=self.seed, reshuffle_each_iteration=True)
        ds = ds.batch(batch_size)
        if batch_map is not None:
            ds = batch_map(ds)
        return ds.prefetch(tf.data.AUTOTUNE)

    def eval_dataset(self, split: str, batch_size: int = 256):
        """One split, in order, batched, prefetched."""
        import tensorflow as tf

        x, y = self.arrays(split)
        ds = tf.data.Dataset.from_tensor_slices((x, y))
        return ds.batch(batch_size).prefetch(tf.data.AUTOTUNE)

    def arrays(self, split: str):
        """``(x, y)`` of ``"train"``, ``"validation"`` or ``"test"``."""
        check_split(split)
        if split == "train":
            return self.x_train, self.y_train
        if split == "validation":
            return self.x_val, self.y_val
        return self.x_test, self.y_test

    def labels(self, split: str) -> np.ndarray:
        return self.arrays(split)[1]

    def train_sample(self, size: int | None):
        """A fixed sample of the training split (stratified for classification; all of it for None)."""
        if size is None or size >= len(self.y_train):
            return self.x_train, self.y_train
        from sklearn.model_selection import train_test_split

        stratify = self.y_train if isinstance(self.spec.task, Classification) else None
        try:
            _, x, _, y = train_test_split(self.x_train, self.y_train, test_size=size, stratify=stratify,
                                          random_state=self.seed)
        except ValueError:  # fewer draws than classes, or a class of one: a plain fixed sample
            index = np.sort(np.random.default_rng(self.seed).choice(len(self.y_train), size, replace=False))
            x, y = self.x_train[index], self.y_train[index]
        return x, y

    def bootstrap(self, seed: int) -> DatasetSplits:
        """These splits with the training split resampled with replacement (ensemble members)."""
        rng = np.random.default_rng(seed)
        index = rng.integers(0, len(self.y_train), len(self.y_train))
        return dataclasses.replace(self, x_train=self.x_train[index], y_train=self.y_train[index], seed=seed)

    @property
    def standardization(self) -> dict:
        """What was done to the inputs: ``{"mode": ..., "mean": ..., "std": ...}``."""
        return self.scaler.as_dict()

    def transform(self, x) -> np.ndarray:
        """New raw inputs, prepared as the splits' inputs were (encoded, standardized).

        Accepts an array of raw inputs, or a pandas DataFrame with the
        feature columns when the splits came from ``from_csv``.
        """
        if self.encoder is not None and hasattr(x, "columns"):
            x = self.encoder.transform(x, "input")
        x = np.asarray(x)
        if x.shape[1:] != self.spec.shape and x.shape[1:] + (1,) == self.spec.shape:
            x = x[..., None]  # the channel axis from_arrays added for a declared modality
        if x.shape[1:] != self.spec.shape:
            raise DataError(f"Inputs to transform must have per-example shape {self.spec.shape}. "
                            f"Received: shape {tuple(x.shape)}")
        return self.scaler.apply(x)

