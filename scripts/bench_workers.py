"""Parallel trials on one machine: ``kreg tune --workers 2`` against one process, on the demo pipeline.

Runs ``kreg tune`` on the demo (``pipelines/mnist1d_cnn.yaml``: 20 trials x
30 epochs) once per worker count, each in a fresh subprocess on its own
sqlite store, and reports for each: the wall time of the whole command
(start-up, data, every trial, the summary), the CPU seconds of the whole
process tree (the chief and its workers: ``getrusage(RUSAGE_CHILDREN)``)
divided by that wall time (2.0 = both cores busy), the machine's busy share
over the same interval from ``/proc/stat`` (to see whether anything else
ran), and whether both searches proposed the same trials (every trial id's
``hp.*`` params compared). The tuner is switched to ``random`` so the
proposals do not depend on which trial finishes first: keras-tuner's
Bayesian oracle fits its model to the trials finished so far, which parallel
workers change.

    python scripts/bench_workers.py                      # the demo: 20 trials x 30 epochs, --workers 1 then 2
    python scripts/bench_workers.py --trials 4 --epochs 5  # a quick look

The targets (issue 12): ``--workers 2`` in at most 0.65x the wall time of
``--workers 1``, the same trials, CPU use at least 1.8 on 2 cores.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]


def _machine_busy() -> tuple[float, float]:
    """(busy, total) jiffies of the whole machine since boot, from /proc/stat."""
    fields = [float(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0.0)  # idle + iowait
    return sum(fields) - idle, sum(fields)


def run(pipeline: Path, workers: int, store: Path, log: Path) -> dict:
    uri = f"sqlite:///{store / 'mlflow.db'}"
    command = [sys.executable, "-m", "kreg.lab.cli", "tune", str(pipeline), "--tracking-uri", uri,
               "--experiment", f"bench-workers-{workers}"]
    if workers != 1:
        command += ["--workers", str(workers)]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "KREG_HOME": str(store)}
    env.pop("MLFLOW_TRACKING_URI", None)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    busy0, total0 = _machine_busy()
    start = time.perf_counter()
    with log.open("w") as out:
        code = subprocess.run(command, cwd=store, env=env, stdout=out, stderr=subprocess.STDOUT).returncode
    wall = time.perf_counter() - start
    busy1, total1 = _machine_busy()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    cores = len(os.sched_getaffinity(0))
    return {"workers": workers, "exit_code": code, "wall_s": round(wall, 1), "cpu_s": round(cpu, 1),
            "cpu_use": round(cpu / wall, 2),
            "machine_busy_cores": round(cores * (busy1 - busy0) / (total1 - total0), 2),
            "uri": uri, "experiment": f"bench-workers-{workers}", "log": str(log)}


def trials(uri: str, experiment: str) -> dict:
    """trial id -> (its hp.* params, status, test accuracy) for every child run of the experiment."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(uri)
    exp = client.get_experiment_by_name(experiment)
    out = {}
    for r in client.search_runs([exp.experiment_id], max_results=1000):
        tags = r.data.tags
        if "kreg.trial_id" in tags:
            params = {k: v for k, v in r.data.params.items() if k.startswith("hp.")}
            out.setdefault(tags["kreg.trial_id"], []).append(
                (params, tags.get("kreg.trial_status"), r.data.metrics.get("test_accuracy")))
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pipeline", default=str(REPO / "pipelines" / "mnist1d_cnn.yaml"))
    parser.add_argument("--trials", type=int, help="override search.max_trials (default: the pipeline's, 20)")
    parser.add_argument("--epochs", type=int, help="override training.epochs (default: the pipeline's, 30)")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2],
                        help="worker counts, in order (1: one process)")
    parser.add_argument("--keep", help="keep the stores and logs in this directory")
    args = parser.parse_args(argv)

    config = yaml.safe_load(Path(args.pipeline).read_text())
    config["search"]["tuner"] = "random"  # proposals independent of completion order
    if args.trials:
        config["search"]["max_trials"] = args.trials
    if args.epochs:
        config["training"]["epochs"] = args.epochs
    root = Path(args.keep or tempfile.mkdtemp(prefix="kreg-bench-workers-"))
    root.mkdir(parents=True, exist_ok=True)
    pipeline = root / "pipeline.yaml"
    pipeline.write_text(yaml.safe_dump(config, sort_keys=False))
    print(f"{config['search']['max_trials']} trials x {config['training']['epochs']} epochs, random tuner, "
          f"{len(os.sched_getaffinity(0))} cores; stores and logs in {root}", flush=True)

    results = []
    for workers in args.workers:
        store = root / f"workers-{workers}"
        store.mkdir(exist_ok=True)
        result = run(pipeline, workers, store, root / f"workers-{workers}.log")
        result["trials"] = trials(result["uri"], result["experiment"])
        results.append(result)
        done = sum(1 for runs in result["trials"].values() if any(s == "COMPLETED" for _, s, _ in runs))
        print(f"--workers {workers}: exit {result['exit_code']}, {result['wall_s']} s wall, {result['cpu_s']} CPU s, "
              f"CPU use {result['cpu_use']} (machine busy {result['machine_busy_cores']} cores), "
              f"{done} trials completed", flush=True)

    base = results[0]
    summary = []
    for result in results[1:]:
        same = ({k: [p for p, _, _ in v] for k, v in result["trials"].items()} ==
                {k: [p for p, _, _ in v] for k, v in base["trials"].items()})
        ratio = result["wall_s"] / base["wall_s"]
        summary.append({"workers": result["workers"], "wall_ratio": round(ratio, 3), "same_trials": same,
                        "cpu_use": result["cpu_use"]})
        print(f"--workers {result['workers']} / --workers {base['workers']}: {ratio:.3f}x the wall time "
              f"(target <= 0.65); same trials proposed: {same}; CPU use {result['cpu_use']} (target >= 1.8)")
    for result in results:
        result["trials"] = {k: v for k, v in sorted(result["trials"].items())}
    (root / "results.json").write_text(json.dumps({"results": results, "summary": summary}, indent=1, default=str))
    print(f"details: {root / 'results.json'}")
    return 0 if all(r["exit_code"] == 0 for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
