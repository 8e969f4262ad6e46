"""Text augmentation: EDA's four edits on strings and token ids, back-translation with a toy translator."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from kreg.augment import (BackTranslation, RandomDeletion, RandomInsertion, RandomSwap, RandomSynonymReplacement,
                          load_synonyms)
from kreg.augment.text import DEFAULT_SYNONYMS

SENTENCES = [
    "the movie was good and the story was very funny",
    "a bad film with a happy end",
    "i think the old car is fast",
    "hello",
    "",
]
IDS_TABLE = {5: [50, 51], 7: [70], 9: [90, 91, 92]}

# A toy "translator" (English -> Toy -> English): word by word, and the way
# back picks synonyms, so a round trip paraphrases. No model, no network.
_TO_TOY = {"good": "bon", "movie": "kino", "film": "kino", "bad": "mal", "happy": "gai"}
_FROM_TOY = {"bon": "fine", "kino": "picture", "mal": "poor", "gai": "glad"}
CALLS = []


def to_toy(sentences):
    CALLS.append(len(sentences))
    return [" ".join(_TO_TOY.get(w, w) for w in s.split()) for s in sentences]


def from_toy(sentences):
    return [" ".join(_FROM_TOY.get(w, w) for w in s.split()) for s in sentences]


def _decode(tensor):
    return [t.decode() for t in np.asarray(tensor).tolist()]


def _ids(rows, width=12):
    out = np.zeros((len(rows), width), "int32")
    for i, row in enumerate(rows):
        out[i, : len(row)] = row
    return out


def _is_subsequence(short, long):
    it = iter(long)
    return all(word in it for word in short)


def test_synonym_replacement_uses_the_table_at_the_rate():
    layer = RandomSynonymReplacement(0.5, seed=0)
    x = tf.constant(SENTENCES * 40)
    out = _decode(layer(x))
    replaced = replaceable = 0
    for before, after in zip(_decode(x), out):
        b, a = before.split(), after.split()
        assert len(a) == len(b)
        for wb, wa in zip(b, a):
            if wb in DEFAULT_SYNONYMS:
                replaceable += 1
                replaced += wa != wb
                assert wa == wb or wa in DEFAULT_SYNONYMS[wb]
            else:
                assert wa == wb
    assert replaced / replaceable == pytest.approx(0.5, abs=0.06)
    ids = _ids([[5, 6, 7, 8, 9]] * 200)
    out = RandomSynonymReplacement(0.5, synonyms=IDS_TABLE, seed=0)(ids).numpy()
    assert out.shape == ids.shape and out.dtype == ids.dtype
    assert set(out[:, 0]) <= {5, 50, 51} and set(out[:, 2]) <= {7, 70} and (out[:, [1, 3]] == [6, 8]).all()
    assert (out[:, 0] != 5).mean() == pytest.approx(0.5, abs=0.08)


def test_insertion_adds_synonyms_of_the_sentence_own_words():
    x = tf.constant(SENTENCES * 20)
    out = _decode(RandomInsertion(0.3, seed=0)(x))
    added = 0
    for before, after in zip(_decode(x), out):
        b, a = before.split(), after.split()
        assert _is_subsequence(b, a)
        extra = list(a)
        for w in b:
            extra.remove(w)
        synonyms = {s for w in b for s in DEFAULT_SYNONYMS.get(w, [])}
        assert set(extra) <= synonyms
        if not synonyms:
            assert a == b
        added += len(extra)
    eligible = sum(len(s.split()) for s in SENTENCES[:3]) * 20
    assert added / eligible == pytest.approx(0.3, abs=0.06)
    ids = _ids([[5, 6, 7, 8]] * 100, width=6)
    out = RandomInsertion(0.5, synonyms=IDS_TABLE, seed=0)(ids).numpy()
    assert out.shape == ids.shape
    for row in out:
        words = [t for t in row if t]
        assert _is_subsequence([t for t in words if t in (5, 6, 7, 8)], [5, 6, 7, 8])
        assert set(words) <= {5, 6, 7, 8, 50, 51, 70}


def test_deletion_keeps_order_and_at_least_one_word():
    x = tf.constant(SENTENCES * 40)
    out = _decode(RandomDeletion(0.3, seed=0)(x))
    kept = total = 0
    for before, after in zip(_decode(x), out):
        b, a = before.split(), after.split()
        assert _is_subsequence(a, b)
        assert len(a) >= min(1, len(b))
        kept, total = kept + len(a), total + len(b)
    assert 1 - kept / total == pytest.approx(0.3, abs=0.04)
    ids = _ids([[3, 4, 5, 6, 7, 8, 9, 10]] * 100)
    out = RandomDeletion(0.5, seed=0)(ids).numpy()
    for row in out:
        words = row[row != 0]
        assert len(words) >= 1 and _is_subsequence(list(words), [3, 4, 5, 6, 7, 8, 9, 10])
        assert (row[len(words):] == 0).all()  # padding stays at the end


def test_swap_reorders_the_same_words():
    x = tf.constant(SENTENCES * 10)
    out = _decode(RandomSwap(0.2, seed=0)(x))
    moved = 0
    for before, after in zip(_decode(x), out):
        b, a = before.split(), after.split()
        assert sorted(a) == sorted(b)
        swaps = max(1, round(0.2 * len(b))) if len(b) > 1 else 0
        assert sum(wa != wb for wa, wb in zip(a, b)) <= 2 * swaps
        moved += a != b
    assert moved > 20
    ids = _ids([[3, 4, 5, 6, 7]] * 20, width=8)
    out = RandomSwap(0.4, seed=0)(ids).numpy()
    assert (np.sort(out[:, :5], axis=1) == [3, 4, 5, 6, 7]).all() and (out[:, 5:] == 0).all()


@pytest.mark.backend_agnostic
@pytest.mark.parametrize("cls", [RandomSynonymReplacement, RandomInsertion, RandomDeletion, RandomSwap])
def test_text_contract_seed_inference_scalar_tf_data(cls):
    x = tf.constant(SENTENCES)
    out = _decode(cls(0.4, seed=1)(x))
    assert out == _decode(cls(0.4, seed=1)(x))  # same seed, same edits
    assert out != SENTENCES
    assert _decode(cls(0.4, seed=1)(x, training=False)) == SENTENCES
    assert _decode(cls(0.0, seed=1)(x)) == SENTENCES
    scalar = cls(0.4, seed=1)(tf.constant(SENTENCES[0]))
    assert scalar.shape == () and scalar.dtype == tf.string
    # In a tf.data map (under any Keras backend: the edits are TensorFlow ops).
    ds = tf.data.Dataset.from_tensor_slices(SENTENCES * 4).batch(5).map(cls(0.4, seed=1))
    batches = list(ds)
    assert [b.shape for b in batches] == [(5,)] * 4
    clone = cls.from_config(cls(0.4, seed=1).get_config())
    assert _decode(clone(x)) == out


@pytest.mark.skipif(keras.backend.backend() != "tensorflow", reason="token ids inside a model: TensorFlow ops")
def test_token_id_augmentation_inside_a_model_fits_and_saves(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.integers(1, 30, size=(64, 10)).astype("int32")
    y = (x[:, 0] > 15).astype("int32")
    inputs = keras.Input((10,), dtype="int32")
    h = RandomSwap(0.2, seed=0)(inputs)
    h = RandomDeletion(0.1, seed=1)(h)
    h = keras.layers.Embedding(30, 8)(h)
    h = keras.layers.GlobalAveragePooling1D()(h)
    model = keras.Model(inputs, keras.layers.Dense(2)(h))
    model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(x, y, epochs=1, batch_size=16, verbose=0)
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras")
    np.testing.assert_allclose(model.predict(x, verbose=0), loaded.predict(x, verbose=0), rtol=1e-5)


def test_back_translation_through_a_plugged_in_translator():
    CALLS.clear()
    layer = BackTranslation(to_toy, back=from_toy, rate=1.0, seed=0)
    out = _decode(layer(tf.constant(SENTENCES[:2])))
    assert out == ["the picture was fine and the story was very funny", "a poor picture with a glad end"]
    assert _decode(layer(tf.constant(SENTENCES[:2]), training=False)) == SENTENCES[:2]
    CALLS.clear()
    half = BackTranslation(to_toy, back=from_toy, rate=0.5, seed=0)
    x = tf.constant(SENTENCES[:2] * 100)
    out = _decode(half(x))
    changed = sum(a != b for a, b in zip(out, _decode(x)))
    assert changed == pytest.approx(100, abs=20)
    assert CALLS == [CALLS[0]] and CALLS[0] >= changed  # one call per batch, with the chosen sentences only
    ds = tf.data.Dataset.from_tensor_slices(SENTENCES[:2] * 2).batch(2).map(layer)
    assert [_decode(b) for b in ds][0] == ["the picture was fine and the story was very funny",
                                           "a poor picture with a glad end"]
    config = layer.get_config()
    assert config["translate"] == f"{__name__}:to_toy" and config["back"] == f"{__name__}:from_toy"
    assert _decode(BackTranslation.from_config(config)(tf.constant(SENTENCES[1:2]))) == ["a poor picture with a glad end"]


@keras.saving.register_keras_serializable(package="kreg_tests")
def to_toy_registered(sentences):
    return to_toy(sentences)


@keras.saving.register_keras_serializable(package="kreg_tests")
def from_toy_registered(sentences):
    return from_toy(sentences)


def test_back_translation_saves_registered_translators_by_name_and_refuses_paths_in_safe_mode():
    from keras.src.saving.serialization_lib import SafeModeScope

    layer = BackTranslation(to_toy_registered, back=from_toy_registered, seed=0)
    config = layer.get_config()
    assert config["translate"] == "kreg_tests>to_toy_registered"
    assert config["back"] == "kreg_tests>from_toy_registered"
    with SafeModeScope(True):  # as inside keras.saving.load_model(..., safe_mode=True)
        clone = BackTranslation.from_config(config)
        assert clone.translate is to_toy_registered and clone.back is from_toy_registered
        # A path is refused before any import: an unknown module would otherwise raise ModuleNotFoundError.
        for key in ("translate", "back"):
            tampered = dict(config, **{key: "kreg_no_such_module:run"})
            with pytest.raises(ValueError, match=r"refusing to import 'kreg_no_such_module:run'.*"
                                                 r"register_keras_serializable.*safe_mode=False"):
                BackTranslation.from_config(tampered)
        with pytest.raises(ValueError, match="No function is registered under 'nobody>translate'"):
            BackTranslation.from_config(dict(config, translate="nobody>translate"))
        with pytest.raises(ValueError, match="not a class"):
            BackTranslation.from_config(dict(config, translate="kreg>ElasticNet"))
    with SafeModeScope(False):  # safe_mode=False: the path is imported, as before
        clone = BackTranslation.from_config(dict(config, translate=f"{__name__}:to_toy"))
        assert clone.translate is to_toy


def test_text_validation_and_tables(tmp_path):
    with pytest.raises(ValueError, match="Received: rate=1.0"):
        RandomDeletion(1.0)
    with pytest.raises(ValueError, match="Received: pad_id='0'"):
        RandomSwap(0.1, pad_id="0")
    with pytest.raises(ValueError, match="Received: synonyms=42"):
        RandomSynonymReplacement(0.1, synonyms=42)
    with pytest.raises(ValueError, match="the synonym table holds words"):
        RandomSynonymReplacement(0.1)(tf.constant([[5, 6, 0]]))
    with pytest.raises(ValueError, match="Received: translate=None"):
        BackTranslation(None)
    # Raised inside the translation op: TensorFlow reports it as InvalidArgumentError, message kept.
    with pytest.raises((ValueError, tf.errors.InvalidArgumentError), match="one string per sentence"):
        BackTranslation(lambda s: s[:1])(tf.constant(SENTENCES[:2]))
    with pytest.raises(ValueError, match="importable module-level function"):
        BackTranslation(lambda s: s).get_config()
    path = tmp_path / "syn.txt"
    path.write_text("film movie picture\nquick fast\n")
    assert load_synonyms(path) == {"film": ["movie", "picture"], "quick": ["fast"]}
    out = _decode(RandomSynonymReplacement(0.99, synonyms=path, seed=0)(tf.constant(["a quick film"])))
    assert out[0].split()[0] == "a" and out[0].split()[1] == "fast" and out[0].split()[2] in ("movie", "picture")
