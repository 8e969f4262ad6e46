"""Does cross-validation pick better trials? Holdout against k-fold CV on the demo's search (issue 13).

For each search seed, the demo pipeline (``pipelines/mnist1d_cnn.yaml``:
the 1D CNN on MNIST-1D) runs twice with the same trials (the ``random``
tuner proposes the same plans whatever the scores): once scored on the
800-example holdout validation split, once by k-fold CV of the 4000 pooled
training + validation examples. Reported per seed and in all:

- the rank correlation (Spearman) across the trials between the selection
  score and the test score: (a) each search's own test figures (holdout: the
  trial's model; CV: the mean over its fold models), and (b) one reference
  for both, the holdout trials' test accuracy (independent of the CV
  models, so it cannot flatter CV);
- the chosen trial's test accuracy (its refit on training + validation, the
  model a user gets) and its spread over the seeds;
- wall time of each search.

    python scripts/bench_selection.py                                  # 12 trials x 20 epochs, 3 folds, seeds 0 1 2
    python scripts/bench_selection.py --trials 4 --epochs 3 --seeds 0  # a quick look
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def search(seed: int, trials: int, epochs: int, folds: int | None, store: Path) -> dict:
    import kreg
    from kreg.lab.config import load_pipeline

    kwargs = load_pipeline(REPO / "pipelines" / "mnist1d_cnn.yaml").tune_kwargs()
    kwargs.update(tuner="random", max_trials=trials, epochs=epochs, seed=seed, cv=folds, verbose=0,
                  tracking_uri=f"sqlite:///{store / 'mlflow.db'}",
                  experiment=f"bench-selection-{'cv' if folds else 'holdout'}-{seed}", config=None)
    start = time.perf_counter()
    summary = kreg.tune(**kwargs)
    wall = time.perf_counter() - start
    done = [r for r in summary.records if r.status == "COMPLETED"]
    return {"wall_s": wall, "plans": [r.plan.describe() for r in done],
            "score": [r.objective for r in done], "test": [r.metrics["test_accuracy"] for r in done],
            "chosen": summary.best.trial_id, "chosen_plan": summary.best.plan.describe(),
            "chosen_trial_test": summary.best.metrics["test_accuracy"],
            "chosen_refit_test": summary.answer.refit.metrics["test_accuracy"] if summary.model else None,
            "answer": summary.answer.line}


def spearman(a, b) -> float:
    from scipy.stats import spearmanr

    return float(spearmanr(a, b).statistic)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=12)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--folds", type=int, default=3)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--out", type=Path, help="write the results as JSON here too")
    args = parser.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    results = []
    for seed in args.seeds:
        with tempfile.TemporaryDirectory() as tmp:
            holdout = search(seed, args.trials, args.epochs, None, Path(tmp))
            cv = search(seed, args.trials, args.epochs, args.folds, Path(tmp))
        assert holdout["plans"] == cv["plans"], "the two searches must try the same plans"
        row = {"seed": seed, "holdout": holdout, "cv": cv,
               "spearman_holdout_own": spearman(holdout["score"], holdout["test"]),
               "spearman_cv_own": spearman(cv["score"], cv["test"]),
               "spearman_holdout_ref": spearman(holdout["score"], holdout["test"]),
               "spearman_cv_ref": spearman(cv["score"], holdout["test"])}
        results.append(row)
        print(f"seed {seed}: Spearman(score, test) holdout {row['spearman_holdout_own']:+.2f}, {args.folds}-fold CV "
              f"{row['spearman_cv_own']:+.2f} (own test figures); CV against the holdout models' test "
              f"{row['spearman_cv_ref']:+.2f} | chosen refit test: holdout {holdout['chosen_refit_test']:.4f} "
              f"({holdout['chosen_plan']}), CV {cv['chosen_refit_test']:.4f} ({cv['chosen_plan']}) | wall "
              f"{holdout['wall_s']:.0f} s vs {cv['wall_s']:.0f} s", flush=True)

    def spread(key, which):
        values = [r[which][key] for r in results]
        return (statistics.mean(values), statistics.pstdev(values), min(values), max(values))

    print(f"\n{len(results)} seeds, {args.trials} trials x {args.epochs} epochs each:")
    for key, label in (("own", "own test figures"), ("ref", "holdout models' test as the reference")):
        h = statistics.mean(r[f"spearman_holdout_{key}"] for r in results)
        c = statistics.mean(r[f"spearman_cv_{key}"] for r in results)
        print(f"  mean Spearman(selection score, test), {label}: holdout {h:+.3f}, {args.folds}-fold CV {c:+.3f}")
    for which in ("holdout", "cv"):
        mean, sd, lo, hi = spread("chosen_refit_test", which)
        wall = statistics.mean(r[which]["wall_s"] for r in results)
        print(f"  {which:7s}: chosen trial's refit test accuracy {mean:.4f} (sd {sd:.4f}, {lo:.4f}..{hi:.4f}); "
              f"mean wall {wall:.0f} s")
    if args.out:
        args.out.write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
