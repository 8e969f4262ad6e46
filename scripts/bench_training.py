"""Cost of kreg's training procedures on the demo model (the MNIST-1D 1D CNN).

SAM: epoch times of ``fit`` over MNIST-1D's 3200 training signals (batch 64)
against plain training, medians over epochs after the first (tracing), runs
interleaved. Callbacks: the time spent inside each callback's hooks per
epoch (plus its end-of-training work, spread over the epochs), as a share of
the plain epoch; timing the hooks themselves is far less noisy than
comparing two whole-epoch times on a shared CPU.

    python scripts/bench_training.py                  # SAM step ratio, SWA and
                                                      # WeightMonitor overhead,
                                                      # SharpnessProbe cost
    python scripts/bench_training.py --epochs 8 --repeats 3

Issue figures: SAM at most 2.2x a plain step; SWA and WeightMonitor under 5%.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def epoch_timer():
    """A callback recording each epoch's wall time in ``.times``."""
    import keras

    times, starts = [], []
    timer = keras.callbacks.LambdaCallback(
        on_epoch_begin=lambda epoch, logs: starts.append(time.perf_counter()),
        on_epoch_end=lambda epoch, logs: times.append(time.perf_counter() - starts[-1]),
    )
    timer.times = times
    return timer


def timed(callback):
    """``callback`` wrapped so the seconds spent in its hooks are counted."""
    import keras

    class Timed(keras.callbacks.Callback):
        def __init__(s):
            super().__init__()
            s.inner, s.seconds = callback, 0.0

        def set_model(s, model):
            super().set_model(model)
            s.inner.set_model(model)

        def set_params(s, params):
            super().set_params(params)
            s.inner.set_params(params)

        def _run(s, hook, *args):
            start = time.perf_counter()
            getattr(s.inner, hook)(*args)
            s.seconds += time.perf_counter() - start

        def on_train_begin(s, logs=None):
            s._run("on_train_begin", logs)

        def on_epoch_begin(s, epoch, logs=None):
            s._run("on_epoch_begin", epoch, logs)

        def on_epoch_end(s, epoch, logs=None):
            s._run("on_epoch_end", epoch, logs)

        def on_train_end(s, logs=None):
            s._run("on_train_end", logs)

    return Timed()


def epoch_time(splits, variant, epochs):
    import keras

    from kreg.callbacks import SWA, SharpnessProbe, WeightMonitor
    from kreg.models import build_cnn1d, compile_model
    from kreg.training import SAM

    keras.backend.clear_session()
    keras.utils.set_random_seed(0)
    model = build_cnn1d(splits.spec, width=64, depth=3, kernel_size=5, strides=1, pooling="max")
    if variant == "sam":
        model = SAM(model, rho=0.05)
    compile_model(model, learning_rate=2e-3)
    sample = splits.train_sample(500)
    # The timer runs last, so each epoch's time includes the callbacks' work.
    callbacks = {
        "plain": [], "sam": [],
        "swa": [timed(SWA(start_epoch=0))],
        "weights": [timed(WeightMonitor())],
        "sharpness": [timed(SharpnessProbe(sample, samples=3))],
    }[variant]
    timer = epoch_timer()
    model.fit(splits.train_dataset(64), epochs=epochs, verbose=0, shuffle=False, callbacks=[*callbacks, timer])
    if callbacks:  # seconds inside the callback per epoch
        return callbacks[0].seconds / epochs
    return statistics.median(timer.times[1:])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--variants", default="plain,sam,swa,weights,sharpness")
    args = parser.parse_args(argv)

    import keras

    from kreg.data import load_splits

    splits = load_splits("mnist1d")
    variants = args.variants.split(",")
    times = {v: [] for v in variants}
    for r in range(args.repeats):
        order = variants[r % len(variants):] + variants[:r % len(variants)]  # rotate: no variant always first
        for variant in order:
            times[variant].append(epoch_time(splits, variant, args.epochs))
    print(f"backend {keras.backend.backend()}, MNIST-1D CNN, batch 64, median epoch time over "
          f"{args.repeats} runs x {args.epochs - 1} epochs")
    plain = statistics.median(times["plain"]) if "plain" in times else None
    for variant in variants:
        t = statistics.median(times[variant])
        if variant in ("plain", "sam"):
            ratio = f"{t / plain:.2f}x plain" if plain else ""
            print(f"  {variant:10s} {t * 1000:8.1f} ms/epoch           {ratio}")
        else:
            share = f"+{100 * t / plain:.1f}% of a plain epoch" if plain else ""
            print(f"  {variant:10s} {t * 1000:8.1f} ms/epoch in hooks  {share}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
