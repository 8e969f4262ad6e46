"""Precise batch-norm statistics (issue 21): what they fix, and what they cost.

1. The issue's case: a fully convolutional net (three Conv1D + BatchNormalization
   + ReLU blocks, global average pooling, softmax) on 36 MNIST-1D training
   series, batch 64, 100 epochs: one step per epoch, so Keras' moving
   statistics (momentum 0.99) never converge. Test accuracy in inference mode
   with Keras' statistics, then after ``recompute_batch_norm_statistics`` (one
   pass over the 36 series), against the training-mode accuracy, per seed.
2. The cost: milliseconds per recompute on the demo's CNN (``cnn1d``, width 64,
   depth 3, kernel 5, stride 1, with ``batch_norm``) over the 3200-series
   training split (capped at 4096 examples: 50 batches of 64), against one
   epoch of its training; and on the FCN of case 1 (one batch of 36). In the
   lab the recompute runs before every validation (once per epoch), so its
   share of an epoch is the overhead of ``training.precise_bn``.

    python scripts/bench_precise_bn.py                 # seeds 0 1 2, 100 epochs
    python scripts/bench_precise_bn.py --seeds 0 --epochs 30
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def fcn(shape, classes, keras):
    inp = keras.Input(shape)
    h = inp
    for filters, kernel in ((128, 8), (256, 5), (128, 3)):  # the FCN of Wang et al. (2017) for time series
        h = keras.layers.Conv1D(filters, kernel, padding="same")(h)
        h = keras.layers.BatchNormalization()(h)
        h = keras.layers.ReLU()(h)
    h = keras.layers.GlobalAveragePooling1D()(h)
    return keras.Model(inp, keras.layers.Dense(classes, activation="softmax")(h))


def accuracy(model, x, y, np):
    return float(np.mean(np.argmax(model.predict(x, batch_size=256, verbose=0), -1) == y))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--epochs", type=int, default=100)
    parser.add_argument("--examples", type=int, default=36)
    parser.add_argument("--repeats", type=int, default=5, help="timed recomputes (after one warm-up)")
    parser.add_argument("--cost-only", action="store_true", help="only part 2")
    args = parser.parse_args()

    import keras
    import numpy as np

    from kreg.data import load_splits
    from kreg.lab.models.cnn import build_cnn1d
    from kreg.lab.plan import RegularizationPlan
    from kreg.training import recompute_batch_norm_statistics

    splits = load_splits("mnist1d", seed=0)
    print(f"MNIST-1D: {splits.describe()}; backend {keras.backend.backend()}")

    if not args.cost_only:
        collapse(args, keras, np, splits, recompute_batch_norm_statistics)
    cost(args, keras, splits, build_cnn1d, RegularizationPlan, recompute_batch_norm_statistics)


def collapse(args, keras, np, splits, recompute_batch_norm_statistics):
    x_all, y_all = splits.x_train, splits.y_train
    x_test, y_test = splits.x_test, splits.y_test
    classes = splits.spec.num_classes
    print(f"\n1. {args.examples} training series, FCN, batch 64, {args.epochs} epochs (one step per epoch), "
          f"test on {len(y_test)}")
    print(f"{'seed':>4} {'train-mode':>10} {'test before':>11} {'test after':>10} {'recompute ms':>12}")
    rows = []
    for seed in args.seeds:
        keras.utils.set_random_seed(seed)
        index = np.random.default_rng(seed).choice(len(y_all), args.examples, replace=False)
        x, y = x_all[index], y_all[index]
        model = fcn(splits.spec.shape, classes, keras)
        model.compile(keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
        model.fit(x, y, batch_size=64, epochs=args.epochs, verbose=0)
        train_mode = float(np.mean(np.argmax(keras.ops.convert_to_numpy(model(x, training=True)), -1) == y))
        before = accuracy(model, x_test, y_test, np)
        start = time.perf_counter()
        recompute_batch_norm_statistics(model, x, batch_size=64)
        ms = 1000 * (time.perf_counter() - start)
        after = accuracy(model, x_test, y_test, np)
        rows.append((before, after))
        print(f"{seed:>4} {train_mode:>10.3f} {before:>11.3f} {after:>10.3f} {ms:>12.1f}")
    print(f"mean {'':>10} {statistics.mean(r[0] for r in rows):>11.3f} {statistics.mean(r[1] for r in rows):>10.3f}"
          f"   (chance {1 / classes:.2f})")



def cost(args, keras, splits, build_cnn1d, RegularizationPlan, recompute_batch_norm_statistics):
    x_all, y_all, classes = splits.x_train, splits.y_train, splits.spec.num_classes
    print("\n2. Cost per recompute (median of the timed repeats, after a warm-up) against one training epoch")
    demo = build_cnn1d(splits.spec, RegularizationPlan(batch_norm=True), width=64, depth=3, kernel_size=5, strides=1)
    cases = [("FCN, 36 series (1 batch)", fcn(splits.spec.shape, classes, keras), x_all[:36], x_all[:36]),
             ("demo cnn1d + batch_norm, the 3200-series split (the lab's end of training)", demo, x_all, x_all),
             ("demo cnn1d + batch_norm, a 500-series sample (the lab's per-epoch recompute)", demo, x_all,
              x_all[:500])]
    for label, model, x, sample in cases:
        keras.utils.set_random_seed(0)
        model.compile(keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy")
        y = y_all[:len(x)]
        model.fit(x, y, batch_size=64, epochs=1, verbose=0)  # traced
        start = time.perf_counter()
        model.fit(x, y, batch_size=64, epochs=1, verbose=0)
        epoch = time.perf_counter() - start
        start = time.perf_counter()
        recompute_batch_norm_statistics(model, sample, batch_size=64)  # warm-up: TensorFlow traces its step here
        first = time.perf_counter() - start
        times = []
        for _ in range(args.repeats):
            start = time.perf_counter()
            result = recompute_batch_norm_statistics(model, sample, batch_size=64)
            times.append(time.perf_counter() - start)
        ms = 1000 * statistics.median(times)
        print(f"  {label}: {ms:.0f} ms per recompute ({result.describe()}; the first {1000 * first:.0f} ms); "
              f"one epoch of training {1000 * epoch:.0f} ms; recompute / epoch {ms / (1000 * epoch):.2f}")


if __name__ == "__main__":
    main()
