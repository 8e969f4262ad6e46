import numpy as np
import pytest

from kreg.data import DataError, load_splits


def _rows(x, y):
    """Examples as a sorted list of (label, rounded values), order-free."""
    x = np.asarray(x, np.float32).reshape(len(y), -1).round(4)
    return sorted((int(label), tuple(row)) for row, label in zip(x, y))


def test_mnist1d_standard_split(tfds_dir, mnist1d_splits):
    s = mnist1d_splits
    assert s.sizes() == {"train": 3200, "validation": 800, "test": 1000}
    assert s.spec.shape == (40, 1) and s.spec.num_classes == 10 and s.spec.modality == "sequence"
    # Identical to the package's generator: the fixed 1000 test examples.
    from mnist1d.data import get_dataset_args, make_dataset

    ref = make_dataset(get_dataset_args())
    raw = load_splits("mnist1d", data_dir=tfds_dir, standardize="none")
    assert _rows(raw.x_test, raw.y_test) == _rows(ref["x_test"], ref["y_test"])


def test_validation_is_stratified_and_seeded(tfds_dir, mnist1d_splits):
    s = mnist1d_splits
    counts_train = np.bincount(s.y_train, minlength=10) / len(s.y_train)
    counts_val = np.bincount(s.y_val, minlength=10) / len(s.y_val)
    np.testing.assert_allclose(counts_train, counts_val, atol=0.01)
    again = load_splits("mnist1d", seed=0, data_dir=tfds_dir)
    np.testing.assert_array_equal(again.x_val, s.x_val)
    other = load_splits("mnist1d", seed=1, data_dir=tfds_dir)
    assert not np.array_equal(other.y_val, s.y_val)
    # The test split never depends on the run seed (standardization aside).
    np.testing.assert_array_equal(other.y_test, s.y_test)


def test_digits_test_split_is_second_half(tfds_dir):
    from sklearn.datasets import load_digits

    s = load_splits("digits", data_dir=tfds_dir, standardize="none")
    digits = load_digits()
    half = len(digits.target) // 2
    # tfds stores examples in its own order; the split holds the same examples.
    assert _rows(s.x_test, s.y_test) == _rows(digits.images[half:], digits.target[half:])
    assert s.spec.shape == (8, 8, 1) and s.spec.modality == "image"


def test_tabular_standardized_with_train_statistics(wine_splits):
    s = wine_splits
    assert s.spec.modality == "tabular" and s.spec.num_classes == 3
    np.testing.assert_allclose(s.x_train.mean(axis=0), 0, atol=1e-5)
    np.testing.assert_allclose(s.x_train.std(axis=0), 1, atol=1e-4)
    assert abs(s.x_test.mean()) > 1e-4  # test statistics were not used
    assert s.sizes()["test"] == 45  # fixed stratified 25% of 178


def test_tf_data_pipelines(wine_splits):
    x, y = next(iter(wine_splits.train_dataset(16)))
    assert tuple(x.shape) == (16, 13) and tuple(y.shape) == (16,)
    n = sum(int(b[1].shape[0]) for b in wine_splits.eval_dataset("test", 32))
    assert n == 45


def test_train_sample_fixed_and_stratified(mnist1d_splits):
    x1, y1 = mnist1d_splits.train_sample(500)
    x2, _ = mnist1d_splits.train_sample(500)
    assert len(y1) == 500
    np.testing.assert_array_equal(x1, x2)
    assert np.bincount(y1, minlength=10).min() >= 45


def test_tfds_name_with_mock_data(tmp_path):
    import tensorflow_datasets as tfds

    with tfds.testing.mock_data(num_examples=60):
        s = load_splits("tfds:mnist", seed=0, data_dir=str(tmp_path))
    assert s.spec.shape == (28, 28, 1) and s.spec.num_classes == 10
    assert s.sizes()["train"] == 48 and s.sizes()["validation"] == 12 and s.sizes()["test"] == 60


def test_unknown_dataset_names_field_and_value():
    with pytest.raises(ValueError, match=r"argument `dataset`.*Received: dataset='nope'"):
        load_splits("nope")
    with pytest.raises(DataError, match="tfds:not_a_dataset_xyz"):
        load_splits("tfds:not_a_dataset_xyz")


def test_missing_tfds_data_is_a_clear_error(tmp_path):
    with pytest.raises(DataError, match="not prepared"):
        load_splits("tfds:mnist", data_dir=str(tmp_path))
