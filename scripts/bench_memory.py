"""Does memory grow from trial to trial? Resident memory after each trial of a long search (issue 19).

keras-tuner users have reported memory growing with every trial for years
(keras-tuner #395, #873, #1031). This runs the digits CNN pipeline
(``pipelines/digits_cnn.yaml``, the random tuner) for ``--trials`` trials of
``--epochs`` epochs into a temporary store, prints the process's resident
memory (RSS) after each trial, and the growth per trial: the least-squares
slope of RSS against the trial number over trials 5..N (the first trials
load TensorFlow's kernels, MLflow's tables and matplotlib: a one-off cost).
Target: under 1 MiB a trial.

    python scripts/bench_memory.py                        # 50 trials x 2 epochs (about 6 min on 2 cores)
    python scripts/bench_memory.py --trials 15 --epochs 1 # a quick look
    python scripts/bench_memory.py --json out.json        # the figures as JSON too
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
FIRST = 5  # the slope is fitted from this trial on


def rss_mib() -> float:
    """This process's resident memory, MiB (``/proc/self/statm``: no dependency)."""
    with open("/proc/self/statm") as handle:
        pages = int(handle.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def slope(xs: list[float], ys: list[float]) -> float:
    """Least-squares slope of ``ys`` against ``xs``."""
    n = len(xs)
    mx, my = sum(xs) / n, sum(ys) / n
    sxx = sum((x - mx) ** 2 for x in xs)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sxx if sxx else 0.0


class MemoryReporter:
    """A kreg reporter that reads RSS when each trial has ended (its artifacts written or still writing)."""

    def __init__(self):
        self.rss: list[float] = []
        self.start = time.perf_counter()

    def __getattr__(self, name):  # every other reporter call: nothing to do
        return lambda *args, **kwargs: None

    def trial_ended(self, index, record):
        import gc

        gc.collect()  # what stays is what is still reachable, not what the collector has not reached yet
        self.rss.append(rss_mib())
        print(f"trial {len(self.rss):3d} {record.status:9s} rss {self.rss[-1]:7.1f} MiB "
              f"({time.perf_counter() - self.start:5.0f} s)", flush=True)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=50)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--pipeline", default=str(REPO / "pipelines" / "digits_cnn.yaml"))
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args(argv)
    if args.trials < FIRST + 2:
        parser.error(f"--trials must be at least {FIRST + 2} (the slope is fitted from trial {FIRST})")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

    import logging

    import mlflow  # noqa: F401  (configures its loggers on import; quiet them after)

    import kreg
    from kreg.lab.config import load_pipeline

    logging.getLogger("mlflow").setLevel(logging.WARNING)

    reporter = MemoryReporter()
    with tempfile.TemporaryDirectory(prefix="kreg-bench-memory-") as store:
        kwargs = load_pipeline(args.pipeline).tune_kwargs()
        kwargs.update(tuner="random", max_trials=args.trials, epochs=args.epochs, verbose=0, reporter=reporter,
                      refit=False, tracking_uri=f"sqlite:///{Path(store) / 'mlflow.db'}",
                      experiment="bench-memory", config=None)
        print(f"before the search: rss {rss_mib():.1f} MiB", flush=True)
        summary = kreg.tune(**kwargs)
    rss = reporter.rss
    xs = list(range(FIRST, len(rss) + 1))
    per_trial = slope([float(x) for x in xs], rss[FIRST - 1:])
    result = {"pipeline": Path(args.pipeline).name, "trials": len(rss), "epochs": args.epochs,
              "status": summary.status, "rss_mib": [round(x, 1) for x in rss],
              "rss_first_mib": round(rss[0], 1), "rss_last_mib": round(rss[-1], 1),
              "slope_mib_per_trial": round(per_trial, 3), "fitted_from_trial": FIRST,
              "wall_s": round(time.perf_counter() - reporter.start, 1)}
    print(f"{len(rss)} trials x {args.epochs} epochs: rss {rss[0]:.0f} MiB after trial 1, {rss[-1]:.0f} after "
          f"trial {len(rss)}; growth {per_trial:+.2f} MiB/trial (least squares, trials {FIRST}..{len(rss)})")
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1))
    return 0 if summary.status == "FINISHED" else 1


if __name__ == "__main__":
    sys.exit(main())
