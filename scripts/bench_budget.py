"""Does ``kreg tune --budget`` end in time? (issue 20, "Figures": ``--budget 5m`` ends within 5 min 15 s
with a completed answer and refit.)

Runs the user's command, ``kreg tune pipelines/mnist1d_cnn.yaml --budget 5m`` (no ``max_trials`` limit: the
budget alone decides how many trials run), in a fresh process with its own sqlite store, and times it from
outside, the process start and TensorFlow's import included, as a user's ``time`` would. Then it reads the
search back from the store: the parent's status, the refit answer, ``kreg.budget`` (how the budget was spent)
and the trials.

    python scripts/bench_budget.py                       # the demo, --budget 5m
    python scripts/bench_budget.py --budget 2m --pipeline pipelines/breast_cancer_mlp.yaml
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

REPO = Path(__file__).resolve().parents[1]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pipeline", default=str(REPO / "pipelines" / "mnist1d_cnn.yaml"))
    parser.add_argument("--budget", default="5m")
    parser.add_argument("--out", type=Path, help="write the result as JSON here")
    args = parser.parse_args(argv)

    from kreg.lab.search.budget import parse_duration, show

    seconds = parse_duration(args.budget)
    kreg = Path(sys.executable).with_name("kreg")
    with tempfile.TemporaryDirectory(prefix="kreg-bench-budget-") as tmp:
        uri = f"sqlite:///{Path(tmp) / 'mlflow.db'}"
        command = [str(kreg), "tune", args.pipeline, "--budget", args.budget, "--tracking-uri", uri]
        print("$", " ".join(command), flush=True)
        start = time.perf_counter()
        done = subprocess.run(command, cwd=REPO, env={**os.environ, "COLUMNS": "200"}, capture_output=True,
                              text=True)
        wall = time.perf_counter() - start
        if done.returncode != 0:
            print(done.stdout[-4000:], done.stderr[-4000:], sep="\n")
            print(f"kreg tune exited {done.returncode}")
            return 1
        from mlflow.tracking import MlflowClient

        client = MlflowClient(uri)
        experiment = client.search_experiments()[0]
        parent = [r for r in client.search_runs([experiment.experiment_id])
                  if "mlflow.parentRunId" not in r.data.tags][0]
        tags, metrics = parent.data.tags, parent.data.metrics
        result = {
            "budget_s": seconds, "wall_s": wall, "over_pct": 100 * (wall - seconds) / seconds,
            "status": parent.info.status, "trials": int(metrics.get("n_trials", 0)),
            "pruned": int(metrics.get("n_pruned", 0)), "refit_test_accuracy": metrics.get("refit_test_accuracy"),
            "answer": tags.get("kreg.answer", ""), "budget_line": tags.get("kreg.budget", ""),
            "inside_s": metrics.get("budget_used_s"),
        }
    print(f"budget {show(seconds)} ({seconds:.0f} s): the command took {wall:.1f} s from outside "
          f"({result['over_pct']:+.1f}% of the budget; the target is at most +5%)")
    print(f"  {result['status']}, {result['trials']} trials ({result['pruned']} pruned), refit test accuracy "
          f"{result['refit_test_accuracy']}")
    print(f"  {result['budget_line']}")
    print(f"  {result['answer']}")
    ok = result["status"] == "FINISHED" and result["refit_test_accuracy"] is not None and wall <= 1.05 * seconds
    print("within the budget (+5%) with a completed answer and refit" if ok else "NOT within the target")
    if args.out:
        args.out.write_text(json.dumps(result, indent=1))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
