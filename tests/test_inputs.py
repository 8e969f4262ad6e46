"""Inputs that used to pass without a word: identifier-like CSV columns, misspelled or inapplicable keywords of
``kreg.tune``, booleans and strings where numbers are expected."""

from __future__ import annotations

import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

import kreg
from kreg.lab.config import load_pipeline, parse_pipeline
from kreg.lab.data.tables import from_csv
from kreg.lab.errors import ConfigError, DataError

ROOT = Path(__file__).resolve().parents[1]


def _frame(n: int = 300, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    a, b = rng.normal(size=n), rng.normal(size=n)
    return pd.DataFrame({"a": a, "b": b, "note": [f"customer wrote {i}: fine" for i in range(n)],
                         "city": [f"city{i % 80}" for i in range(n)], "kind": np.array(["x", "y", "z"])[np.arange(n) % 3],
                         "y": (a + b > 0).astype(int)})


def _warnings(fn, *args, **kwargs):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = fn(*args, **kwargs)
    return result, [str(w.message) for w in caught]


def test_an_identifier_like_text_column_is_dropped_with_a_warning_naming_it():
    splits, said = _warnings(from_csv, _frame(), "y", test=_frame(seed=1))
    assert splits.encoder.features == ("a", "b", "city", "kind")
    assert not any(name.startswith("note=") for name in splits.encoder.feature_names)
    assert splits.x_train.shape[1] == 2 + 80 + 3  # was 2 + 300 + 80 + 3: one feature per training row
    dropped = [m for m in said if m.startswith("Dropped identifier-like column(s)")]
    assert len(dropped) == 1 and "'note' (300 distinct values in 300 rows)" in dropped[0]


def test_high_cardinality_categories_warn_with_the_column_and_count():
    _, said = _warnings(from_csv, _frame(), "y", test=_frame(seed=1))
    many = [m for m in said if m.startswith("Column 'city' has 80 categories in 300 training rows")]
    assert len(many) == 1
    assert not any("'kind'" in m for m in said)  # 3 categories: nothing to say


def test_an_identifier_named_in_features_is_refused():
    with pytest.raises(DataError, match=r"Column 'note' \(from `features`\) looks like an identifier"):
        from_csv(_frame(), "y", features=["a", "note"], test=_frame(seed=1))


def test_a_small_table_of_distinct_categories_is_not_an_identifier():
    """Ten rows, ten cities: too few rows to tell an identifier from a category."""
    small = pd.DataFrame({"city": [f"c{i}" for i in range(10)], "x": np.arange(10.0), "y": np.arange(10) % 2})
    splits, said = _warnings(from_csv, small, "y", test=small)
    assert "city" in splits.encoder.features
    assert not any("identifier" in m or "categories in" in m for m in said)


def test_kreg_validate_prints_the_warning_as_one_line(tmp_path):
    _frame().to_csv(tmp_path / "train.csv", index=False)
    (tmp_path / "p.yaml").write_text(yaml.safe_dump({"name": "t", "data": {"csv": "train.csv", "target": "y"},
                                                     "model": {"type": "mlp"}}))
    result = subprocess.run([sys.executable, "-m", "kreg.lab.cli", "validate", str(tmp_path / "p.yaml")],
                            capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    lines = [line for line in result.stderr.splitlines() if "identifier-like" in line]
    assert len(lines) == 1 and lines[0].startswith("kreg: warning: Dropped identifier-like column(s) 'note'")


@pytest.fixture(scope="module")
def splits():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(60, 4)).astype("float32")
    return kreg.data.from_arrays(x, (x[:, 0] > 0).astype(int), x_test=x[:20], y_test=(x[:20, 0] > 0).astype(int))


def _tune(data, tmp_path, **kwargs):
    return kreg.tune("mlp", data, **{"tuner": "random", "epochs": 1, "verbose": 0, "cv": None,
                                     "tracking_uri": f"sqlite:///{tmp_path}/store/mlflow.db", **kwargs})


@pytest.mark.parametrize("data", ["prepared", "by name"])
def test_a_misspelled_keyword_is_a_type_error_naming_tune_and_the_close_match(data, splits, tmp_path):
    with pytest.raises(TypeError, match=r"^tune\(\) got an unexpected keyword argument 'max_trails'\. "
                                        r"Did you mean 'max_trials'\?$"):
        _tune(splits if data == "prepared" else "wine", tmp_path, max_trails=3)
    assert not (tmp_path / "store").exists()  # refused before anything was created


def test_a_data_option_that_does_not_apply_is_a_type_error(splits, tmp_path):
    with pytest.raises(TypeError, match=r"^tune\(\) got the keyword argument 'validation_fraction', a data option "
                                        r"that does not apply to prepared splits \(DatasetSplits\)"):
        _tune(splits, tmp_path, validation_fraction=0.9)
    with pytest.raises(TypeError, match=r"'target', a data option that does not apply to the dataset 'wine' "
                                        r"\(its options: .*validation_fraction"):
        _tune("wine", tmp_path, target="y")


@pytest.mark.parametrize("keyword, value, expected", [
    ("max_trials", True, "an integer (a bool is not a number)"),
    ("epochs", "3", "an integer (a str is not a number)"),
    ("batch_size", False, "an integer (a bool is not a number)"),
    ("learning_rate", "0.01", "a number (a str is not a number)"),
    ("gap_penalty", True, "a number (a bool is not a number)"),
    ("initial_points", "2", "an integer (a str is not a number)"),
])
def test_booleans_and_strings_are_not_numbers(keyword, value, expected, splits, tmp_path):
    with pytest.raises(ConfigError) as info:
        _tune(splits, tmp_path, **{keyword: value})
    assert str(info.value) == (f"Invalid value received for field `{keyword}`. Expected {expected}. "
                               f"Received: {keyword}={value!r}")


def test_numpy_numbers_are_still_numbers():
    from kreg.lab.search.settings import SearchSettings, Training, build

    assert build(Training, {"epochs": np.int64(3), "learning_rate": np.float32(0.5)}).epochs == 3
    assert build(SearchSettings, {"max_trials": np.int32(2)}).max_trials == 2


def test_yaml_numbers_booleans_and_exponents(tmp_path):
    base = yaml.safe_load((ROOT / "pipelines" / "digits_cnn.yaml").read_text())
    with pytest.raises(ConfigError, match=r"field `search.max_trials`.*Expected an integer \(a bool"):
        parse_pipeline({**base, "search": {**base["search"], "max_trials": True}})
    with pytest.raises(ConfigError, match=r"field `seed`.*Expected an integer \(a str"):
        parse_pipeline({**base, "seed": "3"})
    text = (ROOT / "pipelines" / "digits_cnn.yaml").read_text()
    (tmp_path / "p.yaml").write_text(text + "\ntraining: {epochs: 2, learning_rate: 1e-3}\n")
    assert load_pipeline(tmp_path / "p.yaml").training.learning_rate == 0.001  # YAML 1.2's float, not '1e-3'
