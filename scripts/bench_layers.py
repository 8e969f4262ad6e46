"""Step time of kreg's structured dropout layers against Keras' own dropout.

A small CNN (or MLP for DropConnect) is trained with each layer in the same
place; the median time of a compiled training step is compared:

    python scripts/bench_layers.py            # DropBlock2D vs SpatialDropout2D,
                                              # StochasticDepth / DropConnect vs Dropout
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def cnn(drop_layer):
    import keras

    inputs = keras.Input((32, 32, 16))
    x = keras.layers.Conv2D(32, 3, padding="same", activation="relu")(inputs)
    x = drop_layer()(x)
    x = keras.layers.Conv2D(32, 3, padding="same", activation="relu")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, keras.layers.Dense(10)(x)), (32, 32, 16)


def residual(drop_layer):
    import keras

    inputs = keras.Input((256,))
    x = keras.layers.Dense(256, activation="relu")(inputs)
    branch = keras.layers.Dense(256, activation="relu")(x)
    x = drop_layer()([x, branch]) if drop_layer.__name__ == "sd" else keras.layers.Add()([x, drop_layer()(branch)])
    return keras.Model(inputs, keras.layers.Dense(10)(x)), (256,)


def mlp(hidden):
    import keras

    inputs = keras.Input((256,))
    x = hidden()(inputs)
    return keras.Model(inputs, keras.layers.Dense(10)(x)), (256,)


def step_time(build, steps=60, batch=128):
    import keras
    import numpy as np

    keras.utils.set_random_seed(0)
    model, shape = build()
    model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    x = np.random.default_rng(0).normal(size=(batch, *shape)).astype("float32")
    y = np.random.default_rng(1).integers(0, 10, size=batch)
    for _ in range(5):
        model.train_on_batch(x, y)  # trace and warm up
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        model.train_on_batch(x, y)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=60)
    args = parser.parse_args(argv)
    import keras

    from kreg.layers import DropBlock2D, DropConnect, StochasticDepth

    def sd():
        return StochasticDepth(0.2)

    pairs = [
        ("DropBlock2D(0.1, 3)", lambda: cnn(lambda: DropBlock2D(0.1, 3)),
         "SpatialDropout2D(0.1)", lambda: cnn(lambda: keras.layers.SpatialDropout2D(0.1)), 1.3),
        ("StochasticDepth(0.2)", lambda: residual(sd),
         "Dropout(0.2)", lambda: residual(lambda: keras.layers.Dropout(0.2)), 1.2),
        ("DropConnect(256, 0.3)", lambda: mlp(lambda: DropConnect(256, 0.3, activation="relu")),
         "Dense+Dropout(0.3)", lambda: mlp(lambda: keras.Sequential([keras.layers.Dense(256, activation="relu"),
                                                                     keras.layers.Dropout(0.3)])), 1.2),
    ]
    print(f"backend {keras.backend.backend()}, median of {args.steps} training steps, batch 128")
    for ours, build_ours, ref, build_ref, limit in pairs:
        t_ref = step_time(build_ref, args.steps)
        t_ours = step_time(build_ours, args.steps)
        ratio = t_ours / t_ref
        verdict = "ok" if ratio <= limit else f"OVER {limit}x"
        print(f"{ours:<24} {1000 * t_ours:7.2f} ms   {ref:<22} {1000 * t_ref:7.2f} ms   {ratio:.2f}x ({verdict})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
