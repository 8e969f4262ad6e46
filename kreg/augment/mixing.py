"""Batch-level mixing for integer labels: MixUp and CutMix in a ``tf.data`` pipeline.

Keras' ``MixUp`` and ``CutMix`` take a dict with one-hot labels. kreg's data
keeps labels as integers, so these layers take the ``(images, labels)``
batches a ``tf.data`` pipeline yields and return ``(images, soft_labels)``:

    train = train.batch(64).map(kreg.augment.MixUp(0.2, num_classes=10, seed=0))

Soft labels compose with label smoothing: kreg's
``SparseCategoricalCrossentropy`` and ``ConfidencePenalty`` accept integer
or soft labels and smooth either. In inference (``training=False``) the
images pass unchanged and the labels come back one-hot, so validation data
can go through the same layer.

``alpha`` lives in a variable (``schedule_kind = "augmentation"``): pass the
layer in ``kreg.callbacks.RegularizationSchedule(targets=[mixup])`` to ramp
it. Under TensorFlow the ``tf.data`` map reads the current value; under other
backends the map keeps the value it had when the dataset was traced.
"""

from __future__ import annotations

import keras

from kreg.errors import InputError
from kreg import _validation as v
from kreg._variables import variable_property
from kreg.augment._base import Augmentation


class _Mixing(Augmentation):
    """Shared: labels to one-hot, a partner per example, the per-example weight of each."""

    schedule_kind = "augmentation"
    schedule_attr = "alpha"
    alpha = variable_property("alpha", v.check_non_negative)

    def __init__(self, alpha, num_classes=None, seed=None, **kwargs):
        super().__init__(seed=seed, **kwargs)
        self.alpha = alpha
        if num_classes is not None:
            v.check_positive_int("num_classes", num_classes)
        self.num_classes = num_classes

    def _one_hot(self, labels):
        """Class indices (batch,) or (batch, 1) to one-hot; soft labels (batch, classes) pass through.

        Indices are integers, or floats that are whole numbers, in
        ``[0, num_classes)``; soft labels are rows of probabilities. Anything
        else (0.3 as a label, a value out of range, rows that are not
        distributions) is refused: see ``_check``.
        """
        np, B = self.np, self.backend
        if len(labels.shape) == 2 and labels.shape[-1] not in (None, 1):
            if self.num_classes is not None and labels.shape[-1] != self.num_classes:
                raise InputError(
                    f"Labels of shape {tuple(labels.shape)} do not match `num_classes`. "
                    f"Received: num_classes={self.num_classes}")
            labels = B.cast(labels, "float32")
            ok = np.logical_and(np.all(labels >= 0.0), np.all(np.abs(np.sum(labels, axis=-1) - 1.0) <= 1e-3))
            return self._check(ok, "soft labels (batch, num_classes) must be rows of probabilities "
                                   "(>= 0, summing to 1); class indices go as (batch,) or (batch, 1)", labels)
        if self.num_classes is None:
            raise v.invalid("num_classes", "the number of classes, for integer labels", None)
        if len(labels.shape) != 1:
            labels = np.reshape(labels, (-1,))
        dtype = str(labels.dtype)
        message = (f"labels must be class indices: integers (or whole-number floats) in "
                   f"[0, {self.num_classes}), or soft labels (batch, {self.num_classes})")
        if "int" not in dtype and "float" not in dtype:
            raise InputError(f"{type(self).__name__}: {message}. Received dtype {dtype}")
        ok = np.logical_and(np.all(labels >= 0), np.all(labels < self.num_classes))
        if "int" not in dtype:
            ok = np.logical_and(ok, np.all(labels == np.round(labels)))
        labels = self._check(ok, message, labels)
        if "int" not in dtype:
            labels = B.cast(labels, "int32")
        return B.nn.one_hot(labels, self.num_classes, dtype="float32")

    def _check(self, ok, message, labels):
        """Refuses the labels unless ``ok`` (a boolean scalar computed from them).

        Eager values raise ``ValueError`` at once. In a TensorFlow graph (a
        ``tf.data`` map, a compiled TensorFlow step) the check is a
        ``tf.debugging.Assert`` on the labels: iterating the dataset raises
        ``InvalidArgumentError`` with the same message. Under a JAX trace
        (``jit``) values are unknown and the labels go unchecked.
        """
        B = self.backend
        message = f"{type(self).__name__}: {message}"
        if B.name == "tensorflow":
            import tensorflow as tf

            if not tf.executing_eagerly():
                with tf.control_dependencies([tf.debugging.Assert(ok, [message])]):
                    return tf.identity(labels)
        elif B.name == "jax":
            import jax

            if isinstance(ok, jax.core.Tracer):
                return labels
        if not bool(B.convert_to_numpy(ok)):
            values = B.convert_to_numpy(labels).reshape(-1)
            more = " ..." if values.size > 8 else ""
            raise InputError(f"{message}. Received: labels={values[:8].tolist()}{more}")
        return labels

    def _beta(self, batch, rng):
        """Per-example weights ``~ Beta(alpha, alpha)`` (1 everywhere when alpha is 0)."""
        np = self.np
        alpha = self.backend.cast(self.backend.convert_to_tensor(self.convert_weight(self._alpha)), "float32")
        safe = np.maximum(alpha, 1e-3)
        lam = self.backend.random.beta((batch,), safe, safe, seed=rng)
        return np.where(alpha > 0, lam, 1.0)

    def __call__(self, inputs, labels=None, **kwargs):
        # ``dataset.map(layer)`` passes a pair's parts as two arguments.
        if labels is None:
            if not isinstance(inputs, (tuple, list)) or len(inputs) != 2:
                raise InputError(f"{type(self).__name__} takes a pair (images, labels). "
                                 f"Received: {type(inputs).__name__}")
            inputs, labels = inputs
        # Labels go as a keyword: Keras' DataLayer would cast the first
        # argument's every part to float, and integer labels want no casts.
        return super().__call__(inputs, labels=labels, **kwargs)

    def call(self, images, labels=None, training=True):
        labels = self._one_hot(labels)
        if not training:
            return images, labels
        rng = self.rng()
        # The partner of example i is example B-1-i (the batch reversed, as
        # timm does): the pipeline has shuffled the batch, so the pairs are
        # random, and a flip costs less than a shuffle and a gather.
        partner = self.np.flip(images, axis=0)
        images, weight = self.mix(images, partner, self._beta(self.batch_size(images), rng), rng)
        weight = self.np.expand_dims(weight, -1)
        labels = weight * labels + (1.0 - weight) * self.np.flip(labels, axis=0)
        return images, labels

    def mix(self, images, partner, lam, rng):
        """Mixes ``images`` with ``partner`` (the images of each one's partner).

        Returns the mixed images and each example's own share of its label.
        """
        raise NotImplementedError

    def compute_output_shape(self, input_shape, labels_shape=None):
        return input_shape, (input_shape[0], self.num_classes)

    def get_config(self):
        config = super().get_config()
        config.update(alpha=self.alpha, num_classes=self.num_classes)
        return config


@keras.saving.register_keras_serializable(package="kreg")
class MixUp(_Mixing):
    """MixUp for ``(images, integer labels)`` batches: convex mixes of examples and of their labels.

    Each example is mixed with a partner from the (shuffled) batch, the
    example at the mirrored position, with a weight
    ``lam ~ Beta(alpha, alpha)``: ``x = lam * x + (1 - lam) * x_partner``
    and the same for its one-hot label, so the soft labels sum to 1 and give
    the example ``lam`` of its own class.

    Args:
        alpha: Beta distribution parameter, >= 0; 0 switches mixing off.
            Default 0.2.
        num_classes: Number of classes (needed for integer labels).
        seed: Integer seed. Default None.

    Call arguments:
        inputs: A pair ``(images, labels)``: a batch of any rank >= 2 and
            its class indices ``(batch,)`` / ``(batch, 1)`` (integers, or
            floats that are whole numbers, in ``[0, num_classes)``) or soft
            labels ``(batch, num_classes)`` (rows of probabilities). Other
            labels (``0.3``, an index out of range) raise ``ValueError``
            when called eagerly and ``InvalidArgumentError`` from a
            ``tf.data`` map.
        training: Mixes when True (the default); otherwise returns the
            images unchanged and one-hot labels.

    Returns:
        ``(images, soft_labels)`` with ``soft_labels`` float32
        ``(batch, num_classes)``.

    Example:
        >>> mixup = kreg.augment.MixUp(0.2, num_classes=10, seed=0)
        >>> ds = tf.data.Dataset.from_tensor_slices((x, y)).batch(32).map(mixup)

    References:
        Zhang et al., "mixup: Beyond empirical risk minimization", ICLR 2018.
    """

    def __init__(self, alpha=0.2, num_classes=None, seed=None, **kwargs):
        super().__init__(alpha, num_classes=num_classes, seed=seed, **kwargs)

    def mix(self, images, partner, lam, rng):
        np = self.np
        shape = (-1,) + (1,) * (len(images.shape) - 1)
        w = self.backend.cast(np.reshape(lam, shape), images.dtype)
        return w * images + (1.0 - w) * partner, lam


@keras.saving.register_keras_serializable(package="kreg")
class CutMix(_Mixing):
    """CutMix for ``(images, integer labels)`` batches: a box pasted from a partner, labels by area.

    For each example a box covering a fraction ``1 - lam`` of the image
    (``lam ~ Beta(alpha, alpha)``, centre uniform, clipped at the borders)
    is replaced by the same box of its partner (the example at the mirrored
    position of the shuffled batch). The
    label weight of the example's own class is the fraction of pixels it
    kept, exactly.

    Args:
        alpha: Beta distribution parameter, >= 0; 0 switches mixing off.
            Default 1.0 (the paper's).
        num_classes: Number of classes (needed for integer labels).
        seed: Integer seed. Default None.

    Call arguments:
        inputs: A pair ``(images, labels)``: images ``(batch, height, width,
            channels)`` and class indices ``(batch,)`` / ``(batch, 1)`` or
            soft labels ``(batch, num_classes)``, checked as in ``MixUp``.
        training: Mixes when True (the default); otherwise returns the
            images unchanged and one-hot labels.

    Returns:
        ``(images, soft_labels)`` with ``soft_labels`` float32
        ``(batch, num_classes)``.

    Example:
        >>> cutmix = kreg.augment.CutMix(1.0, num_classes=10, seed=0)
        >>> ds = tf.data.Dataset.from_tensor_slices((x, y)).batch(32).map(cutmix)

    References:
        Yun et al., "CutMix: Regularization strategy to train strong
        classifiers with localizable features", ICCV 2019.
    """

    def __init__(self, alpha=1.0, num_classes=None, seed=None, **kwargs):
        super().__init__(alpha, num_classes=num_classes, seed=seed, **kwargs)

    def mix(self, images, partner, lam, rng):
        np, B = self.np, self.backend
        if len(images.shape) != 4:
            raise InputError(f"CutMix takes images (batch, height, width, channels). Received shape {tuple(images.shape)}")
        height, width = images.shape[1], images.shape[2]
        batch = self.batch_size(images)
        side = np.sqrt(1.0 - lam)
        centre = B.random.uniform((batch, 2), seed=rng)

        def bounds(size, centre):
            half = side * size / 2.0
            lo = np.clip(np.round(centre * size - half), 0, size)
            hi = np.clip(np.round(centre * size + half), 0, size)
            return np.expand_dims(lo, -1), np.expand_dims(hi, -1)

        y0, y1 = bounds(height, centre[:, 0])
        x0, x1 = bounds(width, centre[:, 1])
        rows = np.arange(height, dtype="float32")[None, :]
        cols = np.arange(width, dtype="float32")[None, :]
        in_rows = B.cast(np.logical_and(rows >= y0, rows < y1), "float32")  # (B, H)
        in_cols = B.cast(np.logical_and(cols >= x0, cols < x1), "float32")  # (B, W)
        box = in_rows[:, :, None] * in_cols[:, None, :]  # (B, H, W)
        kept = 1.0 - np.sum(box, axis=(1, 2)) / float(height * width)
        box = B.cast(box[..., None], images.dtype)
        return images * (1.0 - box) + partner * box, kept
