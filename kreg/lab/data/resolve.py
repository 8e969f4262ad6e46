"""``resolve_data``: any accepted form of data -> splits. The one entry the search calls."""

from __future__ import annotations

import os

from kreg.lab.data.arrays import from_npz
from kreg.lab.data.catalog import from_tfds
from kreg.lab.data.loader import from_loader, is_loader_spec, splits_from
from kreg.lab.data.names import available_datasets, is_known_dataset
from kreg.lab.data.splits import DatasetSplits
from kreg.lab.data.tables import from_csv
from kreg.lab.errors import DataError

# The YAML form: {"arrays": "data.npz"}, {"csv": "train.csv", "target": ...}, {"loader": ...}, {"dataset": ...}.
SOURCE_KEYS = ("arrays", "csv", "loader", "dataset")
ACCEPTED = (
    "splits (from kreg.data.from_*), a dataset name ({names} or 'tfds:<name>'), a 'module:function' loader, "
    "a path to a .npz or .csv file (csv with target=), a tuple (x, y) or (x_train, y_train, x_test, y_test), "
    "a dict of arrays (x_train/y_train, optional x_val/y_val, x_test/y_test), a dict with one of "
    "arrays/csv/loader/dataset and its options, or a dict of tf.data datasets train/validation/test"
)


def resolve_data(spec, *, seed: int = 0, **kwargs):
    """Splits from any accepted form of data.

    Args:
        spec: Splits (returned as they are), a packaged or ``"tfds:<name>"``
            dataset name, a ``"module:function"`` loader, a ``.npz`` or
            ``.csv`` path, a tuple ``(x, y)`` or ``(x_train, y_train, x_test,
            y_test)``, a dict of arrays, a dict in the YAML form
            (``{"csv": "train.csv", "target": "price", "test": "test.csv"}``),
            or a dict ``{"train": ds, "validation": ds, "test": ds, "task": ...}``
            of ``tf.data`` datasets.
        seed: Run seed (validation carve, shuffling). Default 0.
        **kwargs: Options of the source (``target`` for CSV, ``task``,
            ``validation_fraction``, ``data_dir``, ...).

    Example:
        >>> splits = resolve_data("train.csv", target="price", test="test.csv", seed=1)
        >>> splits = resolve_data({"dataset": "mnist1d"}, seed=1)
    """
    from kreg.lab.data.stream import StreamSplits

    if isinstance(spec, (DatasetSplits, StreamSplits)):
        return spec
    if isinstance(spec, os.PathLike):
        spec = os.fspath(spec)
    if isinstance(spec, str):
        return _from_string(spec, seed, kwargs)
    if isinstance(spec, dict):
        sources = [k for k in SOURCE_KEYS if k in spec]
        if len(sources) > 1:
            raise DataError(f"A data dict names one source; received {sources}.")
        if sources:
            options = {k: v for k, v in spec.items() if k != sources[0]}
            return _from_source(sources[0], spec[sources[0]], seed, {**options, **kwargs})
        if _is_tf_dataset(spec.get("train")):
            from kreg.lab.data.stream import from_datasets

            return from_datasets(**{**spec, **kwargs}, seed=seed)
        return splits_from(spec, "the data dict", seed=seed, **kwargs)
    if isinstance(spec, (tuple, list)) and len(spec) in (2, 4):
        return splits_from(tuple(spec), "the data tuple", seed=seed, **kwargs)
    raise _unknown(spec)


def _from_string(spec: str, seed: int, kwargs: dict):
    if is_known_dataset(spec):
        return from_tfds(spec, seed=seed, **kwargs)
    lower = spec.lower()
    if lower.endswith(".npz"):
        return from_npz(spec, seed=seed, **kwargs)
    if lower.endswith(".csv"):
        if "target" not in kwargs:
            raise DataError(f"The CSV data {spec!r} needs `target`, the name of its label column.")
        return from_csv(spec, seed=seed, **kwargs)
    if is_loader_spec(spec):
        return from_loader(spec, seed=seed, **kwargs)
    raise _unknown(spec)


def _from_source(key: str, value, seed: int, kwargs: dict):
    if key == "dataset" and not is_known_dataset(value):
        raise DataError(f"Unknown dataset {value!r}. Expected one of {', '.join(available_datasets())} "
                        "or 'tfds:<name>'.")
    if key == "loader" and not is_loader_spec(value):
        raise DataError(f"Invalid loader {value!r}: expected 'module:function', e.g. 'mypackage.data:load'.")
    if key == "csv":
        if "target" not in kwargs:
            raise DataError(f"The CSV data {value!r} needs `target`, the name of its label column.")
        return from_csv(value, seed=seed, **kwargs)
    if key == "arrays":
        if isinstance(value, (str, os.PathLike)):
            return from_npz(value, seed=seed, **kwargs)
        return splits_from(value, "`arrays`", seed=seed, **kwargs)
    return _from_string(value, seed, kwargs)


def _is_tf_dataset(value) -> bool:
    # Checked by module name: resolving arrays must not import TensorFlow.
    return type(value).__module__.startswith("tensorflow") and hasattr(value, "element_spec")


def _unknown(spec) -> DataError:
    shown = repr(spec) if isinstance(spec, str) else type(spec).__name__
    return DataError(f"Cannot use {shown} as data. Expected {ACCEPTED.format(names=', '.join(available_datasets()))}.")


def _keywords(function, *drop: str) -> set:
    import inspect

    return {p.name for p in inspect.signature(function).parameters.values()
            if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD) and p.name not in drop
            and not p.name.startswith(("x_", "y_"))}


def data_options(spec) -> tuple[set | None, str]:
    """The options (``validation_fraction``, ``target``, ...) the source behind ``spec`` takes, and what it is.

    None: ``spec`` is no form of data ``resolve_data`` knows (it says so itself).
    """
    from kreg.lab.data.stream import StreamSplits, from_datasets

    by_source = _options_by_source()
    if isinstance(spec, (DatasetSplits, StreamSplits)):
        return set(), f"prepared splits ({type(spec).__name__})"
    if isinstance(spec, os.PathLike):
        spec = os.fspath(spec)
    if isinstance(spec, dict):
        sources = [k for k in SOURCE_KEYS if k in spec]
        if len(sources) == 1:
            return by_source[sources[0]], f"a data dict with `{sources[0]}`"
        if _is_tf_dataset(spec.get("train")):
            return _keywords(from_datasets, "train", "validation", "test", "seed"), "tf.data datasets"
        return by_source["arrays"], "a dict of arrays"
    if isinstance(spec, (tuple, list)) and len(spec) in (2, 4):
        return by_source["arrays"], "a tuple of arrays"
    if isinstance(spec, str):
        if is_known_dataset(spec):
            return by_source["dataset"], f"the dataset {spec!r}"
        for suffix, source in ((".npz", "arrays"), (".csv", "csv")):
            if spec.lower().endswith(suffix):
                return by_source[source], f"a {suffix} file"
        if is_loader_spec(spec):
            return by_source["loader"], f"the loader {spec!r}"
    return None, "data"


def _options_by_source() -> dict:
    from kreg.lab.data.arrays import from_arrays

    arrays = _keywords(from_arrays, "x", "y", "seed")
    return {"arrays": arrays, "loader": arrays, "dataset": arrays | _keywords(from_tfds, "name", "seed"),
            "csv": arrays | _keywords(from_csv, "train", "seed")}


def every_data_option() -> set:
    """Every option any data source takes (to tell a misspelling from an option that does not apply)."""
    from kreg.lab.data.stream import from_datasets

    return set().union(*_options_by_source().values(), _keywords(from_datasets, "train", "validation", "test", "seed"))


def check_data_options(spec, options: dict, function: str, parameters=()) -> None:
    """A ``TypeError`` for a keyword of ``function()`` that is neither one of its ``parameters`` nor an option
    the data's source takes: a misspelling (with the closest name) or an option that does not apply here."""
    import difflib

    accepted, what = data_options(spec)
    if accepted is None:
        return
    for name in options:
        if name in accepted:
            continue
        if name in every_data_option():
            where = (f"; pass it where the splits are made (kreg.data.from_arrays(..., {name}=...))"
                     if not accepted else f" (its options: {', '.join(sorted(accepted))})")
            raise TypeError(f"{function}() got the keyword argument {name!r}, a data option that does not apply to "
                            f"{what}{where}")
        close = difflib.get_close_matches(name, sorted(set(parameters) | accepted), n=1, cutoff=0.7)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise TypeError(f"{function}() got an unexpected keyword argument {name!r}.{hint}")
