"""CSV files (or pandas DataFrames) -> ``DatasetSplits``: numeric columns as float32, categories one-hot.

The encoding is fitted on the training file only and kept on the splits
(``splits.encoder``), so ``splits.transform(new_frame)`` prepares raw rows
for prediction exactly as the training rows were.
"""

from __future__ import annotations

import dataclasses
import os
import warnings

import numpy as np

from kreg.lab.data.arrays import from_arrays
from kreg.lab.data.splits import DatasetSplits
from kreg.lab.errors import DataError


@dataclasses.dataclass(frozen=True)
class TableEncoder:
    """Feature columns -> a float32 matrix: numbers as they are, each category one 0/1 column.

    Args:
        features: Source column names, in order.
        categories: For each categorical column, its training categories (as strings).
        kinds: Each column's raw type as MLflow's schema names it (``"double"``, ``"long"``,
            ``"boolean"``, ``"string"``): the signature of the model a search hands over.
    """

    features: tuple
    categories: dict
    kinds: dict = dataclasses.field(default_factory=dict)

    @classmethod
    def fit(cls, frame, features) -> TableEncoder:
        import pandas as pd

        categories, kinds = {}, {}
        for column in features:
            values = frame[column]
            if pd.api.types.is_bool_dtype(values):
                kinds[column] = "boolean"
            elif pd.api.types.is_integer_dtype(values):
                kinds[column] = "long"
            elif pd.api.types.is_numeric_dtype(values):
                kinds[column] = "double"
            else:
                kinds[column] = "string"
                categories[column] = tuple(sorted(values.astype(str).unique()))
        return cls(tuple(features), categories, kinds)

    @property
    def feature_names(self) -> list:
        """Model input columns: ``age``, ``colour=red``, ``colour=blue``, ..."""
        names = []
        for column in self.features:
            names += [f"{column}={c}" for c in self.categories[column]] if column in self.categories else [column]
        return names

    def transform(self, frame, split: str = "input") -> np.ndarray:
        """``frame``'s feature columns encoded; a category unseen in training becomes all zeros."""
        check_columns(frame, self.features, split)
        check_missing(frame, self.features, split)
        blocks = []
        for column in self.features:
            values = frame[column]
            if column in self.categories:
                text = values.astype(str).to_numpy()
                blocks.append(np.stack([text == c for c in self.categories[column]], axis=1))
            else:
                try:
                    blocks.append(values.to_numpy(np.float32)[:, None])
                except (TypeError, ValueError):
                    raise DataError(f"Column {column!r} of the {split} split must hold numbers, as in "
                                    f"training. Received values such as {values.head(3).tolist()}") from None
        return np.concatenate(blocks, axis=1).astype(np.float32)


def from_csv(train, target, *, test=None, validation=None, features=None, task=None, **kwargs) -> DatasetSplits:
    """Splits from CSV files (or pandas DataFrames): one row per example.

    Numeric and boolean feature columns become float32; string or
    categorical ones are one-hot encoded with the categories seen in the
    training file (a category that only appears in validation, test or later
    inputs becomes an all-zero row for that column). Missing values are an
    error naming the column: impute or drop them first. String targets make
    a classification task whose class names are ``splits.task.classes``.

    Args:
        train: Training CSV path (or DataFrame); validation is carved from it
            when ``validation`` is None.
        target: The label column, or a list of columns (multi-target regression).
        test: Test CSV path (or DataFrame). Default None: carved from training
            with a fixed seed and a warning.
        validation: Validation CSV path (or DataFrame). Default None.
        features: Feature columns, in order. Default: every column but the target(s).
        task: ``"classification"``, ``"regression"`` or None (inferred from the target).
        **kwargs: Passed to ``from_arrays`` (``seed``, ``validation_fraction``, ...).

    Example:
        >>> splits = kreg.data.from_csv("train.csv", "price", test="test.csv")
        >>> splits.encoder.feature_names[:3]
        ['area', 'city=Lyon', 'city=Paris']
    """
    frames = {"train": _read(train, "train")}
    for split, source in (("validation", validation), ("test", test)):
        if source is not None:
            frames[split] = _read(source, split)
    columns = list(frames["train"].columns)
    targets = [target] if isinstance(target, str) else list(target) if isinstance(target, (list, tuple)) else None
    if not targets:
        raise DataError(f"Invalid value received for argument `target`. Expected a column name or a list of "
                        f"them, among {columns}. Received: target={target!r}")
    check_columns(frames["train"], targets, "train", argument="target")
    chosen = features is not None
    if features is None:
        features = [c for c in columns if c not in targets]
    else:
        features = [features] if isinstance(features, str) else list(features)
        check_columns(frames["train"], features, "train", argument="features")
        overlap = sorted(set(features) & set(targets))
        if overlap:
            raise DataError(f"Column(s) {overlap} are both a feature and the target.")
    if not features:
        raise DataError(f"No feature columns left in the train split besides the target {targets}.")
    features = screen_categories(frames["train"], features, chosen)

    encoder = TableEncoder.fit(frames["train"], features)
    arrays = {}
    for split, frame in frames.items():
        check_columns(frame, targets, split, argument="target")
        check_missing(frame, targets, split)
        labels = frame[targets[0]].to_numpy() if len(targets) == 1 else frame[targets].to_numpy()
        if len(targets) > 1 and labels.dtype.kind not in "biuf":
            raise DataError(f"Several target columns {targets} must all hold numbers (multi-target regression).")
        arrays[split] = (encoder.transform(frame, split), labels)
    kwargs.setdefault("name", f"csv:{_name(train)}")
    x_val, y_val = arrays.get("validation", (None, None))
    x_test, y_test = arrays.get("test", (None, None))
    splits = from_arrays(*arrays["train"], x_val=x_val, y_val=y_val, x_test=x_test, y_test=y_test, task=task,
                         modality="tabular", **kwargs)
    return dataclasses.replace(splits, encoder=encoder)


# A text column with (nearly) one value per row names the row (an id, a free-text note): one-hot encoded it
# adds a feature per training row, each all zeros on any new row. From this many rows on it is told apart.
IDENTIFIER_SHARE = 0.9
IDENTIFIER_MIN_ROWS = 20
# A categorical column with more categories than this (or than half the rows) is one-hot encoded with a warning.
MANY_CATEGORIES = 50


def screen_categories(frame, features: list, chosen: bool) -> list:
    """The feature columns without identifier-like text columns (dropped with a warning naming them; refused
    when ``features`` named them: ``chosen``), warning on categorical columns with many categories."""
    import pandas as pd

    rows = len(frame)
    identifiers, many = [], []
    for column in features:
        values = frame[column]
        if pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values):
            continue
        distinct = int(values.astype(str).nunique())
        if rows >= IDENTIFIER_MIN_ROWS and distinct >= IDENTIFIER_SHARE * rows:
            identifiers.append((column, distinct))
        elif distinct > MANY_CATEGORIES or (rows >= IDENTIFIER_MIN_ROWS and distinct > rows / 2):
            many.append((column, distinct, int(values.astype(str).value_counts().median())))
    if identifiers and chosen:
        column, distinct = identifiers[0]
        raise DataError(f"Column {column!r} (from `features`) looks like an identifier or free text: {distinct} "
                        f"distinct values in {rows} training rows. One-hot encoded, it would add {distinct} "
                        "features that are all zero on any new row; leave it out of `features`, or encode it "
                        "yourself (numbers, or fewer categories).")
    if identifiers:
        names = ", ".join(f"{c!r} ({d} distinct values in {rows} rows)" for c, d in identifiers)
        warnings.warn(f"Dropped identifier-like column(s) {names}: a text column with about one value per row "
                      "names the row and cannot generalize (one-hot encoded, each new row would be all zeros). "
                      "Pass `features` to choose the columns yourself.", UserWarning, stacklevel=3)
    for column, distinct, median in many:
        warnings.warn(f"Column {column!r} has {distinct} categories in {rows} training rows (a median of {median} "
                      f"row(s) each): one-hot encoded as {distinct} features; consider grouping rare categories.",
                      UserWarning, stacklevel=3)
    dropped = {c for c, _ in identifiers}
    kept = [c for c in features if c not in dropped]
    if not kept:
        raise DataError(f"No feature columns left in the train split: every one looks like an identifier "
                        f"({', '.join(sorted(dropped))}).")
    return kept


def check_columns(frame, wanted, split: str, argument: str = "features") -> None:
    missing = [c for c in wanted if c not in frame.columns]
    if missing:
        raise DataError(f"Column(s) {missing} (from `{argument}`) are not in the {split} split. "
                        f"Its columns are {list(frame.columns)}")


def check_missing(frame, wanted, split: str) -> None:
    for column in wanted:
        count = int(frame[column].isna().sum())
        if count:
            raise DataError(f"Column {column!r} of the {split} split has {count} missing value(s) "
                            f"(of {len(frame)} rows); impute or drop them first.")


def _read(source, split: str):
    if hasattr(source, "columns"):  # a DataFrame already
        return source
    import pandas as pd

    path = os.fspath(source)
    try:
        frame = pd.read_csv(path)
    except FileNotFoundError:
        raise DataError(f"No such CSV file for the {split} split: {path!r}") from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise DataError(f"Cannot read the {split} split's CSV file {path!r}: {exc}") from None
    except (IsADirectoryError, PermissionError) as exc:
        raise DataError(f"Cannot read the {split} split's CSV file {path!r}: {exc.strerror}") from None
    if frame.empty:
        raise DataError(f"The {split} split's CSV file {path!r} has no rows (columns {list(frame.columns)}): "
                        "one row per example is expected.")
    return frame


def _name(source) -> str:
    return "dataframe" if hasattr(source, "columns") else os.path.basename(os.fspath(source))
