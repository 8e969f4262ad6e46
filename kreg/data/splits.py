"""Train / validation / test splits as ``tf.data`` pipelines.

One call, ``load_splits``, turns a dataset name into deterministic, stratified
splits with the input spec a model builder needs. The test split is the
dataset's own fixed test split and never depends on the run seed; validation is
carved out of the training split, stratified, from the run seed.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import logging
from typing import Literal

import numpy as np

from kreg import _validation as v
from kreg.data.names import TFDS_PREFIX
from kreg.data.names import DataError
from kreg.data.names import available_datasets
from kreg.data.names import is_known_dataset

Modality = Literal["tabular", "sequence", "image"]
STANDARDIZE = ("none", "global", "feature")


@dataclasses.dataclass(frozen=True)
class InputSpec:
    """What a model builder needs to know about its input."""

    shape: tuple
    num_classes: int
    modality: Modality
    dataset: str = ""


@dataclasses.dataclass
class DatasetSplits:
    """In-memory splits of one dataset, and ``tf.data`` pipelines over them."""

    spec: InputSpec
    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    seed: int = 0

    def sizes(self) -> dict:
        return {"train": len(self.y_train), "validation": len(self.y_val), "test": len(self.y_test)}

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
        """Validation or test split, in order, batched, prefetched."""
        import tensorflow as tf

        x, y = self.arrays(split)
        ds = tf.data.Dataset.from_tensor_slices((x, y))
        return ds.batch(batch_size).prefetch(tf.data.AUTOTUNE)

    def arrays(self, split: str):
        v.check_choice("split", split, ("train", "validation", "test"))
        if split == "train":
            return self.x_train, self.y_train
        if split == "validation":
            return self.x_val, self.y_val
        return self.x_test, self.y_test

    def train_sample(self, size: int | None):
        """A fixed, stratified sample of the training split (all of it for None)."""
        if size is None or size >= len(self.y_train):
            return self.x_train, self.y_train
        from sklearn.model_selection import train_test_split

        _, x, _, y = train_test_split(
            self.x_train, self.y_train, test_size=size, stratify=self.y_train,
            random_state=self.seed,
        )
        return x, y


def _modality(shape) -> Modality:
    return {1: "tabular", 2: "sequence", 3: "image"}.get(len(shape), "image")


def _load_tfds(name: str, data_dir: str | None):
    """Returns (x_train, y_train, x_test, y_test, num_classes) from tfds."""
    import tensorflow_datasets as tfds

    from kreg.data.builders import PACKAGED

    tfds.disable_progress_bar()
    if name in PACKAGED:
        builder = PACKAGED[name](data_dir=data_dir)
        if not builder.is_prepared():
            # tfds announces "Downloading and preparing" on stdout; nothing is
            # downloaded here (the examples come from an installed package).
            logging.getLogger("kreg").info("preparing %s offline in %s", name, builder.data_dir)
            with contextlib.redirect_stdout(io.StringIO()):
                builder.download_and_prepare()
    else:
        tfds_name = name[len(TFDS_PREFIX):]
        try:
            builder = tfds.builder(tfds_name, data_dir=data_dir)
        except Exception as exc:  # tfds raises several types for unknown names
            raise DataError(f"Unknown tensorflow-datasets name in `dataset`: {name!r} ({exc})") from None
    if builder.info.supervised_keys is None:
        raise DataError(f"Dataset {name!r} has no supervised (input, label) keys.")
    label_key = builder.info.supervised_keys[1]
    num_classes = builder.info.features[label_key].num_classes
    splits = builder.info.splits
    if splits and "test" not in splits:
        raise DataError(f"Dataset {name!r} has no `test` split; splits are {sorted(splits)}.")

    def read(split):
        try:
            ds = builder.as_dataset(split=split, as_supervised=True)
        except AssertionError as exc:  # tfds' "Dataset not found" on a missing data_dir
            raise DataError(
                f"Dataset {name!r} is not prepared under data_dir={builder.data_dir!r}; "
                "kreg never downloads at run time. Prepare it with tensorflow-datasets first."
            ) from exc
        # Batches, not batch_size=-1: the single-tensor path aborts under
        # tfds.testing.mock_data, and batches keep peak memory lower.
        xs, ys = [], []
        for x, y in tfds.as_numpy(ds.batch(4096)):
            xs.append(x)
            ys.append(y)
        return np.concatenate(xs), np.concatenate(ys).astype(np.int64)

    x_train, y_train = read("train")
    x_test, y_test = read("test")
    return x_train, y_train, x_test, y_test, int(num_classes)


def _standardize(standardize, x_train, *others):
    x_train = x_train.astype(np.float32)
    others = [o.astype(np.float32) for o in others]
    if standardize == "none":
        return [x_train, *others]
    axis = 0 if standardize == "feature" else None
    mean = x_train.mean(axis=axis, keepdims=axis is not None)
    std = x_train.std(axis=axis, keepdims=axis is not None)
    std = np.where(std > 0, std, 1.0).astype(np.float32)
    return [(x - mean) / std for x in (x_train, *others)]


def default_standardize(name: str) -> str:
    """Per-feature z-scores for tabular data, one global z-score otherwise."""
    return "feature" if name in ("breast_cancer", "wine") else "global"


def load_splits(
    name: str,
    *,
    validation_fraction: float = 0.2,
    seed: int = 0,
    data_dir: str | None = None,
    standardize: str | None = None,
    max_train_examples: int | None = None,
) -> DatasetSplits:
    """Loads a dataset through tensorflow-datasets and splits it.

    Args:
        name: ``"mnist1d"``, ``"digits"``, ``"breast_cancer"``, ``"wine"``, or
            ``"tfds:<name>"`` for any tfds dataset already prepared in
            ``data_dir``.
        validation_fraction: Share of the training split held out, stratified,
            for validation. Default 0.2.
        seed: Seed for the validation split and the shuffling. Default 0.
        data_dir: tensorflow-datasets data directory. Default: tfds' own.
        standardize: ``"none"``, ``"global"`` or ``"feature"`` z-scoring with
            statistics of the training part only. Default: per dataset.
        max_train_examples: Keep at most this many training examples
            (stratified), for learning curves and quick runs. Default: all.

    Returns:
        A ``DatasetSplits``.

    Example:
        >>> splits = kreg.data.load_splits("mnist1d", seed=0)
        >>> splits.sizes()
        {'train': 3200, 'validation': 800, 'test': 1000}
    """
    from sklearn.model_selection import train_test_split

    if not isinstance(name, str) or not is_known_dataset(name):
        known = ", ".join(available_datasets())
        raise v.invalid("dataset", f"one of {known} or 'tfds:<name>'", name)
    validation_fraction = v.check_rate("validation_fraction", validation_fraction)
    if validation_fraction == 0:
        raise v.invalid("validation_fraction", "a float between 0 and 1 (exclusive)", validation_fraction)
    seed = v.check_non_negative_int("seed", seed)
    standardize = v.check_choice(
        "standardize", standardize or default_standardize(name), STANDARDIZE
    )
    if max_train_examples is not None:
        v.check_positive_int("max_train_examples", max_train_examples)

    x, y, x_test, y_test, num_classes = _load_tfds(name, data_dir)
    x_train, x_val, y_train, y_val = train_test_split(
        x, y, test_size=validation_fraction, stratify=y, random_state=seed
    )
    if max_train_examples is not None and max_train_examples < len(y_train):
        x_train, _, y_train, _ = train_test_split(
            x_train, y_train, train_size=max_train_examples, stratify=y_train, random_state=seed
        )
    x_train, x_val, x_test = _standardize(standardize, x_train, x_val, x_test)
    shape = tuple(int(d) for d in x_train.shape[1:])
    spec = InputSpec(shape=shape, num_classes=num_classes, modality=_modality(shape), dataset=name)
    return DatasetSplits(spec, x_train, y_train, x_val, y_val, x_test, y_test, seed=seed)
