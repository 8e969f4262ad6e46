"""The ``kreg`` command starts light and speaks only kreg's own lines.

Commands that train nothing import neither Keras nor TensorFlow (their time
is measured by ``scripts/bench_cli.py``, not here); commands that do load
TensorFlow keep its C++ start-up lines off the terminal unless asked for.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# TensorFlow's C++ lines: "I0000 00:00:... port.cc:153] oneDNN ...", "E0000 ... cuda_platform.cc", absl's preamble.
TF_NOISE = re.compile(r"^([IWEF]\d{4} \d\d:\d\d|WARNING: All log messages before absl)", re.MULTILINE)

_RUN = """
import json, sys
from kreg.lab.cli import main
try:
    code = main(sys.argv[1:])
except SystemExit as exc:  # --help
    code = exc.code
print(json.dumps({"code": code, "loaded": sorted(m for m in ("keras", "tensorflow", "jax", "mlflow", "keras_tuner")
                                                   if m in sys.modules)}))
"""


def _env(**extra) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("TF_CPP_MIN_LOG_LEVEL", "KREG_VERBOSE")}
    return {**env, **extra}


@pytest.mark.parametrize("argv", [
    ["--help"], ["tune", "--help"], ["study", "--help"], ["worker", "--help"], ["ui", "--help"],
    ["validate", "pipelines/digits_cnn.yaml"], ["validate", "pipelines/mnist1d_procedures.yaml"], ["techniques"],
    ["study", "no_such_study"],
])
def test_commands_that_train_nothing_import_no_keras_or_tensorflow(argv):
    result = subprocess.run([sys.executable, "-c", _RUN, *argv], capture_output=True, text=True, cwd=ROOT,
                            env=_env(), timeout=60)
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["code"] == (2 if argv[-1] == "no_such_study" else 0), result.stderr
    assert report["loaded"] == [], argv  # neither Keras, TensorFlow, JAX, MLflow nor keras-tuner
    assert not TF_NOISE.search(result.stderr)


_UI = """
import json, subprocess, sys
real = subprocess.Popen
seen = {}
class Server:  # MLflow's server is not started: what matters is what the supervisor itself imports
    pid = None
    def __init__(self, command, **kwargs):
        seen["loaded"] = sorted(m for m in ("keras", "tensorflow", "mlflow", "keras_tuner", "pandas")
                                if m in sys.modules)
    def wait(self, timeout=None):
        return 0
def popen(command, *args, **kwargs):
    return Server(command) if command[1:4] == ["-m", "mlflow", "ui"] else real(command, *args, **kwargs)
subprocess.Popen = popen
import kreg.lab.ui
kreg.lab.ui._stop_group = lambda server, grace_s=5.0: None
from kreg.lab.cli import main
print(json.dumps({"code": main(["ui", "--port", "5999"]), **seen}))
"""


def test_kreg_ui_supervisor_imports_no_keras_tensorflow_or_mlflow(tmp_path):
    """The supervisor starts MLflow's server (its own process) and waits: it held 845 MiB with TensorFlow, 270 MiB
    with MLflow (to print the latest search); now about 50 MiB (scripts/bench_cli.py measures it)."""
    result = subprocess.run([sys.executable, "-c", _UI], capture_output=True, text=True, cwd=ROOT,
                            env=_env(KREG_HOME=str(tmp_path)), timeout=120)
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report == {"code": 0, "loaded": []}, result.stderr


def test_study_help_lists_every_study_without_loading_one():
    """``KINDS`` (importable without Keras) names exactly the studies ``STUDIES`` builds, each at its kind."""
    from kreg.lab.studies import KINDS, STUDIES

    assert list(STUDIES) == list(KINDS)
    assert all(study.kind == kind for kind, study in STUDIES.items())
    from kreg.lab.cli import _parser

    help_text = " ".join(_parser()._subparsers._group_actions[0].choices["study"].format_help().split())
    assert all(kind in help_text for kind in KINDS)


_IMPORT_TF = """
from kreg.lab.quiet import quiet_tensorflow
quiet_tensorflow()
import kreg, keras  # kreg's own finder (registration) wraps TensorFlow's import too
import tensorflow as tf
assert "kreg>DropBlock2D" in keras.saving.get_custom_objects()  # registration still happened
tf.constant([1.0]) + 1.0  # the first op: the C++ lines after start-up (cuInit...) follow the log level
print("ok")
"""


@pytest.mark.parametrize("verbose", [False, True])
def test_tensorflow_start_up_lines_stay_off_the_terminal_unless_verbose(verbose):
    result = subprocess.run([sys.executable, "-c", _IMPORT_TF], capture_output=True, text=True, cwd=ROOT,
                            env=_env(**({"KREG_VERBOSE": "1"} if verbose else {})), timeout=120)
    assert result.returncode == 0 and result.stdout.strip() == "ok", result.stderr[-2000:]
    if verbose:  # the lines are there to hide: this machine's TensorFlow prints them
        assert TF_NOISE.search(result.stderr), result.stderr[-2000:]
    else:
        assert not TF_NOISE.search(result.stderr), result.stderr[-2000:]


def test_a_failing_tensorflow_import_still_shows_what_it_printed(tmp_path):
    """The captured lines come back when the import fails: the user's clue is not swallowed."""
    fake = tmp_path / "tensorflow"
    fake.mkdir()
    (fake / "__init__.py").write_text("import os\nos.write(2, b'native library says: missing libfoo.so\\n')\n"
                                      "raise ImportError('libfoo.so: cannot open shared object file')\n")
    script = ("import sys; sys.path.insert(0, sys.argv[1])\nfrom kreg.lab.quiet import quiet_tensorflow\n"
              "quiet_tensorflow()\nimport tensorflow\n")
    result = subprocess.run([sys.executable, "-c", script, str(tmp_path)], capture_output=True, text=True,
                            env=_env(), timeout=60)
    assert result.returncode == 1
    assert "native library says: missing libfoo.so" in result.stderr
    assert "ImportError: libfoo.so" in result.stderr


def test_kreg_tune_prints_no_tensorflow_lines(tmp_path):
    """The whole command, TensorFlow loaded, one trial trained: stderr holds none of TensorFlow's lines."""
    result = subprocess.run(
        [sys.executable, "-m", "kreg.lab.cli", "tune", str(ROOT / "pipelines" / "digits_cnn.yaml"),
         "--max-trials", "1", "--epochs", "1", "--tracking-uri", f"sqlite:///{tmp_path}/mlruns/mlflow.db"],
        capture_output=True, text=True, cwd=tmp_path, env=_env(KREG_HOME=str(tmp_path), COLUMNS="200"),
        timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "trial 0 COMPLETED" in result.stdout
    assert not TF_NOISE.search(result.stderr), result.stderr[-3000:]
    assert "retracing" not in result.stderr


def test_every_command_takes_verbose(monkeypatch):
    """``--verbose`` after any command lets TensorFlow's lines through (here and in the processes it starts)."""
    from kreg.lab.cli import _parser, main

    monkeypatch.setenv("KREG_VERBOSE", "0")  # recorded, so the "1" main() sets is undone after the test
    parser = _parser()
    for command in parser._subparsers._group_actions[0].choices:
        assert "--verbose" in parser._subparsers._group_actions[0].choices[command].format_help(), command
    monkeypatch.setattr("warnings.formatwarning", __import__("warnings").formatwarning)
    assert main(["validate", str(ROOT / "pipelines" / "digits_cnn.yaml"), "--verbose"]) == 0
    assert os.environ.get("KREG_VERBOSE") == "1"
