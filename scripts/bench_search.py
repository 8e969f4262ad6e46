"""kreg's search against what users do instead, side by side in one run (issue 20, "Figures").

On the demo's CNN and data (``pipelines/mnist1d_cnn.yaml``: MNIST-1D, 3200
training / 800 validation / 1000 test signals, the 3-layer stride-1 1D CNN
of width 64 and kernel 5 with global max pooling), per seed, with the same
number of trials and epochs for everyone:

  a. kreg's default search: ``kreg.tune`` with the pipeline's settings
     (Bayesian search over its regularization space, pruning on, the
     pipeline's default ``median`` rule), into a temporary sqlite MLflow store.
     Its answer is the refit model's test accuracy (the chosen plan refit
     on training + validation); its wall time includes the data loading, the
     refits of the answer and of the baseline, and the MLflow writes.
  b. the same with ``prune="none"``.
  c. plain keras-tuner as a user writes it: ``BayesianOptimization`` over L2
     strength (log 1e-6..1e-2, on the conv kernels) and dropout rate
     (0..0.5, after each conv) on the same CNN written by hand in Keras,
     ``EarlyStopping(monitor="val_accuracy", patience, restore_best_weights=True)``;
     the answer is ``tuner.get_best_models(1)[0]`` evaluated on test.
  d. Optuna as a user writes it: ``TPESampler(seed)`` + ``MedianPruner()``
     (Optuna's defaults: 5 startup trials, no warm-up epochs) over the same
     space, the validation accuracy reported every epoch by a Keras
     callback (``trial.report`` / ``trial.should_prune``), the same early
     stopping. The answer is, by default, the best trial's own model (its
     weights kept at the end of that trial, restored to its best epoch)
     evaluated on test (``--optuna-final keep``); ``--optuna-final retrain``
     trains the best parameters again on the training split and tests that.

The peers train on the training split and select on the validation split,
as kreg's trials do; neither refits on training + validation (kreg does:
that is part of its answer and of its wall time). Every system's timer
starts before it loads the data; imports are outside the timers. TensorFlow
keeps its default threads. Trials that a system stopped early by its
pruning rule are counted as pruned (keras-tuner has none; early stopping is
not pruning).

Printed: one line per system and seed (test accuracy, test error, wall time,
trials pruned, epochs trained in the search), then a table over the seeds
with the ratios the issue names: kreg's test error / each peer's (target at
most 0.5x) and kreg's wall time / each peer's (target at most 0.5x
keras-tuner's and at most 1x Optuna's).

    python scripts/bench_search.py                                        # 20 trials x 30 epochs, seeds 0 1 2
    python scripts/bench_search.py --trials 3 --epochs 2 --seeds 0        # a quick look
    python scripts/bench_search.py --trials 12 --epochs 15 --seeds 0 --only a,c,d --out bench_search.json
    python scripts/bench_search.py --cv 3 --only a,b --trials 12 --epochs 15 --seeds 0   # fold pruning's saving

Needs Optuna for (d): ``pip install -e .[bench]``.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PIPELINE = REPO / "pipelines" / "mnist1d_cnn.yaml"

SYSTEMS = {
    "a": "kreg (pruning on)",
    "b": "kreg (prune=none)",
    "c": "keras-tuner Bayesian",
    "d": "Optuna TPE+Median",
}
# kreg's (a) against each peer: the targets (None: no target, shown for information).
TARGETS = {"b": (None, None), "c": (0.5, 0.5), "d": (0.5, 1.0)}


# --------------------------------------------------------------------------------------------- kreg

def run_kreg(seed: int, trials: int, epochs: int, prune: str | None, store: Path, cv: int | None = None) -> dict:
    import kreg
    from kreg.lab.config import load_pipeline

    cfg = load_pipeline(PIPELINE).with_overrides(max_trials=trials, epochs=epochs, seed=seed, prune=prune, cv=cv,
                                                 select="one_se" if cv else None)
    kwargs = cfg.tune_kwargs()
    label = "pruned" if prune is None else prune
    kwargs.update(verbose=0, tracking_uri=f"sqlite:///{store / 'mlflow.db'}",
                  experiment=f"bench-search-{label}-{seed}")
    start = time.perf_counter()
    summary = kreg.tune(**kwargs)
    wall = time.perf_counter() - start
    if summary.answer is None or summary.answer.refit is None:
        raise RuntimeError(f"kreg's search ended without a refit answer: {summary.status} {summary.error}")
    refit = summary.answer.refit.metrics
    records = summary.records
    return {
        "test_accuracy": float(refit["test_accuracy"]),
        "wall_s": wall,
        "search_s": float(summary.duration_s),
        "trials": len(records),
        "pruned": sum(r.status == "PRUNED" for r in records),
        "failed": sum(r.status not in ("COMPLETED", "PRUNED") for r in records),
        "epochs_trained": int(sum(r.metrics.get("epochs_run", 0) for r in records)),
        "answer_trial": summary.best.trial_id,
        "answer_plan": summary.best.plan.describe(),
        "answer_val_accuracy": summary.best.metrics.get("val_accuracy"),
        "answer_trial_test_accuracy": summary.best.metrics.get("test_accuracy"),
        "baseline_refit_test_accuracy": (float(summary.answer.baseline_refit.metrics["test_accuracy"])
                                         if summary.answer.baseline_refit is not None else None),
        "answer_line": getattr(summary.answer, "line", ""),
        "pruning": summary.pruning,
        "final": "the chosen plan refit on training + validation (kreg's answer)",
    }


# --------------------------------------------------------------------------------------------- peers

def build_cnn(l2: float, dropout: float, lr: float, shape, classes: int):
    """The demo's CNN by hand: Conv1D(64, 5, same) + ReLU x3, each followed by dropout, global max pooling."""
    import keras

    inputs = keras.Input(shape=shape)
    x = inputs
    for _ in range(3):
        x = keras.layers.Conv1D(64, 5, padding="same", activation="relu",
                                kernel_regularizer=keras.regularizers.l2(l2))(x)
        x = keras.layers.Dropout(dropout)(x)
    x = keras.layers.GlobalMaxPooling1D()(x)
    outputs = keras.layers.Dense(classes, activation="softmax")(x)
    model = keras.Model(inputs, outputs)
    model.compile(optimizer=keras.optimizers.Adam(lr), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    return model


def load_data(seed: int):
    import kreg

    splits = kreg.data.load_splits("mnist1d", seed=seed)  # the pipeline's validation_fraction (0.2) is the default
    return splits


def training_settings() -> dict:
    from kreg.lab.config import load_pipeline

    training = load_pipeline(PIPELINE).training
    return {"batch_size": training.batch_size, "lr": training.learning_rate}


def run_keras_tuner(seed: int, trials: int, epochs: int, patience: int, workdir: Path) -> dict:
    import keras
    import keras_tuner

    settings = training_settings()
    start = time.perf_counter()
    s = load_data(seed)
    keras.utils.set_random_seed(seed)
    classes = int(max(s.y_train.max(), s.y_val.max(), s.y_test.max())) + 1

    def build(hp):
        l2 = hp.Float("l2", 1e-6, 1e-2, sampling="log")
        dropout = hp.Float("dropout", 0.0, 0.5)
        return build_cnn(l2, dropout, settings["lr"], s.x_train.shape[1:], classes)

    class EpochCounter(keras.callbacks.Callback):  # keras-tuner keeps one figure per execution, not the epochs
        count = 0  # on the class: keras-tuner deep-copies the callbacks of every trial

        def on_epoch_end(self, epoch, logs=None):
            type(self).count += 1

    tuner = keras_tuner.BayesianOptimization(build, objective="val_accuracy", max_trials=trials, seed=seed,
                                             directory=str(workdir), project_name=f"kt-{seed}", overwrite=True)
    stop = keras.callbacks.EarlyStopping(monitor="val_accuracy", patience=patience, restore_best_weights=True)
    tuner.search(s.x_train, s.y_train, validation_data=(s.x_val, s.y_val), epochs=epochs,
                 batch_size=settings["batch_size"], callbacks=[stop, EpochCounter()], verbose=0)
    with warnings.catch_warnings():  # the checkpoint keeps the optimizer's slots, the rebuilt model has none yet
        warnings.filterwarnings("ignore", message="Skipping variable loading for optimizer")
        best = tuner.get_best_models(1)[0]
    _, test_acc = best.evaluate(s.x_test, s.y_test, batch_size=256, verbose=0)
    wall = time.perf_counter() - start
    done = tuner.oracle.get_best_trials(trials)
    epochs_trained = EpochCounter.count
    hp = tuner.get_best_hyperparameters(1)[0].values
    return {
        "test_accuracy": float(test_acc), "wall_s": wall, "trials": len(tuner.oracle.trials), "pruned": 0,
        "failed": sum(t.status not in ("COMPLETED",) for t in tuner.oracle.trials.values()),
        "epochs_trained": epochs_trained, "answer_params": hp,
        "answer_val_accuracy": float(done[0].score) if done else None,
        "final": "tuner.get_best_models(1)[0] (the best trial's model at its best epoch), trained on the training split",
    }


def run_optuna(seed: int, trials: int, epochs: int, patience: int, final: str) -> dict:
    import keras
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    settings = training_settings()
    start = time.perf_counter()
    s = load_data(seed)
    keras.utils.set_random_seed(seed)
    classes = int(max(s.y_train.max(), s.y_val.max(), s.y_test.max())) + 1
    shape = s.x_train.shape[1:]
    kept = {"value": -1.0, "weights": None, "params": None}
    epochs_trained = [0]

    class Pruning(keras.callbacks.Callback):
        def __init__(self, trial):
            super().__init__()
            self.trial = trial

        def on_epoch_end(self, epoch, logs=None):
            epochs_trained[0] += 1
            self.trial.report(float(logs["val_accuracy"]), epoch)
            if self.trial.should_prune():
                raise optuna.TrialPruned(f"pruned at epoch {epoch + 1}")

    def objective(trial):
        keras.backend.clear_session()
        l2 = trial.suggest_float("l2", 1e-6, 1e-2, log=True)
        dropout = trial.suggest_float("dropout", 0.0, 0.5)
        model = build_cnn(l2, dropout, settings["lr"], shape, classes)
        stop = keras.callbacks.EarlyStopping(monitor="val_accuracy", patience=patience, restore_best_weights=True)
        history = model.fit(s.x_train, s.y_train, validation_data=(s.x_val, s.y_val), epochs=epochs,
                            batch_size=settings["batch_size"], callbacks=[stop, Pruning(trial)], verbose=0)
        value = max(history.history["val_accuracy"])
        if final == "keep" and value > kept["value"]:
            kept.update(value=value, weights=model.get_weights(), params=dict(trial.params))
        return value

    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=seed),
                                pruner=optuna.pruners.MedianPruner())
    study.optimize(objective, n_trials=trials)
    best = study.best_trial
    keras.backend.clear_session()
    model = build_cnn(best.params["l2"], best.params["dropout"], settings["lr"], shape, classes)
    if final == "keep":
        model.set_weights(kept["weights"])
        how = "the best trial's own model (weights kept at its best epoch), trained on the training split"
    else:
        stop = keras.callbacks.EarlyStopping(monitor="val_accuracy", patience=patience, restore_best_weights=True)
        model.fit(s.x_train, s.y_train, validation_data=(s.x_val, s.y_val), epochs=epochs,
                  batch_size=settings["batch_size"], callbacks=[stop], verbose=0)
        how = "the best parameters retrained on the training split (same early stopping), then tested"
    _, test_acc = model.evaluate(s.x_test, s.y_test, batch_size=256, verbose=0)
    wall = time.perf_counter() - start
    states = [t.state for t in study.trials]
    return {
        "test_accuracy": float(test_acc), "wall_s": wall, "trials": len(study.trials),
        "pruned": sum(st == optuna.trial.TrialState.PRUNED for st in states),
        "failed": sum(st == optuna.trial.TrialState.FAIL for st in states),
        "epochs_trained": epochs_trained[0], "answer_params": dict(best.params),
        "answer_val_accuracy": float(best.value), "final": how,
    }


# --------------------------------------------------------------------------------------------- report

def line(seed: int, key: str, r: dict) -> str:
    err = 1.0 - r["test_accuracy"]
    extra = ""
    if key in "ab":
        extra = f" | answer: trial {r['answer_trial']}, {r['answer_plan']}"
    else:
        extra = " | answer: " + ", ".join(f"{k} {v:.3g}" for k, v in r["answer_params"].items())
    return (f"seed {seed} {key}) {SYSTEMS[key]:22s} test acc {r['test_accuracy']:.4f}  error {err:.4f}  "
            f"wall {r['wall_s']:6.1f} s  pruned {r['pruned']:2d}/{r['trials']:<2d} "
            f"epochs trained {r['epochs_trained']:4d}{extra}")


def table(results: list[dict], keys: list[str]) -> tuple[str, dict]:
    means = {}
    for key in keys:
        rows = [r[key] for r in results if key in r]
        acc = statistics.mean(r["test_accuracy"] for r in rows)
        means[key] = {"test_accuracy": acc, "test_error": 1.0 - acc,
                      "wall_s": statistics.mean(r["wall_s"] for r in rows),
                      "pruned": statistics.mean(r["pruned"] for r in rows),
                      "trials": statistics.mean(r["trials"] for r in rows),
                      "epochs_trained": statistics.mean(r["epochs_trained"] for r in rows)}
    out = ["| system | test accuracy | test error | wall | trials pruned | epochs trained (search) |",
           "|---|---|---|---|---|---|"]
    for key in keys:
        m = means[key]
        out.append(f"| {key}) {SYSTEMS[key]} | {m['test_accuracy']:.4f} | {m['test_error']:.4f} | "
                   f"{m['wall_s']:.0f} s | {m['pruned']:.1f} of {m['trials']:.0f} | {m['epochs_trained']:.0f} |")
    ratios = {}
    if "a" in keys and len(keys) > 1:
        out += ["", "| kreg (a) against | test error ratio (target) | wall time ratio (target) |", "|---|---|---|"]
        for key in keys:
            if key == "a":
                continue
            peer = means[key]
            err = means["a"]["test_error"] / peer["test_error"] if peer["test_error"] > 0 else float("inf")
            wall = means["a"]["wall_s"] / peer["wall_s"]
            per_seed = [{"seed": r["seed"],
                         "error_ratio": ((1 - r["a"]["test_accuracy"]) / (1 - r[key]["test_accuracy"])
                                         if r[key]["test_accuracy"] < 1 else float("inf")),
                         "wall_ratio": r["a"]["wall_s"] / r[key]["wall_s"]}
                        for r in results if "a" in r and key in r]
            ratios[key] = {"error_ratio": err, "wall_ratio": wall, "per_seed": per_seed}
            t_err, t_wall = TARGETS[key]

            def mark(value, target):
                if target is None:
                    return f"{value:.2f}x"
                return f"{value:.2f}x ({'<=' if value <= target else 'MISSED, >'} {target}x)"

            out.append(f"| {key}) {SYSTEMS[key]} | {mark(err, t_err)} | {mark(wall, t_wall)} |")
    return "\n".join(out), {"means": means, "ratios": ratios}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=20, help="trials per search (kreg's baseline included)")
    parser.add_argument("--epochs", type=int, default=30, help="epochs per trial")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--only", default="a,b,c,d", help="which systems, e.g. a,c,d (default all)")
    parser.add_argument("--patience", type=int, default=8,
                        help="the peers' early-stopping patience (default 8, the smaller of the pipeline's two)")
    parser.add_argument("--optuna-final", choices=("keep", "retrain"), default="keep",
                        help="Optuna's answer: the best trial's own model (keep) or its parameters retrained")
    parser.add_argument("--cv", type=int, metavar="FOLDS",
                        help="kreg's searches (a, b) cross-validate with FOLDS folds and choose by the one-SE rule: "
                             "(a) prunes across folds, (b) does not; the target is a's wall time at most 0.5x b's "
                             "with the same answer")
    parser.add_argument("--out", type=Path, help="write the results as JSON here")
    args = parser.parse_args(argv)
    if args.cv:
        TARGETS["b"] = (None, 0.5)
    keys = [k.strip() for k in args.only.split(",") if k.strip()]
    unknown = [k for k in keys if k not in SYSTEMS]
    if unknown or not keys:
        parser.error(f"--only takes letters among a,b,c,d, got {args.only!r}")
    keys = [k for k in SYSTEMS if k in keys]
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

    import keras  # imports outside every timer
    import keras_tuner  # noqa: F401

    import kreg  # noqa: F401
    if "d" in keys:
        import optuna

    print(f"bench_search: {args.trials} trials x {args.epochs} epochs, seeds {args.seeds}, systems "
          f"{', '.join(f'{k}) {SYSTEMS[k]}' for k in keys)}; {os.cpu_count()} CPUs, backend {keras.backend.backend()}",
          flush=True)
    results = []
    for seed in args.seeds:
        row = {"seed": seed}
        for key in keys:
            with tempfile.TemporaryDirectory(prefix=f"bench-search-{key}-") as tmp:
                if key == "a":
                    r = run_kreg(seed, args.trials, args.epochs, None, Path(tmp), args.cv)
                elif key == "b":
                    r = run_kreg(seed, args.trials, args.epochs, "none", Path(tmp), args.cv)
                elif key == "c":
                    r = run_keras_tuner(seed, args.trials, args.epochs, args.patience, Path(tmp))
                else:
                    r = run_optuna(seed, args.trials, args.epochs, args.patience, args.optuna_final)
            keras.backend.clear_session()
            gc.collect()
            row[key] = r
            print(line(seed, key, r), flush=True)
        if "a" in row and "b" in row:
            same = row["a"]["answer_plan"] == row["b"]["answer_plan"]
            print(f"seed {seed}: pruning {'kept' if same else 'changed'} kreg's answer "
                  f"({row['a']['answer_plan']} | without pruning: {row['b']['answer_plan']}); "
                  f"{row['a']['pruning'] or 'no pruning summary'}", flush=True)
        results.append(row)

    text, summary = table(results, keys)
    print(f"\nOver {len(results)} seed(s), {args.trials} trials x {args.epochs} epochs each (means; error = 1 - accuracy):")
    print(text)
    for key in keys:
        print(f"  {key}) answer: {results[0][key]['final']}")
    if args.out:
        versions = {"python": platform.python_version(), "keras": keras.__version__,
                    "keras_tuner": keras_tuner.__version__}
        if "d" in keys:
            versions["optuna"] = optuna.__version__
        payload = {"args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
                   "cpus": os.cpu_count(), "versions": versions, "results": results, **summary, "table": text}
        args.out.write_text(json.dumps(payload, indent=1, default=str))
        print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
