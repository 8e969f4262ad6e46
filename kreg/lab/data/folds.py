"""Cross-validation folds over the pooled training + validation data; the test split stays apart.

``cross_validation_splits(splits, folds=5, repeats=1, seed=0, scheme="auto")``
returns one ``Fold`` per (repeat, fold): a ``DatasetSplits`` whose training
split is the pool minus the fold, whose validation split is the fold, and
whose test split is the original one, untouched. Schemes:

- ``stratified``: every fold keeps the class proportions (classification);
- ``kfold``: shuffled contiguous folds (regression);
- ``forward``: forward chaining for time-ordered data (the pool in its
  order, training before validation): fold i trains on the first i blocks
  and validates on block i + 1, so no fold looks into its own future;
- ``auto``: ``stratified`` for classification, ``kfold`` otherwise.

Repeats draw new fold assignments (seed + repeat); forward chaining has one
order, so it refuses repeats. Inputs keep the standardization fitted on the
original training split: it never saw the test split, and re-fitting it per
fold would change the inputs a model sees between folds.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from kreg.lab.errors import ConfigError, DataError

SCHEMES = ("auto", "stratified", "kfold", "forward")


@dataclasses.dataclass(frozen=True)
class Fold:
    """One fold of one repeat: ``splits`` trains on the rest of the pool and validates on the fold."""

    repeat: int
    index: int
    splits: object  # DatasetSplits
    val_index: np.ndarray  # positions of the fold's examples in the pool (training split first, then validation)

    @property
    def name(self) -> str:
        return f"r{self.repeat}f{self.index}"


def check_cv(folds, repeats=1, scheme="auto", field: str = "cv") -> tuple[int, int, str]:
    """The CV settings, checked: ``folds`` >= 2, ``repeats`` >= 1, a known scheme (forward: one repeat)."""
    if isinstance(folds, bool) or not isinstance(folds, (int, np.integer)) or folds < 2:
        raise ConfigError(f"{field}.folds", folds, "an integer of at least 2")
    if isinstance(repeats, bool) or not isinstance(repeats, (int, np.integer)) or repeats < 1:
        raise ConfigError(f"{field}.repeats", repeats, "an integer of at least 1")
    if scheme not in SCHEMES:
        raise ConfigError(f"{field}.scheme", scheme, f"one of {', '.join(SCHEMES)}")
    if scheme == "forward" and repeats != 1:
        raise ConfigError(f"{field}.repeats", repeats, "1 with the forward scheme (time has one order)")
    return int(folds), int(repeats), scheme


def pooled(splits) -> tuple[np.ndarray, np.ndarray]:
    """The training split followed by the validation split."""
    return (np.concatenate([splits.x_train, splits.x_val]), np.concatenate([splits.y_train, splits.y_val]))


def fold_indices(y: np.ndarray, folds: int, *, seed: int, scheme: str, classification: bool) -> list[np.ndarray]:
    """The validation positions of each fold (forward: the training positions are everything before)."""
    n = len(y)
    if scheme == "auto":
        scheme = "stratified" if classification else "kfold"
    if scheme == "forward":
        if n < folds + 1:
            raise DataError(f"Forward-chaining CV with {folds} folds needs at least {folds + 1} examples in the "
                            f"pooled training and validation data. Received: {n}")
        edges = np.linspace(0, n, folds + 2).round().astype(int)  # block 0 only ever trains
        return [np.arange(edges[i + 1], edges[i + 2]) for i in range(folds)]
    if scheme == "stratified":
        if not classification:
            raise ConfigError("cv.scheme", scheme, "kfold or forward for a regression task (no classes to stratify)")
        labels = np.asarray(y).reshape(len(y), -1)[:, 0].astype(int)
        classes, counts = np.unique(labels, return_counts=True)
        if counts.min() < folds:
            rare = classes[counts.argmin()]
            raise DataError(f"Stratified CV with {folds} folds needs at least {folds} examples of every class in the "
                            f"pooled training and validation data; class {rare} has {counts.min()}. Use fewer "
                            f"folds (cv.folds).")
        from sklearn.model_selection import StratifiedKFold

        split = StratifiedKFold(folds, shuffle=True, random_state=seed).split(np.zeros(n), labels)
        return [np.sort(val) for _, val in split]
    if n < folds:
        raise DataError(f"CV with {folds} folds needs at least {folds} examples. Received: {n}")
    order = np.random.default_rng(seed).permutation(n)
    return [np.sort(part) for part in np.array_split(order, folds)]


def cross_validation_splits(splits, folds: int = 5, repeats: int = 1, seed: int = 0, scheme: str = "auto"):
    """``folds`` x ``repeats`` ``Fold``s over the pooled training + validation data of in-memory ``splits``."""
    folds, repeats, scheme = check_cv(folds, repeats, scheme)
    if not getattr(splits, "in_memory", False):
        raise DataError("Cross-validation needs data in memory (arrays, CSV, packaged or tfds datasets); streamed "
                        "tf.data sources have no pool to fold. Use the holdout validation split.")
    x, y = pooled(splits)
    classification = splits.spec.num_classes is not None
    out = []
    for repeat in range(repeats):
        parts = fold_indices(y, folds, seed=seed + repeat, scheme=scheme, classification=classification)
        for index, val in enumerate(parts):
            if scheme == "forward":
                train = np.arange(0, val[0])
            else:
                train = np.setdiff1d(np.arange(len(y)), val, assume_unique=True)
            fold = dataclasses.replace(splits, x_train=x[train], y_train=y[train], x_val=x[val], y_val=y[val],
                                       seed=splits.seed + 7919 * repeat + index)
            out.append(Fold(repeat, index, fold, val))
    return out

