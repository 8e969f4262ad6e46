"""Audio augmentation for waveforms and spectrograms.

Waveforms are ``(batch, samples)`` or ``(batch, samples, 1)``; spectrograms
``(batch, frames, bins)`` or ``(batch, frames, bins, 1)`` (time first, as
``keras.layers.MelSpectrogram`` and ``STFTSpectrogram`` give them once
transposed). Time stretching and pitch shifting of waveforms use a phase
vocoder on the short-time Fourier transform (``keras.ops.stft`` / ``istft``);
on spectrograms they resample the time or frequency axis. Every layer keeps
the shape of its input, is active only in training, is seeded, and runs
inside a model or a ``tf.data`` map under any backend.
"""

from __future__ import annotations

import math

import keras
import numpy

from kreg.errors import InputError
from kreg import _validation as v
from kreg.augment._base import Augmentation

KINDS = ("waveform", "spectrogram")


def _check_range(name, value, check):
    """A number or a ``(low, high)`` pair -> ``(low, high)``, each checked."""
    if isinstance(value, (tuple, list)):
        if len(value) != 2:
            raise v.invalid(name, "a number or a pair (low, high)", value)
        low, high = check(name, value[0]), check(name, value[1])
        if low > high:
            raise v.invalid(name, "a pair (low, high) with low <= high", value)
        return float(low), float(high)
    value = check(name, value)
    return float(value), float(value)


def _check_real(name, value, unit):
    if not v._is_real(value):
        raise v.invalid(name, f"a number of {unit}", value)
    return float(value)


def _check_decibels(name, value):
    return _check_real(name, value, "decibels")


def _check_semitones(name, value):
    return _check_real(name, value, "semitones")


def _check_int(name, value, minimum):
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise v.invalid(name, f"an integer >= {minimum}", value)
    return value


class _AudioLayer(Augmentation):
    """Shape handling shared by the audio layers: a trailing channel of 1 is dropped and restored.

    ``kind`` (``"waveform"`` or ``"spectrogram"``) is fixed by the class, or
    chosen per layer where both make sense (the vocoder layers).
    """

    kind = "waveform"

    def augment(self, inputs):
        np = self.np
        rank = 2 if self.kind == "waveform" else 3
        channel = len(inputs.shape) == rank + 1
        if len(inputs.shape) != rank and not (channel and inputs.shape[-1] == 1):
            raise InputError(
                f"{type(self).__name__} with kind='{self.kind}' takes inputs of rank {rank} "
                f"(or {rank + 1} with one channel). Received shape {tuple(inputs.shape)}")
        x = np.squeeze(inputs, -1) if channel else inputs
        x = self.backend.cast(x, "float32")
        out = self.transform(x)
        out = self.backend.cast(out, inputs.dtype)
        return np.expand_dims(out, -1) if channel else out

    def transform(self, x):  # pragma: no cover - every subclass defines it
        raise NotImplementedError


class _VocoderLayer(_AudioLayer):
    """STFT settings and the phase vocoder shared by time stretching and pitch shifting."""

    def __init__(self, kind="waveform", frame_length=512, frame_step=128, seed=None, **kwargs):
        super().__init__(seed=seed, **kwargs)
        self.kind = v.check_choice("kind", kind, KINDS)
        self.frame_length = _check_int("frame_length", frame_length, 2)
        self.frame_step = _check_int("frame_step", frame_step, 1)
        if frame_step > frame_length:
            raise v.invalid("frame_step", f"an integer <= frame_length={frame_length}", frame_step)

    def stretch(self, wave, duration, out_length):
        """Phase vocoder: ``wave`` (B, L) made ``duration`` (B, 1) times longer, ``out_length`` samples.

        ``duration`` is ``1 / rate`` for a speed ``rate`` (``RandomTimeStretch``)
        and the pitch ratio for ``RandomPitchShift`` (stretched, then resampled).
        Output frame ``j`` reads the input's magnitudes at frame ``j / duration``
        (linear interpolation) and accumulates each bin's instantaneous
        frequency, so the tempo changes and the pitch does not. Reading past
        the input's last frame gives silence.
        """
        np, B = self.np, self.backend
        n, hop = self.frame_length, self.frame_step
        real, imag = B.math.stft(wave, n, hop, n, window="hann", center=True)
        frames, bins = real.shape[1], real.shape[2]
        magnitude = np.sqrt(real * real + imag * imag)
        phase = np.arctan2(imag, real)
        # Two silent frames after the last: reads past the end fade to zero.
        pad = [(0, 0), (0, 2), (0, 0)]
        magnitude, phase = np.pad(magnitude, pad), np.pad(phase, pad)
        out_frames = out_length // hop + 1
        source = np.arange(out_frames, dtype="float32")[None, :] / duration
        source = np.minimum(source, float(frames))
        left = B.cast(np.floor(source), "int32")
        frac = np.expand_dims(source - B.cast(left, "float32"), -1)
        mag = (1.0 - frac) * self.gather_steps(magnitude, left) + frac * self.gather_steps(magnitude, left + 1)
        # Instantaneous frequency between the two frames read, wrapped to (-pi, pi] around the bin's own advance.
        advance = (2.0 * math.pi * hop / n) * np.arange(bins, dtype="float32")
        delta = self.gather_steps(phase, left + 1) - self.gather_steps(phase, left) - advance
        delta = delta - 2.0 * math.pi * np.round(delta / (2.0 * math.pi))
        step = advance + delta
        out_phase = phase[:, :1, :] + np.cumsum(step, axis=1) - step
        out = (mag * np.cos(out_phase), mag * np.sin(out_phase))
        return B.math.istft(out, n, hop, n, length=out_length, window="hann", center=True)

    def get_config(self):
        config = super().get_config()
        config.update(kind=self.kind, frame_length=self.frame_length, frame_step=self.frame_step)
        return config


@keras.saving.register_keras_serializable(package="kreg")
class RandomTimeStretch(_VocoderLayer):
    """Plays each example faster or slower without changing its pitch.

    Each example gets a speed rate ``r`` drawn uniformly from
    ``[1 - factor, 1 + factor]``, with the meaning of librosa's
    ``time_stretch(y, rate=r)``, torchaudio's and audiomentations' rate:
    ``r > 1`` plays faster (shorter), ``r < 1`` slower (longer); events at
    time ``t`` move to ``t / r``. The length is kept: a slowed example is cut
    at the end, a sped-up one ends in silence (``fill_value`` for
    spectrograms).

    Args:
        factor: Largest relative change of the rate, in [0, 1): ``r`` is
            drawn from ``[1 - factor, 1 + factor]``. A pair ``(low, high)``
            of positive rates gives the range itself, e.g. ``(2.0, 2.0)``
            always plays twice as fast (every event at half its time).
            Default 0.1.
        kind: ``"waveform"`` (phase vocoder) or ``"spectrogram"`` (the time
            axis resampled). Default ``"waveform"``.
        frame_length: STFT window of the phase vocoder, in samples. Default 512.
        frame_step: STFT hop, in samples. Default 128.
        fill_value: Spectrogram value of the silence after a sped-up example.
            Default 0.
        seed: Integer seed. Default None.

    Call arguments:
        inputs: Waveforms ``(batch, samples[, 1])`` or spectrograms
            ``(batch, frames, bins[, 1])``.
        training: The layer only stretches when True (the default).

    Returns:
        A tensor of the input's shape and dtype.

    Example:
        >>> stretch = kreg.augment.RandomTimeStretch(0.2, seed=0)
        >>> stretch(np.zeros((2, 16000), "float32")).shape
        (2, 16000)

    References:
        Flanagan and Golden, "Phase vocoder", 1966; Ko et al., "Audio
        augmentation for speech recognition", Interspeech 2015; McFee et al.,
        "librosa", SciPy 2015 (``librosa.effects.time_stretch``).
    """

    def __init__(self, factor=0.1, kind="waveform", frame_length=512, frame_step=128, fill_value=0.0,
                 seed=None, **kwargs):
        super().__init__(kind=kind, frame_length=frame_length, frame_step=frame_step, seed=seed, **kwargs)
        if isinstance(factor, (tuple, list)):
            self.rates = _check_range("factor", factor, v.check_positive)
            factor = list(factor)
        else:
            v.check_rate("factor", factor)
            self.rates = (1.0 - factor, 1.0 + factor)
        self.factor = factor
        self.fill_value = float(fill_value)

    def is_active(self):
        return self.rates != (1.0, 1.0)

    def transform(self, x):
        low, high = self.rates
        rate = self.backend.random.uniform((self.batch_size(x), 1), low, high + 1e-9, seed=self.rng())
        if self.kind == "waveform":
            return self.stretch(x, 1.0 / rate, x.shape[1])  # the vocoder takes a duration factor
        steps = self.np.arange(x.shape[1], dtype="float32")[None, :]
        return self.interpolate_steps(x, steps * rate, self.fill_value)

    def get_config(self):
        config = super().get_config()
        config.update(factor=self.factor, fill_value=self.fill_value)
        return config


@keras.saving.register_keras_serializable(package="kreg")
class RandomPitchShift(_VocoderLayer):
    """Shifts each example's pitch by a random number of semitones, keeping its tempo.

    Each example gets a shift ``s`` drawn uniformly from ``[-semitones,
    semitones]``; every frequency is multiplied by ``2 ** (s / 12)``. On
    waveforms: a phase-vocoder stretch by that ratio, then resampling back
    to the original length. On spectrograms: the frequency axis resampled
    (linear bins; bins read from above the top get ``fill_value``).

    Args:
        semitones: Largest shift in semitones, >= 0: ``s`` is drawn from
            ``[-semitones, semitones]``. A pair ``(low, high)`` gives the
            range itself, e.g. ``(12, 12)`` always shifts up an octave.
            Default 2.
        kind: ``"waveform"`` or ``"spectrogram"``. Default ``"waveform"``.
        frame_length: STFT window of the phase vocoder, in samples. Default 512.
        frame_step: STFT hop, in samples. Default 128.
        fill_value: Spectrogram value of bins with no source. Default 0.
        seed: Integer seed. Default None.

    Call arguments:
        inputs: Waveforms ``(batch, samples[, 1])`` or spectrograms
            ``(batch, frames, bins[, 1])`` with linearly spaced bins.
        training: The layer only shifts when True (the default).

    Returns:
        A tensor of the input's shape and dtype.

    Example:
        >>> shift = kreg.augment.RandomPitchShift(2.0, seed=0)
        >>> shift(np.zeros((2, 16000), "float32")).shape
        (2, 16000)

    References:
        Salamon and Bello, "Deep convolutional neural networks and data
        augmentation for environmental sound classification", IEEE SPL 2017.
    """

    def __init__(self, semitones=2.0, kind="waveform", frame_length=512, frame_step=128, fill_value=0.0,
                 seed=None, **kwargs):
        super().__init__(kind=kind, frame_length=frame_length, frame_step=frame_step, seed=seed, **kwargs)
        if isinstance(semitones, (tuple, list)):
            self.shifts = _check_range("semitones", semitones, _check_semitones)
            semitones = list(semitones)
        else:
            v.check_non_negative("semitones", semitones)
            self.shifts = (-float(semitones), float(semitones))
        self.semitones = semitones
        self.fill_value = float(fill_value)

    def is_active(self):
        return self.shifts != (0.0, 0.0)

    def transform(self, x):
        np = self.np
        low, high = self.shifts
        shift = self.backend.random.uniform((self.batch_size(x), 1), low, high + 1e-9, seed=self.rng())
        ratio = np.power(2.0, shift / 12.0)
        if self.kind == "spectrogram":
            by_bin = np.transpose(x, (0, 2, 1))  # (B, bins, frames): resample the bins
            bins = np.arange(x.shape[2], dtype="float32")[None, :]
            return np.transpose(self.interpolate_steps(by_bin, bins / ratio, self.fill_value), (0, 2, 1))
        length = x.shape[1]
        longest = int(math.ceil(length * 2.0 ** (max(high, 0.0) / 12.0))) + 1
        slowed = self.stretch(x, ratio, longest)  # the same pitch, `ratio` times longer
        source = np.arange(length, dtype="float32")[None, :] * ratio
        return np.squeeze(self.interpolate_steps(np.expand_dims(slowed, -1), source), -1)

    def get_config(self):
        config = super().get_config()
        config.update(semitones=self.semitones, fill_value=self.fill_value)
        return config


@keras.saving.register_keras_serializable(package="kreg")
class RandomBackgroundNoise(_AudioLayer):
    """Mixes background noise into each waveform at a random signal-to-noise ratio.

    For each example an SNR is drawn uniformly from ``snr_db`` and the noise
    is scaled so that ``10 log10(P_signal / P_noise)`` equals it exactly
    (``P`` the mean square over the example). The noise is a random excerpt
    of a random clip from ``noise`` when given, else generated white or pink
    (1/f) noise.

    Args:
        snr_db: SNR in decibels, a number or a ``(low, high)`` range.
            Default ``(5, 20)``.
        noise: Optional noise clips, an array ``(clips, samples)`` or one
            clip ``(samples,)``, at least as long as the waveforms. They are
            stored in the layer's config: keep them short.
        color: Generated noise when no clips are given: ``"white"`` or
            ``"pink"``. Default ``"white"``.
        seed: Integer seed. Default None.

    Call arguments:
        inputs: Waveforms ``(batch, samples)`` or ``(batch, samples, 1)``.
        training: The layer only adds noise when True (the default).

    Returns:
        A tensor of the input's shape and dtype.

    Example:
        >>> noisy = kreg.augment.RandomBackgroundNoise((10, 20), color="pink", seed=0)
        >>> noisy(np.ones((2, 16000), "float32")).shape
        (2, 16000)

    References:
        Salamon and Bello, IEEE SPL 2017 (background noise mixing).
    """

    def __init__(self, snr_db=(5.0, 20.0), noise=None, color="white", seed=None, **kwargs):
        super().__init__(seed=seed, **kwargs)
        self.snr_db = _check_range("snr_db", snr_db, _check_decibels)
        self.color = v.check_choice("color", color, ("white", "pink"))
        self.noise = None
        if noise is not None:
            clips = numpy.asarray(noise, dtype="float32")
            if clips.ndim == 1:
                clips = clips[None, :]
            if clips.ndim != 2 or clips.size == 0 or not numpy.isfinite(clips).all():
                raise v.invalid("noise", "finite noise clips shaped (clips, samples) or (samples,)",
                                f"array of shape {numpy.shape(noise)}")
            self.noise = clips

    def _noise(self, x, rng):
        np, B = self.np, self.backend
        batch, length = self.batch_size(x), x.shape[1]
        if self.noise is not None:
            clips = B.convert_to_tensor(self.noise)
            count, samples = self.noise.shape
            if samples < length:
                raise InputError(f"The noise clips have {samples} samples, shorter than the waveforms "
                                 f"({length}). Received: noise of shape {self.noise.shape}")
            pick = B.random.randint((batch,), 0, count, seed=rng)
            start = B.random.randint((batch, 1), 0, samples - length + 1, seed=rng)
            index = start + np.arange(length, dtype="int32")[None, :]
            return np.take_along_axis(np.take(clips, pick, axis=0), index, axis=1)
        white = B.random.normal((batch, length), seed=rng)
        if self.color == "white":
            return white
        real, imag = B.math.rfft(white)
        freq = np.maximum(np.arange(real.shape[-1], dtype="float32"), 1.0)
        gain = 1.0 / np.sqrt(freq)
        return B.math.irfft((real * gain, imag * gain), fft_length=length)

    def transform(self, x):
        np, B, rng = self.np, self.backend, self.rng()
        noise = self._noise(x, rng)
        low, high = self.snr_db
        snr = B.random.uniform((self.batch_size(x), 1), low, high + 1e-9, seed=rng)
        signal_power = np.mean(x * x, axis=1, keepdims=True)
        noise_power = np.maximum(np.mean(noise * noise, axis=1, keepdims=True), 1e-12)
        scale = np.sqrt(signal_power / (noise_power * np.power(10.0, snr / 10.0)))
        return x + scale * noise

    def get_config(self):
        config = super().get_config()
        config.update(snr_db=list(self.snr_db), color=self.color,
                      noise=None if self.noise is None else self.noise.tolist())
        return config


@keras.saving.register_keras_serializable(package="kreg")
class SpecAugment(_AudioLayer):
    """SpecAugment's time and frequency masking of spectrograms.

    Each example gets ``time_masks`` bands of ``w ~ U{0..time_mask}``
    consecutive frames and ``freq_masks`` bands of ``f ~ U{0..freq_mask}``
    consecutive bins, placed uniformly, set to ``mask_value``.

    Args:
        freq_mask: Largest frequency band, in bins (integer >= 0). Default 8.
        time_mask: Largest time band, in frames (integer >= 0). Default 10.
        freq_masks: Number of frequency bands. Default 2.
        time_masks: Number of time bands. Default 2.
        mask_value: Value of masked entries (0, or the mean of a
            standardized log spectrogram). Default 0.
        seed: Integer seed. Default None.

    Call arguments:
        inputs: Spectrograms ``(batch, frames, bins)`` or ``(batch, frames, bins, 1)``.
        training: The layer only masks when True (the default).

    Returns:
        A tensor of the input's shape and dtype.

    Example:
        >>> spec = kreg.augment.SpecAugment(freq_mask=8, time_mask=20, seed=0)
        >>> spec(np.ones((2, 100, 64), "float32")).shape
        (2, 100, 64)

    References:
        Park et al., "SpecAugment: A simple data augmentation method for
        automatic speech recognition", Interspeech 2019.
    """

    kind = "spectrogram"

    def __init__(self, freq_mask=8, time_mask=10, freq_masks=2, time_masks=2, mask_value=0.0, seed=None, **kwargs):
        super().__init__(seed=seed, **kwargs)
        self.freq_mask = _check_int("freq_mask", freq_mask, 0)
        self.time_mask = _check_int("time_mask", time_mask, 0)
        self.freq_masks = _check_int("freq_masks", freq_masks, 0)
        self.time_masks = _check_int("time_masks", time_masks, 0)
        self.mask_value = float(mask_value)

    def is_active(self):
        return (self.freq_mask and self.freq_masks) or (self.time_mask and self.time_masks)

    def _keep(self, batch, size, widest, count, rng):
        """(batch, size) float: 0 inside any of ``count`` random bands of width <= ``widest``."""
        np, B = self.np, self.backend
        keep = np.ones((batch, size), dtype="float32")
        positions = np.arange(size, dtype="float32")[None, :]
        for _ in range(count):
            width = B.cast(B.random.randint((batch, 1), 0, min(widest, size) + 1, seed=rng), "float32")
            start = np.floor(B.random.uniform((batch, 1), seed=rng) * (size - width + 1))
            band = np.logical_and(positions >= start, positions < start + width)
            keep = keep * (1.0 - B.cast(band, "float32"))
        return keep

    def transform(self, x):
        rng, batch = self.rng(), self.batch_size(x)
        keep_time = self._keep(batch, x.shape[1], self.time_mask, self.time_masks, rng)
        keep_freq = self._keep(batch, x.shape[2], self.freq_mask, self.freq_masks, rng)
        keep = keep_time[:, :, None] * keep_freq[:, None, :]
        return self.np.where(keep > 0, x, self.mask_value)

    def get_config(self):
        config = super().get_config()
        config.update(freq_mask=self.freq_mask, time_mask=self.time_mask, freq_masks=self.freq_masks,
                      time_masks=self.time_masks, mask_value=self.mask_value)
        return config
