"""One error family: every error kreg raises on purpose is a ``kreg.KregError`` with its exit code, listed in the
table of ``kreg.lab.errors``, and each keeps the Python kind callers catch today."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

import kreg
import kreg.lab
from kreg.errors import ArgumentError, InputError, KregError
from kreg.lab import errors as lab_errors

LAB_ERRORS = ["ConfigError", "DataError", "ResumeError", "PipelineSyntaxError", "BuilderError", "JoinError",
              "StoreError", "ChiefLost", "BaselineBlocked", "Diverged", "SearchInterrupted"]


def _table() -> dict[str, str]:
    """``{error name: exit code text}`` from the table in kreg.lab.errors' docstring."""
    rows = re.findall(r"^``(\w+)``\s+.*?\s{2,}``(\w+)``\s+(.+?)\s*$", lab_errors.__doc__, re.M)
    return {name: code for name, _kind, code in rows}


def _all_subclasses(cls):
    for sub in cls.__subclasses__():
        yield sub
        yield from _all_subclasses(sub)


def test_kreg_exports_the_base_and_the_lab_exports_every_error():
    assert kreg.KregError is KregError
    for name in LAB_ERRORS:
        error = getattr(kreg.lab, name)
        assert issubclass(error, KregError), name


def test_every_error_is_in_the_table_with_its_exit_code():
    table = _table()
    for name in LAB_ERRORS:
        getattr(kreg.lab, name)  # imports the module that defines it
    known = {cls.__name__: cls for cls in _all_subclasses(KregError) if cls.__module__.startswith("kreg.")}
    assert set(known) == set(table), "errors missing from (or extra in) kreg.lab.errors' table"
    for name, cls in known.items():
        if name == "SearchInterrupted":
            assert table[name] == "128 + the signal"
            assert cls(15).exit_code == 143
        else:
            assert str(cls.exit_code) == table[name], name


def test_each_error_keeps_its_python_kind():
    for name in ["ConfigError", "DataError", "ResumeError", "JoinError"]:
        assert issubclass(getattr(kreg.lab, name), ValueError), name
    for name in ["StoreError", "ChiefLost", "BaselineBlocked", "Diverged"]:
        assert issubclass(getattr(kreg.lab, name), RuntimeError), name
    interrupted = kreg.lab.SearchInterrupted
    # A signal must pass through keras-tuner's `except Exception` (which would record a failed trial and go on).
    assert issubclass(interrupted, KeyboardInterrupt) and not issubclass(interrupted, Exception)
    with pytest.raises(KregError):
        try:
            raise interrupted(2)
        except Exception:  # noqa: BLE001 - the point: this handler must not see it
            pytest.fail("SearchInterrupted was caught by `except Exception`")


def test_a_refused_library_argument_is_a_value_error_and_a_kreg_error():
    with pytest.raises(ArgumentError, match=r"argument `rate`.*Received: rate=1.5") as caught:
        kreg.layers.DropBlock2D(rate=1.5, block_size=3)
    assert isinstance(caught.value, ValueError) and isinstance(caught.value, KregError)


def test_inputs_a_layer_cannot_use_raise_an_input_error():
    import numpy as np

    with pytest.raises(InputError, match="CutMix takes images"):
        kreg.augment.CutMix(num_classes=3)((np.zeros((4, 8), "float32"), np.zeros((4,), "int32")), training=True)


def test_the_command_exits_with_the_errors_code(tmp_path):
    pipeline = tmp_path / "p.yaml"
    pipeline.write_text("name: p\ndata: {dataset: wine}\nmodel: {type: mlp}\nsearch: {max_trials: -3}\n")
    done = subprocess.run([sys.executable, "-m", "kreg.lab.cli", "validate", str(pipeline)],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 2, done.stderr
    assert done.stderr.startswith("kreg: error: Invalid value received for field `search.max_trials`"), done.stderr
