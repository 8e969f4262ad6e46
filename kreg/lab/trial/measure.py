"""A trial's end-of-training figures, from its history and final evaluations.

The test split is evaluated once, at the end, with the weights the trial keeps
(the restored best epoch under early stopping with ``restore_best``, the SWA
average when SWA averaged, else the last epoch), and never feeds the
objective or an early stop.
"""

from __future__ import annotations

from kreg.callbacks.gap import gap_value, penalized_loss
from kreg.lab.trial.problem import Problem


def add_gaps(metrics: dict, task) -> dict:
    """``gap_<m>`` (train vs validation) and ``test_gap_<m>`` (train vs test) for every task metric."""
    for name in task.metric_names():
        train = metrics.get(f"train_{name}")
        if train is None:
            continue
        if f"val_{name}" in metrics:
            metrics[f"gap_{name}"] = gap_value(name, train, metrics[f"val_{name}"])
        if f"test_{name}" in metrics:
            metrics[f"test_gap_{name}"] = gap_value(name, train, metrics[f"test_{name}"])
    return metrics


def kept_epoch(fitted) -> tuple[int, bool]:
    """``(epoch whose weights are kept, whether they are SWA's average)``."""
    epochs_run = len(fitted.history["loss"])
    averaged = fitted.swa is not None and fitted.swa.models_averaged > 0
    early = fitted.early
    if early is not None and early.restore_best_weights and early.best_weights is not None and not averaged:
        return early.best_epoch + 1, False
    return epochs_run, averaged


def evaluate(model, dataset) -> dict:
    return {k: float(v) for k, v in model.evaluate(dataset, verbose=0, return_dict=True).items()}


def final_metrics(fitted, problem: Problem) -> dict:
    """Epochs run, best and kept epochs and objective, train / validation / test figures and gaps."""
    task, objective, hist = problem.task, problem.objective, fitted.history
    epochs_run = len(hist["loss"])
    curve = hist.get(objective.name, [])
    pick = max if objective.direction == "max" else min
    best_epoch = curve.index(pick(curve)) + 1 if curve else epochs_run
    kept, averaged = kept_epoch(fitted)
    model = fitted.model
    test = evaluate(model, problem.splits.eval_dataset("test"))
    train = fitted.gap.evaluate(model)  # with the kept weights
    metrics = {
        "epochs_run": epochs_run,
        "best_epoch": best_epoch,
        "kept_epoch": kept,
        f"best_{objective.name}": pick(curve) if curve else float("nan"),
        f"kept_{objective.name}": curve[kept - 1] if curve else float("nan"),
    }
    if averaged:  # SWA's average is a model no epoch saw: its own validation figures
        val = {f"val_{k}": v for k, v in evaluate(model, problem.splits.eval_dataset("validation")).items()}
        m = problem.penalty_metric
        val["val_penalized_loss"] = penalized_loss(val[f"val_{m}"], train[f"train_{m}"], problem.penalty)
        metrics[f"kept_{objective.name}"] = val[objective.name]
        metrics["swa_models"] = fitted.swa.models_averaged
    else:
        val = {k: hist[k][kept - 1] for k in hist if k.startswith("val_")}
    for name, value in test.items():  # every compiled metric (e.g. ece)
        metrics[f"test_{name}"] = value
    precise = getattr(fitted, "precise_bn", None)
    if precise is not None and precise.result is not None:  # what the inference_collapse diagnosis can rule out
        metrics["precise_bn_layers"] = precise.result.layers
        metrics["precise_bn_examples"] = precise.result.examples
    for name in task.metric_names():
        if f"val_{name}" in val:
            metrics[f"val_{name}"] = val[f"val_{name}"]
        if f"train_{name}" in train:
            metrics[f"train_{name}"] = train[f"train_{name}"]
    return add_gaps(metrics, task)
