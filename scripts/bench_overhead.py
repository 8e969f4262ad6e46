"""What kreg's tracking and callbacks cost: the same keras-tuner search with and without them.

All searches use the same pipeline, the same oracle (kreg's random oracle:
baseline first, then the same seeded draws), the same models, data and
epochs. "fit only" is a ``kt.Tuner`` whose ``run_trial`` only fits; "keras-tuner
defaults" is keras-tuner's own ``Tuner.run_trial`` (its per-trial checkpointing
included); neither has a kreg callback or MLflow. "kreg" is ``kreg.pipeline.tune``
with the honest-gap evaluation, per-epoch MLflow logging, test evaluation,
plots and artifacts. Each is run ``--repeats`` times, alternating, and the
median wall time is compared.

    python scripts/bench_overhead.py pipelines/mnist1d_cnn.yaml --trials 6 --epochs 20
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def plain_search(cfg, workdir: str, minimal: bool = False) -> float:
    import keras
    import keras_tuner as kt

    from kreg.data import load_splits
    from kreg.models import build_model, compile_model
    from kreg.tuning.oracles import make_oracle
    from kreg.tuning.space import plan_from_hp, setting_defaults

    start = time.perf_counter()
    splits = load_splits(cfg.data.dataset, validation_fraction=cfg.data.validation_fraction, seed=cfg.seed,
                         data_dir=cfg.data.data_dir, standardize=cfg.data.standardize)
    defaults = setting_defaults(cfg)
    hps = kt.HyperParameters()
    plan_from_hp(hps, cfg.search, defaults)
    oracle = make_oracle(cfg.search, hps, seed=cfg.seed, max_epochs=cfg.training.epochs)

    class Plain(kt.HyperModel):
        def build(self, hp):
            keras.backend.clear_session()
            keras.utils.set_random_seed(cfg.seed)
            plan = plan_from_hp(hp, cfg.search, defaults)
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


def kreg_search(cfg) -> float:
    from kreg.pipeline import tune

    start = time.perf_counter()
    tune(cfg)
    return time.perf_counter() - start


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("pipeline", nargs="?", default="pipelines/mnist1d_cnn.yaml")
    parser.add_argument("--trials", type=int, default=6)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args(argv)

    from kreg.config import load_pipeline

    with tempfile.TemporaryDirectory() as tmp:
        cfg = load_pipeline(args.pipeline).with_overrides(
            max_trials=args.trials, epochs=args.epochs, tracking_uri=f"sqlite:///{tmp}/mlflow.db")
        # Random search in both, so neither pays for a Gaussian process.
        cfg = cfg.model_copy(update={"search": cfg.search.model_copy(update={"tuner": "random"})})
        plain_search(cfg, f"{tmp}/warmup")  # TF/XLA warm-up, not timed
        times = {"minimal": [], "plain": [], "kreg": []}
        for i in range(args.repeats):
            times["minimal"].append(plain_search(cfg, f"{tmp}/minimal{i}", minimal=True))
            times["plain"].append(plain_search(cfg, f"{tmp}/plain{i}"))
            times["kreg"].append(kreg_search(cfg))
            print(f"repeat {i + 1}: " + ", ".join(f"{k} {v[-1]:.1f}s" for k, v in times.items()), flush=True)
    med = {k: statistics.median(v) for k, v in times.items()}
    print(f"{args.pipeline}: {args.trials} trials x {args.epochs} epochs, median of {args.repeats}")
    print(f"keras-tuner, fit only: {med['minimal']:.1f}s   keras-tuner Tuner (defaults): {med['plain']:.1f}s   "
          f"kreg: {med['kreg']:.1f}s")
    print(f"kreg overhead vs fit-only: {100 * (med['kreg'] / med['minimal'] - 1):+.1f}%   "
          f"vs keras-tuner defaults: {100 * (med['kreg'] / med['plain'] - 1):+.1f}%")
    return 0


if __name__ == "__main__":
    sys.exit(main())
