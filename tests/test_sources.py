"""Data sources: arrays, npz, CSV, tf.data (streamed), loaders, resolve_data, and every bad-data error."""

import textwrap
import warnings

import numpy as np
import pytest

from kreg.data import DataError, InputSpec, from_arrays, from_csv, from_datasets, from_loader
from kreg.lab.data import DatasetSplits, StreamSplits, from_npz, resolve_data
from kreg.lab.task import Classification, Regression

agnostic = pytest.mark.backend_agnostic  # numpy only: also run under KERAS_BACKEND=jax


def _classes(n=1000, seed=0, shift=0.0):
    """Imbalanced 3-class data (60/30/10%), 6 features with their own scales."""
    rng = np.random.default_rng(seed)
    y = rng.choice(3, size=n, p=[0.6, 0.3, 0.1])
    x = rng.normal(loc=[0, 5, -2, 10, 0, 1], scale=[1, 2, 0.5, 3, 1, 4], size=(n, 6)) + shift
    return x, y


def _quiet(**kw):
    """from_arrays with the carved-test warning silenced (tests that do not check it)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return from_arrays(**kw)


# --------------------------------------------------------------------------- arrays


@agnostic
def test_from_arrays_sizes_stratified_and_test_untouched():
    x, y = _classes(1000)
    x_test, y_test = _classes(200, seed=1, shift=3.0)
    s = from_arrays(x, y, x_test=x_test, y_test=y_test, seed=0)
    assert isinstance(s, DatasetSplits) and s.in_memory
    assert s.sizes() == {"train": 800, "validation": 200, "test": 200}
    assert s.spec == InputSpec((6,), 3, "tabular", dataset="arrays")
    assert s.y_train.dtype == np.int64 and s.x_train.dtype == np.float32
    share = lambda labels: np.bincount(labels, minlength=3) / len(labels)  # noqa: E731
    np.testing.assert_allclose(share(s.y_val), share(s.y_train), atol=0.01)
    np.testing.assert_array_equal(s.y_test, y_test)  # same examples, same order
    # Standardized with training statistics only: z-scores on train, not on (shifted) test.
    np.testing.assert_allclose(s.x_train.mean(axis=0), 0, atol=1e-5)
    np.testing.assert_allclose(s.x_train.std(axis=0), 1, atol=1e-4)
    assert np.all(s.x_test.mean(axis=0) > 0.5)
    assert s.standardization["mode"] == "feature" and s.standardization["mean"].shape == (6,)
    np.testing.assert_allclose(s.transform(x_test), s.x_test, atol=1e-6)
    assert "train 800 / validation 200 / test 200" in s.describe() and "per feature" in s.describe()


@agnostic
def test_validation_carve_follows_the_seed():
    x, y = _classes(400)
    kw = dict(x_test=x[:50], y_test=y[:50])
    a, b, c = (from_arrays(x, y, seed=seed, **kw) for seed in (0, 0, 1))
    np.testing.assert_array_equal(a.x_val, b.x_val)
    assert not np.array_equal(a.y_val, c.y_val)


@agnostic
def test_missing_test_split_is_carved_with_a_fixed_seed_and_a_warning():
    x, y = _classes(500)
    with pytest.warns(UserWarning, match=r"No test split was given: kreg carved 100 of the 500.*fixed seed"):
        a = from_arrays(x, y, seed=0, standardize="none")
    b = _quiet(x=x, y=y, seed=1, standardize="none")
    np.testing.assert_array_equal(a.x_test, b.x_test)  # the test split never moves with the run seed
    assert not np.array_equal(a.x_val, b.x_val)
    assert a.sizes() == {"train": 320, "validation": 80, "test": 100}
    assert "carved" in a.describe()


@agnostic
def test_regression_targets():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 4))
    s = from_arrays(x, x @ [1.0, 2, 3, 4], x_test=x[:40], y_test=x[:40] @ [1.0, 2, 3, 4])
    assert isinstance(s.spec.task, Regression) and s.spec.num_classes is None and s.spec.output_units == 1
    assert s.y_train.shape == (240, 1) and s.y_train.dtype == np.float32
    multi = _quiet(x=x, y=x[:, :2], task="regression")
    assert multi.spec.task.targets == 2 and multi.spec.output_units == 2
    # Targets train standardized with the training part's statistics; the task maps outputs back to units.
    task = s.spec.task
    np.testing.assert_allclose(s.y_train.mean(axis=0), 0.0, atol=1e-5)
    np.testing.assert_allclose(s.y_train.std(axis=0), 1.0, atol=1e-4)
    np.testing.assert_allclose(task.to_units(s.y_test).ravel(), x[:40] @ [1.0, 2, 3, 4], rtol=1e-5, atol=1e-4)
    # Integer targets in several columns are targets, not classes.
    counts = _quiet(x=x, y=rng.integers(0, 9, size=(300, 2)))
    assert isinstance(counts.spec.task, Regression)
    assert len(counts.train_sample(50)[1]) == 50


@agnostic
def test_one_hot_and_string_labels():
    x, y = _classes(300)
    one_hot = np.eye(3)[y]
    s = from_arrays(x, one_hot, x_test=x[:30], y_test=one_hot[:30])
    np.testing.assert_array_equal(s.y_test, y[:30])
    names = np.array(["cat", "dog", "eel"])
    s = from_arrays(x, names[y], x_test=x[:30], y_test=names[y[:30]])
    assert s.spec.task.classes == ("cat", "dog", "eel") and s.spec.num_classes == 3
    np.testing.assert_array_equal(s.y_test, y[:30])
    with pytest.raises(DataError, match=r"test split are not among the training classes.*\['fox'\]"):
        from_arrays(x, names[y], x_test=x[:2], y_test=["cat", "fox"])


@agnostic
@pytest.mark.parametrize("shape, modality, standardization", [
    ((20,), "tabular", "feature"), ((20, 2), "sequence", "global"), ((8, 8, 1), "image", "global")])
def test_modality_from_rank(shape, modality, standardization):
    x = np.random.default_rng(0).normal(size=(60, *shape))
    y = np.arange(60) % 2
    s = from_arrays(x, y, x_test=x[:10], y_test=y[:10])
    assert s.spec.modality == modality and s.spec.shape == shape
    assert s.standardization["mode"] == standardization


@agnostic
def test_declared_modality_adds_the_channel_axis():
    x = np.random.default_rng(0).normal(size=(60, 20))
    y = np.arange(60) % 2
    s = from_arrays(x, y, x_test=x[:10], y_test=y[:10], modality="sequence")
    assert s.spec.shape == (20, 1) and s.x_test.shape == (10, 20, 1)
    assert s.transform(x[:3]).shape == (3, 20, 1)


@agnostic
def test_max_train_examples_bootstrap_and_train_sample():
    x, y = _classes(600)
    s = from_arrays(x, y, x_test=x[:60], y_test=y[:60], max_train_examples=200)
    assert s.sizes()["train"] == 200 and set(np.unique(s.y_train)) == {0, 1, 2}
    b1, b2 = s.bootstrap(1), s.bootstrap(1)
    assert b1.sizes() == s.sizes() and b1.seed == 1
    np.testing.assert_array_equal(b1.x_train, b2.x_train)
    assert len(np.unique(b1.x_train, axis=0)) < 200  # drawn with replacement
    xs, ys = s.train_sample(60)
    assert len(ys) == 60 and np.array_equal(xs, s.train_sample(60)[0])
    assert np.bincount(ys, minlength=3).min() >= 4  # stratified: the 10% class is there


def test_in_memory_tf_data_pipelines():
    x, y = _classes(200)
    s = from_arrays(x, y, x_test=x[:30], y_test=y[:30])
    xb, yb = next(iter(s.train_dataset(16, batch_map=lambda ds: ds.map(lambda a, b: (a * 0, b)))))
    assert tuple(xb.shape) == (16, 6) and float(abs(xb).numpy().max()) == 0.0
    assert sum(int(b[1].shape[0]) for b in s.eval_dataset("test", 8)) == 30
    np.testing.assert_array_equal(s.labels("validation"), s.y_val)


# --------------------------------------------------------------------------- bad data

_X, _Y = _classes(100)


def _nan_test():
    x_test = _X[:20].copy()
    x_test[3, 1] = np.nan
    x_test[7, 0] = np.inf
    return dict(x=_X, y=_Y, x_test=x_test, y_test=_Y[:20])


@agnostic
@pytest.mark.parametrize("kwargs, message", [
    (dict(x=_X[:10], y=_Y[:9]), r"train split differ in length: 10 inputs, 9 labels"),
    (dict(x=_X, y=_Y, x_test=_X[:5], y_test=_Y[:4]), r"test split differ in length: 5 inputs, 4 labels"),
    (_nan_test(), r"Inputs of the test split contain 2 NaN or infinite values \(in 2 of 20 examples\)"),
    (dict(x=np.where(np.arange(100)[:, None] == 4, np.nan, _X), y=_Y, x_test=_X, y_test=_Y),
     r"Inputs of the train split contain 6 NaN"),
    (dict(x=_X, y=np.full(100, 0.5), task="classification", x_test=_X, y_test=_Y),
     r"must be class indices.*non-integer values such as \[0.5"),
    (dict(x=_X, y=_Y * 2 % 4, num_classes=4, x_test=_X, y_test=_Y),
     r"Class\(es\) \[1, 3\] never occur in the training split"),
    (dict(x=_X, y=np.where(_Y == 1, 0, _Y), x_test=_X, y_test=_Y), r"Class\(es\) \[1\] never occur"),
    (dict(x=_X, y=_Y % 2, x_test=_X, y_test=_Y), r"Labels of the test split must lie in \[0, 1\]"),
    (dict(x=_X, y=_Y - 1, x_test=_X, y_test=_Y), r"class indices 0..num_classes-1.*from -1 to 1"),
    (dict(x=_X[:8], y=np.arange(8) % 4, x_test=_X, y_test=_Y % 4),
     r"train split \(8 examples\) is too small to carve a validation split of 0.2: it would hold 2"),
    (dict(x=_X, y=np.r_[np.zeros(99, int), 1], x_test=_X, y_test=_Y % 2),
     r"Class\(es\) \[1\] have fewer than 2 examples in the train split \(counts \[1\]\)"),
    (dict(x=_X, y=_Y, x_test=_X), r"`x_test` and `y_test` go together: received `x_test` but y_test=None"),
    (dict(x=_X, y=_Y, y_val=_Y, x_test=_X, y_test=_Y), r"`x_val` and `y_val` go together"),
    (dict(x=_X, y=_Y, x_val=_X[:0], y_val=_Y[:0], x_test=_X, y_test=_Y), r"validation split is empty"),
    (dict(x=_X, y=_Y, x_test=_X[:, :5], y_test=_Y), r"test split have per-example shape \(5,\); the train"),
    (dict(x={"a": _X}, y=_Y), r"`x` must be one array; dict"),
    (dict(x=_X[:, 0], y=_Y), r"`x` must have a batch axis.*shape \(100,\)"),
    (dict(x=_X.astype(str), y=_Y), r"`x` must hold numbers"),
    (dict(x=_X, y=_Y, validation_fraction=1.0), r"argument `validation_fraction`.*validation_fraction=1.0"),
    (dict(x=_X, y=_Y, standardize="minmax"), r"argument `standardize`.*standardize='minmax'"),
    (dict(x=_X, y=_Y, modality="graph"), r"argument `modality`"),
    (dict(x=_X, y=_Y, modality="image"), r"does not fit modality 'image'"),
    (dict(x=_X, y=_Y, task="ranking"), r"`task`.*task='ranking'"),
    (dict(x=_X, y=_Y, max_train_examples=2, x_test=_X, y_test=_Y), r"argument `max_train_examples`"),
])
def test_bad_data_fails_with_one_clear_message(kwargs, message):
    with pytest.raises(DataError, match=message):
        _quiet(**kwargs)


@agnostic
def test_input_spec_compatibility_and_regression():
    spec = InputSpec((40, 1), 10, "sequence")
    assert spec.task == Classification(10) and spec.output_units == 10 and spec.num_classes == 10
    reg = InputSpec((10,), None, "tabular", task=Regression(1))
    assert reg.num_classes is None and reg.output_units == 1
    with pytest.raises(DataError, match="num_classes=5 disagrees"):
        InputSpec((10,), 5, "tabular", task=Classification(3))
    with pytest.raises(DataError, match="needs `num_classes`"):
        InputSpec((10,), None, "tabular")


# --------------------------------------------------------------------------- npz and CSV


@agnostic
def test_npz(tmp_path):
    x, y = _classes(200)
    np.savez(tmp_path / "d.npz", x_train=x, y_train=y, x_test=x[:20], y_test=y[:20])
    s = from_npz(tmp_path / "d.npz", seed=3)
    assert s.sizes() == {"train": 160, "validation": 40, "test": 20} and s.spec.dataset == "d.npz"
    np.savez(tmp_path / "plain.npz", x=x, y=y, x_val=x[:30], y_val=y[:30], x_test=x[:20], y_test=y[:20])
    assert from_npz(tmp_path / "plain.npz").sizes() == {"train": 200, "validation": 30, "test": 20}
    np.savez(tmp_path / "bad.npz", inputs=x, labels=y)
    with pytest.raises(DataError, match=r"Unexpected key\(s\) \['inputs', 'labels'\] in the .npz file"):
        from_npz(tmp_path / "bad.npz")
    with pytest.raises(DataError, match="No such .npz file"):
        from_npz(tmp_path / "absent.npz")


def _write_csv(tmp_path):
    import pandas as pd

    rng = np.random.default_rng(0)
    n = 240
    city = rng.choice(["Lyon", "Paris", "Nice"], n)
    area = rng.uniform(20, 120, n)
    label = np.where(area > 70, "big", "small")
    pd.DataFrame({"area": area, "city": city, "rooms": rng.integers(1, 6, n), "label": label}).to_csv(
        tmp_path / "train.csv", index=False)
    test = pd.DataFrame({"area": [30.0, 90.0, 60.0], "city": ["Lyon", "Brest", "Nice"], "rooms": [1, 4, 2],
                         "label": ["small", "big", "small"]})
    test.to_csv(tmp_path / "test.csv", index=False)
    return test


@agnostic
def test_csv_categorical_features_and_string_target(tmp_path):
    test = _write_csv(tmp_path)
    s = from_csv(tmp_path / "train.csv", "label", test=tmp_path / "test.csv", seed=0)
    assert s.spec.task.classes == ("big", "small") and s.spec.modality == "tabular"
    assert s.encoder.feature_names == ["area", "city=Lyon", "city=Nice", "city=Paris", "rooms"]
    assert s.sizes() == {"train": 192, "validation": 48, "test": 3} and s.spec.dataset == "csv:train.csv"
    np.testing.assert_array_equal(s.y_test, [1, 0, 1])
    raw = s.encoder.transform(test)
    np.testing.assert_array_equal(raw[:, 1:4], [[1, 0, 0], [0, 0, 0], [0, 1, 0]])  # Brest: unseen, all zero
    np.testing.assert_allclose(s.transform(test.drop(columns="label")), s.x_test, atol=1e-6)


@agnostic
def test_csv_errors(tmp_path):
    import pandas as pd

    _write_csv(tmp_path)
    with pytest.raises(DataError, match=r"\['price'\] \(from `target`\) are not in the train split. "
                                        r"Its columns are \['area', 'city', 'rooms', 'label'\]"):
        from_csv(tmp_path / "train.csv", "price")
    frame = pd.read_csv(tmp_path / "train.csv")
    frame.loc[[3, 9], "area"] = np.nan
    frame.to_csv(tmp_path / "holes.csv", index=False)
    with pytest.raises(DataError, match=r"Column 'area' of the train split has 2 missing value\(s\) \(of 240"):
        from_csv(tmp_path / "holes.csv", "label", test=tmp_path / "test.csv")
    with pytest.raises(DataError, match="No such CSV file for the test split"):
        from_csv(tmp_path / "train.csv", "label", test=tmp_path / "nope.csv")


@agnostic
def test_csv_regression_through_resolve_data(tmp_path):
    _write_csv(tmp_path)
    with pytest.warns(UserWarning, match="No test split"):
        s = resolve_data(str(tmp_path / "train.csv"), target="area", features=["rooms", "city"], seed=2)
    assert isinstance(s.spec.task, Regression) and s.spec.shape == (4,) and s.seed == 2
    with pytest.raises(DataError, match="needs `target`"):
        resolve_data(str(tmp_path / "train.csv"))


# --------------------------------------------------------------------------- tf.data


def _counted(n, features=5, classes=3, start=0):
    """A generator-backed dataset that counts the examples it produces."""
    import tensorflow as tf

    read = [0]
    rng = np.random.default_rng(start)
    x = rng.normal(size=(n, features)).astype("float32")
    y = (np.arange(n) % classes).astype("int64")

    def gen():
        for i in range(n):
            read[0] += 1
            yield x[i], y[i]

    sig = (tf.TensorSpec((features,), tf.float32), tf.TensorSpec((), tf.int64))
    return tf.data.Dataset.from_generator(gen, output_signature=sig), read


def test_tf_data_is_streamed_not_materialized():
    train, read = _counted(3000)
    val, _ = _counted(300, start=1)
    test, _ = _counted(300, start=2)
    s = from_datasets(train, validation=val, test=test, task="classification", num_classes=3,
                      shuffle_buffer=64, seed=0)
    assert isinstance(s, StreamSplits) and not s.in_memory
    assert s.sizes() == {"train": None, "validation": None, "test": None}
    x, y = s.train_sample(100)
    assert x.shape == (100, 5) and y.dtype == np.int64 and np.array_equal(y, s.train_sample(100)[1])
    xb, yb = next(iter(s.train_dataset(16)))
    assert tuple(xb.shape) == (16, 5)
    assert read[0] < 600, f"{read[0]} of 3000 training examples read for one batch"
    assert s.labels("test").shape == (300,)
    assert s.standardization["mode"] == "none" and "streamed" in s.describe()
    with pytest.raises(DataError, match="validation split is streamed"):
        s.arrays("validation")
    with pytest.raises(DataError, match="ensembles need in-memory data|need in-memory data"):
        s.bootstrap(1)


def test_tf_data_batched_regression_and_one_hot():
    import tensorflow as tf

    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 12)).astype("float32")
    ds = tf.data.Dataset.from_tensor_slices((x, x[:, :2])).batch(50)
    s = from_datasets(ds, validation=ds.take(1), test=ds.take(1), task="regression", batched=True,
                      modality="sequence")
    assert s.spec.shape == (12, 1) and s.spec.task == Regression(2) and s.spec.num_classes is None
    xb, yb = next(iter(s.train_dataset(32)))
    assert tuple(xb.shape) == (32, 12, 1) and tuple(yb.shape) == (32, 2)
    one_hot = tf.data.Dataset.from_tensor_slices((x, np.eye(4, dtype="float32")[np.arange(200) % 4]))
    s = from_datasets(one_hot, validation=one_hot, test=one_hot, task="classification", num_classes=4)
    assert s.sizes()["train"] == 200
    np.testing.assert_array_equal(s.labels("test")[:6], [0, 1, 2, 3, 0, 1])


def test_tf_data_errors():
    import tensorflow as tf

    x = np.zeros((40, 3), "float32")
    good = tf.data.Dataset.from_tensor_slices((x, np.arange(40) % 2))
    cases = [
        (dict(task=None), r"argument `task`"),
        (dict(task="classification"), r"argument `num_classes`.*num_classes=None"),
        (dict(task="classification", num_classes=2, validation=good.map(lambda a, b: (a, b + 5))),
         r"Labels of the validation split must lie in \[0, 1\]"),
        (dict(task="regression", test=good.map(lambda a, b: (a / 0.0, b))), r"Inputs of the test split contain"),
        (dict(task="regression", validation=good.map(lambda a, b: {"x": a, "y": b})), r"must be \(x, y\) pairs"),
        (dict(task="regression", test=x), r"`test` must be a tf.data.Dataset.*Received: ndarray"),
        (dict(task="regression", test=good.take(0)), r"test split is empty"),
        (dict(task="regression", validation=good.map(lambda a, b: (a[:2], b))), r"validation split have"),
        (dict(task="regression", train=good.repeat()), r"train dataset is infinite"),
    ]
    for kwargs, message in cases:
        args = {"train": good, "validation": good, "test": good, **kwargs}
        with pytest.raises(DataError, match=message):
            from_datasets(args.pop("train"), **args)


# --------------------------------------------------------------------------- loaders and resolve_data

_LOADER = textwrap.dedent("""
    import numpy as np
    import kreg.data

    rng = np.random.default_rng(0)
    X = rng.normal(size=(120, 4))
    Y = np.arange(120) % 2

    def as_dict():
        return {"x": X, "y": Y, "x_test": X[:20], "y_test": Y[:20], "task": "classification"}

    def as_tuple():
        return X, Y, X[:20], Y[:20]

    def as_splits():
        return kreg.data.from_arrays(X, Y, x_test=X[:20], y_test=Y[:20], name="mine")

    def wrong():
        return 42

    NOT_A_FUNCTION = 3
""")


@pytest.fixture
def loader_module(tmp_path, monkeypatch):
    (tmp_path / "kreg_test_loader_mod.py").write_text(_LOADER)
    monkeypatch.syspath_prepend(str(tmp_path))
    return "kreg_test_loader_mod"


@agnostic
def test_loader_sources(loader_module):
    s = from_loader(f"{loader_module}:as_dict", seed=4)
    assert s.sizes() == {"train": 96, "validation": 24, "test": 20} and s.seed == 4
    assert s.spec.dataset == f"{loader_module}:as_dict"
    assert from_loader(f"{loader_module}:as_tuple").sizes()["test"] == 20
    assert from_loader(f"{loader_module}:as_splits").spec.dataset == "mine"


@agnostic
@pytest.mark.parametrize("spec, message", [
    ("no_colon", r"argument `loader`.*loader='no_colon'"),
    ("a:b:c", r"argument `loader`"),
    ("kreg_no_such_module_xyz:load", r"Cannot import module 'kreg_no_such_module_xyz' of loader"),
    ("{mod}:missing", r"has no function 'missing' \(loader '{mod}:missing'\)"),
    ("{mod}:NOT_A_FUNCTION", r"has no function 'NOT_A_FUNCTION'"),
    ("{mod}:wrong", r"loader '{mod}:wrong' returned int; expected splits"),
])
def test_loader_errors(loader_module, spec, message):
    with pytest.raises(DataError, match=message.format(mod=loader_module)):
        from_loader(spec.format(mod=loader_module))


@agnostic
def test_resolve_data_dispatch(tmp_path, loader_module, tfds_dir, wine_splits):
    x, y = _classes(200)
    s = from_arrays(x, y, x_test=x[:20], y_test=y[:20])
    assert resolve_data(s) is s
    assert resolve_data((x, y, x[:20], y[:20]), seed=1).seed == 1
    assert resolve_data({"x_train": x, "y_train": y, "x_test": x[:20], "y_test": y[:20]}).sizes()["test"] == 20
    np.savez(tmp_path / "d.npz", x=x, y=y, x_test=x[:20], y_test=y[:20])
    assert resolve_data({"arrays": str(tmp_path / "d.npz")}).sizes()["test"] == 20
    assert resolve_data(tmp_path / "d.npz").spec.dataset == "d.npz"
    assert resolve_data(f"{loader_module}:as_tuple").sizes()["test"] == 20
    assert resolve_data({"loader": f"{loader_module}:as_dict"}, seed=2).seed == 2
    _write_csv(tmp_path)
    csv = resolve_data({"csv": str(tmp_path / "train.csv"), "target": "label", "test": str(tmp_path / "test.csv")})
    assert csv.sizes()["test"] == 3
    wine = resolve_data({"dataset": "wine"}, data_dir=tfds_dir)
    assert wine.sizes() == wine_splits.sizes() and wine.spec.modality == "tabular"
    for bad, message in [(42, r"Cannot use int as data. Expected splits"),
                         ("notes.txt", r"Cannot use 'notes.txt' as data"),
                         ({"dataset": "nope"}, r"Unknown dataset 'nope'"),
                         ({"csv": "a.csv", "loader": "m:f"}, r"names one source")]:
        with pytest.raises(DataError, match=message):
            resolve_data(bad)


def test_resolve_data_tf_datasets():
    train, _ = _counted(90)
    s = resolve_data({"train": train, "validation": train, "test": train, "task": "classification",
                      "num_classes": 3}, seed=5)
    assert isinstance(s, StreamSplits) and s.seed == 5
