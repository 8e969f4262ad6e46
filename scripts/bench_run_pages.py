"""What the run pages cost per trial: dataset inputs, descriptions, system metrics (issue 18, parts 3, 4, 6).

Measured on a fresh sqlite store in a temporary directory:

- building the dataset entities (once per search) for scikit-learn's digits
  and for MNIST-sized arrays (60,000 x 784 float32, 188 MB);
- ``log_inputs`` of the three splits on one run (once per run);
- a trial's description: rendering it, and the one tag write it rides on
  with and without it;
- system metrics: starting and stopping a trial's monitor, and one sample
  (collect + log), i.e. the share of one core at the default interval;
- with ``--e2e``: the same small digits search with system metrics on and
  off, three times each, alternating: wall and CPU time of this process
  (a whole-search figure; noisy on a busy machine).

    python scripts/bench_run_pages.py          # the per-trial costs (about 20 s)
    python scripts/bench_run_pages.py --e2e    # and the searches (a few minutes)
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def _ms(fn, repeat=20):
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--e2e", action="store_true", help="also time a small search with system metrics on and off")
    args = parser.parse_args()

    import kreg
    from mlflow.entities import RunTag
    from mlflow.tracking import MlflowClient

    from kreg.lab.plan import RegularizationPlan
    from kreg.lab.tracking import datasets, notes, system
    from kreg.lab.tracking.records import TrialRecord

    tmp = Path(tempfile.mkdtemp(prefix="kreg-bench-pages-"))
    uri = f"sqlite:///{tmp}/mlflow.db"
    client = MlflowClient(uri)
    experiment = client.create_experiment("bench")
    rows = []

    digits = kreg.data.load_splits("digits", seed=0)
    rows.append(("dataset entities, digits (once per search)", _ms(lambda: datasets.dataset_inputs(digits), 10)))
    x = np.random.default_rng(0).random((60_000, 784), dtype=np.float32)
    y = np.arange(60_000, dtype=np.int64) % 10
    big = kreg.data.from_arrays(x, y, x_test=x[:10_000], y_test=y[:10_000], standardize="none")
    rows.append(("dataset entities, 60,000 x 784 arrays (once per search)",
                 _ms(lambda: datasets.dataset_inputs(big), 5)))
    inputs = datasets.dataset_inputs(digits)
    runs = [client.create_run(experiment).info.run_id for _ in range(21)]
    client.log_inputs(runs[0], datasets=inputs)  # the first run writes the dataset rows themselves
    it = iter(runs[1:])
    rows.append(("log_inputs, 3 splits on one run (per run)", _ms(lambda: client.log_inputs(next(it), datasets=inputs))))

    record = TrialRecord(trial_id="7", status="COMPLETED", plan=RegularizationPlan(dropout=0.2, l2=1e-4),
                         metrics={"train_accuracy": 0.99, "val_accuracy": 0.95, "test_accuracy": 0.94,
                                  "gap_accuracy": 0.04, "kept_epoch": 12, "epochs_run": 20},
                         placements={"dropout": ["dense1_dropout"], "l2": ["conv1", "conv2", "dense1", "logits"]},
                         diagnoses=[{"kind": "gap_growing_after_kept", "evidence": "gap 0.01 -> 0.05",
                                     "advice": "early stopping"}], duration_s=12.0)
    rows.append(("trial description, rendered (per trial)", _ms(lambda: notes.trial_note(record, "accuracy"), 200)))
    run = runs[1]
    plain = [RunTag("kreg.trial_status", "COMPLETED")]
    noted = plain + [RunTag(notes.NOTE_TAG, notes.trial_note(record, "accuracy"))]
    base = _ms(lambda: client.log_batch(run, tags=plain))
    rows.append(("trial description, its share of the status tag write (per trial)",
                 _ms(lambda: client.log_batch(run, tags=noted)) - base))

    def start_stop():
        monitor = system.start(client.create_run(experiment).info.run_id, uri, 2.0)
        monitor.stop()

    create = _ms(lambda: client.create_run(experiment), 10)
    rows.append(("system metrics: monitor start + stop, one sample logged (per trial)",
                 _ms(start_stop, 10) - create))
    monitor = system.start(client.create_run(experiment).info.run_id, uri, 3600.0)  # samples only when asked
    sample = _ms(lambda: (monitor._sample(), monitor._monitor.mlflow_logger.flush()), 20)  # each one written
    monitor.stop()
    rows.append(("system metrics: one sample, collected and written (every 2 s while a trial trains)", sample))

    width = max(len(name) for name, _ in rows)
    for name, ms in rows:
        print(f"{name:<{width}}  {ms:8.2f} ms")
    print(f"system metrics while training: at most {sample / 2000 * 100:.2f}% of one core at the 2 s default interval "
          "(MLflow's logger batches the writes: fewer than one per sample)")

    if args.e2e:
        def search(on: bool) -> tuple[float, float]:
            start, cpu = time.perf_counter(), time.process_time()
            kreg.tune("cnn2d", "digits", techniques={"dropout": {"min": 0.1, "max": 0.5}}, max_trials=4, epochs=3,
                      tuner="random", refit=False, verbose=0, tracking_uri=uri, experiment=f"e2e-{on}",
                      model_args={"width": 16, "depth": 1}, monitor={"system_metrics": on})
            return time.perf_counter() - start, time.process_time() - cpu

        search(False)  # warm-up: imports, first traces
        times = {True: [], False: []}
        for _ in range(3):
            for on in (True, False):
                times[on].append(search(on))
        for on in (True, False):  # CPU time: this process's, all threads (the sampling thread too)
            print(f"digits search, 4 trials x 3 epochs, system metrics {'on ' if on else 'off'}: wall "
                  f"{' '.join(f'{w:.1f}' for w, _ in times[on])} s; CPU {' '.join(f'{c:.1f}' for _, c in times[on])} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
