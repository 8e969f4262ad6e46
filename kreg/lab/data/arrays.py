"""NumPy arrays (and ``.npz`` files of them) -> checked, split, standardized ``DatasetSplits``.

Every in-memory source ends here (CSV files, tfds and packaged datasets,
loaders), so the checks and the splitting rules live in one place:

- the task is inferred from the training labels or declared;
- a missing test split is carved with a fixed seed (never the run seed, so the
  test split does not move between runs), with a warning that says so;
- validation is carved from what remains with the run seed, stratified for
  classification;
- inputs are standardized with statistics of the final training part only.
"""

from __future__ import annotations

import os
import warnings

import numpy as np

from kreg.lab.data import checks
from kreg.lab.data.splits import MODALITIES, MODALITY_RANK, STANDARDIZE, DatasetSplits, InputSpec, Standardization
from kreg.lab.data.splits import modality_of
from kreg.lab.errors import DataError
from kreg.lab.task import Classification, infer_task

# The carved test split's seed: fixed, so every run seed sees the same test examples.
TEST_SEED = 20201231
# Array names a mapping (npz file, loader result) may hold, and what from_arrays calls them.
_ARRAY_KEYS = {"x_train": "x", "y_train": "y", "x": "x", "y": "y", "x_val": "x_val", "y_val": "y_val",
               "x_test": "x_test", "y_test": "y_test"}


def from_arrays(
    x,
    y,
    *,
    x_test=None,
    y_test=None,
    x_val=None,
    y_val=None,
    validation_fraction: float = 0.2,
    test_fraction: float = 0.2,
    task=None,
    num_classes: int | None = None,
    modality: str | None = None,
    standardize: str | None = None,
    seed: int = 0,
    max_train_examples: int | None = None,
    name: str = "arrays",
) -> DatasetSplits:
    """Checked train / validation / test splits from NumPy arrays.

    ``x`` is one array ``(n, ...)`` (no dict of several inputs). Its rank
    decides the modality unless declared: ``(n, features)`` tabular,
    ``(n, steps, channels)`` sequence, ``(n, h, w, channels)`` image.

    Args:
        x: Training inputs (validation is carved from them when not given).
        y: Training labels: integers, strings, booleans or one-hot rows
            (classification), floats (regression, ``(n,)`` or ``(n, targets)``).
        x_test: Test inputs. Default None: 20% of ``x`` is carved with a fixed
            seed (the same test split for every run seed), with a warning.
        y_test: Test labels, with ``x_test``.
        x_val: Validation inputs. Default None: carved from training by ``seed``.
        y_val: Validation labels, with ``x_val``.
        validation_fraction: Share of training carved for validation. Default 0.2.
        test_fraction: Share carved for test when none is given. Default 0.2.
        task: ``"classification"``, ``"regression"``, a ``Task`` or None
            (inferred from ``y``). Declare classification for float class indices.
        num_classes: Class count when some class is absent from ``y`` (an
            error then, but a clear one). Default: from the labels.
        modality: ``"tabular"``, ``"sequence"`` or ``"image"``. Default: from
            the rank. A sequence of ``(n, steps)`` or image of ``(n, h, w)``
            gets a channel axis.
        standardize: ``"feature"`` (per-feature z-score), ``"global"`` or
            ``"none"``. Default ``"feature"`` for tabular, ``"global"`` otherwise;
            statistics from the training part only.
        seed: Run seed: the validation carve and the shuffling. Default 0.
        max_train_examples: Keep at most this many training examples
            (stratified), for learning curves and quick runs. Default: all.
        name: Name of the source in reports. Default ``"arrays"``.

    Returns:
        A ``DatasetSplits``.

    Raises:
        DataError: mismatched lengths, NaN or infinite inputs, labels that do
            not fit the task, a class absent from training, a split too small.

    Example:
        >>> splits = kreg.data.from_arrays(x, y, x_test=x_test, y_test=y_test, seed=0)
        >>> splits.sizes()
        {'train': 800, 'validation': 200, 'test': 250}
    """
    validation_fraction = checks.check_fraction("validation_fraction", validation_fraction)
    test_fraction = checks.check_fraction("test_fraction", test_fraction)
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise checks.invalid("seed", "a non-negative integer", seed)
    if max_train_examples is not None and (isinstance(max_train_examples, bool)
                                           or not isinstance(max_train_examples, (int, np.integer))
                                           or max_train_examples < 1):
        raise checks.invalid("max_train_examples", "a positive integer or None", max_train_examples)
    if standardize is not None and standardize not in STANDARDIZE:
        raise checks.invalid("standardize", f"one of {', '.join(map(repr, STANDARDIZE))}", standardize)
    if modality is not None and modality not in MODALITIES:
        raise checks.invalid("modality", f"one of {', '.join(map(repr, MODALITIES))}", modality)

    # 1. Inputs: arrays, in pairs, matching lengths, one per-example shape, finite.
    parts = {"train": (checks.as_inputs(x, "x"), checks.as_labels(y, "y"))}
    for split, xs, ys, x_name, y_name in (("validation", x_val, y_val, "x_val", "y_val"),
                                          ("test", x_test, y_test, "x_test", "y_test")):
        if checks.check_pair(xs, ys, x_name, y_name):
            parts[split] = (checks.as_inputs(xs, x_name), checks.as_labels(ys, y_name))
    for split, (xs, ys) in parts.items():
        checks.check_lengths(xs, ys, split)
    checks.check_same_shape({split: xs.shape[1:] for split, (xs, _) in parts.items()})
    modality = modality or modality_of(parts["train"][0].shape[1:])
    raw_shape = tuple(int(d) for d in parts["train"][0].shape[1:])
    raw_dtype = str(parts["train"][0].dtype)
    parts = {split: (_with_rank(xs, modality, split), ys) for split, (xs, ys) in parts.items()}
    for split, (xs, _) in parts.items():
        checks.check_finite(xs, split)

    # 2. Labels: the task from training, every split encoded by it, every class seen in training.
    task = infer_task(parts["train"][1], task, num_classes)
    parts = {split: (xs, task.encode(ys, split)) for split, (xs, ys) in parts.items()}
    checks.check_classes(parts["train"][1], task, "train")

    # 3. Splits: test (fixed seed), then validation (run seed), then the training cap.
    x_tr, y_tr = parts["train"]
    test_carved = "test" not in parts
    if test_carved:
        x_tr, x_te, y_tr, y_te = checks.carve(x_tr, y_tr, test_fraction, TEST_SEED, task, "test", "train")
        warnings.warn(
            f"No test split was given: kreg carved {len(y_te)} of the {len(y_te) + len(y_tr)} training "
            f"examples ({test_fraction:.0%}{', stratified' if isinstance(task, Classification) else ''}, fixed "
            f"seed {TEST_SEED}, the same for every run seed) as the test split. Pass x_test/y_test to test "
            "on data of your own choosing.", UserWarning, stacklevel=2)
    else:
        x_te, y_te = parts["test"]
    if "validation" in parts:
        x_va, y_va = parts["validation"]
    else:
        x_tr, x_va, y_tr, y_va = checks.carve(x_tr, y_tr, validation_fraction, seed, task, "validation", "train")
    if max_train_examples is not None and max_train_examples < len(y_tr):
        x_tr, y_tr = _subsample(x_tr, y_tr, max_train_examples, seed, task)

    # 4. Standardization from the training part only (after the carves).
    mode = standardize or ("feature" if modality == "tabular" else "global")
    scaler = Standardization.fit(mode, x_tr)
    x_tr, x_va, x_te = (scaler.apply(a) for a in (x_tr, x_va, x_te))

    # Regression targets train standardized too (metrics are reported in their units: see Regression).
    if task.kind == "regression":
        task = task.standardized(y_tr)
        y_tr, y_va, y_te = (task.to_training(a) for a in (y_tr, y_va, y_te))
    num = task.num_classes if isinstance(task, Classification) else None
    spec = InputSpec(shape=x_tr.shape[1:], num_classes=num, modality=modality, dataset=name, task=task)
    return DatasetSplits(spec, x_tr, y_tr, x_va, y_va, x_te, y_te, seed=int(seed), scaler=scaler,
                         test_carved=test_carved, raw_shape=raw_shape,
                         raw_dtype=raw_dtype)


def from_npz(path, **kwargs) -> DatasetSplits:
    """Splits from a ``.npz`` file with ``x_train``/``y_train`` (or ``x``/``y``), optional
    ``x_val``/``y_val`` and ``x_test``/``y_test``.

    Args:
        path: The ``.npz`` file (``numpy.savez``).
        **kwargs: Passed to ``from_arrays`` (``task``, ``seed``, ...).

    Example:
        >>> np.savez("data.npz", x_train=x, y_train=y, x_test=xt, y_test=yt)
        >>> splits = kreg.data.from_npz("data.npz")
    """
    path = os.fspath(path)
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {key: data[key] for key in data.files}
    except FileNotFoundError:
        raise DataError(f"No such .npz file: {path!r}") from None
    except (ValueError, OSError) as exc:  # not an npz, or object arrays (pickles are refused)
        raise DataError(f"Cannot read {path!r} as a .npz file of numeric or string arrays ({exc}).") from None
    kwargs.setdefault("name", os.path.basename(path))
    return from_arrays(**split_mapping(arrays, f"the .npz file {path!r}"), **kwargs)


def split_mapping(mapping: dict, where: str, allowed: tuple = ()) -> dict:
    """``from_arrays`` arguments from a mapping of ``x_train``/``y_train`` (or ``x``/``y``),
    ``x_val``/``y_val``, ``x_test``/``y_test`` (and the ``allowed`` keyword names)."""
    unknown = sorted(set(mapping) - set(_ARRAY_KEYS) - set(allowed))
    if unknown:
        raise DataError(f"Unexpected key(s) {unknown} in {where}. Expected x_train/y_train (or x/y), "
                        "optionally x_val/y_val and x_test/y_test.")
    both = [k for k in ("x", "y") if k in mapping and f"{k}_train" in mapping]
    if both:
        raise DataError(f"{where} holds both `{both[0]}` and `{both[0]}_train`; give one.")
    if not any(k in mapping for k in ("x", "x_train")) or not any(k in mapping for k in ("y", "y_train")):
        raise DataError(f"{where} needs training inputs and labels: keys x_train and y_train (or x and y). "
                        f"Received keys {sorted(mapping)}")
    return {_ARRAY_KEYS.get(k, k): value for k, value in mapping.items()}


def _with_rank(x: np.ndarray, modality: str, split: str) -> np.ndarray:
    """``x`` with the rank its modality needs: a channel axis added to (n, steps) / (n, h, w)."""
    rank = MODALITY_RANK[modality]
    if x.ndim - 1 == rank - 1 and modality != "tabular":
        x = x[..., None]
    if x.ndim - 1 != rank:
        raise DataError(f"Inputs of the {split} split have shape {x.shape}, which does not fit modality "
                        f"{modality!r}: it needs (n, {_RANK_HINT[modality]}).")
    return x


_RANK_HINT = {"tabular": "features", "sequence": "steps, channels", "image": "height, width, channels"}


def _subsample(x, y, size: int, seed: int, task):
    from sklearn.model_selection import train_test_split

    stratified = isinstance(task, Classification)
    if stratified and size < task.num_classes:
        raise checks.invalid("max_train_examples", f"at least the number of classes ({task.num_classes})", size)
    x, _, y, _ = train_test_split(x, y, train_size=size, stratify=y if stratified else None, random_state=seed)
    checks.check_classes(y, task, f"train split cut to max_train_examples={size}")
    return x, y

