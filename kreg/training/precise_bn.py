"""Precise batch-normalization statistics: the population statistics re-estimated with the final weights.

Keras' ``BatchNormalization`` keeps an exponential moving average (momentum
0.99) of the per-batch statistics it saw while the weights were changing.
With few steps (a small dataset: one step per epoch) the average has not
converged, and with any number of steps it mixes statistics of old weights.
Precise BN (Wu & Johnson, "Rethinking 'Batch' in BatchNorm", 2021) runs a
large fixed sample of training data through the finished model and sets the
population statistics to the plain mean of the per-batch statistics (equal
weight per batch, not an EMA).
"""

from __future__ import annotations

import dataclasses
import weakref

import keras
import numpy as np

from kreg.errors import ArgumentError
from kreg import _validation as v

DEFAULT_MAX_BATCHES = 200
DEFAULT_MAX_EXAMPLES = 4096


@dataclasses.dataclass(frozen=True)
class BatchNormStatistics:
    """What ``recompute_batch_norm_statistics`` did: layers updated, batches and examples it averaged."""

    layers: int
    batches: int
    examples: int

    def describe(self) -> str:
        if not self.layers:
            return "no BatchNormalization layer"
        return (f"{self.layers} layer{'s' if self.layers != 1 else ''}, {self.examples} example"
                f"{'s' if self.examples != 1 else ''} in {self.batches} batch{'es' if self.batches != 1 else ''}")


def batch_norm_layers(model) -> list:
    """The model's ``BatchNormalization`` layers that learn statistics (nested models and sublayers
    included; ``synchronized=True`` ones are the same class). A frozen layer (``trainable=False``)
    normalizes with its moving statistics in training too, so it has nothing to re-estimate."""
    layers = model._flatten_layers(include_self=True, recursive=True)
    return [l for l in layers if isinstance(l, keras.layers.BatchNormalization) and l.trainable]


def _as_numpy(x):
    return keras.tree.map_structure(lambda t: np.asarray(t) if t is not None else None, x)


def _first_leaf(x):
    return keras.tree.flatten(x)[0]


def _is_arrays(x) -> bool:
    if isinstance(x, dict):
        return bool(x) and all(isinstance(t, np.ndarray) for t in x.values())
    return isinstance(x, np.ndarray)


def _input_batches(data, batch_size: int, max_batches: int, max_examples: int, seed: int):
    """Input batches: arrays shuffled by ``seed`` (a fixed sample of at most ``max_examples`` in batches of
    ``batch_size``; a last batch under half that size is left out), or the batches of a dataset / iterable
    as they come, up to ``max_batches`` batches and about ``max_examples`` examples."""
    x = data[0] if isinstance(data, tuple) and data and _is_arrays(data[0]) else data  # (x, y[, sample_weight])
    if _is_arrays(x):
        n = len(_first_leaf(x))
        order = np.random.default_rng(seed).permutation(n)[:max_examples]
        count = len(order)
        if count % batch_size and count > batch_size and count % batch_size < batch_size / 2:
            count -= count % batch_size  # a last batch under half the others would weigh as much, noisier
        order = order[:count]
        for b, start in enumerate(range(0, count, batch_size)):
            if b >= max_batches:
                return
            index = np.sort(order[start:start + batch_size])
            yield keras.tree.map_structure(lambda a: a[index], x)
        return
    examples = 0
    for b, batch in enumerate(x):
        if b >= max_batches or examples >= max_examples:
            return
        if isinstance(batch, (tuple, list)):
            batch = batch[0]  # (x, y) or (x, y, sample_weight)
        batch = _as_numpy(batch)
        examples += len(_first_leaf(batch))
        yield batch


def recompute_batch_norm_statistics(model, data, *, batch_size=32, max_batches=DEFAULT_MAX_BATCHES,
                                    max_examples=DEFAULT_MAX_EXAMPLES, seed=0) -> BatchNormStatistics:
    """Re-estimates every ``BatchNormalization`` layer's moving statistics with the current weights.

    The training inputs go through the model once with each batch-norm
    layer in training mode (it normalizes with the batch's statistics, as in
    training, so later layers see what they saw in training); each layer's
    ``moving_mean`` and ``moving_variance`` become the mean over batches of
    the per-batch mean and variance of its inputs.

    Every other layer runs in inference mode: dropout and noise layers are
    off. The statistics are meant for inference, where those layers are off;
    with dropout on, a layer after a dropout would get an inflated variance
    (inverted dropout keeps the mean but not the variance: the "variance
    shift" of Li et al., CVPR 2019) and shrink its inference activations.
    Wu & Johnson take the statistics in training mode, as training saw them;
    their networks have no dropout, where both choices are the same.
    Nothing else changes: weights, the other variables (random-number
    states included), the optimizer and each layer's ``momentum`` are left
    as they were (an error midway restores the statistics too).

    Frozen layers (``trainable=False``) are left alone: they normalize with
    their moving statistics in training as well. Batch renormalization
    layers get their ``moving_stddev`` set to match.

    Args:
        model: A Keras model or layer.
        data: Training inputs: an array (or dict of arrays), an ``(x, y)``
            tuple of arrays, or a ``tf.data.Dataset`` / iterable (a list,
            a generator) of ``x`` or ``(x, y[, sample_weight])`` batches. Arrays are shuffled with
            ``seed`` (a fixed sample, the same on every call); a dataset is
            read as it comes (shuffle it as training does).
        batch_size: Batch size for arrays. Use the training batch size:
            the per-batch variance depends on it, as it did in training.
            Default 32.
        max_batches: Read at most this many batches. Default 200.
        max_examples: Read at most about this many examples. Default 4096.
        seed: Shuffles arrays. Default 0.

    Returns:
        ``BatchNormStatistics(layers, batches, examples)``; ``layers`` is 0
        (and the data is not read) for a model without batch normalization.

    Example:
        >>> model.fit(x_train, y_train, epochs=100, batch_size=64)
        >>> kreg.training.recompute_batch_norm_statistics(model, x_train, batch_size=64)
        BatchNormStatistics(layers=3, batches=1, examples=36)

    References:
        Wu & Johnson, "Rethinking 'Batch' in BatchNorm", arXiv:2105.07576, 2021.
    """
    batch_size = v.check_positive_int("batch_size", batch_size)
    max_batches = v.check_positive_int("max_batches", max_batches)
    max_examples = v.check_positive_int("max_examples", max_examples)
    layers = batch_norm_layers(model)
    if not layers:
        return BatchNormStatistics(0, 0, 0)
    sums = {id(l): [None, None, 0] for l in layers}  # float64 sums of batch means and variances, batches seen
    original = {id(l): l.call for l in layers}
    step = _step(model, layers)

    def forced(layer):
        call = original[id(layer)]

        def training_call(inputs, training=None, mask=None, **kwargs):
            x = keras.ops.cast(inputs, keras.backend.result_type(inputs.dtype, "float32"))
            mean, variance = layer._moments(x, mask)  # what the layer's training call normalizes with
            step.capture.append((id(layer), mean, variance))
            return call(inputs, training=True, mask=mask, **kwargs)

        return training_call

    saved = [(var, np.array(keras.ops.convert_to_numpy(var))) for var in model.variables]
    batches = examples = 0
    try:
        for layer in layers:
            object.__setattr__(layer, "call", forced(layer))  # an instance attribute: Layer.__call__ calls it
        for batch in _input_batches(data, batch_size, max_batches, max_examples, seed):
            moments = step.call(batch)
            for key, mean, variance in zip(step.order, moments[0::2], moments[1::2]):
                acc = sums[key]
                mean = np.asarray(mean, np.float64).reshape(-1)
                variance = np.asarray(variance, np.float64).reshape(-1)
                acc[0] = mean if acc[0] is None else acc[0] + mean
                acc[1] = variance if acc[1] is None else acc[1] + variance
                acc[2] += 1
            batches += 1
            examples += len(_first_leaf(batch))
    except BaseException:
        for var, value in saved:
            var.assign(value)
        raise
    finally:
        for layer in layers:
            layer.__dict__.pop("call", None)
    if not batches:
        raise ArgumentError("Invalid value received for argument `data`. Expected training inputs (at least one "
                         "batch) to recompute batch-normalization statistics from. Received: no batches")
    updated = {id(l) for l in layers if sums[id(l)][2]}
    mine = {id(var) for l in layers if id(l) in updated for var in _statistics(l)}
    for var, value in saved:  # the training calls moved the EMA (and renorm's own averages): undo all but ours
        if id(var) not in mine:
            var.assign(value)
    for layer in layers:
        total_mean, total_var, count = sums[id(layer)]
        if not count:
            continue
        mean = (total_mean / count).reshape(layer.moving_mean.shape)
        var = (total_var / count).reshape(layer.moving_variance.shape)
        layer.moving_mean.assign(mean.astype(layer.moving_mean.dtype))
        layer.moving_variance.assign(var.astype(layer.moving_variance.dtype))
        if getattr(layer, "renorm", False):
            layer.moving_stddev.assign(np.sqrt(var + layer.epsilon).astype(layer.moving_stddev.dtype))
    return BatchNormStatistics(len(updated), batches, examples)


_STEPS = weakref.WeakKeyDictionary()  # model -> its compiled _Step (TensorFlow), dropped with the model


class _Step:
    """One batch through ``model`` in inference mode, the wrapped batch-norm layers' batch moments out.

    Under TensorFlow it is a ``tf.function``, traced once per model (per batch shape) and kept: an eager
    forward pass costs 2-3 times a compiled one. Under JAX (eager calls are fast) and torch it runs eagerly.
    It holds the model by a weak reference, so the cache never keeps a model alive.
    """

    def __init__(self, model, keys):
        self.keys = keys
        self.capture, self.order = [], []
        ref = weakref.ref(model)

        def step(x):
            self.capture.clear()
            ref()(x, training=False)
            self.order = [key for key, _, _ in self.capture]
            out = [t for _, mean, variance in self.capture for t in (mean, variance)]
            self.capture.clear()
            return out

        self.call = step
        if keras.backend.backend() == "tensorflow":
            import tensorflow as tf

            self.call = tf.function(step, reduce_retracing=True)


def _step(model, layers) -> _Step:
    keys = tuple(id(l) for l in layers)
    if keras.backend.backend() != "tensorflow":
        return _Step(model, keys)
    step = _STEPS.get(model)
    if step is None or step.keys != keys:  # the first time, or other layers learn statistics now
        step = _STEPS[model] = _Step(model, keys)
    return step


def _statistics(layer) -> list:
    out = [layer.moving_mean, layer.moving_variance]
    if getattr(layer, "renorm", False):
        out.append(layer.moving_stddev)
    return out


class PreciseBatchNorm(keras.callbacks.Callback):
    """Recomputes batch-normalization statistics at the end of training (``recompute_batch_norm_statistics``).

    With ``every=N`` also after every N-th epoch's training, before the
    epoch's validation: Keras evaluates the validation data inside ``fit``
    before any ``on_epoch_end``, so the recompute runs at ``on_test_begin``
    (at ``on_epoch_end`` when there is no validation this epoch). Training
    itself is unchanged (it normalizes with batch statistics); only the
    figures measured in inference mode (validation, epoch-end callbacks such
    as ``GeneralizationGap`` or early stopping) see the precise statistics.

    Place it after callbacks that change the weights at the end of training
    (``SWA``, ``EarlyStopping(restore_best_weights=True)``): callbacks' end
    hooks run in list order, and the statistics must belong to the final
    weights.

    Args:
        data: Training inputs (see ``recompute_batch_norm_statistics``).
        every: Also recompute every this many epochs before validation;
            None (default): only at the end of training.
        epoch_data: Inputs for the recomputes during training (default:
            ``data``): a smaller fixed sample keeps their cost down; the end
            of training uses ``data``.
        batch_size, max_batches, max_examples, seed: As in
            ``recompute_batch_norm_statistics``.

    Example:
        >>> precise = kreg.training.PreciseBatchNorm(x_train, batch_size=64)
        >>> model.fit(x_train, y_train, epochs=100, batch_size=64, callbacks=[precise])
        >>> precise.result
        BatchNormStatistics(layers=3, batches=1, examples=36)
    """

    def __init__(self, data, every=None, batch_size=32, max_batches=DEFAULT_MAX_BATCHES,
                 max_examples=DEFAULT_MAX_EXAMPLES, seed=0, epoch_data=None):
        super().__init__()
        self.data = data
        self.epoch_data = epoch_data
        self.every = None if every is None else v.check_positive_int("every", every)
        self.batch_size = v.check_positive_int("batch_size", batch_size)
        self.max_batches = v.check_positive_int("max_batches", max_batches)
        self.max_examples = v.check_positive_int("max_examples", max_examples)
        self.seed = int(seed)
        self.result: BatchNormStatistics | None = None
        self.recomputes = 0
        self._epoch = None
        self._done = True
        self._has_bn = False

    def recompute(self, data=None) -> BatchNormStatistics:
        """Recomputes now, over ``data`` (default: the callback's ``data``)."""
        self.result = recompute_batch_norm_statistics(
            self.model, self.data if data is None else data, batch_size=self.batch_size,
            max_batches=self.max_batches, max_examples=self.max_examples, seed=self.seed)
        self.recomputes += 1
        return self.result

    def on_train_begin(self, logs=None):
        self.recomputes = 0
        self._has_bn = bool(batch_norm_layers(self.model))

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch
        self._done = not (self.every and self._has_bn and (epoch + 1) % self.every == 0)

    def on_test_begin(self, logs=None):
        if self._epoch is not None and not self._done:  # fit's validation after this epoch's training
            self._done = True
            self.recompute(self.epoch_data)

    def on_epoch_end(self, epoch, logs=None):
        if not self._done:
            self._done = True
            self.recompute(self.epoch_data)
        self._epoch = None

    def on_train_end(self, logs=None):
        self._epoch, self._done = None, True
        self.recompute()
