"""Backend-agnostic math of structured dropout (``keras.ops`` / ``keras.random``).

The layers in ``kreg.layers`` are thin wrappers around these functions, in the
manner of timm's ``drop.py``. ``rate`` may be a Python float or a scalar
tensor / variable (so a schedule can change it between epochs); a rate of 0
returns the input unchanged.
"""

from __future__ import annotations

import numpy as np
from keras import ops
from keras import random


def _valid_centres(spatial, block_size):
    """1 where a block centred there fits inside the feature map (static)."""
    mask = np.ones(spatial, "float32")
    before, after = block_size // 2, (block_size - 1) // 2
    for axis, size in enumerate(spatial):
        index = np.arange(size)
        fits = (index >= before) & (index <= size - 1 - after)
        shape = [1] * len(spatial)
        shape[axis] = size
        mask = mask * fits.reshape(shape)
    return mask


def drop_block(x, rate, block_size, seed):
    """DropBlock over the spatial axes of channels-last ``x`` (rank 3 or 4).

    Seeds are drawn with probability ``gamma`` at positions where a whole
    ``block_size`` block fits, grown into blocks by max pooling, and the kept
    activations are rescaled by ``numel / kept`` so the expectation is kept.
    """
    spatial = tuple(int(d) for d in x.shape[1:-1])
    block = min(block_size, *spatial)
    valid_area = float(np.prod([s - block + 1 for s in spatial]))
    gamma = ops.cast(rate, "float32") / float(block ** len(spatial)) * (float(np.prod(spatial)) / valid_area)
    noise = random.uniform(ops.shape(x), seed=seed)
    centres = ops.convert_to_tensor(_valid_centres(spatial, block)[None, ..., None])
    seeds = ops.cast(noise < gamma, "float32") * centres
    dropped = ops.max_pool(seeds, pool_size=block, strides=1, padding="same")
    keep = 1.0 - dropped
    scale = ops.cast(ops.size(keep), "float32") / ops.maximum(ops.sum(keep), 1.0)
    return x * ops.cast(keep * scale, x.dtype)


def drop_path(x, rate, seed):
    """Drops whole examples of a residual branch with probability ``rate``."""
    keep_prob = 1.0 - ops.cast(rate, "float32")
    shape = (ops.shape(x)[0],) + (1,) * (len(x.shape) - 1)
    keep = ops.cast(random.uniform(shape, seed=seed) < keep_prob, x.dtype)
    return x * keep / ops.cast(ops.maximum(keep_prob, 1e-7), x.dtype)


def drop_connect(kernel, rate, seed):
    """Dropout on weights: each kernel entry is zeroed with probability ``rate``."""
    keep_prob = 1.0 - ops.cast(rate, "float32")
    keep = ops.cast(random.uniform(ops.shape(kernel), seed=seed) < keep_prob, kernel.dtype)
    return kernel * keep / ops.cast(ops.maximum(keep_prob, 1e-7), kernel.dtype)


def dropout(x, rate, noise_shape=None, seed=None):
    """Inverted dropout whose ``rate`` may be a tensor (Keras' backend tests it in Python).

    ``noise_shape`` as in ``keras.layers.Dropout`` (``None`` entries take the
    input's size); a shared mask along size-1 axes gives spatial dropout.
    """
    shape = ops.shape(x)
    if noise_shape is not None:
        shape = tuple(shape[i] if d is None else d for i, d in enumerate(noise_shape))
    keep_prob = 1.0 - ops.cast(rate, "float32")
    keep = ops.cast(random.uniform(shape, seed=seed) < keep_prob, x.dtype)
    return x * keep / ops.cast(ops.maximum(keep_prob, 1e-7), x.dtype)
