"""Under JAX the lab keeps compiled steps on disk (``kreg.lab.trial.compilation``): a second process that
compiles the same model reads them back instead of compiling; ``KREG_JAX_CACHE`` chooses the directory or
turns it off; under TensorFlow nothing happens."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from kreg.lab.errors import ConfigError
from kreg.lab.trial import compilation

# A fresh process under JAX with the lab's cache on: the same small model built and trained twice, as two
# trials of one plan do (a new model each time, after clear_session), with JAX's own count of the executables
# it read back from the persistent cache after each.
_FIT = r"""
import json
import jax
from jax import monitoring
counts = {"hits": 0}
def listen(event, **kwargs):
    if event == "/jax/compilation_cache/cache_hits":
        counts["hits"] += 1
monitoring.register_event_listener(listen)
import numpy as np, keras
from kreg.lab.trial.compilation import enable_persistent_cache
directory = enable_persistent_cache()
x = np.random.default_rng(0).normal(size=(64, 12)).astype("float32")
hits = []
for trial in range(2):
    keras.backend.clear_session()
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((12,)), keras.layers.Dense(32, activation="relu"), keras.layers.Dense(3)])
    model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(x, np.arange(64) % 3, batch_size=16, epochs=1, verbose=0)
    hits.append(counts["hits"])
print(json.dumps({"backend": keras.backend.backend(), "directory": directory, "hits": hits}))
"""


def test_a_second_model_of_the_same_plan_reads_the_compiled_steps_back(tmp_path):
    cache = tmp_path / "jax-cache"
    env = {**os.environ, "KERAS_BACKEND": "jax", "KREG_JAX_CACHE": str(cache), "TF_CPP_MIN_LOG_LEVEL": "3"}
    env.pop("JAX_COMPILATION_CACHE_DIR", None)
    done = subprocess.run([sys.executable, "-c", _FIT], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["backend"] == "jax" and report["directory"] == str(cache)
    assert any("train_step" in p.name for p in cache.iterdir()), sorted(p.name for p in cache.iterdir())
    first, second = report["hits"]
    assert first == 0  # an empty cache: the first model compiled everything
    assert second > first  # the second model's steps were read back, not compiled


def test_the_setting_names_a_directory_the_user_cache_or_off(tmp_path):
    assert compilation.cache_directory({"KREG_JAX_CACHE": str(tmp_path / "c")}) == tmp_path / "c"
    assert compilation.cache_directory({"XDG_CACHE_HOME": str(tmp_path)}) == tmp_path / "kreg" / "jax"
    assert compilation.cache_directory({}) == Path.home() / ".cache" / "kreg" / "jax"
    for off in ("off", "OFF", "0", "false", "no"):
        assert compilation.cache_directory({"KREG_JAX_CACHE": off}) is None


def test_nothing_happens_under_tensorflow(tmp_path, monkeypatch):
    import keras

    if keras.backend.backend() != "tensorflow":
        pytest.skip("checks the TensorFlow backend")
    monkeypatch.setenv("KREG_JAX_CACHE", str(tmp_path / "c"))
    assert compilation.enable_persistent_cache() is None
    assert not (tmp_path / "c").exists()


def test_a_directory_that_cannot_be_made_is_a_config_error(tmp_path, monkeypatch):
    import keras

    blocker = tmp_path / "file"
    blocker.write_text("")
    monkeypatch.setattr(keras.backend, "backend", lambda: "jax")
    jax = pytest.importorskip("jax")
    if jax.config.jax_compilation_cache_dir:
        pytest.skip("this process already has a JAX compilation cache")
    with pytest.raises(ConfigError, match="KREG_JAX_CACHE"):
        compilation.enable_persistent_cache({"KREG_JAX_CACHE": str(blocker / "cache")})
