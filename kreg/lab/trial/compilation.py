"""Under JAX, compiled train and test steps are kept on disk and reused: JAX's persistent compilation cache.

Every trial clears the Keras session and builds a new model, so under JAX its ``fit`` traces and
compiles its steps again. XLA's compilation is most of that cost, and JAX's persistent
compilation cache skips it for a computation it compiled before (the same model, plan, batch
shape and JAX version): the folds of a cross-validated trial, the refit of the chosen plan, a
resumed search, the workers of a parallel search on one machine, the next run of a pipeline.
Trials whose plans differ compile different computations and gain nothing
(docs/measured.md, "TensorFlow or JAX").

``KREG_JAX_CACHE`` chooses: unset, ``$XDG_CACHE_HOME/kreg/jax`` (``~/.cache/kreg/jax``); a path,
that directory; ``off`` (or ``0``, ``false``, ``no``), no cache. A directory the user already gave
JAX (``JAX_COMPILATION_CACHE_DIR``, ``jax.config.update("jax_compilation_cache_dir", ...)``) is
kept. Nothing happens under TensorFlow. The cache is trusted code: keep it in a directory only you
can write to (JAX's own warning).
"""

from __future__ import annotations

import os
from pathlib import Path

from kreg.lab.errors import ConfigError

ENV = "KREG_JAX_CACHE"
OFF = ("off", "0", "false", "no")
# XLA compilations shorter than this are not written (JAX's default is 1 s, which on 2 cores keeps out the
# demo CNN's test step and the honest-gap evaluation: each of them recompiled in every trial).
MIN_COMPILE_TIME_S = 0.1


def cache_directory(environ=None) -> Path | None:
    """The directory ``KREG_JAX_CACHE`` asks for (None: off)."""
    environ = os.environ if environ is None else environ
    setting = environ.get(ENV, "").strip()
    if setting.lower() in OFF:
        return None
    if setting:
        return Path(setting).expanduser()
    base = environ.get("XDG_CACHE_HOME", "").strip() or str(Path.home() / ".cache")
    return Path(base) / "kreg" / "jax"


def enable_persistent_cache(environ=None) -> str | None:
    """Turns on JAX's persistent compilation cache for this process when Keras runs on JAX.

    Returns the directory in use (None under another backend, or when it is off). Raises
    ``ConfigError`` when ``KREG_JAX_CACHE`` names a directory that cannot be created.
    """
    import keras

    if keras.backend.backend() != "jax":
        return None
    import jax

    given = jax.config.jax_compilation_cache_dir
    if given:  # the user's own choice (or an earlier search in this process)
        return given
    directory = cache_directory(environ)
    if directory is None:
        return None
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(ENV, str(directory), f"a directory kreg can create and write ({exc.strerror}), or off")
    jax.config.update("jax_compilation_cache_dir", str(directory))
    if jax.config.jax_persistent_cache_min_compile_time_secs == 1.0:  # JAX's default: not the user's
        jax.config.update("jax_persistent_cache_min_compile_time_secs", MIN_COMPILE_TIME_S)
    return str(directory)
