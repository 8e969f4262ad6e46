"""The demo search under each Keras backend: TensorFlow against JAX, with and without JAX's compilation cache.

Each configuration runs ``kreg tune`` on a small version of the demo (``--trials`` trials of ``--epochs``
epochs, no pruning, no refit unless ``--refit``) in its own process with ``KERAS_BACKEND`` set, against its
own MLflow store, and the table shows the process's wall time, the first trial's time and the mean of the
others (each trial's ``duration_s``, read back from the store):

- ``tensorflow``: Keras' default on CPU (``jit_compile="auto"``, which is no XLA on a CPU-only machine);
- ``jax, no cache``: ``KREG_JAX_CACHE=off``: every new model's train/test steps are traced and compiled by XLA;
- ``jax, cache (cold)``: kreg's persistent compilation cache (``kreg.lab.trial.compilation``) in an empty
  directory: a computation compiled once (the same model, plan and shapes) is read back instead of compiled;
- ``jax, cache (warm)``: the same search again over the cache the cold run filled: what a second run of a
  pipeline, a resume or a worker on the same machine sees.

``--epoch`` also measures one epoch of the demo's baseline CNN in steady state (the mean of epochs 2-4, the
first one holds the compilation) under TensorFlow with ``jit_compile`` False and True (XLA) and under JAX.
``--cv 3`` cross-validates every trial: its folds compile the same computations, which the cache reads back.

    python scripts/bench_backends.py pipelines/mnist1d_cnn.yaml --trials 4 --epochs 10 --epoch
    python scripts/bench_backends.py pipelines/mnist1d_cnn.yaml --trials 2 --epochs 5 --cv 3 \
        --configs tensorflow,jax-nocache,jax-cold
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

CONFIGS = {
    "tensorflow": {"KERAS_BACKEND": "tensorflow"},
    "jax-nocache": {"KERAS_BACKEND": "jax", "KREG_JAX_CACHE": "off"},
    "jax-cold": {"KERAS_BACKEND": "jax"},  # KREG_JAX_CACHE: a fresh directory, set below
    "jax-warm": {"KERAS_BACKEND": "jax"},  # the directory jax-cold filled
}
LABELS = {"tensorflow": "tensorflow", "jax-nocache": "jax, no cache", "jax-cold": "jax, cache (cold)",
          "jax-warm": "jax, cache (warm)"}

_EPOCH = r"""
import json, sys, time
import keras
from kreg.lab.config import load_pipeline
from kreg.lab.plan import RegularizationPlan
from kreg.lab.search.tune import prepare, request
from kreg.lab.trial.fit import build_for_plan, train_data

pipeline, jit = sys.argv[1], json.loads(sys.argv[2])
cfg = load_pipeline(pipeline)
search = prepare(request(**cfg.tune_kwargs(source=pipeline))).search
plan = RegularizationPlan(**search.training.settings())
model, _ = build_for_plan(search, plan, seed=0)
if jit is not None:
    model.jit_compile = jit
data, _ = train_data(search.splits, plan, search.training.batch_size, 0)
times = []
class Clock(keras.callbacks.Callback):
    def on_epoch_begin(self, epoch, logs=None):
        self.start = time.perf_counter()
    def on_epoch_end(self, epoch, logs=None):
        times.append(time.perf_counter() - self.start)
model.fit(data, validation_data=search.splits.eval_dataset("validation"), epochs=4, verbose=0, callbacks=[Clock()])
print(json.dumps({"first": times[0], "steady": sum(times[1:]) / len(times[1:])}))
"""


def _env(extra: dict) -> dict:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", **extra}
    env.pop("MLFLOW_TRACKING_URI", None)
    return env


def _search(pipeline: Path, name: str, extra: dict, work: Path, args) -> dict:
    from mlflow.tracking import MlflowClient

    home = work / name
    home.mkdir()
    uri = f"sqlite:///{home / 'mlflow.db'}"
    command = [sys.executable, "-m", "kreg.lab.cli", "tune", str(pipeline), "--max-trials", str(args.trials),
               "--epochs", str(args.epochs), "--prune", "none", "--tracking-uri", uri, "--experiment", "bench",
               *(["--cv", str(args.cv)] if args.cv else [])]
    start = time.perf_counter()
    done = subprocess.run(command, env=_env({**extra, "KREG_HOME": str(home)}), cwd=home, capture_output=True,
                          text=True)
    wall = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{name}: kreg tune exited {done.returncode}\n{done.stderr[-3000:]}")
    client = MlflowClient(uri)
    experiment = client.get_experiment_by_name("bench")
    runs = [r for r in client.search_runs([experiment.experiment_id]) if "kreg.trial_id" in r.data.tags]
    runs.sort(key=lambda r: int(r.data.tags["kreg.trial_id"]))
    trials = [r.data.metrics["duration_s"] for r in runs]
    return {"wall": wall, "trials": trials}


def _epoch(pipeline: Path, backend: str, jit) -> dict:
    done = subprocess.run([sys.executable, "-c", _EPOCH, str(pipeline), json.dumps(jit)],
                          env=_env({"KERAS_BACKEND": backend, "KREG_JAX_CACHE": "off"}), capture_output=True,
                          text=True)
    if done.returncode != 0:
        raise SystemExit(f"{backend} epoch: exited {done.returncode}\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("pipeline", nargs="?", default="pipelines/mnist1d_cnn.yaml")
    parser.add_argument("--trials", type=int, default=4)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--cv", type=int, help="cross-validate every trial on this many folds (default: holdout)")
    parser.add_argument("--refit", action="store_true", help="refit the answer as the pipeline says (default: off)")
    parser.add_argument("--configs", default=",".join(CONFIGS), help=f"of {', '.join(CONFIGS)}")
    parser.add_argument("--epoch", action="store_true", help="also one epoch in steady state, TF with and without XLA")
    args = parser.parse_args(argv)
    names = [n.strip() for n in args.configs.split(",") if n.strip()]
    unknown = [n for n in names if n not in CONFIGS]
    if unknown:
        parser.error(f"--configs: unknown {unknown}; expected some of {', '.join(CONFIGS)}")

    with tempfile.TemporaryDirectory(prefix="kreg-bench-backends-") as tmp:
        work = Path(tmp)
        config = yaml.safe_load(Path(args.pipeline).read_text())
        if not args.refit:
            config.setdefault("search", {})["refit"] = False
        pipeline = work / Path(args.pipeline).name
        pipeline.write_text(yaml.safe_dump(config, sort_keys=False))
        cache = work / "jax-cache"
        print(f"{Path(args.pipeline).name}: {args.trials} trials x {args.epochs} epochs"
              f"{f' x {args.cv} folds' if args.cv else ''}, no pruning, "
              f"{'refit' if args.refit else 'no refit'}; {os.cpu_count()} cores", flush=True)
        print(f"{'configuration':<20} {'wall s':>7} {'trial 1 s':>9} {'trials 2+ s (mean)':>19}", flush=True)
        for name in names:
            extra = dict(CONFIGS[name])
            if name in ("jax-cold", "jax-warm"):
                extra["KREG_JAX_CACHE"] = str(cache)
            result = _search(pipeline, name, extra, work, args)
            trials = result["trials"]
            rest = sum(trials[1:]) / len(trials[1:]) if len(trials) > 1 else float("nan")
            print(f"{LABELS[name]:<20} {result['wall']:>7.1f} {trials[0]:>9.1f} {rest:>19.1f}"
                  f"   ({', '.join(f'{t:.1f}' for t in trials)})", flush=True)
        if args.epoch:
            print(f"\none epoch of the baseline CNN (first epoch, then the mean of epochs 2-4):", flush=True)
            for label, backend, jit in (("tensorflow", "tensorflow", False), ("tensorflow, XLA", "tensorflow", True),
                                        ("jax", "jax", None)):
                figures = _epoch(pipeline, backend, jit)
                print(f"{label:<20} first {figures['first']:>5.2f} s   steady {figures['steady']:>5.2f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
