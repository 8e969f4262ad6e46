"""keras-tuner's private API behind one door (kreg.lab.search._keras_tuner): version-checked, patched only when needed."""

import importlib
import os
import pathlib
import subprocess
import sys

import keras_tuner
import pytest

from kreg.lab.search import _keras_tuner as door

REPO = pathlib.Path(__file__).resolve().parents[1]


def test_an_unknown_keras_tuner_is_refused_with_one_sentence(monkeypatch):
    assert door.check_version() == keras_tuner.__version__  # the installed one is known
    monkeypatch.setattr(keras_tuner, "__version__", "1.5.0")
    with pytest.raises(ImportError) as caught:  # the reload defines the class anew: matched by its name
        importlib.reload(door)  # the check runs at import, before any private module is touched
    assert type(caught.value).__name__ == "UnknownKerasTuner"
    text = str(caught.value)
    assert "\n" not in text
    assert "the installed keras-tuner is 1.5.0" in text and "1.4.x" in text and "1.4.8" in text
    assert "pip install 'keras-tuner>=1.4.8,<1.5'" in text
    monkeypatch.undo()
    importlib.reload(door)  # back to the installed version for the tests that follow
    assert door.VERSION == keras_tuner.__version__


@pytest.mark.parametrize("version", ["1.3.5", "2.0.0", "1.5", "nightly"])
def test_other_series_are_refused(version):
    with pytest.raises(door.UnknownKerasTuner, match=f"the installed keras-tuner is {version}:"):
        door.check_version(version)


@pytest.mark.parametrize("version", ["1.4.8", "1.4.7", "1.4.9.dev0"])
def test_the_known_series_passes(version):
    assert door.check_version(version) == version


def test_nothing_outside_the_door_reads_keras_tuner_private_api():
    """``keras_tuner.src`` and the oracle's private attributes appear in the door only."""
    needles = ("keras_tuner.src", "._retry_queue", "._run_times", "._save_trial(", "consecutive failures",
               "LinkedList", "._is_worker", "Parent.to_proto =")
    found = []
    for path in (REPO / "kreg").rglob("*.py"):
        if path.name == "_keras_tuner.py":
            continue
        text = path.read_text()
        found += [f"{path.relative_to(REPO)}: {n}" for n in needles if n in text]
    assert found == []


def test_importing_the_search_patches_nothing_starting_a_chief_does():
    """Importing every search module leaves keras-tuner as it is; ``rpc.serve``/``Connection`` patch it."""
    code = (
        "import importlib, pkgutil, kreg.lab.search as s\n"
        "from keras_tuner.src.engine import conditions\n"
        "from keras_tuner.src import config\n"
        "original = conditions.Parent.to_proto\n"
        "for m in pkgutil.iter_modules(s.__path__): importlib.import_module('kreg.lab.search.' + m.name)\n"
        "import kreg.lab.search.tune, kreg.lab.cli\n"
        "assert conditions.Parent.to_proto is original, 'patched at import'\n"
        "assert conditions.Parent.to_proto.__module__ == 'keras_tuner.src.engine.conditions'\n"
        "assert config.DEBUG is True\n"
        "from kreg.lab.search import _keras_tuner as door, rpc\n"
        "assert not door.patched()\n"
        "rpc.Connection('127.0.0.1', 1).close()\n"
        "assert door.patched() and conditions.Parent.to_proto is not original\n"
        "print('ok')\n"
    )
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip().endswith("ok")
