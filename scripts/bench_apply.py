"""Cost of applying a plan to a user's model (``kreg.regularize``) against kreg's built-in builder.

The demo's CNN (pipelines/mnist1d_cnn.yaml: cnn1d, width 64, depth 3, kernel 5, strides 1, global max
pooling, logits) built two ways on MNIST-1D: by ``kreg.models.build_cnn1d(spec, plan)``, and written as a
plain user Keras function with the plan applied by ``kreg.lab.apply.apply_plan``. A typical plan:
spatial dropout 0.1, L2 1e-4, label smoothing 0.1, circular shift augmentation 0.1.

(i) Build time, median of ``--builds`` builds per path, each after ``clear_session`` as in a trial;
    also through ``ModelSource.build`` (what a trial calls: the builder plus placements).
(ii) A whole trial through ``kreg.tune`` (max_trials=1, the plan fixed with ``optional: False``,
    ``--epochs`` epochs, batch 64, learning rate 0.002, MLflow to a temporary store), ``--repeats``
    times per path in alternating order after one uncounted 1-epoch warm-up each; a trial's time
    is its record's ``duration_s`` (build, compile, fit with the honest gap every epoch, test).

Overhead = (user build - built-in build, trial path, medians) / median built-in trial time; the
script exits 1 when it exceeds ``--limit`` percent (issue 10: 2%). The difference of the whole
trials' medians is printed too, as a check (on a shared CPU it is noisier than the build times).

    python scripts/bench_apply.py --repeats 3
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

CAPACITY = dict(width=64, depth=3, kernel_size=5, strides=1, pooling="max")  # the demo's cnn1d


def user_cnn():
    """The demo's CNN as a user writes it: plain Keras, no regularization."""
    import keras

    inputs = keras.Input((40, 1))
    x = inputs
    for _ in range(3):
        x = keras.layers.Conv1D(64, 5, padding="same", activation="relu")(x)
    x = keras.layers.GlobalMaxPooling1D()(x)
    return keras.Model(inputs, keras.layers.Dense(10)(x))


def plan():
    import kreg

    return kreg.RegularizationPlan(spatial_dropout=0.1, l2=1e-4, label_smoothing=0.1, augment_shift=0.1)


TECHNIQUES = {  # the same plan, fixed, as a search space of one point
    "spatial_dropout": {"optional": False, "rate": 0.1},
    "l2": {"optional": False, "strength": 1e-4},
    "label_smoothing": {"optional": False, "epsilon": 0.1},
    "augment_shift": {"optional": False, "strength": 0.1},
}


def build_times(spec, builds):
    """Median seconds of each way of building the regularized model."""
    import keras

    from kreg.lab.apply import apply_plan
    from kreg.lab.models.source import ModelSource
    from kreg.models import build_cnn1d

    p = plan()
    ways = {
        "built-in build_cnn1d(spec, plan)": lambda: build_cnn1d(spec, p, seed=0, **CAPACITY),
        "user_cnn() alone": user_cnn,
        "apply_plan(user_cnn(), plan)": lambda: apply_plan(user_cnn(), p, modality="sequence", seed=0),
        "trial path, built-in: ModelSource('cnn1d').build": lambda: ModelSource("cnn1d", CAPACITY).build(spec, p),
        "trial path, user: ModelSource(user_cnn).build": lambda: ModelSource(user_cnn).build(spec, p),
    }
    times = {name: [] for name in ways}
    for _ in range(builds):
        for name, fn in ways.items():  # interleaved, so drifts in machine load hit every way alike
            keras.backend.clear_session()
            keras.utils.set_random_seed(0)
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(t) for name, t in times.items()}


def trial_times(splits, epochs, repeats, store):
    """Per path: the trial's duration_s and the whole kreg.tune call's wall time, over the repeats."""
    import kreg

    paths = {"built-in": ("cnn1d", CAPACITY), "user + apply": (user_cnn, None)}
    out = {name: {"trial": [], "call": []} for name in paths}
    for name, (model, args) in paths.items():  # warm-up, not counted: first-call imports and caches
        kreg.tune(model, splits, model_args=args, techniques=TECHNIQUES, max_trials=1, epochs=1, tuner="random",
                  tracking_uri=f"sqlite:///{store}/mlflow.db", experiment="bench_apply_warmup")
    for r in range(repeats):
        order = list(paths) if r % 2 == 0 else list(paths)[::-1]
        for name in order:
            model, args = paths[name]
            start = time.perf_counter()
            result = kreg.tune(model, splits, model_args=args, techniques=TECHNIQUES, max_trials=1, epochs=epochs,
                               batch_size=64, learning_rate=0.002, tuner="random", seed=0,
                               tracking_uri=f"sqlite:///{store}/mlflow.db", experiment=f"bench_apply_{r}")
            out[name]["call"].append(time.perf_counter() - start)
            record = result.records[0]
            if record.status != "COMPLETED":
                sys.exit(f"the {name} trial failed: {record.reason}")
            out[name]["trial"].append(record.duration_s)
            print(f"  repeat {r + 1}/{repeats} {name:<13} trial {record.duration_s:6.2f} s  test accuracy "
                  f"{record.metrics['test_accuracy']:.3f}  ({record.plan.describe()})", flush=True)
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=30, help="epochs per trial (the demo's 30)")
    parser.add_argument("--repeats", type=int, default=3, help="trials per path, alternating order")
    parser.add_argument("--builds", type=int, default=30, help="builds per way for the median build time")
    parser.add_argument("--limit", type=float, default=2.0, help="allowed overhead, percent of a trial")
    args = parser.parse_args(argv)

    import logging

    import mlflow  # noqa: F401  (configures its loggers on import; quiet them after, as `kreg tune` does)

    import kreg

    logging.getLogger("mlflow").setLevel(logging.WARNING)
    splits = kreg.data.load_splits("mnist1d", seed=0)
    builds = build_times(splits.spec, args.builds)
    print(f"\nbuild time, median of {args.builds} (ms):")
    for name, seconds in builds.items():
        print(f"  {name:<50} {1000 * seconds:8.1f}")
    print(f"\nwhole trials, {args.epochs} epochs, {args.repeats} per path:")
    with tempfile.TemporaryDirectory() as store:
        trials = trial_times(splits, args.epochs, args.repeats, store)
    base_trial = statistics.median(trials["built-in"]["trial"])
    extra = (builds["trial path, user: ModelSource(user_cnn).build"]
             - builds["trial path, built-in: ModelSource('cnn1d').build"])
    overhead = 100 * extra / base_trial
    print(f"\n{'path':<14} {'trial (median)':>15} {'min':>8} {'max':>8} {'kreg.tune call':>15}")
    for name, t in trials.items():
        print(f"{name:<14} {statistics.median(t['trial']):13.2f} s {min(t['trial']):6.2f} s {max(t['trial']):6.2f} s "
              f"{statistics.median(t['call']):13.2f} s")
    whole = 100 * (statistics.median(trials["user + apply"]["trial"]) / base_trial - 1)
    print(f"\napply overhead per trial: {1000 * extra:+.1f} ms = {overhead:+.2f}% of a {base_trial:.2f} s trial "
          f"(limit {args.limit:g}%)\ncheck, whole-trial medians: {whole:+.2f}% (includes run-to-run noise)")
    if overhead > args.limit:
        print(f"FAIL: overhead {overhead:.2f}% > {args.limit:g}%")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
