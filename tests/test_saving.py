"""What the user's next process sees: a model saved with every registered kreg object loads in a fresh
Python that only ran ``import kreg``, with ``safe_mode=True`` (the rule: a saved model loads wherever its
user loads it, with nothing more); and a tampered file cannot make loading import a module. Runs under
TensorFlow and JAX."""

import json
import os
import subprocess
import sys
import textwrap
import zipfile

import keras
import numpy as np
import pytest

import kreg
from kreg import augment as A
from kreg import callbacks, constraints, layers, losses, metrics, regularizers, schedules
from kreg.training import SAM

pytestmark = pytest.mark.backend_agnostic  # also run under KERAS_BACKEND=jax

TF = keras.backend.backend() == "tensorflow"
TEXT = ["BackTranslation", "RandomDeletion", "RandomInsertion", "RandomSwap", "RandomSynonymReplacement"]
IDS_SYNONYMS = {5: [50, 51], 7: [70], 9: [90, 91, 92]}  # token ids: JSON turns the keys into strings


@keras.saving.register_keras_serializable(package="kreg_tests")
def toy_translate(sentences):
    return [s.replace("good", "fine") for s in sentences]


# What a user writes in the loading process: their translator, registered under the same name.
USER_TRANSLATOR = textwrap.dedent('''
    @keras.saving.register_keras_serializable(package="kreg_tests")
    def toy_translate(sentences):
        return [s.replace("good", "fine") for s in sentences]
''')


def _run(script, *args, env=None):
    """A fresh interpreter: nothing from this process, only what ``script`` imports."""
    result = subprocess.run([sys.executable, "-c", script, *map(str, args)], capture_output=True, text=True,
                            timeout=240, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", **(env or {})})
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def _numeric_model():
    """One functional model holding every numeric kreg layer, regularizer and constraint."""
    seq = keras.Input((16, 2), name="seq")
    h = seq
    for layer in [A.RandomShift1D(0.2, seed=1), A.RandomTimeScale1D(0.1, seed=2), A.RandomTimeWarp(0.2, seed=3),
                  A.RandomJitter(0.05, seed=4), A.RandomMagnitudeScale(0.1, seed=5),
                  A.RandomFeatureDropout(0.1, seed=6), A.SwapNoise(0.1, seed=7)]:
        h = layer(h)
    h = keras.layers.Conv1D(4, 3, kernel_regularizer=regularizers.ElasticNet(1e-3, 0.3),
                            kernel_constraint=constraints.SoftThreshold(1e-4))(h)
    h = layers.DropBlock1D(0.1, block_size=3, seed=8)(h)
    h = layers.ScheduledSpatialDropout1D(0.1, seed=9)(h)
    seq_out = keras.layers.GlobalAveragePooling1D()(h)

    image = keras.Input((8, 8, 1), name="image")  # also read as a spectrogram (frames, bins, 1)
    h = A.SpecAugment(2, 2, seed=10)(image)
    h = A.RandomPitchShift(2.0, kind="spectrogram", seed=11)(h)
    h = keras.layers.Conv2D(4, 3, kernel_regularizer=regularizers.GroupLasso(1e-3))(h)
    h = layers.DropBlock2D(0.1, block_size=2, seed=12)(h)
    h = layers.ScheduledSpatialDropout2D(0.1, seed=13)(h)
    image_out = keras.layers.GlobalAveragePooling2D()(h)

    wave = keras.Input((512,), name="wave")
    h = A.RandomTimeStretch(0.1, frame_length=128, frame_step=32, seed=14)(wave)
    h = A.RandomPitchShift(1.0, frame_length=128, frame_step=32, seed=15)(h)
    h = A.RandomBackgroundNoise((10, 20), color="pink", seed=16)(h)
    wave_out = keras.layers.Dense(4)(h)

    h = keras.layers.Concatenate()([seq_out, image_out, wave_out])
    h = layers.StochasticDepth(0.2, seed=17)([h, keras.layers.Dense(12)(h)])
    h = layers.DropConnect(8, rate=0.2, activation="relu", seed=18,
                           kernel_regularizer=regularizers.Sum([regularizers.ElasticNet(1e-4), "l2"]))(h)
    h = layers.ScheduledDropout(0.2, seed=19)(h)
    h = layers.ScheduledGaussianNoise(0.1, seed=20)(h)
    h = layers.MCDropout(0.2, seed=21)(h)  # random at inference too: its seed state is saved
    out = keras.layers.Dense(3, kernel_regularizer=regularizers.Schedulable(keras.regularizers.L2(1e-4), 0.5))(h)
    model = keras.Model([seq, image, wave], out)
    model.compile("adam", losses.SparseCategoricalCrossentropy(0.1, from_logits=True),
                  metrics=[metrics.TopClassAccuracy(), metrics.ExpectedCalibrationError(from_logits=True),
                           metrics.MaxCalibrationError(from_logits=True), metrics.BrierScore(from_logits=True)])
    rng = np.random.default_rng(0)
    x = {"seq": rng.normal(size=(8, 16, 2)), "image": rng.normal(size=(8, 8, 8, 1)),
         "wave": rng.normal(size=(8, 512))}
    return model, {k: v.astype("float32") for k, v in x.items()}, rng.integers(0, 3, 8)


def _sam_model():
    inner = keras.Sequential([keras.Input((6,)), keras.layers.Dense(5, activation="relu"), keras.layers.Dense(3)])
    sam = SAM(inner, rho=0.1, adaptive=True)
    sam.compile("sgd", losses.ConfidencePenalty(0.1, from_logits=True))
    x = np.random.default_rng(1).normal(size=(8, 6)).astype("float32")
    y = np.arange(8) % 3
    sam.fit(x, y, epochs=1, verbose=0)
    return sam, x, y


def _token_model():
    """Text layers on token ids inside a model (TensorFlow only: they are TensorFlow ops)."""
    ids = keras.Input((10,), dtype="int32")
    h = A.RandomSynonymReplacement(0.2, synonyms=IDS_SYNONYMS, seed=0)(ids)
    h = A.RandomInsertion(0.1, synonyms=IDS_SYNONYMS, seed=1)(h)
    h = A.RandomSwap(0.1, seed=2)(h)
    h = A.RandomDeletion(0.1, seed=3)(h)
    h = keras.layers.GlobalAveragePooling1D()(keras.layers.Embedding(100, 4)(h))
    model = keras.Model(ids, keras.layers.Dense(2)(h))
    return model, np.random.default_rng(2).integers(1, 12, size=(8, 10)).astype("int32")


def _string_model():
    text = keras.Input((), dtype="string")
    out = A.BackTranslation(toy_translate, rate=1.0, seed=0)(A.RandomSynonymReplacement(0.1, seed=1)(text))
    return keras.Model(text, out)


def _objects():
    """Registered objects that are not model parts: their configs must round-trip in a fresh process."""
    return {
        "MixUp": A.MixUp(0.3, num_classes=4, seed=0), "CutMix": A.CutMix(1.0, num_classes=4, seed=1),
        "Constant": schedules.Constant(), "LinearWarmup": schedules.LinearWarmup(4, start=0.1),
        "Step": schedules.Step([2, 5], [0.0, 0.5, 1.0]), "Cosine": schedules.Cosine(1.0, 0.0),
        "SWA": callbacks.SWA(3, frequency=2, swa_lr=0.01), "WeightMonitor": callbacks.WeightMonitor(False, every=2),
        "SnapshotEnsemble": callbacks.SnapshotEnsemble(3, lr_max=0.1, keep=2),
    }


LOAD = textwrap.dedent('''
    import json, sys
    import kreg
    import keras
    tf_loaded = "tensorflow" in sys.modules
    import numpy as np
    {user}
    out = sys.argv[1]
    report = {{"tensorflow_imported_by_kreg": tf_loaded,
              "registered": sorted(k for k in keras.saving.get_custom_objects() if k.startswith("kreg>"))}}
    numeric = keras.saving.load_model(out + "/numeric.keras", safe_mode=True)
    x = dict(np.load(out + "/x.npz")); y = np.load(out + "/y.npy")
    np.save(out + "/numeric_loaded.npy", numeric.predict(x, verbose=0))
    report["evaluate"] = numeric.evaluate(x, y, verbose=0, return_dict=True)
    report["numeric_configs"] = [l.get_config() for l in numeric.layers]
    report["loss"] = keras.saving.serialize_keras_object(numeric.loss)
    sam = keras.saving.load_model(out + "/sam.keras", safe_mode=True)
    report["sam"] = [type(sam).__name__, sam.rho, sam.adaptive, keras.saving.serialize_keras_object(sam.loss)]
    np.save(out + "/sam_loaded.npy", sam.predict(np.load(out + "/sam_x.npy"), verbose=0))
    report["objects"] = {{}}
    for name, config in json.load(open(out + "/objects.json")).items():
        obj = keras.saving.deserialize_keras_object(config, safe_mode=True)
        report["objects"][name] = [type(obj).__name__, obj.get_config()]
    if keras.backend.backend() == "tensorflow":
        tokens = keras.saving.load_model(out + "/tokens.keras", safe_mode=True)
        np.save(out + "/tokens_loaded.npy", tokens.predict(np.load(out + "/tokens_x.npy"), verbose=0))
        strings = keras.saving.load_model(out + "/strings.keras", safe_mode=True)
        report["strings_configs"] = [l.get_config() for l in strings.layers]
        report["translated"] = [s.decode() for s in strings.layers[-1](np.array(["a good film"])).numpy()]
    json.dump(report, open(out + "/report.json", "w"), default=str)
''')


def _json(value):
    return json.loads(json.dumps(value, default=str))


def test_every_registered_object_loads_in_a_fresh_process_after_import_kreg(tmp_path):
    numeric, x, y = _numeric_model()
    numeric.save(tmp_path / "numeric.keras")
    np.savez(tmp_path / "x.npz", **x)
    np.save(tmp_path / "y.npy", y)
    # After saving, so the MCDropout draws here and in the fresh process start from the same seed state.
    expected = numeric.predict(x, verbose=0)
    expected_eval = numeric.evaluate(x, y, verbose=0, return_dict=True)
    sam, sam_x, _ = _sam_model()
    sam.save(tmp_path / "sam.keras")
    np.save(tmp_path / "sam_x.npy", sam_x)
    objects = _objects()
    (tmp_path / "objects.json").write_text(json.dumps(
        {name: keras.saving.serialize_keras_object(obj) for name, obj in objects.items()}))
    if TF:
        tokens, tokens_x = _token_model()
        tokens.save(tmp_path / "tokens.keras")
        np.save(tmp_path / "tokens_x.npy", tokens_x)
        strings = _string_model()
        strings.save(tmp_path / "strings.keras")

    _run(LOAD.format(user=USER_TRANSLATOR), tmp_path)
    report = json.loads((tmp_path / "report.json").read_text())

    registered = {name.split(">")[1] for name in report["registered"]}
    used = ({type(l).__name__ for l in numeric.layers} | {"ElasticNet", "GroupLasso", "Sum", "Schedulable",
            "SoftThreshold", "SparseCategoricalCrossentropy", "ConfidencePenalty", "TopClassAccuracy",
            "ExpectedCalibrationError", "MaxCalibrationError", "BrierScore", "SAM", "SharpnessProbe"}
            | set(objects) | ({"RandomSynonymReplacement", "RandomInsertion", "RandomSwap", "RandomDeletion",
                              "BackTranslation"} if TF else set()))
    assert registered <= used, f"registered but not covered by this test: {registered - used}"
    assert registered == {name for name in used if keras.saving.get_registered_object(f"kreg>{name}")}
    assert TF or not set(TEXT) & registered  # under JAX text layers are not registered (TensorFlow ops)
    assert TF or not report["tensorflow_imported_by_kreg"]

    np.testing.assert_allclose(np.load(tmp_path / "numeric_loaded.npy"), expected, rtol=1e-5, atol=1e-6)
    assert report["evaluate"] == pytest.approx(expected_eval, rel=1e-5, abs=1e-6)
    assert report["numeric_configs"] == _json([l.get_config() for l in numeric.layers])
    assert report["loss"] == _json(keras.saving.serialize_keras_object(numeric.loss))
    assert report["sam"] == ["SAM", 0.1, True, _json(keras.saving.serialize_keras_object(sam.loss))]
    np.testing.assert_allclose(np.load(tmp_path / "sam_loaded.npy"), sam.predict(sam_x, verbose=0), rtol=1e-5)
    for name, obj in objects.items():
        assert report["objects"][name] == [type(obj).__name__, _json(obj.get_config())], name
    if TF:
        np.testing.assert_allclose(np.load(tmp_path / "tokens_loaded.npy"), tokens.predict(tokens_x, verbose=0),
                                   rtol=1e-5)
        assert report["strings_configs"] == _json([l.get_config() for l in strings.layers])
        assert strings.layers[-1].get_config()["translate"] == "kreg_tests>toy_translate"
        assert report["translated"] == ["a fine film"]  # the user's registered translator, found by name


@pytest.mark.skipif(not TF, reason="BackTranslation lives inside models under TensorFlow only")
def test_a_tampered_back_translation_file_imports_nothing_in_safe_mode(tmp_path):
    path = tmp_path / "m.keras"
    _string_model().save(path)
    # An attacker's edit: the translator becomes a path to a module that acts when imported.
    tampered = tmp_path / "tampered.keras"
    with zipfile.ZipFile(path) as src, zipfile.ZipFile(tampered, "w") as dst:
        for item in src.infolist():
            data = src.read(item.filename)
            if item.filename == "config.json":
                text = data.decode()
                assert '"kreg_tests>toy_translate"' in text
                data = text.replace('"kreg_tests>toy_translate"', '"kreg_marker_module:run"').encode()
            dst.writestr(item, data)
    modules = tmp_path / "modules"
    modules.mkdir()
    marker = tmp_path / "imported.txt"
    (modules / "kreg_marker_module.py").write_text(
        f"open({str(marker)!r}, 'w').write('imported')\n\ndef run(sentences):\n    return sentences\n")

    script = textwrap.dedent('''
        import sys
        sys.path.insert(0, sys.argv[2])
        import kreg, keras
        try:
            keras.saving.load_model(sys.argv[1], safe_mode=True)
        except ValueError as error:
            print("REFUSED:", error)
        else:
            raise SystemExit("loaded a tampered file in safe mode")
        assert "kreg_marker_module" not in sys.modules
        import os
        print("MARKER AFTER SAFE LOAD:", os.path.exists(sys.argv[3]))
        keras.saving.load_model(sys.argv[1], safe_mode=False)  # the documented escape hatch imports it
        print("MARKER AFTER UNSAFE LOAD:", os.path.exists(sys.argv[3]))
    ''')
    out = _run(script, tampered, modules, marker).stdout
    assert "REFUSED: BackTranslation: refusing to import 'kreg_marker_module:run'" in out
    assert "register_keras_serializable" in out and "safe_mode=False" in out
    assert "MARKER AFTER SAFE LOAD: False" in out
    assert "MARKER AFTER UNSAFE LOAD: True" in out  # the marker works: safe mode is what stopped it
