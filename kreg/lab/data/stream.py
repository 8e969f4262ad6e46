"""``tf.data`` datasets as splits that are streamed, never materialized.

``StreamSplits`` offers ``DatasetSplits``' interface over three user
pipelines. What needs every example in memory says so with a ``DataError``
(``arrays``, ``bootstrap``); the rest streams: training shuffles through a
seeded buffer, the fixed training sample is the first examples, labels are
read without keeping inputs. The user's pipeline owns standardization.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from kreg.lab.data import checks
from kreg.lab.data.splits import MODALITIES, MODALITY_RANK, InputSpec, modality_of
from kreg.lab.errors import DataError
from kreg.lab.task import Classification, Regression, Task

# Examples of each split read up front to check inputs and labels (a stream cannot be checked whole).
PEEK = 256
# train_sample(None) on a stream: "all of it" could be millions of examples.
DEFAULT_SAMPLE = 1024


@dataclasses.dataclass(eq=False)
class StreamSplits:
    """Train / validation / test ``tf.data`` pipelines of single ``(x, y)`` examples, labels encoded.

    Build one with ``kreg.data.from_datasets``; same interface as ``DatasetSplits``.
    """

    spec: InputSpec
    train: Any
    validation: Any
    test: Any
    seed: int = 0
    shuffle_buffer: int = 10_000
    known_sizes: dict = dataclasses.field(default_factory=dict)
    _samples: dict = dataclasses.field(default_factory=dict, init=False, repr=False)

    @property
    def in_memory(self) -> bool:
        return False

    @property
    def task(self) -> Task:
        return self.spec.task

    def sizes(self) -> dict:
        """Examples per split; None where the pipeline's cardinality is unknown."""
        return {split: self.known_sizes.get(split) for split in checks.SPLITS}

    def describe(self) -> str:
        s = {k: "?" if n is None else n for k, n in self.sizes().items()}
        return (f"{self.spec.dataset or 'tf.data'} (streamed): train {s['train']} / validation {s['validation']} / "
                f"test {s['test']}; {self.spec.task.describe()}; {self.spec.modality} {self.spec.shape}; "
                "not standardized (the input pipeline owns it)")

    def _split(self, split: str):
        return {"train": self.train, "validation": self.validation, "test": self.test}[checks.check_split(split)]

    def train_dataset(self, batch_size: int, batch_map=None):
        """Shuffled through a seeded buffer (reshuffled every epoch), batched, ``batch_map``, prefetched."""
        import tensorflow as tf

        ds = self.train.shuffle(self.shuffle_buffer, seed=self.seed, reshuffle_each_iteration=True)
        ds = ds.batch(batch_size)
        if batch_map is not None:
            ds = batch_map(ds)
        return ds.prefetch(tf.data.AUTOTUNE)

    def eval_dataset(self, split: str, batch_size: int = 256):
        import tensorflow as tf

        return self._split(split).batch(batch_size).prefetch(tf.data.AUTOTUNE)

    def train_sample(self, size: int | None):
        """``size`` training examples as arrays (``DEFAULT_SAMPLE`` for None), read once.

        Drawn through a seeded shuffle buffer rather than taken from the head
        of the stream, so a stream sorted by class still gives a sample of
        every class (within the buffer's reach).
        """
        size = DEFAULT_SAMPLE if size is None else int(size)
        if size not in self._samples:
            buffer = max(size, min(self.shuffle_buffer, 4 * size))
            x, y = _first(self.train.shuffle(buffer, seed=self.seed), size)
            self._samples[size] = (x, y)
        return self._samples[size]

    def arrays(self, split: str):
        raise DataError(f"The {checks.check_split(split)} split is streamed (tf.data) and is never held in "
                        "memory; use eval_dataset(split), labels(split) or train_sample(size).")

    def labels(self, split: str) -> np.ndarray:
        """All labels of a split, read from the stream without keeping the inputs."""
        parts = [y for y in self._split(split).map(lambda x, y: y).batch(4096).as_numpy_iterator()]
        return np.concatenate(parts) if parts else np.zeros((0,), np.int64)

    def bootstrap(self, seed: int):
        raise DataError("Bootstrap resamples (ensembles) need in-memory data; these splits are streamed "
                        "(tf.data). Use from_arrays, or a plan without `ensemble`.")

    @property
    def standardization(self) -> dict:
        return {"mode": "none", "note": "streamed data: the input pipeline owns standardization"}

    def transform(self, x) -> np.ndarray:
        """New inputs as float32 (no standardization: the user's pipeline owns it)."""
        x = np.asarray(x, np.float32)
        if x.shape[1:] != self.spec.shape and x.shape[1:] + (1,) == self.spec.shape:
            x = x[..., None]
        if x.shape[1:] != self.spec.shape:
            raise DataError(f"Inputs to transform must have per-example shape {self.spec.shape}. "
                            f"Received: shape {tuple(x.shape)}")
        return x


def from_datasets(
    train,
    *,
    validation,
    test,
    task,
    num_classes: int | None = None,
    modality: str | None = None,
    batched: bool = False,
    shuffle_buffer: int = 10_000,
    seed: int = 0,
    name: str = "tf.data",
) -> StreamSplits:
    """Splits over ``tf.data`` datasets of ``(x, y)`` elements, streamed, never materialized.

    Shapes come from ``element_spec``; the first ``PEEK`` examples of each
    split are read to check inputs (finite) and labels (they fit the task).
    No standardization: the pipeline you give owns it. Validation and test
    are required (a stream cannot be carved without reading it).

    Args:
        train: Training examples.
        validation: Validation examples.
        test: Test examples.
        task: ``"classification"`` (with ``num_classes``), ``"regression"`` or a ``Task``.
        num_classes: Class count, for ``task="classification"``.
        modality: ``"tabular"``, ``"sequence"`` or ``"image"``. Default: from
            the per-example rank (1, 2, 3).
        batched: True when the datasets yield batches: kreg unbatches them and
            batches again to each trial's batch size. Default False.
        shuffle_buffer: Examples in the training shuffle buffer. Default 10000.
        seed: Seed of the shuffling. Default 0.
        name: Name of the source in reports. Default ``"tf.data"``.

    Example:
        >>> train = tf.data.Dataset.from_tensor_slices((x, y))
        >>> splits = kreg.data.from_datasets(train, validation=val, test=test,
        ...                                  task="classification", num_classes=10)
    """
    import tensorflow as tf

    if not isinstance(batched, bool):
        raise checks.invalid("batched", "a boolean", batched)
    if isinstance(shuffle_buffer, bool) or not isinstance(shuffle_buffer, int) or shuffle_buffer < 1:
        raise checks.invalid("shuffle_buffer", "a positive integer", shuffle_buffer)
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise checks.invalid("seed", "a non-negative integer", seed)
    if modality is not None and modality not in MODALITIES:
        raise checks.invalid("modality", f"one of {', '.join(map(repr, MODALITIES))}", modality)
    raw = {"train": train, "validation": validation, "test": test}
    shapes, label_shapes = {}, {}
    for split, ds in raw.items():
        if not isinstance(ds, tf.data.Dataset):
            raise DataError(f"`{split}` must be a tf.data.Dataset of (x, y) elements. "
                            f"Received: {type(ds).__name__}")
        x_spec, y_spec = _element_spec(ds, split)
        if batched:
            x_spec, y_spec = _unbatched(x_spec, split), _unbatched(y_spec, split)
            ds = ds.unbatch()
        shapes[split], label_shapes[split] = tuple(x_spec.shape), tuple(y_spec.shape)
        raw[split] = ds
    if None in shapes["train"]:
        raise DataError(f"Training inputs need a fully known per-example shape. Received: {shapes['train']} "
                        "(pad or resize in the pipeline)")
    checks.check_same_shape(shapes)
    task = _task(task, num_classes, label_shapes["train"])
    modality = modality or modality_of(shapes["train"])
    expand = _expand(shapes["train"], modality)

    sizes = {}
    for split, ds in raw.items():
        sizes[split] = _cardinality(ds, split, batched)
        x, y = _first(ds, PEEK)  # raw elements: the checks see what the user gave
        checks.check_lengths(x, y, split)
        checks.check_finite(x, split)
        task.encode(y, split)
    prepare = _prepare(task, expand)
    pipelines = {split: ds.map(prepare, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
                 for split, ds in raw.items()}
    shape = shapes["train"] + ((1,) if expand else ())
    num = task.num_classes if isinstance(task, Classification) else None
    spec = InputSpec(shape, num, modality, dataset=name, task=task)
    return StreamSplits(spec, pipelines["train"], pipelines["validation"], pipelines["test"], seed=seed,
                        shuffle_buffer=shuffle_buffer, known_sizes=sizes)


def _element_spec(ds, split: str):
    import tensorflow as tf

    spec = ds.element_spec
    if not (isinstance(spec, tuple) and len(spec) == 2 and all(isinstance(s, tf.TensorSpec) for s in spec)):
        raise DataError(f"Elements of the {split} dataset must be (x, y) pairs of tensors; map dict or "
                        f"multi-input elements to (x, y) first. Received element_spec={spec}")
    x_spec, y_spec = spec
    if not (x_spec.dtype.is_floating or x_spec.dtype.is_integer or x_spec.dtype.is_bool):
        raise DataError(f"Inputs of the {split} dataset must be numbers. Received dtype {x_spec.dtype.name}")
    if y_spec.dtype == tf.string:
        raise DataError(f"Labels of the {split} dataset are strings; map them to class indices in the pipeline "
                        "(e.g. tf.keras.layers.StringLookup), or use from_arrays/from_csv, which encode them.")
    return x_spec, y_spec


def _unbatched(spec, split: str):
    import tensorflow as tf

    if spec.shape.rank is None or spec.shape.rank < 1:
        raise DataError(f"batched=True, but the {split} dataset yields unbatched elements "
                        f"(element_spec shape {spec.shape}).")
    return tf.TensorSpec(spec.shape[1:], spec.dtype)


def _task(task, num_classes, label_shape) -> Task:
    if isinstance(task, Task):
        return task
    if task == "classification":
        if isinstance(num_classes, bool) or not isinstance(num_classes, int):
            raise checks.invalid("num_classes", "an integer of at least 2 (required with task='classification' "
                                 "for tf.data, which is not read ahead)", num_classes)
        return Classification(num_classes)
    if task == "regression":
        if None in label_shape:
            raise DataError(f"Regression targets need a fully known per-example shape. Received: {label_shape}")
        return Regression(targets=int(np.prod(label_shape)) if label_shape else 1)
    raise checks.invalid("task", "'classification' or 'regression' (declared: a stream is not read ahead "
                         "to infer it)", task)


def _expand(shape: tuple, modality: str) -> bool:
    rank = MODALITY_RANK[modality]
    if len(shape) == rank - 1 and modality != "tabular":
        return True  # (steps,) sequences and (h, w) images get a channel axis
    if len(shape) != rank:
        raise DataError(f"Per-example input shape {shape} does not fit modality {modality!r}.")
    return False


def _prepare(task: Task, expand: bool):
    """The map that casts inputs to float32 and encodes labels as the in-memory splits do."""
    import tensorflow as tf

    def prepare(x, y):
        x = tf.cast(x, tf.float32)
        if expand:
            x = x[..., None]
        if isinstance(task, Classification):
            if y.shape.rank == 1 and y.shape[0] == task.num_classes and task.num_classes > 1:
                y = tf.argmax(y, axis=-1)  # one-hot rows
            y = tf.reshape(tf.cast(y, tf.int64), [])
        else:
            y = tf.reshape(tf.cast(y, tf.float32), [task.targets])
        return x, y

    return prepare


def _cardinality(ds, split: str, batched: bool) -> int | None:
    import tensorflow as tf

    n = int(ds.cardinality())
    if n == tf.data.INFINITE_CARDINALITY:
        raise DataError(f"The {split} dataset is infinite (repeat()); give one pass over the data, "
                        "kreg repeats it per epoch.")
    if n == 0:
        raise DataError(f"The {split} split is empty (0 examples).")
    return None if n < 0 else n


def _first(ds, size: int):
    """The first ``size`` elements of an unbatched dataset as numpy arrays."""
    batch = next(iter(ds.take(size).batch(max(size, 1)).as_numpy_iterator()), None)
    if batch is None:
        return np.zeros((0,), np.float32), np.zeros((0,), np.int64)
    return batch
