"""``kreg validate`` refuses what ``kreg tune`` would refuse before training; a builder that raises is one line.

Each bad pipeline is given to both commands: the same exit code (2) and the
same one line, and ``validate`` never says "valid pipeline" for a file
``tune`` cannot run.
"""

from __future__ import annotations

import itertools
import os
import re
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from kreg.lab.cli import main

_names = itertools.count()

CSV = "a,b,y\n" + "".join(f"{i % 5},{(i * 7) % 3},{i % 2}\n" for i in range(30))


def _module(tmp_path: Path, source: str) -> str:
    """A module of the user's, beside the pipeline file, with a name no other test imported."""
    name = f"userfns_{os.getpid()}_{next(_names)}"
    (tmp_path / f"{name}.py").write_text(source)
    return name


def _pipeline(tmp_path: Path, data: dict, model: dict, name: str = "p") -> str:
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump({"name": "t", "data": data, "model": model, "training": {"epochs": 1},
                                    "search": {"tuner": "random", "max_trials": 1}}))
    return str(path)


def _run(capsys, *argv) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _errors(err: str) -> list[str]:
    return [line for line in err.splitlines() if line.startswith("kreg: error:")]


LOADER = "import numpy as np\ndef load():\n    raise AssertionError('validate must not call the loader')\nnot_a_function = 3\n"


def _case(kind: str, tmp_path: Path) -> tuple[str, str]:
    """(pipeline path, a fragment its one error line must hold)."""
    (tmp_path / "ok.csv").write_text(CSV)
    mlp = {"type": "mlp"}
    if kind == "loader_module":
        return _pipeline(tmp_path, {"loader": "nope_no_such.mod:fn"}, mlp), "Cannot import module 'nope_no_such.mod'"
    if kind == "loader_function":
        module = _module(tmp_path, LOADER)
        return _pipeline(tmp_path, {"loader": f"{module}:missing"}, mlp), "has no function 'missing'"
    if kind == "loader_not_callable":
        module = _module(tmp_path, LOADER)
        return _pipeline(tmp_path, {"loader": f"{module}:not_a_function"}, mlp), "has no function 'not_a_function'"
    if kind == "builder_module":
        return (_pipeline(tmp_path, {"csv": "ok.csv", "target": "y"}, {"builder": "nope_no_such.mod:fn"}),
                "Expected an importable module")
    if kind == "builder_function":
        module = _module(tmp_path, "def build():\n    pass\n")
        return (_pipeline(tmp_path, {"csv": "ok.csv", "target": "y"}, {"builder": f"{module}:missing"}),
                "a function `missing` in module")
    if kind == "csv_missing":
        return _pipeline(tmp_path, {"csv": "absent.csv", "target": "y"}, mlp), "No such CSV file for the train split"
    if kind == "csv_test_missing":
        return (_pipeline(tmp_path, {"csv": "ok.csv", "target": "y", "test": "absent_test.csv"}, mlp),
                "No such CSV file for the test split")
    if kind == "npz_missing":
        return _pipeline(tmp_path, {"arrays": "absent.npz"}, mlp), "No such .npz file"
    if kind == "npz_unreadable":
        (tmp_path / "bad.npz").write_text("not a zip file")
        return _pipeline(tmp_path, {"arrays": "bad.npz"}, mlp), "Cannot read"
    if kind == "csv_no_target":
        return (_pipeline(tmp_path, {"csv": "ok.csv", "target": "label"}, mlp),
                "Column(s) ['label'] (from `target`) are not in the train split")
    if kind == "csv_empty":
        (tmp_path / "empty.csv").write_text("")
        return _pipeline(tmp_path, {"csv": "empty.csv", "target": "y"}, mlp), "No columns to parse"
    if kind == "csv_header_only":
        (tmp_path / "header.csv").write_text("a,b,y\n")
        return _pipeline(tmp_path, {"csv": "header.csv", "target": "y"}, mlp), "has no rows"
    raise AssertionError(kind)


CASES = ["loader_module", "loader_function", "loader_not_callable", "builder_module", "builder_function",
         "csv_missing", "csv_test_missing", "npz_missing", "npz_unreadable", "csv_no_target", "csv_empty",
         "csv_header_only"]


@pytest.mark.parametrize("kind", CASES)
def test_validate_refuses_what_tune_refuses_with_the_same_line(kind, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path, fragment = _case(kind, tmp_path)
    code, out, err = _run(capsys, "validate", path)
    assert code == 2, (out, err)
    assert "valid pipeline" not in out
    lines = _errors(err)
    assert len(lines) == 1 and fragment in lines[0], err
    assert "Traceback" not in err
    store = tmp_path / "store"
    tune_code, _, tune_err = _run(capsys, "tune", path, "--tracking-uri", f"sqlite:///{store}/mlflow.db")
    assert (tune_code, _errors(tune_err)) == (2, lines)


def test_validate_imports_but_never_calls_the_users_functions(tmp_path, capsys, monkeypatch):
    """A good loader and builder pass: imported with the pipeline's directory on the path, not run."""
    monkeypatch.chdir(tmp_path)
    loader = _module(tmp_path, LOADER)
    builder = _module(tmp_path, "def build(width=8):\n    raise AssertionError('validate must not build')\n")
    path = _pipeline(tmp_path, {"loader": f"{loader}:load"}, {"builder": f"{builder}:build", "args": {"width": 4}})
    monkeypatch.chdir(Path(__file__).parent)  # the pipeline's own directory is what puts the modules on the path
    code, out, err = _run(capsys, "validate", path)
    assert code == 0, err
    assert "valid pipeline 't'" in out
    assert str(tmp_path) not in sys.path  # the import path is restored


def test_validate_reads_a_good_csv_and_npz_and_says_their_sizes(tmp_path, capsys):
    (tmp_path / "ok.csv").write_text(CSV)
    code, out, err = _run(capsys, "validate", _pipeline(tmp_path, {"csv": "ok.csv", "target": "y"}, {"type": "mlp"}))
    assert code == 0, err
    assert re.search(r"train \d+ / validation \d+ / test \d+", out)
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "d.npz", x_train=rng.normal(size=(40, 3)), y_train=np.arange(40) % 2,
             x_test=rng.normal(size=(10, 3)), y_test=np.arange(10) % 2)
    code, out, err = _run(capsys, "validate", _pipeline(tmp_path, {"arrays": "d.npz"}, {"type": "mlp"}, name="n"))
    assert code == 0, err
    assert "test 10" in out


BOOM = ("import keras\n"
        "def boom(width=8):\n    raise ValueError(f'width must be positive, got {width}')\n"
        "def crash(width=8):\n    return helper(width)\n"
        "def helper(width):\n    return width / 0\n"
        "def plan_boom(plan):\n    raise RuntimeError('cannot place ' + plan.describe())\n")


@pytest.mark.parametrize("function, said", [
    ("boom", "raised ValueError: width must be positive, got -3"),
    ("crash", "raised ZeroDivisionError: division by zero"),
])
def test_a_builder_that_raises_is_one_line_naming_it_and_a_log_with_the_traceback(function, said, tmp_path, capsys,
                                                                                      monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "ok.csv").write_text(CSV)
    module = _module(tmp_path, BOOM)
    path = _pipeline(tmp_path, {"csv": "ok.csv", "target": "y", "test": "ok.csv"},
                     {"builder": f"{module}:{function}", "args": {"width": -3}})
    store = tmp_path / "store"
    code, out, err = _run(capsys, "tune", path, "--tracking-uri", f"sqlite:///{store}/mlflow.db")
    assert code == 2, err
    lines = _errors(err)
    assert len(lines) == 1 and "Traceback" not in err, err
    assert lines[0].startswith(f"kreg: error: the model builder {module}:{function} {said} (traceback in ")
    log = Path(re.search(r"\(traceback in (.+)\)$", lines[0]).group(1))
    try:
        text = log.read_text()
        assert "Traceback (most recent call last)" in text and f"{module}.py" in text
        assert "arguments: {'width': -3}" in text
        if function == "crash":
            assert "in helper" in text  # the whole traceback, down to the line that raised
    finally:
        log.unlink()


def test_a_plan_builder_that_raises_from_python_is_a_builder_error_with_the_plan_in_its_log(tmp_path, wine_splits):
    """From Python: a BuilderError (a ConfigError) chained to the builder's own exception."""
    import kreg
    from kreg.lab.errors import BuilderError, ConfigError

    sys.path.insert(0, str(tmp_path))
    try:
        module = _module(tmp_path, BOOM)
        builder = getattr(__import__(module), "plan_boom")
        with pytest.raises(BuilderError) as info:
            kreg.tune(builder, wine_splits, techniques={"dropout": {"rate": {"min": 0.1, "max": 0.3}}},
                      tuner="random", max_trials=1, epochs=1, tracking_uri=f"sqlite:///{tmp_path}/s/mlflow.db",
                      verbose=0, cv=None)
    finally:
        sys.path.remove(str(tmp_path))
    error = info.value
    assert isinstance(error, ConfigError) and isinstance(error.__cause__, RuntimeError)
    assert str(error).startswith(f"the model builder {module}:plan_boom raised RuntimeError: cannot place")
    log = Path(error.log)
    try:
        assert "\nplan: " in log.read_text()  # which plan the builder was given
    finally:
        log.unlink()
