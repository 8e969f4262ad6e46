"""Registers every serializable kreg object with Keras as soon as Keras is there.

Keras finds a saved class by its registered name (``"kreg>DropBlock2D"``)
only if the module that registers it has run. ``import kreg`` must not
import Keras (TensorFlow takes seconds, and ``kreg validate`` never needs
it), so kreg registers in two ways:

- Keras already imported: the modules below are imported at once.
- Keras not imported yet: a finder on ``sys.meta_path`` watches the imports
  of ``keras`` and ``tensorflow`` (TensorFlow imports Keras halfway through
  its own import) and imports the modules below right after the last of
  them finishes. The finder then removes itself.

Either way ``import kreg`` then ``import keras`` (or the other order) is
enough for ``keras.saving.load_model`` in a fresh process.
"""

from __future__ import annotations

import importlib
import sys
import warnings

# The one list of the modules whose import registers kreg's Keras objects
# (layers, augmentation, regularizers, constraints, losses, metrics,
# schedules, callbacks, SAM). ``kreg.augment`` registers its text layers
# only under the TensorFlow backend (they are TensorFlow ops).
REGISTERING_MODULES = (
    "kreg.layers",
    "kreg.regularizers",
    "kreg.constraints",
    "kreg.losses",
    "kreg.metrics",
    "kreg.schedules",
    "kreg.augment",
    "kreg.callbacks",
    "kreg.training",
)
# Modules of the lab that register too, named by ``kreg/__init__`` (the library never names the lab).
_extra: list[str] = []

_WATCHED = ("keras", "tensorflow")
_registered = False


def register_all():
    """Imports ``REGISTERING_MODULES`` (once); Keras must be importable."""
    global _registered
    if _registered:
        return
    _registered = True
    for name in (*REGISTERING_MODULES, *_extra):
        importlib.import_module(name)


def _initializing(name: str) -> bool:
    module = sys.modules.get(name)
    return module is not None and bool(getattr(getattr(module, "__spec__", None), "_initializing", False))


def _ready(finished: str | None = None) -> bool:
    """Keras is loaded and no watched module is halfway through its import
    (``finished``: the one whose code has just run, still flagged by importlib)."""
    return "keras" in sys.modules and not any(
        _initializing(name) for name in _WATCHED if name != finished)


class WrappedLoader:
    """A module loader that stands in for another one: everything but ``exec_module`` goes to it
    (subclasses run something around the wrapped ``exec_module``)."""

    def __init__(self, loader):
        self._loader = loader

    def __getattr__(self, attr):
        return getattr(self._loader, attr)

    def create_module(self, spec):
        return self._loader.create_module(spec)


class _Loader(WrappedLoader):
    """Wraps a watched module's loader: runs it, then registers when Keras is complete."""

    def exec_module(self, module):
        try:
            self._loader.exec_module(module)
        finally:
            # The module keeps its own loader, as if kreg had never looked.
            module.__loader__ = self._loader
            if getattr(module, "__spec__", None) is not None:
                module.__spec__.loader = self._loader
        if _ready(finished=module.__name__):
            _uninstall()
            try:
                register_all()
            except Exception as error:  # never break the user's `import keras`
                warnings.warn(f"kreg could not register its Keras objects for loading: {error!r}",
                              RuntimeWarning, stacklevel=2)


def wrapped_spec(me, fullname, path, target, wrap):
    """The spec the other finders on ``sys.meta_path`` (all but ``me``) give for ``fullname``, its loader
    wrapped by ``wrap``; None when none of them finds it."""
    for finder in sys.meta_path:
        if finder is me or not hasattr(finder, "find_spec"):
            continue
        spec = finder.find_spec(fullname, path, target)
        if spec is not None:
            if spec.loader is not None and hasattr(spec.loader, "exec_module"):
                spec.loader = wrap(spec.loader)
            return spec
    return None


class _Finder:
    """A ``sys.meta_path`` finder that only wraps the loaders of ``keras`` and ``tensorflow``."""

    def find_spec(self, fullname, path=None, target=None):
        if fullname not in _WATCHED or path is not None:
            return None
        return wrapped_spec(self, fullname, path, target, _Loader)


_finder = _Finder()


def _uninstall():
    if _finder in sys.meta_path:
        sys.meta_path.remove(_finder)


def install(extra=()):
    """Registers now when Keras is loaded, else on its import (called by ``kreg/__init__``, which adds the
    lab's registering modules as ``extra``)."""
    _extra.extend(name for name in extra if name not in _extra)
    if _ready():
        register_all()
    elif _finder not in sys.meta_path:
        sys.meta_path.insert(0, _finder)
