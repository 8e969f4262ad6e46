"""Right by default where regularization matters most: the small-data benchmark of issue 21.

Small cases from what ships offline (nothing is downloaded):

- MNIST-1D subsets of 30, 60 and 120 training series (``mnist1d_30`` ...;
  a class-balanced draw per seed from the 4000 generated training series,
  and a disjoint balanced validation split of a quarter as many, at least
  10: one per class, what kreg's data checks ask; tested on the 1000 test
  series) with the issue's fully convolutional net: three Conv1D +
  BatchNormalization + ReLU blocks (128x8, 256x5, 128x3), global average
  pooling, softmax;
- scikit-learn's wine (178), iris (150) and breast_cancer (569) with the
  built-in ``mlp`` (a fixed stratified 25% test split), and diabetes (442,
  regression; a fixed 25% test split) with the ``mlp``.

Per case and seed, two searches into a temporary sqlite MLflow store each:

  A. ``kreg.tune(model, data)`` with today's defaults: cv="auto",
     select="auto", batch_size=None (auto), precise_bn="auto",
     techniques=None (kreg's default space);
  B. the defaults before issue 21: cv=None, select="best", batch_size=64,
     precise_bn=False, and the very space A searched (read back from A's
     parent run: its ``pipeline.yaml`` artifact).

Both get the same trials, epochs, tuner and seed. Before issue 21 a
baseline that does not learn or collapses at inference did not stop the
search either: B runs every trial as it did then (``blocking_line`` is
switched off for B only); ``--b-stops`` keeps today's stop, and B's figure
is then its baseline trial's test figure when it stops (marked ``*``).

Reported per case and seed: A's refit test figure (the answer refit on training + validation),
the unregularized baseline refit on the same data (``summary.answer
.baseline_refit``), the paired test of the two (exact McNemar / paired
bootstrap of the RMSE: ``summary.comparison``) and whether A is
significantly worse (p < 0.05 and a negative gain); B's refit test figure;
the wall times of A and B (data preparation excluded, the refits included) and the process's CPU seconds
(``time.process_time``: the firmer figure on a loaded machine);
and for the FCN, each refit model's accuracy on its own training data
(training + validation) in training mode and in inference mode, and on
test, against chance: "at chance while fitting" = training-mode accuracy
at least 0.9 and inference-mode training accuracy within 5 points of chance.

When A's answer is the baseline itself there is nothing to compare (p = 1).
Targets (issue 21): A never significantly worse than its baseline (every
case and seed); on the MNIST-1D subsets A's mean test accuracy at least 3
points above B's; the FCN never at chance in inference mode while it fits
its training data; A's wall time at most 2x B's on each case.

    python scripts/bench_small_data.py                       # every case, seeds 0 1 2 (long)
    python scripts/bench_small_data.py --cases mnist1d_30 wine --seeds 0 --trials 4 --epochs 30 \\
        --tab-trials 4 --tab-epochs 30 --out small.json      # a reduced run
    python scripts/bench_small_data.py ... --reuse-a small.json --out small_b.json   # B again, A's rows kept
    python scripts/bench_small_data.py ... --a-without-reuse   # A0 too: every fold on a new model (before FoldStart)
    python scripts/bench_small_data.py --cases mnist1d_30 wine --seeds 0 --trials 2 --epochs 20 \
        --tab-trials 2 --tab-epochs 20 --breakdown   # A only, timing on: where one fold's time goes
    python scripts/bench_small_data.py --cases mnist1d_30 mnist1d_60 --single-repeat   # A1 too: 3 folds, no repeat
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
import warnings
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

MNIST_SIZES = {"mnist1d_30": 30, "mnist1d_60": 60, "mnist1d_120": 120}
TABULAR = ("wine", "iris", "breast_cancer", "diabetes")
CASES = (*MNIST_SIZES, *TABULAR)
FIT = 0.9  # training-mode accuracy at which a model "fits its training data"
CHANCE_MARGIN = 0.05  # as kreg.lab.analysis.blockers
TODAY = dict(cv=None, select="best", batch_size=64, precise_bn=False)  # the defaults before issue 21


# --------------------------------------------------------------------------------------------- data, models

def mnist1d_arrays():
    from mnist1d.data import get_dataset_args, make_dataset

    data = make_dataset(get_dataset_args())  # generated in code from the package's templates
    return data["x"][..., None].astype("float32"), data["y"], data["x_test"][..., None].astype("float32"), \
        data["y_test"]


def balanced_subset(y, n: int, seed: int, np, exclude=()):
    """``n`` indices drawn by ``seed`` (none of ``exclude``), as many of every class as the others."""
    rng = np.random.default_rng(seed)
    classes = np.unique(y)
    per, extra = divmod(n, len(classes))
    free = np.setdiff1d(np.arange(len(y)), np.asarray(exclude, int))
    index = [rng.choice(free[y[free] == c], per + (i < extra), replace=False) for i, c in enumerate(classes)]
    return rng.permutation(np.concatenate(index))


def case_data(case: str, seed: int, cache: dict):
    """The case's splits for ``seed`` (``kreg.data.from_arrays``; the test split never depends on the seed)."""
    import numpy as np
    from sklearn import datasets
    from sklearn.model_selection import train_test_split

    import kreg

    if case in MNIST_SIZES:
        if "mnist1d" not in cache:
            cache["mnist1d"] = mnist1d_arrays()
        x, y, x_test, y_test = cache["mnist1d"]
        n = MNIST_SIZES[case]
        train = balanced_subset(y, n, seed, np)
        val = balanced_subset(y, max(10, n // 4), seed + 1000, np, exclude=train)
        return kreg.data.from_arrays(x[train], y[train], x_val=x[val], y_val=y[val], x_test=x_test, y_test=y_test,
                                     modality="sequence", num_classes=10, seed=seed, name=case)
    loader = getattr(datasets, f"load_{case}")()
    x, y = loader.data.astype("float32"), loader.target
    regression = case == "diabetes"
    x, x_test, y, y_test = train_test_split(x, y, test_size=0.25, random_state=0,
                                            stratify=None if regression else y)
    return kreg.data.from_arrays(x, y.astype("float32") if regression else y, x_test=x_test, y_test=y_test,
                                 task="regression" if regression else "classification", seed=seed, name=case)


def fcn_builder(shape, classes):
    """The issue's FCN (Wang et al. 2017 for time series), as a builder kreg applies each plan to."""

    def build():
        import keras

        inp = keras.Input(shape)
        h = inp
        for filters, kernel in ((128, 8), (256, 5), (128, 3)):
            h = keras.layers.Conv1D(filters, kernel, padding="same")(h)
            h = keras.layers.BatchNormalization()(h)
            h = keras.layers.ReLU()(h)
        h = keras.layers.GlobalAveragePooling1D()(h)
        return keras.Model(inp, keras.layers.Dense(classes, activation="softmax")(h))

    return build


# --------------------------------------------------------------------------------------------- one search

def searched_space(summary) -> dict:
    """The space A searched, from its parent run's ``pipeline.yaml``: ``techniques``/``max_active``/``exclusive``."""
    import mlflow
    import yaml

    path = mlflow.artifacts.download_artifacts(run_id=summary.parent_run_id, artifact_path="pipeline.yaml",
                                               tracking_uri=summary.tracking_uri)
    search = yaml.safe_load(Path(path).read_text())["search"]
    return {"techniques": search["techniques"], "max_active": search.get("max_active"),
            "exclusive": [tuple(g) for g in search.get("exclusive") or ()]}


def fit_check(refitted, splits, np) -> dict | None:
    """A refit classifier's accuracy on its own training data in training and inference mode, and on test."""
    model = getattr(refitted, "model", None)
    if model is None:
        return None
    import keras

    x = np.concatenate([splits.x_train, splits.x_val])
    y = np.concatenate([np.asarray(splits.y_train).reshape(-1), np.asarray(splits.y_val).reshape(-1)]).astype(int)
    train_mode = float(np.mean(np.argmax(keras.ops.convert_to_numpy(model(x, training=True)), -1) == y))
    inference = float(np.mean(np.argmax(model.predict(x, batch_size=256, verbose=0), -1) == y))
    chance = float(np.bincount(y).max() / len(y))
    return {"train_mode_accuracy": train_mode, "inference_train_accuracy": inference,
            "test_accuracy": float(refitted.metrics["test_accuracy"]), "chance": chance,
            "at_chance_while_fitting": bool(train_mode >= FIT and inference <= chance + CHANCE_MARGIN)}


def run_search(case: str, model, splits, seed: int, trials: int, epochs: int, extra: dict, label: str,
               fcn: bool, stops: bool = True, fold_reuse: bool = True) -> tuple[dict, object]:
    """One search; its row (``wall_s``, and ``cpu_s``: this process's CPU seconds, the firmer figure on a
    loaded machine). ``fold_reuse=False``: every fold builds a new model, as before ``FoldStart``."""
    import keras
    import numpy as np

    import kreg
    from kreg.lab.analysis import blockers  # a bench's reach into the lab: B as the search was before issue 21
    from kreg.lab.trial.fit import FoldStart

    kept, reusable = blockers.blocking_line, FoldStart.__dict__["reusable"]
    if not stops:  # as before issue 21: no baseline stops the search (the runner imports the function per trial)
        blockers.blocking_line = lambda record, search: None
    if not fold_reuse:
        FoldStart.reusable = staticmethod(lambda plan: False)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            start, cpu = time.perf_counter(), time.process_time()
            summary = kreg.tune(model, splits, max_trials=trials, epochs=epochs, seed=seed, verbose=0,
                                tracking_uri=f"sqlite:///{tmp}/mlflow.db",
                                experiment=f"small-{case}-{label}-{seed}", **extra)
            wall, cpu = time.perf_counter() - start, time.process_time() - cpu
            row, space = _row(summary, wall, splits, label, fcn, np)
            row["cpu_s"] = cpu
            return row, space
    finally:
        blockers.blocking_line = kept
        FoldStart.reusable = reusable
        keras.backend.clear_session()


def _row(summary, wall: float, splits, label: str, fcn: bool, np) -> tuple[dict, object]:
    metric = summary.metric
    answer = summary.answer
    out = {"status": summary.status, "wall_s": wall, "metric": metric, "trials": len(summary.records),
           "error": summary.error or ""}
    if answer is not None and answer.refit is not None:
        out["test"] = float(answer.refit.metrics[f"test_{metric}"])
        out["figure_from"] = "refit"
        out["plan"] = answer.chosen.plan.describe()
        out["why"] = answer.why
    else:  # stopped after the baseline (or no refit): the baseline trial's own test figure
        base = summary.baseline
        out["test"] = float(base.metrics[f"test_{metric}"]) if base is not None and \
            f"test_{metric}" in base.metrics else float("nan")
        out["figure_from"] = "baseline trial (no refit)"
        out["plan"] = "none (the search stopped)"
    base_refit = answer.baseline_refit if answer is not None else None
    if base_refit is not None:
        out["baseline_test"] = float(base_refit.metrics[f"test_{metric}"])
    elif answer is not None and answer.refit is not None and answer.chosen.plan.is_baseline:
        out["baseline_test"] = out["test"]  # the answer is the baseline: one refit, both figures
    c = summary.comparison
    if c is not None:
        out.update(p_value=float(c["p_value"]), gain=float(c["gain"]), line=c["line"],
                   worse=bool(c["distinguishable"] and c["gain"] < 0))
    elif "baseline_test" in out:
        out.update(p_value=1.0, gain=0.0, line=answer.line if answer is not None else "", worse=False)
    if fcn:
        out["fit_check"] = {"answer": fit_check(answer.refit if answer is not None else None, splits, np),
                            "baseline": fit_check(base_refit if base_refit is not None else
                                                  (answer.refit if answer is not None and answer.chosen.plan
                                                   .is_baseline else None), splits, np)}
    space = searched_space(summary) if label == "A" and summary.parent_run_id else None
    return out, space


# --------------------------------------------------------------------------------------------- breakdown

_FIT_ROWS = [  # (section, what it is): seconds per fit (one fold, or one holdout trial)
    ("trial.fold_clear", "clear_session + seed between folds"),
    ("fit.build_compile", "model build + plan + compile"),
    ("fit.data", "the training tf.data pipeline"),
    ("fit.setup_rest", "callbacks, precise-BN set-up, fit's own set-up (to on_train_begin)"),
    ("trial.first_epoch_extra", "first epoch beyond a steady one (tracing train/eval steps)"),
    ("trial.train_epochs", "training batches (steady; precise-BN passes taken out)"),
    ("trial.validation", "validation evaluation per epoch"),
    ("trial.epoch_end_callbacks", "epoch-end callbacks: honest gap, early stopping, reporter"),
    ("fit.precise_bn", "precise-BN passes (before each validation and at the end)"),
    ("trial.fit_teardown", "fit's end (restoring weights, the last precise-BN pass)"),
    ("trial.final_figures", "final figures: test evaluation, kept weights' honest figures"),
]


def breakdown(args) -> None:
    """Default (A) searches with kreg's timing sections on: where one fold's time goes."""
    import keras

    from kreg.lab import timing

    timing.enable()
    cache = {}
    for case in args.cases:
        fcn = case in MNIST_SIZES
        trials, epochs = (args.trials, args.epochs) if fcn else (args.tab_trials, args.tab_epochs)
        splits = case_data(case, args.seeds[0], cache)
        model = fcn_builder(splits.spec.shape, 10) if fcn else "mlp"
        timing.reset()
        a, _ = run_search(case, model, splits, args.seeds[0], trials, epochs, {"tuner": args.tuner}, "A", fcn)
        t, n = timing.totals(), timing.counts()
        fits = max(1, n.get("trial.build_and_setup", 0))
        ntrials = max(1, n.get("trial.total", 0))
        precise = t.get("fit.precise_bn", 0.0)
        t["fit.setup_rest"] = t.get("trial.build_and_setup", 0.0) - t.get("fit.build_compile", 0.0) \
            - t.get("fit.data", 0.0)
        # the passes before each validation land in the stopwatch's training part, the last one in the teardown
        last = precise / max(1, n.get("fit.precise_bn", 1)) * fits if precise else 0.0
        t["trial.train_epochs"] = t.get("trial.train_epochs", 0.0) - max(0.0, precise - last)
        t["trial.fit_teardown"] = t.get("trial.fit_teardown", 0.0) - last
        in_fits = sum(t.get(k, 0.0) for k, _ in _FIT_ROWS if k != "trial.fold_clear")
        print(f"\n{case} (A, {keras.backend.backend()}): {a['wall_s']:.1f} s in all, {ntrials} trials, {fits} fits "
              f"({fits / ntrials:.1f} a trial), {t.get('trial.epochs', 0) / fits:.1f} epochs a fit; "
              f"trials {t.get('trial.total', 0.0):.1f} s, fits {in_fits:.1f} s")
        print("| per fit (mean) | s | share of the fits |\n|---|---:|---:|")
        for key, label in _FIT_ROWS:
            print(f"| {label} | {t.get(key, 0.0) / fits:.3f} | {t.get(key, 0.0) / max(in_fits, 1e-9):.0%} |")
        steady = t.get("trial.train_epochs", 0.0) + t.get("trial.validation", 0.0)
        print(f"| **training + validation (steady)** | **{steady / fits:.2f}** | **{steady / max(in_fits, 1e-9):.0%}** |")
        print(f"| **the rest** | **{(in_fits - steady) / fits:.2f}** | **{1 - steady / max(in_fits, 1e-9):.0%}** |")


# --------------------------------------------------------------------------------------------- report

def fmt(value, digits=3):
    return "-" if value is None or value != value else f"{value:.{digits}f}"


def chance_cell(check: dict | None) -> str:
    if not check:
        return "-"
    flag = "AT CHANCE" if check["at_chance_while_fitting"] else "ok"
    return (f"{flag} (train-mode {check['train_mode_accuracy']:.2f}, inference {check['inference_train_accuracy']:.2f}"
            f", chance {check['chance']:.2f})")


def report(rows: list[dict]) -> dict:
    print(f"\n{'case':<14}{'seed':>4} {'A test':>7} {'A base':>7} {'p':>6} {'worse':>5} {'B test':>7} "
          f"{'A s':>6} {'B s':>6} {'A/B':>5} {'cpu':>5}  A's plan")
    for r in rows:
        a, b = r["A"], r["B"]
        star = "*" if b["figure_from"] != "refit" else ""
        print(f"{r['case']:<14}{r['seed']:>4} {fmt(a.get('test')):>7} {fmt(a.get('baseline_test')):>7} "
              f"{fmt(a.get('p_value'), 2):>6} {'YES' if a.get('worse') else 'no':>5} {fmt(b.get('test')) + star:>7} "
              f"{a['wall_s']:>6.0f} {b['wall_s']:>6.0f} {a['wall_s'] / b['wall_s']:>5.2f} "
              f"{a.get('cpu_s', float('nan')) / b.get('cpu_s', float('nan')):>5.2f}  {a.get('plan', '')}")
    fcn_rows = [r for r in rows if r["case"] in MNIST_SIZES]
    if fcn_rows:
        print("\nFCN refit models, on their own training data (training + validation) and against chance:")
        for r in fcn_rows:
            for side in ("A", "B"):
                for which, check in (r[side].get("fit_check") or {}).items():
                    print(f"  {r['case']:<12} seed {r['seed']} {side} {which:<8} {chance_cell(check)}"
                          + (f", test {check['test_accuracy']:.3f}" if check else ""))
    single = [r for r in rows if "A1" in r]
    if single:
        print("\nRepeats under 100 pooled examples: A (cv auto: 3 folds x 2 repeats), A1 (3 folds, one repeat), "
              "B (holdout); refit test, paired p against its baseline, CPU seconds:")
        print(f"{'case':<14}{'seed':>4} {'A test':>7} {'p':>5} {'A1 test':>7} {'p':>5} {'B test':>7} "
              f"{'A cpu':>6} {'A1 cpu':>6} {'B cpu':>6} {'A/B':>5} {'A1/B':>5}  A1's plan")
        for r in single:
            a, a1, b = r["A"], r["A1"], r["B"]
            bc = max(b.get("cpu_s", 0), 1e-9)
            print(f"{r['case']:<14}{r['seed']:>4} {fmt(a.get('test')):>7} {fmt(a.get('p_value'), 2):>5}"
                  f"{'!' if a.get('worse') else ' '}{fmt(a1.get('test')):>7} {fmt(a1.get('p_value'), 2):>5}"
                  f"{'!' if a1.get('worse') else ' '}{fmt(b.get('test')):>7} {a.get('cpu_s', 0):>6.0f} "
                  f"{a1.get('cpu_s', 0):>6.0f} {b.get('cpu_s', 0):>6.0f} {a.get('cpu_s', 0) / bc:>5.2f} "
                  f"{a1.get('cpu_s', 0) / bc:>5.2f}  {a1.get('plan', '')}")
        print("  (! = significantly worse than its own baseline, p < 0.05)")
    reuse_rows = [r for r in rows if "A0" in r]
    if reuse_rows:
        print("\nFold reuse: A (folds on one reset model), A0 (a new model per fold, as before), B (holdout); "
              "wall and this process's CPU seconds:")
        print(f"{'case':<14}{'seed':>4} {'A s':>6} {'A0 s':>6} {'B s':>6} {'A cpu':>6} {'A0 cpu':>6} {'B cpu':>6} "
              f"{'A/B':>5} {'A0/B':>5} {'A/B cpu':>7} {'A0/B cpu':>8}  same answer")
        for r in reuse_rows:
            a, a0, b = r["A"], r["A0"], r["B"]
            same = a.get("plan") == a0.get("plan") and abs(a.get("test", 0) - a0.get("test", 1)) <= 1e-6
            print(f"{r['case']:<14}{r['seed']:>4} {a['wall_s']:>6.0f} {a0['wall_s']:>6.0f} {b['wall_s']:>6.0f} "
                  f"{a.get('cpu_s', 0):>6.0f} {a0.get('cpu_s', 0):>6.0f} {b.get('cpu_s', 0):>6.0f} "
                  f"{a['wall_s'] / b['wall_s']:>5.2f} {a0['wall_s'] / b['wall_s']:>5.2f} "
                  f"{a.get('cpu_s', 0) / max(b.get('cpu_s', 0), 1e-9):>7.2f} "
                  f"{a0.get('cpu_s', 0) / max(b.get('cpu_s', 0), 1e-9):>8.2f}  "
                  f"{'yes' if same else 'NO: ' + str(a0.get('plan')) + ' ' + fmt(a0.get('test'))}")
    verdicts = {}
    worse = [f"{r['case']}/{r['seed']}" for r in rows if r["A"].get("worse")]
    missing = [f"{r['case']}/{r['seed']}" for r in rows if "p_value" not in r["A"]]
    verdicts["never_significantly_worse"] = {"met": not worse and not missing, "worse": worse,
                                             "no_comparison": missing}
    if fcn_rows:
        a_mean = statistics.mean(r["A"]["test"] for r in fcn_rows)
        b_mean = statistics.mean(r["B"]["test"] for r in fcn_rows)
        verdicts["mnist1d_beats_today_by_3_points"] = {"met": a_mean - b_mean >= 0.03, "A_mean": a_mean,
                                                       "B_mean": b_mean, "difference_points": 100 * (a_mean - b_mean)}
        at_chance = [f"{r['case']}/{r['seed']}/{side}/{which}" for r in fcn_rows for side in ("A",)
                     for which, check in (r[side].get("fit_check") or {}).items()
                     if check and check["at_chance_while_fitting"]]
        verdicts["fcn_never_at_chance_while_fitting"] = {"met": not at_chance, "at_chance": at_chance}
    over = {}
    for case in dict.fromkeys(r["case"] for r in rows):
        mine = [r for r in rows if r["case"] == case]
        ratio = sum(r["A"]["wall_s"] for r in mine) / sum(r["B"]["wall_s"] for r in mine)
        over[case] = ratio
    cpu = {case: sum(r["A"].get("cpu_s", 0) for r in rows if r["case"] == case)
           / max(1e-9, sum(r["B"].get("cpu_s", 0) for r in rows if r["case"] == case)) for case in over}
    verdicts["wall_time_within_2x"] = {"met": all(v <= 2.0 for v in over.values()),
                                       "cpu_ratio_per_case": {k: round(v, 2) for k, v in cpu.items()},
                                       "ratio_per_case": {k: round(v, 2) for k, v in over.items()}}
    print("\nTargets:")
    v = verdicts["never_significantly_worse"]
    print(f"  A never significantly worse than its baseline (p < 0.05): {'MET' if v['met'] else 'NOT MET'}"
          + (f"; worse on {', '.join(v['worse'])}" if v["worse"] else "")
          + (f"; no comparison on {', '.join(v['no_comparison'])}" if v["no_comparison"] else ""))
    if fcn_rows:
        v = verdicts["mnist1d_beats_today_by_3_points"]
        print(f"  MNIST-1D mean test accuracy A {v['A_mean']:.3f} vs B {v['B_mean']:.3f}: "
              f"{v['difference_points']:+.1f} points (target +3): {'MET' if v['met'] else 'NOT MET'}")
        v = verdicts["fcn_never_at_chance_while_fitting"]
        print(f"  the FCN (A's refits) never at chance in inference mode while fitting: "
              f"{'MET' if v['met'] else 'NOT MET: ' + ', '.join(v['at_chance'])}")
    v = verdicts["wall_time_within_2x"]
    print(f"  A's wall time within 2x B's on each case: {'MET' if v['met'] else 'NOT MET'} "
          f"({', '.join(f'{k} {r:.2f}x' for k, r in v['ratio_per_case'].items())})")
    return verdicts


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", nargs="+", default=list(CASES), choices=CASES)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--trials", type=int, default=8, help="trials per search on MNIST-1D (baseline included)")
    parser.add_argument("--epochs", type=int, default=60, help="epochs per trial on MNIST-1D")
    parser.add_argument("--tab-trials", type=int, default=8, help="trials per search on the tabular cases")
    parser.add_argument("--tab-epochs", type=int, default=40, help="epochs per trial on the tabular cases")
    parser.add_argument("--tuner", default="bayesian")
    parser.add_argument("--b-stops", action="store_true",
                        help="B keeps today's stop after a baseline that does not learn or collapses")
    parser.add_argument("--reuse-a", type=Path, help="A's rows (and space) from an earlier --out: run B only")
    parser.add_argument("--out", type=Path, help="write the rows and the verdicts as JSON")
    parser.add_argument("--a-without-reuse", action="store_true",
                        help="also run A with every fold on a new model (A0: before FoldStart), interleaved with A "
                             "and B (the order rotates per case), and print A, A0 and B's wall and CPU seconds")
    parser.add_argument("--single-repeat", action="store_true",
                        help="also run A1: A with 3-fold cross-validation and no repeat, on the cases whose pool "
                             "(training + validation) is under 100 examples, where cv auto repeats the folds")
    parser.add_argument("--breakdown", action="store_true",
                        help="A only, first seed, with kreg's timing sections: where one fold's time goes")
    args = parser.parse_args()

    warnings.filterwarnings("ignore")
    import keras

    from kreg.lab.search.defaults import AUTO_CV_REPEAT_BELOW

    print(f"backend {keras.backend.backend()}; cases {' '.join(args.cases)}; seeds {args.seeds}; "
          f"MNIST-1D {args.trials} trials x {args.epochs} epochs, tabular {args.tab_trials} x {args.tab_epochs}")
    if args.breakdown:
        return breakdown(args)
    cache, rows = {}, []
    earlier = {(r["case"], r["seed"]): r for r in json.loads(args.reuse_a.read_text())["rows"]} \
        if args.reuse_a else {}
    for case in args.cases:
        fcn = case in MNIST_SIZES
        trials, epochs = (args.trials, args.epochs) if fcn else (args.tab_trials, args.tab_epochs)
        for seed in args.seeds:
            splits = case_data(case, seed, cache)
            model = fcn_builder(splits.spec.shape, 10) if fcn else "mlp"
            a0 = None
            if args.a_without_reuse and not args.reuse_a and len(rows) % 2:  # A0 first on every other case
                a0, _ = run_search(case, model, splits, seed, trials, epochs, {"tuner": args.tuner}, "A0", fcn,
                                   fold_reuse=False)
            if args.reuse_a:
                if (case, seed) not in earlier:
                    raise SystemExit(f"--reuse-a {args.reuse_a}: no row for {case} seed {seed}")
                a, space = earlier[case, seed]["A"], earlier[case, seed]["space"]
            else:
                a, space = run_search(case, model, splits, seed, trials, epochs, {"tuner": args.tuner}, "A", fcn)
            if space is None:
                raise RuntimeError(f"{case} seed {seed}: A left no parent run to read its space from ({a})")
            b, _ = run_search(case, model, splits, seed, trials, epochs, {"tuner": args.tuner, **TODAY, **space},
                              "B", fcn, stops=args.b_stops)
            if args.a_without_reuse and not args.reuse_a and a0 is None:
                a0, _ = run_search(case, model, splits, seed, trials, epochs, {"tuner": args.tuner}, "A0", fcn,
                                   fold_reuse=False)
            row = {"case": case, "seed": seed, "examples": splits.sizes(), "space": space, "A": a, "B": b}
            if a0 is not None:
                row["A0"] = a0
            if args.single_repeat and len(splits.x_train) + len(splits.x_val) < AUTO_CV_REPEAT_BELOW:  # cv auto repeats
                row["A1"], _ = run_search(case, model, splits, seed, trials, epochs, {"tuner": args.tuner, "cv": 3},
                                          "A1", fcn)
            rows.append(row)
            print(f"{case} seed {seed}: A {a['metric']} {fmt(a.get('test'))} (baseline {fmt(a.get('baseline_test'))}"
                  f", {a.get('line', '')}) {a['wall_s']:.0f}s; B {fmt(b.get('test'))} ({b['figure_from']}"
                  f"{', ' + b['error'] if b['error'] else ''}) {b['wall_s']:.0f}s", flush=True)
            if args.out:  # kept as it goes: a long run stopped early still leaves its rows
                args.out.write_text(json.dumps({"args": {k: str(v) for k, v in vars(args).items()}, "rows": rows},
                                               indent=1, default=str))
    verdicts = report(rows)
    if args.out:
        args.out.write_text(json.dumps({"args": {k: str(v) for k, v in vars(args).items()}, "rows": rows,
                                        "verdicts": verdicts}, indent=1, default=str))
        print(f"\nwritten {args.out}")


if __name__ == "__main__":
    main()
