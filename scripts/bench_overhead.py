"""What kreg's tracking and callbacks cost: the same keras-tuner search with and without them.

All searches use the same pipeline, the same oracle (kreg's random oracle:
baseline first, then the same seeded draws), the same models, data and
epochs. "bare" is kreg's own tuner and trial runner with the gap callback, the
test evaluation, plots and MLflow taken out (the exact cost of those); "fit
only" is a ``kt.Tuner`` over a ``HyperModel`` whose ``run_trial`` only fits;
"keras-tuner defaults" is keras-tuner's own ``Tuner.run_trial`` (its per-trial
checkpointing included). A ``kt.Tuner`` over a ``HyperModel`` also builds the
model several times at start-up to discover conditional hyperparameters, which
kreg's tuner (space declared up front) does not. "kreg" is ``kreg.tune``
with the honest-gap evaluation, per-epoch MLflow logging, test evaluation,
plots and artifacts. Each is run ``--repeats`` times, in rotating order, and the
median wall time is compared.

    python scripts/bench_overhead.py pipelines/mnist1d_cnn.yaml --trials 6 --epochs 20

``--breakdown`` instead runs one ``kreg.tune`` (refit on) with kreg's timing
sections on (``kreg.lab.timing``) and prints where a trial's time goes that
is not training (model build and plan, the first epoch's tracing, the honest
gap and the other epoch-end callbacks, the final figures, MLflow writes,
plots, clearing) and where the end of the search goes (start-up to the
first trial, each refit, the comparison, saving, the report):

    python scripts/bench_overhead.py pipelines/mnist1d_cnn.yaml --breakdown --trials 4 --epochs 10
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def _oracle(cfg, task):
    import keras_tuner as kt

    from kreg.lab.search.oracles import make_oracle
    from kreg.lab.search.space import plan_from_hp
    from kreg.lab.search.tune import resolve_objective

    space, settings = cfg.search.space(), cfg.training.settings()
    hps = kt.HyperParameters()
    plan_from_hp(hps, space, settings)
    objective = resolve_objective(cfg.search.objective, task)
    oracle = make_oracle(cfg.search.settings(), space, objective, hps, seed=cfg.seed,
                         max_epochs=cfg.training.epochs)
    oracle.kreg_objective = objective  # kreg's own (name, direction), for the bare runner
    return oracle, space, settings


def _splits(cfg):
    from kreg.data import load_splits

    return load_splits(cfg.data.dataset, validation_fraction=cfg.data.validation_fraction, seed=cfg.seed,
                       data_dir=cfg.data.data_dir, standardize=cfg.data.standardize)


def plain_search(cfg, workdir: str, minimal: bool = False) -> float:
    import keras
    import keras_tuner as kt

    from kreg.lab.search.space import plan_from_hp
    from kreg.models import build_model, compile_model

    start = time.perf_counter()
    splits = _splits(cfg)
    oracle, space, settings = _oracle(cfg, splits.spec.task)

    class Plain(kt.HyperModel):
        def build(self, hp):
            keras.backend.clear_session()
            keras.utils.set_random_seed(cfg.seed)
            plan = plan_from_hp(hp, space, settings)
            self.plan = plan
            model = build_model(cfg.model.type, splits.spec, plan, seed=cfg.seed, **cfg.model.capacity())
            return compile_model(model, plan, optimizer=cfg.training.optimizer,
                                 learning_rate=cfg.training.learning_rate)

        def fit(self, hp, model, *args, callbacks=None, **kwargs):
            plan = self.plan
            callbacks = list(callbacks or [])
            if plan.early_stopping is not None:
                callbacks.append(keras.callbacks.EarlyStopping(
                    oracle.objective.name, mode=oracle.objective.direction,
                    patience=plan.early_stopping.patience, restore_best_weights=plan.early_stopping.restore_best))
            return model.fit(splits.train_dataset(plan.batch_size or cfg.training.batch_size),
                             validation_data=splits.eval_dataset("validation"), shuffle=False,
                             epochs=cfg.training.epochs, callbacks=callbacks, verbose=0)

    class Minimal(kt.Tuner):
        """run_trial that only fits: no checkpoints, no copies, nothing logged."""

        def run_trial(self, trial, *args, **kwargs):
            model = self.hypermodel.build(trial.hyperparameters)
            history = self.hypermodel.fit(trial.hyperparameters, model)
            values = history.history[oracle.objective.name]
            return max(values) if oracle.objective.direction == "max" else min(values)

    tuner_cls = Minimal if minimal else kt.Tuner
    tuner = tuner_cls(oracle=oracle, hypermodel=Plain(), directory=workdir, project_name="plain", overwrite=True)
    tuner.search(verbose=0)
    return time.perf_counter() - start


def bare_search(cfg, workdir: str) -> float:
    """kreg's own tuner and runner with the gap, monitors, test, plots and MLflow taken out."""
    import keras

    from kreg.lab.models.source import ModelSource
    from kreg.lab.search.tune import Search
    from kreg.lab.search.tuner import KregTuner
    from kreg.lab.trial.procedures import build_for_plan, train_data
    from kreg.lab.trial.runner import TrialRunner

    class BareRunner(TrialRunner):
        def _train(self, record, plan, run, index, epochs):
            model, _ = build_for_plan(self.problem, plan, seed=self.problem.seed)
            data, _ = train_data(self.problem.splits, plan, plan.batch_size, self.problem.seed)
            objective = self.problem.objective
            early = None
            if plan.early_stopping is not None:
                early = keras.callbacks.EarlyStopping(objective.name, mode=objective.direction,
                                                      patience=plan.early_stopping.patience,
                                                      restore_best_weights=plan.early_stopping.restore_best)
            hist = model.fit(data, validation_data=self.problem.splits.eval_dataset("validation"), shuffle=False,
                             epochs=epochs, callbacks=[early] if early else [], verbose=0).history
            values = hist[objective.name]
            kept = early.best_epoch + 1 if early is not None and early.best_weights is not None else len(values)
            record.metrics = {f"kept_{objective.name}": values[kept - 1]}
            record.objective = values[kept - 1]

    start = time.perf_counter()
    splits = _splits(cfg)
    oracle, space, _ = _oracle(cfg, splits.spec.task)
    kwargs = cfg.tune_kwargs()
    from kreg.lab.search.settings import Training

    search = Search(name=cfg.name, seed=cfg.seed, model=ModelSource(cfg.model.type, cfg.model.capacity()),
                    splits=splits, task=splits.spec.task, space=space, training=Training(**cfg.training.model_dump()),
                    settings=cfg.search.settings(), monitor=cfg.monitor, objective=oracle.kreg_objective,
                    train_eval_samples=kwargs["train_eval_samples"])
    KregTuner(oracle, BareRunner(search.problem), search=search, directory=workdir).search(verbose=0)
    return time.perf_counter() - start


def kreg_search(cfg) -> float:
    import kreg

    start = time.perf_counter()
    kreg.tune(**cfg.tune_kwargs())
    return time.perf_counter() - start


_TRIAL_ROWS = [  # (section, what it is); seconds per trial
    ("trial.clear", "clear_session + seed (before the trial)"),
    ("trial.mlflow_start", "MLflow: start the child run, params, datasets"),
    ("trial.build_and_setup", "model build + plan application + tf.data + fit's set-up"),
    ("trial.first_epoch_extra", "first epoch beyond a steady one (tracing)"),
    ("trial.train_epochs", "training batches (steady)"),
    ("trial.validation", "validation evaluation per epoch"),
    ("trial.epoch_end_callbacks", "epoch-end callbacks: honest gap, monitors, early stopping"),
    ("trial.mlflow_epochs", "MLflow: per-epoch figures (batched)"),
    ("trial.reporter", "console reporter"),
    ("trial.fit_teardown", "fit's end (restoring the best weights, history)"),
    ("trial.final_figures", "final figures: test evaluation, kept weights' honest figures"),
    ("trial.release", "releasing the trial's graphs (memory.trial_scope)"),
    ("trial.mlflow_commit", "MLflow: commit (trial.json, plan.json, final figures, tags)"),
    ("trial.other", "the rest of the trial (diagnoses, records)"),
]
_BACKGROUND_ROWS = [
    ("trial.plots_background", "learning-curve plot + its upload (worker thread)"),
    ("trial.mlflow_finish_background", "MLflow: flush + end the run (worker thread)"),
]
_END_ROWS = [
    ("start.before_run", "start-up: prepare (checks, data, preflight builds)"),
    ("start.open_session", "start-up: MLflow parent run, state directory"),
    ("start.runner", "start-up: trial runner (sample, folds, pruner)"),
    ("start.to_first_trial", "start-up: tuner and oracle until the first trial"),
    ("between.trials", "between trials: oracle, keras-tuner's own bookkeeping"),
    ("end.wait_finishers", "end: waiting for the last trials' plots and runs"),
    ("end.refit", "end: refit of the chosen plan"),
    ("end.export", "end: the model over raw inputs"),
    ("end.refit_baseline", "end: refit of the baseline"),
    ("end.compare", "end: paired comparison on test"),
    ("end.save_model", "end: save model.keras + MLflow model (includes the next row)"),
    ("end.mlflow_model", "end: MLflow LoggedModel"),
    ("end.report", "end: report artifacts (tables, figures, report.md)"),
    ("end.write_parent", "end: parent run's metrics, tags, artifacts, status"),
    ("end.reporter", "end: console summary"),
    ("end.other", "end: the rest (selection, summary)"),
]


def breakdown(cfg, workers: int = 1) -> dict:
    """One ``kreg.tune`` with timing on: {section: seconds} (trial sections summed over trials) and counts."""
    import kreg
    from kreg.lab import timing

    timing.enable()
    timing.reset()
    start = time.perf_counter()
    summary = kreg.tune(**cfg.tune_kwargs(), verbose=0, **({"workers": workers} if workers > 1 else {}))
    wall = time.perf_counter() - start
    t, n, marks = timing.totals(), timing.counts(), timing.marks()
    trials = n.get("trial.total", 0)
    t["trial.release"] = t.get("trial.scope", 0.0) - t.get("trial.train_call", 0.0)
    accounted = sum(t.get(k, 0.0) for k, _ in _TRIAL_ROWS if k not in ("trial.other", "trial.release"))
    t["trial.other"] = t.get("trial.total", 0.0) - accounted - t["trial.release"]
    if "first_trial" in marks:
        t["start.before_run"] = marks.get("run_search", start) - start
        t["start.to_first_trial"] = (marks["first_trial"] - marks.get("run_search", start)
                                     - t.get("start.open_session", 0.0) - t.get("start.runner", 0.0))
        t["between.trials"] = marks.get("trials_done", marks["first_trial"]) - marks["first_trial"] - t.get(
            "trial.total", 0.0)
    end = marks.get("finish_search_done", start + wall) - marks.get("finish_search", start + wall)
    t["end.finish_search"] = end
    t["end.other"] = end - sum(t.get(k, 0.0) for k, _ in _END_ROWS if k.startswith("end.") and k not in (
        "end.wait_finishers", "end.other", "end.mlflow_model"))
    t["end.after_last_trial"] = (start + wall) - marks.get("trials_done", start + wall)
    t["wall"] = wall
    t["trials"] = trials
    t["epochs"] = t.get("trial.epochs", 0.0)
    t["refit_epochs"] = summary.answer.refit.epochs if summary.answer and summary.answer.refit else 0
    return t


def print_breakdown(t: dict, title: str) -> None:
    trials = max(1, int(t["trials"]))
    print(f"\n{title}: {t['wall']:.1f} s in all, {trials} trials, {t['epochs'] / trials:.1f} epochs a trial, "
          f"refit {t['refit_epochs']} epochs")
    print("| per trial (mean) | s |\n|---|---|")
    for key, label in _TRIAL_ROWS:
        print(f"| {label} | {t.get(key, 0.0) / trials:.3f} |")
    train = t.get("trial.train_epochs", 0.0) + t.get("trial.validation", 0.0)
    print(f"| **training + validation** | **{train / trials:.2f}** |")
    print(f"| **the rest (not training)** | **{(t.get('trial.total', 0.0) - train) / trials:.2f}** |")
    for key, label in _BACKGROUND_ROWS:
        print(f"| {label} | {t.get(key, 0.0) / trials:.3f} |")
    print("\n| start and end | s |\n|---|---|")
    for key, label in _END_ROWS:
        print(f"| {label} | {t.get(key, 0.0):.2f} |")
    print(f"| **after the last trial (to kreg.tune's return)** | **{t['end.after_last_trial']:.2f}** |")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("pipeline", nargs="?", default="pipelines/mnist1d_cnn.yaml")
    parser.add_argument("--trials", type=int, default=6)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--only", default="bare,minimal,plain,kreg",
                        help="comma-separated variants to run (kreg is always run)")
    parser.add_argument("--breakdown", action="store_true",
                        help="one kreg search (refit on) with its timing sections: where the time goes")
    args = parser.parse_args(argv)

    from kreg.lab.config import load_pipeline

    if args.breakdown:
        with tempfile.TemporaryDirectory() as tmp:
            cfg = load_pipeline(args.pipeline).with_overrides(
                max_trials=args.trials, epochs=args.epochs, tracking_uri=f"sqlite:///{tmp}/mlflow.db")
            cfg = cfg.model_copy(update={"search": cfg.search.model_copy(update={"tuner": "random"})})
            print_breakdown(breakdown(cfg), f"{args.pipeline} (random tuner), {args.trials} trials x "
                                            f"{args.epochs} epochs")
        return 0

    with tempfile.TemporaryDirectory() as tmp:
        cfg = load_pipeline(args.pipeline).with_overrides(
            max_trials=args.trials, epochs=args.epochs, tracking_uri=f"sqlite:///{tmp}/mlflow.db")
        # Random search in both, so neither pays for a Gaussian process.
        cfg = cfg.model_copy(update={"search": cfg.search.model_copy(update={"tuner": "random"})})
        plain_search(cfg, f"{tmp}/warmup")  # TF warm-up, not timed
        import matplotlib.figure  # noqa: F401  one-time imports (about 3 s) are not per-search costs
        import mlflow  # noqa: F401
        times = {"bare": [], "minimal": [], "plain": [], "kreg": []}
        runners = {
            "bare": lambda i: bare_search(cfg, f"{tmp}/bare{i}"),
            "minimal": lambda i: plain_search(cfg, f"{tmp}/minimal{i}", minimal=True),
            "plain": lambda i: plain_search(cfg, f"{tmp}/plain{i}"),
            "kreg": lambda i: kreg_search(cfg),
        }
        order = [n for n in runners if n in args.only.split(",") or n == "kreg"]
        times = {n: times[n] for n in order}
        for i in range(args.repeats):
            k = i % len(order)
            for name in order[k:] + order[:k]:  # rotate, so no variant always runs first
                times[name].append(runners[name](i))
            print(f"repeat {i + 1}: " + ", ".join(f"{k} {v[-1]:.1f}s" for k, v in times.items()), flush=True)
    med = {k: statistics.median(v) for k, v in times.items()}
    print(f"{args.pipeline}: {args.trials} trials x {args.epochs} epochs, median of {args.repeats}")
    labels = {"bare": "kreg without them", "minimal": "keras-tuner fit-only Tuner",
              "plain": "keras-tuner Tuner (defaults)", "kreg": "kreg"}
    print("   ".join(f"{labels[n]}: {t:.1f}s" for n, t in med.items()))
    for name, label in labels.items():
        if name == "kreg" or name not in med:
            continue
        print(f"kreg's tracking and callbacks vs {label}: {100 * (med['kreg'] / med[name] - 1):+.1f}%")
    return 0


if __name__ == "__main__":
    sys.exit(main())
