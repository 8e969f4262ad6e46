"""TensorFlow's start-up noise kept off the terminal of every ``kreg`` command.

TensorFlow 2.21 logs through Abseil, and every line logged before
``absl::InitializeLog()`` goes to stderr whatever ``TF_CPP_MIN_LOG_LEVEL``
says: importing TensorFlow prints ``WARNING: All log messages before
absl::InitializeLog() ...``, ``I0000 ... port.cc] oneDNN custom operations
are on``, ``cudart_stub.cc``, ``cpu_feature_guard.cc`` (twice: two shared
libraries). Later C++ lines (``cuInit`` failing on a machine without a GPU,
``tf_record_dataset_op`` buffer notes) do follow ``TF_CPP_MIN_LOG_LEVEL``,
but only if it is set before TensorFlow loads.

So ``quiet_tensorflow()`` (the CLI calls it first, before anything imports
TensorFlow):

- sets ``TF_CPP_MIN_LOG_LEVEL=3`` unless the user set it (only the log
  level: ``TF_ENABLE_ONEDNN_OPTS`` changes numerics and is left alone);
- puts a finder on ``sys.meta_path`` that runs TensorFlow's own import with
  file descriptor 2 pointed at a temporary file, so the start-up lines
  (written by C++, below Python's ``sys.stderr``) never reach the terminal.
  If the import fails, what TensorFlow wrote is written back to stderr
  before the error propagates; on success it is dropped;
- sets the ``absl`` Python logger (TensorFlow Datasets' notes such as
  ``Variant folder ... has no dataset_info.json``) to ERROR. The
  ``tensorflow`` logger is left alone: its warnings can be the user's
  business, and the retracing ones are dropped while a trial trains
  (``kreg.lab.trial.memory``).

``kreg COMMAND --verbose`` (or ``KREG_VERBOSE=1``) does none of this: every
line reaches stderr, where ``2> tensorflow.log`` keeps it.

The finder, not an explicit ``import tensorflow`` in each command, because
TensorFlow arrives by many roads (Keras' backend, keras-tuner, TensorFlow
Datasets under the JAX backend, ``kreg._register`` on Keras' import) and
commands that train nothing must not load it at all.
"""

from __future__ import annotations

import logging
import os
import sys
import tempfile

from kreg._register import WrappedLoader, wrapped_spec

VERBOSE_ENV = "KREG_VERBOSE"
QUIET_TF_LEVEL = "3"  # C++ INFO, WARNING and ERROR lines hidden; FATAL shown


def verbose_requested() -> bool:
    return os.environ.get(VERBOSE_ENV, "").strip().lower() not in ("", "0", "false", "no")


class _QuietLoader(WrappedLoader):
    """Wraps TensorFlow's loader: its ``exec_module`` runs with fd 2 pointed at a temporary file."""

    def exec_module(self, module):
        _uninstall()
        sys.stderr.flush()
        saved = os.dup(2)
        with tempfile.TemporaryFile(mode="w+b") as capture:
            os.dup2(capture.fileno(), 2)
            failed = True
            try:
                self._loader.exec_module(module)
                failed = False
            finally:
                sys.stderr.flush()
                os.dup2(saved, 2)
                os.close(saved)
                if module.__loader__ is self:  # the module keeps its own loader, as if kreg had never looked
                    module.__loader__ = self._loader
                spec = getattr(module, "__spec__", None)
                if spec is not None and spec.loader is self:
                    spec.loader = self._loader
                if failed:  # what TensorFlow said before failing is the user's clue
                    capture.seek(0)
                    sys.stderr.write(capture.read().decode(errors="replace"))
                    sys.stderr.flush()


class _QuietFinder:
    """A ``sys.meta_path`` finder that wraps the loader of ``tensorflow`` only, once."""

    _searching = False  # another wrapping finder (kreg._register's) asks every finder but itself: no loop

    def find_spec(self, fullname, path=None, target=None):
        if fullname != "tensorflow" or path is not None or self._searching:
            return None
        if fullname in sys.modules:  # loaded (a probe by importlib.util.find_spec does not load it)
            _uninstall()
            return None
        self._searching = True
        try:
            return wrapped_spec(self, fullname, path, target, _QuietLoader)
        finally:
            self._searching = False


_finder = _QuietFinder()


def _uninstall():
    if _finder in sys.meta_path:
        sys.meta_path.remove(_finder)


def quiet_tensorflow(verbose: bool = False) -> bool:
    """Keeps TensorFlow's start-up lines (and absl's notes) off the terminal (see the module docstring);
    returns whether it did (False when ``verbose`` or ``$KREG_VERBOSE``)."""
    if verbose or verbose_requested():
        os.environ[VERBOSE_ENV] = "1"  # processes this one starts say everything too
        return False
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", QUIET_TF_LEVEL)
    logging.getLogger("absl").setLevel(logging.ERROR)
    if "tensorflow" not in sys.modules and _finder not in sys.meta_path:
        sys.meta_path.insert(0, _finder)
    return True
