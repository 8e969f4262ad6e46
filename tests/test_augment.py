"""Augmentation layers: the shared contract (training only, seeded, shape/dtype, tf.data, fit, .keras)
and the statistics each one promises. Runs under TensorFlow and JAX."""

import keras
import numpy as np
import pytest

from kreg.augment import (CutMix, MixUp, RandomBackgroundNoise, RandomFeatureDropout, RandomJitter,
                          RandomMagnitudeScale, RandomPitchShift, RandomShift1D, RandomTimeScale1D,
                          RandomTimeStretch, RandomTimeWarp, SpecAugment, SwapNoise)

pytestmark = pytest.mark.backend_agnostic

SR = 8000  # audio tests: 8 kHz, short clips keep them fast
CASES = {
    "RandomShift1D": (lambda: RandomShift1D(0.2, seed=3), (8, 40, 2)),
    "RandomShift1D-constant": (lambda: RandomShift1D(5, mode="constant", seed=3), (8, 40)),
    "RandomTimeScale1D": (lambda: RandomTimeScale1D(0.2, seed=3), (8, 40, 2)),
    "RandomTimeWarp": (lambda: RandomTimeWarp(0.3, seed=3), (8, 40, 2)),
    "RandomJitter": (lambda: RandomJitter(0.1, relative=True, seed=3), (8, 40, 2)),
    "RandomMagnitudeScale": (lambda: RandomMagnitudeScale(0.2, per_channel=True, seed=3), (8, 40, 2)),
    "RandomFeatureDropout": (lambda: RandomFeatureDropout(0.3, seed=3), (8, 12)),
    "SwapNoise": (lambda: SwapNoise(0.3, seed=3), (8, 12)),
    "RandomTimeStretch": (lambda: RandomTimeStretch(0.2, frame_length=128, frame_step=32, seed=3), (4, 1024)),
    "RandomTimeStretch-spectrogram": (lambda: RandomTimeStretch(0.2, kind="spectrogram", seed=3), (4, 30, 16)),
    "RandomPitchShift": (lambda: RandomPitchShift(3.0, frame_length=128, frame_step=32, seed=3), (4, 1024, 1)),
    "RandomPitchShift-spectrogram": (lambda: RandomPitchShift(3.0, kind="spectrogram", seed=3), (4, 30, 16)),
    "RandomBackgroundNoise": (lambda: RandomBackgroundNoise((5, 15), color="pink", seed=3), (4, 1024)),
    "SpecAugment": (lambda: SpecAugment(4, 6, seed=3), (4, 30, 16, 1)),
}


def _data(shape):
    return (np.random.default_rng(0).normal(size=shape) + 1.0).astype("float32")


@pytest.mark.parametrize("name", sorted(CASES))
def test_contract_training_only_seeded_shape_dtype(name):
    make, shape = CASES[name]
    x = _data(shape)
    layer = make()
    out = np.asarray(layer(x, training=True))
    assert out.shape == x.shape and out.dtype == x.dtype
    assert np.all(np.isfinite(out))
    assert not np.allclose(out, x)
    np.testing.assert_array_equal(layer(x, training=False), x)
    np.testing.assert_allclose(np.asarray(make()(x)), out, rtol=1e-5, atol=1e-5)  # same seed, same draw
    assert not np.allclose(np.asarray(layer(x)), out)  # the next call draws anew
    config = layer.get_config()
    clone = type(layer).from_config(config)
    assert clone.get_config() == config


@pytest.mark.parametrize("name", sorted(CASES))
def test_contract_in_tf_data_map(name):
    import tensorflow as tf

    make, shape = CASES[name]
    x = _data(shape)
    layer = make()
    ds = tf.data.Dataset.from_tensor_slices(x).batch(2).map(layer)
    batches = [b.numpy() for b in ds]
    assert [b.shape for b in batches] == [(2, *shape[1:])] * (shape[0] // 2)
    assert not np.allclose(np.concatenate(batches), x)


@pytest.mark.parametrize("name", ["RandomShift1D", "RandomTimeWarp", "RandomJitter", "SwapNoise",
                                  "RandomFeatureDropout", "RandomTimeStretch-spectrogram", "SpecAugment"])
def test_contract_fit_and_saved_model(name, tmp_path):
    make, shape = CASES[name]
    x = _data((32, *shape[1:]))
    y = np.random.default_rng(1).integers(0, 2, 32)
    inputs = keras.Input(shape[1:])
    h = keras.layers.Flatten()(make()(inputs))
    model = keras.Model(inputs, keras.layers.Dense(2)(h))
    model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(x, y, epochs=1, batch_size=8, verbose=0)
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras")
    np.testing.assert_allclose(model.predict(x, verbose=0), loaded.predict(x, verbose=0), rtol=1e-5, atol=1e-6)
    assert loaded.layers[1].get_config() == model.layers[1].get_config()


def test_argument_validation_names_field_and_value():
    cases = [
        (lambda: RandomTimeWarp(-0.1), "Received: sigma=-0.1"),
        (lambda: RandomTimeWarp(0.2, knots=1), "Received: knots=1"),
        (lambda: RandomJitter(-1.0), "Received: stddev=-1.0"),
        (lambda: RandomFeatureDropout(1.0), "Received: rate=1.0"),
        (lambda: SwapNoise(1.5), "Received: rate=1.5"),
        (lambda: MixUp(-0.2, num_classes=3), "Received: alpha=-0.2"),
        (lambda: CutMix(1.0, num_classes=0), "Received: num_classes=0"),
        (lambda: RandomTimeStretch(1.2), "Received: factor=1.2"),
        (lambda: RandomTimeStretch((1.3, 1.1)), r"Received: factor=\(1.3, 1.1\)"),
        (lambda: RandomTimeStretch(0.1, kind="image"), "Received: kind='image'"),
        (lambda: RandomTimeStretch(0.1, frame_length=64, frame_step=128), "Received: frame_step=128"),
        (lambda: RandomPitchShift(-1.0), "Received: semitones=-1.0"),
        (lambda: RandomBackgroundNoise("loud"), "Received: snr_db='loud'"),
        (lambda: RandomBackgroundNoise(10, color="blue"), "Received: color='blue'"),
        (lambda: RandomBackgroundNoise(10, noise=np.zeros((2, 2, 2))), "Received: noise='array of shape"),
        (lambda: SpecAugment(freq_mask=-1), "Received: freq_mask=-1"),
    ]
    for make, message in cases:
        with pytest.raises(ValueError, match=message):
            make()
    with pytest.raises(ValueError, match="shorter than the waveforms"):
        RandomBackgroundNoise(10, noise=np.ones(100, "float32"))(np.ones((2, 200), "float32"))
    with pytest.raises(ValueError, match="takes inputs of rank 2"):
        RandomTimeStretch(0.1)(np.ones((2, 10, 10, 3), "float32"))


# --- sequences and tabular rows ---------------------------------------------------------------

def test_time_warp_keeps_ends_and_order():
    ramp = np.linspace(0.0, 1.0, 60, dtype="float32")[None, :, None].repeat(64, 0)
    out = np.asarray(RandomTimeWarp(0.4, seed=0)(ramp))[..., 0]
    np.testing.assert_allclose(out[:, 0], 0.0, atol=1e-6)
    np.testing.assert_allclose(out[:, -1], 1.0, atol=1e-5)
    assert np.all(np.diff(out, axis=1) >= -1e-6)  # a warped ramp still rises: time is not reversed
    assert np.abs(out - ramp[..., 0]).max() > 0.02  # but it is warped


def test_jitter_and_magnitude_scale_statistics():
    x = np.ones((4000, 10), "float32")
    noise = np.asarray(RandomJitter(0.1, seed=0)(x)) - x
    assert abs(noise.mean()) < 0.005 and noise.std() == pytest.approx(0.1, rel=0.03)
    signal = np.random.default_rng(0).normal(0, 3.0, size=(500, 50, 1)).astype("float32")
    relative = np.asarray(RandomJitter(0.1, relative=True, seed=0)(signal)) - signal
    assert relative.std() == pytest.approx(0.3, rel=0.05)  # 0.1 of each example's spread (3)
    factors = (np.asarray(RandomMagnitudeScale(0.2, seed=0)(np.ones((4000, 5, 1), "float32"))))
    assert np.allclose(factors, factors[:, :1])  # one factor per example
    assert factors.mean() == pytest.approx(1.0, abs=0.02) and factors[:, 0].std() == pytest.approx(0.2, rel=0.05)


def test_feature_dropout_drops_whole_features_without_rescaling():
    x = np.full((2000, 20), 2.0, "float32")
    out = np.asarray(RandomFeatureDropout(0.25, seed=0)(x))
    assert set(np.unique(out)) == {0.0, 2.0}
    assert (out == 0).mean() == pytest.approx(0.25, abs=0.01)
    seq = np.asarray(RandomFeatureDropout(0.5, seed=0)(np.ones((200, 30, 4), "float32")))
    assert np.all(seq.min(axis=1) == seq.max(axis=1))  # a dropped channel is dropped at every step


def test_swap_noise_keeps_each_feature_marginal():
    rng = np.random.default_rng(0)
    x = (rng.normal(size=(1000, 6)) * np.arange(1, 7) + 10 * np.arange(6)).astype("float32")
    out = np.asarray(SwapNoise(0.3, seed=0)(x))
    changed = (out != x).mean()
    assert changed == pytest.approx(0.3 * (1 - 1 / 1000), abs=0.02)  # 3 sd of 6000 draws; own-row draws change nothing
    for j in range(6):  # every value comes from the same column of some row
        assert np.isin(out[:, j], x[:, j]).all()
    assert np.all(np.abs(out.mean(0) - x.mean(0)) < 0.15 * np.arange(1, 7))


# --- MixUp and CutMix ------------------------------------------------------------------------

def _batch(n=256, classes=5):
    rng = np.random.default_rng(0)
    return rng.normal(size=(n, 8, 8, 3)).astype("float32"), rng.integers(0, classes, n)


def test_mixup_soft_labels_sum_to_one_and_match_the_mixing_ratio():
    x, y = _batch()
    images, labels = (np.asarray(t) for t in MixUp(0.4, num_classes=5, seed=0)((x, y)))
    assert images.shape == x.shape and labels.shape == (256, 5) and labels.dtype == np.float32
    np.testing.assert_allclose(labels.sum(1), 1.0, atol=1e-6)
    # Recover each example's weight and partner from the images: x_mix = lam x + (1 - lam) x_p.
    lams = []
    for i in range(len(x)):
        for p in range(len(x)):
            d = x[i] - x[p]
            if p == i or not d.any():
                continue
            lam = float(((images[i] - x[p]) * d).sum() / (d * d).sum())
            if np.allclose(images[i], lam * x[i] + (1 - lam) * x[p], atol=1e-4):
                break
        else:  # mixed with itself
            lam, p = 1.0, i
        expected = lam * np.eye(5)[y[i]] + (1 - lam) * np.eye(5)[y[p]]
        np.testing.assert_allclose(labels[i], expected, atol=1e-4)
        lams.append(lam)
    lams = np.array(lams)
    # Beta(0.4, 0.4): mean 1/2, variance 1 / (4 (2 alpha + 1)) = 0.139.
    assert lams.mean() == pytest.approx(0.5, abs=0.06) and lams.var() == pytest.approx(0.139, abs=0.03)


def test_cutmix_label_weight_is_the_kept_area():
    x, y = _batch(128)
    cut = CutMix(1.0, num_classes=5, seed=0)
    images, labels = (np.asarray(t) for t in cut((x, y)))
    np.testing.assert_allclose(labels.sum(1), 1.0, atol=1e-6)
    kept = (images == x).all(axis=-1).mean(axis=(1, 2))  # pixels still the example's own
    for i in range(len(y)):
        # labels = kept * own one-hot + (1 - kept) * the donor's one-hot, exactly.
        donor = labels[i] - kept[i] * np.eye(5)[y[i]]
        assert donor.min() >= -1e-6 and donor.sum() == pytest.approx(1.0 - kept[i], abs=1e-6)
        assert np.count_nonzero(donor > 1e-6) <= 1
    assert 0.2 < (1 - kept).mean() < 0.5  # Beta(1, 1) asks half the area on average; borders clip boxes


def test_mixing_in_tf_data_inference_one_hot_and_label_smoothing():
    import tensorflow as tf

    import kreg

    x, y = _batch(64)
    mixup = MixUp(0.2, num_classes=5, seed=0)
    ds = tf.data.Dataset.from_tensor_slices((x, y)).batch(16).map(mixup)
    shapes = [(tuple(a.shape), tuple(b.shape)) for a, b in ds]
    assert shapes == [((16, 8, 8, 3), (16, 5))] * 4
    images, one_hot = mixup((x, y), training=False)
    np.testing.assert_array_equal(images, x)
    np.testing.assert_array_equal(one_hot, np.eye(5)[y])
    # Soft labels compose with label smoothing: the loss smooths them by Keras' rule.
    _, soft = (np.asarray(t) for t in mixup((x, y)))
    logits = np.random.default_rng(1).normal(size=(64, 5)).astype("float32")
    loss = kreg.losses.SparseCategoricalCrossentropy(0.1, from_logits=True)
    reference = keras.losses.CategoricalCrossentropy(label_smoothing=0.1, from_logits=True)
    assert float(loss(soft, logits)) == pytest.approx(float(reference(soft, logits)), rel=1e-5)
    assert float(loss(y, logits)) == pytest.approx(float(reference(np.eye(5)[y], logits)), rel=1e-5)


@pytest.mark.parametrize("cls", [MixUp, CutMix])
def test_mixing_refuses_labels_that_are_not_class_indices(cls):
    import tensorflow as tf

    x, y = _batch(16)
    layer = cls(0.4, num_classes=5, seed=0)
    whole = np.asarray(layer((x, y.astype("float32")))[1])  # whole-number floats are indices
    np.testing.assert_allclose(whole, np.asarray(cls(0.4, num_classes=5, seed=0)((x, y))[1]))
    bad = {
        "fraction": np.full(16, 0.3, "float32"),
        "out of range": np.where(np.arange(16) == 3, 5, y),
        "negative": np.where(np.arange(16) == 3, -1, y),
        "multi-hot rows": np.ones((16, 5), "float32"),
    }
    for name, labels in bad.items():
        message = "soft labels" if labels.ndim == 2 else "labels must be class indices"
        with pytest.raises(ValueError, match=message):
            layer((x, labels))
        # In a tf.data map (graph mode, under any backend) the check is an assertion on the batch.
        ds = tf.data.Dataset.from_tensor_slices((x, labels)).batch(8).map(layer)
        with pytest.raises(tf.errors.InvalidArgumentError, match=message):
            list(ds)
    if keras.backend.backend() == "tensorflow":  # JAX has no string arrays to pass
        with pytest.raises(ValueError, match="Received dtype"):
            layer((x, np.array(["a"] * 16)))


def test_mixing_alpha_is_schedulable():
    x, y = _batch(64)
    mixup = MixUp(0.4, num_classes=5, seed=0)
    assert type(mixup).schedule_kind == "augmentation" and type(mixup).schedule_attr == "alpha"
    mixup.alpha = 0.0
    images, labels = mixup((x, y))
    np.testing.assert_allclose(images, x)
    np.testing.assert_array_equal(labels, np.eye(5)[y])
    mixup.alpha = 0.4
    assert not np.allclose(mixup((x, y))[0], x)


# --- audio -----------------------------------------------------------------------------------

def _tone(freq, seconds=1.0, batch=2):
    t = np.arange(int(SR * seconds)) / SR
    return np.sin(2 * np.pi * freq * t).astype("float32")[None].repeat(batch, 0)


def _peak_hz(wave):
    spectrum = np.abs(np.fft.rfft(wave * np.hanning(len(wave))))
    return np.argmax(spectrum) * SR / len(wave)


@pytest.mark.parametrize("semitones", [12.0, 5.0, -7.0])
def test_pitch_shift_moves_a_pure_tone_by_the_expected_ratio(semitones):
    out = np.asarray(RandomPitchShift((semitones, semitones), seed=0)(_tone(440.0)))
    expected = 440.0 * 2 ** (semitones / 12)
    for wave in out:
        assert _peak_hz(wave) == pytest.approx(expected, rel=0.01)


def test_pitch_shift_of_a_spectrogram_moves_the_peak_bin():
    spec = np.zeros((2, 10, 64), "float32")
    spec[:, :, 10] = 1.0
    out = np.asarray(RandomPitchShift((12.0, 12.0), kind="spectrogram", seed=0)(spec))
    assert (out.argmax(-1) == 20).all()


@pytest.mark.parametrize("rate", [2.0, 1.25, 0.8])
def test_time_stretch_rate_is_a_speed_and_keeps_the_pitch(rate):
    # librosa's convention: rate 2.0 plays twice as fast, every event at half its time.
    duration = 1.0 / rate
    clicks = np.zeros((2, SR), "float32")
    clicks[:, [2000, 5000]] = 1.0
    energy = np.asarray(RandomTimeStretch((rate, rate), seed=0)(clicks)) ** 2
    split, steps = int(3500 * duration), np.arange(SR)
    first = (energy[:, :split] * steps[:split]).sum(1) / energy[:, :split].sum(1)
    second = (energy[:, split:] * steps[split:]).sum(1) / energy[:, split:].sum(1)
    # Events at t land at t / rate, within about one STFT hop (128 samples) of the vocoder's output.
    np.testing.assert_allclose(first, 2000 * duration, atol=192)
    np.testing.assert_allclose(second, 5000 * duration, atol=192)
    np.testing.assert_allclose(second - first, 3000 * duration, atol=256)  # the tempo: clicks 3000 / rate apart
    tone = np.asarray(RandomTimeStretch((rate, rate), seed=0)(_tone(440.0)))
    for wave in tone:
        assert _peak_hz(wave[: int(SR * min(duration, 1.0))]) == pytest.approx(440.0, rel=0.01)
    spec = np.zeros((1, 50, 8), "float32")
    spec[:, 20] = 1.0
    stretched = np.asarray(RandomTimeStretch((rate, rate), kind="spectrogram", seed=0)(spec))
    assert stretched[0, :, 0].argmax() == pytest.approx(20 * duration, abs=1)


def test_time_stretch_factor_draws_rates_around_one():
    # factor 0.5: rates in [0.5, 1.5]; a fast example (rate > 1) ends in silence, a slow one does not.
    spec = np.ones((64, 40, 4), "float32")
    out = np.asarray(RandomTimeStretch(0.5, kind="spectrogram", seed=0)(spec))
    silent_tail = (out[:, -1, 0] == 0.0).mean()
    assert 0.3 < silent_tail < 0.7


@pytest.mark.parametrize("noise", ["white", "pink", "clips"])
def test_background_noise_hits_the_chosen_snr(noise):
    signal = _tone(300.0, batch=8)
    kwargs = {"noise": np.random.default_rng(0).normal(size=(3, 12000))} if noise == "clips" else {"color": noise}
    out = np.asarray(RandomBackgroundNoise((10.0, 20.0), seed=0, **kwargs)(signal))
    added = out - signal
    snr = 10 * np.log10((signal ** 2).mean(1) / (added ** 2).mean(1))
    assert np.all((snr > 10.0 - 0.01) & (snr < 20.0 + 0.01)) and snr.std() > 0.5
    fixed = np.asarray(RandomBackgroundNoise(15.0, seed=0, **kwargs)(signal)) - signal
    np.testing.assert_allclose(10 * np.log10((signal ** 2).mean(1) / (fixed ** 2).mean(1)), 15.0, atol=0.01)
    if noise == "pink":  # 1/f: the low half of the spectrum holds most of the power
        power = np.abs(np.fft.rfft(fixed, axis=1)) ** 2
        assert power[:, 1:200].sum() > 2 * power[:, 2000:].sum()


def test_spec_augment_masks_bands_of_the_configured_width():
    spec = np.ones((500, 40, 30), "float32")
    out = np.asarray(SpecAugment(freq_mask=5, time_mask=8, freq_masks=1, time_masks=1, seed=0)(spec))
    masked_frames = (out == 0).all(axis=2).sum(1)
    masked_bins = (out == 0).all(axis=1).sum(1)
    assert masked_frames.max() <= 8 and masked_bins.max() <= 5
    assert masked_frames.mean() == pytest.approx(4.0, abs=0.5) and masked_bins.mean() == pytest.approx(2.5, abs=0.4)
    for row in (out == 0).all(axis=2)[:50]:  # one contiguous band
        idx = np.flatnonzero(row)
        assert len(idx) == 0 or idx[-1] - idx[0] + 1 == len(idx)
