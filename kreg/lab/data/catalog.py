"""Named datasets through tensorflow-datasets: the packaged ones and any ``tfds:<name>``.

The dataset's own test split is used as is (it never depends on the run
seed); validation is carved from its training split, stratified, from the run
seed; everything then goes through ``from_arrays``' checks. Nothing is ever
downloaded: a tfds dataset must already be prepared in ``data_dir``.
"""

from __future__ import annotations

import contextlib
import io
import logging
from pathlib import Path

import numpy as np

from kreg.lab.data import checks
from kreg.lab.data.arrays import from_arrays
from kreg.lab.data.names import PACKAGED_NAMES, TFDS_PREFIX, available_datasets, is_known_dataset
from kreg.lab.data.splits import DatasetSplits
from kreg.lab.errors import DataError
from kreg.lab.task import Classification


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
            statistics of the training part only. Default: ``"feature"`` for
            tabular data, ``"global"`` otherwise.
        max_train_examples: Keep at most this many training examples
            (stratified), for learning curves and quick runs. Default: all.

    Returns:
        A ``DatasetSplits``.

    Example:
        >>> splits = kreg.data.load_splits("mnist1d", seed=0)
        >>> splits.sizes()
        {'train': 3200, 'validation': 800, 'test': 1000}
    """
    if not is_known_dataset(name):
        known = ", ".join(available_datasets())
        raise checks.invalid("dataset", f"one of {known} or 'tfds:<name>'", name)
    return from_tfds(name, data_dir=data_dir, validation_fraction=validation_fraction, seed=seed,
                     standardize=standardize, max_train_examples=max_train_examples)


def from_tfds(name: str, *, data_dir: str | None = None, **kwargs) -> DatasetSplits:
    """Splits of a tensorflow-datasets dataset (or a packaged one) prepared in ``data_dir``.

    Args:
        name: A tfds name (``"mnist"`` or ``"tfds:mnist"``) or a packaged
            name (``"mnist1d"``, ``"digits"``, ``"breast_cancer"``, ``"wine"``).
        data_dir: tensorflow-datasets data directory. Default: tfds' own.
        **kwargs: Passed to ``from_arrays`` (``seed``, ``validation_fraction``,
            ``standardize``, ``max_train_examples``, ``task``, ...). The task
            is classification when the label is a tfds ``ClassLabel``.

    Example:
        >>> splits = kreg.data.from_tfds("mnist", data_dir="~/tensorflow_datasets")
    """
    if not isinstance(name, str) or not name.removeprefix(TFDS_PREFIX):
        raise checks.invalid("dataset", "a tensorflow-datasets name such as 'mnist' or 'tfds:mnist'", name)
    if name not in PACKAGED_NAMES and not name.startswith(TFDS_PREFIX):
        name = TFDS_PREFIX + name
    x, y, x_test, y_test, num_classes = _read(name, data_dir)
    if kwargs.get("task") is None and num_classes:
        kwargs["task"] = Classification(num_classes)
    kwargs.setdefault("name", name)
    return from_arrays(x, y, x_test=x_test, y_test=y_test, **kwargs)


def _read(name: str, data_dir: str | None):
    """``(x_train, y_train, x_test, y_test, num_classes)``; no test split: ``None``s and a carve later."""
    import tensorflow_datasets as tfds

    from kreg.lab.data.packaged import PACKAGED

    tfds.disable_progress_bar()
    if name in PACKAGED:
        from kreg.lab.tracking.store import file_lock

        builder = PACKAGED[name](data_dir=data_dir)
        if not builder.is_prepared():
            # One process prepares, any other starting at the same time waits and finds it done.
            with file_lock(Path(builder.data_dir).parent, f".{name}.lock"):
                builder = PACKAGED[name](data_dir=data_dir)
                if not builder.is_prepared():
                    # tfds announces "Downloading and preparing" on stdout; nothing is
                    # downloaded here (the examples come from an installed package).
                    logging.getLogger("kreg").info("preparing %s offline in %s", name, builder.data_dir)
                    with contextlib.redirect_stdout(io.StringIO()):
                        builder.download_and_prepare()
    else:
        try:
            builder = tfds.builder(name[len(TFDS_PREFIX):], data_dir=data_dir)
        except Exception as exc:  # tfds raises several types for unknown names
            raise DataError(f"Unknown tensorflow-datasets name in `dataset`: {name!r} ({exc})") from None
    if builder.info.supervised_keys is None:
        raise DataError(f"Dataset {name!r} has no supervised (input, label) keys.")
    label = builder.info.features[builder.info.supervised_keys[1]]
    num_classes = getattr(label, "num_classes", None)  # a ClassLabel; other labels: task inferred

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
        if not xs:
            raise DataError(f"The {split} split of dataset {name!r} is empty.")
        return np.concatenate(xs), np.concatenate(ys)

    x_train, y_train = read("train")
    splits = builder.info.splits
    # A dataset without a test split gets one carved by from_arrays (fixed seed, with a warning).
    x_test, y_test = read("test") if not splits or "test" in splits else (None, None)
    return x_train, y_train, x_test, y_test, int(num_classes) if num_classes else None
