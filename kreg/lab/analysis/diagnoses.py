"""Diagnoses the user did not ask for: where the honest figures disagree with Keras' running ones.

Each diagnosis names its evidence (the figures, the epochs) and what to try.
They read a trial's per-epoch history (Keras' running training figures, the
honest inference-mode ``train_*``, ``val_*``, ``gap_*``) and its end figures:

- ``inference_collapse``: the training-mode figure is far better than the
  inference-mode one on the same training data. Overfitting cannot do that
  (both see the training set); the usual cause is batch normalization whose
  moving statistics have not converged (few steps, small batches, a high
  momentum), or inference-time noise. With precise batch-norm statistics on
  (``training.precise_bn``, the default for models with BatchNormalization)
  the statistics are those of the final weights, and the diagnosis names
  what is left.
- ``validation_better_than_train``: the validation figure is clearly better
  than the honest training figure: an easier or tiny validation split,
  duplicates across splits, or heavy regularization that only hurts the fit.
- ``gap_growing_after_kept``: the gap kept growing after the epoch whose
  weights the trial kept: later epochs were overfitting (good that they were
  not kept; early stopping or fewer epochs saves the time).
- ``still_improving``: the validation figure was still improving in the last
  epochs: the budget, not the model, set the result.
"""

from __future__ import annotations

import math

# Thresholds, in the metric's units: "far", "clearly", "kept growing".
_SCORE_MARGIN = 0.15  # accuracy-like metrics (0..1)
_VALIDATION_MARGIN = 0.03
_GROWTH = 0.02


def _higher_is_better(metric: str) -> bool:
    from kreg.callbacks.gap import lower_is_better

    return not lower_is_better(metric)


def _relative(metric: str, value: float, reference: float) -> float:
    """A difference in the metric's units for scores, relative to the reference for losses/errors."""
    if _higher_is_better(metric):
        return value - reference
    return (reference - value) / max(abs(reference), 1e-12)  # positive: value is better (lower)


def _precise_evidence(metrics: dict) -> str:
    layers, examples = metrics.get("precise_bn_layers"), metrics.get("precise_bn_examples")
    if not layers:
        return ""
    return f", with precise batch-norm statistics ({int(layers)} layers, {int(examples)} examples)"


def _collapse_advice(metrics: dict) -> str:
    if metrics.get("precise_bn_layers"):
        # The moving statistics were re-estimated with the final weights before every validation: not the cause.
        examples = int(metrics.get("precise_bn_examples") or 0)
        return ("not overfitting, and not unconverged batch-norm statistics (re-estimated with the final weights): "
                "with small batches each example was normalized by its own batch's few examples, which population "
                "statistics do not reproduce (use larger batches, or LayerNormalization / GroupNormalization)"
                + (f"; the statistics came from only {examples} examples" if examples < 100 else "")
                + "; otherwise look for a layer that behaves differently at inference (a custom layer's `training` "
                  "branch, noise or stochastic depth whose inference scaling differs)")
    return ("not overfitting: if the model has BatchNormalization, its moving statistics have not converged "
            "(precise_bn re-estimates them with the final weights, on by default; else train longer, lower its "
            "momentum, e.g. 0.9, or use larger batches); otherwise look for noise that is on at inference")


def diagnose(history: dict, metrics: dict, metric: str) -> list[dict]:
    """The diagnoses that apply to one trial (``metric``: the task's headline metric)."""
    found = []
    running, honest = history.get(metric, []), history.get(f"train_{metric}", [])
    kept = int(metrics.get("kept_epoch") or len(running) or 0)
    if running and honest and kept and kept <= min(len(running), len(honest)):
        r, h = running[kept - 1], honest[kept - 1]
        if _relative(metric, r, h) > (_SCORE_MARGIN if _higher_is_better(metric) else 0.5):
            found.append({
                "kind": "inference_collapse",
                "evidence": f"training-mode {metric} {r:.3f} but inference-mode training {metric} {h:.3f} at "
                            f"epoch {kept} (same training data)" + _precise_evidence(metrics),
                "advice": _collapse_advice(metrics)})
    train, val = metrics.get(f"train_{metric}"), metrics.get(f"val_{metric}")
    if train is not None and val is not None and all(map(math.isfinite, (train, val))):
        margin = _relative(metric, val, train)
        if margin > (_VALIDATION_MARGIN if _higher_is_better(metric) else 0.1):
            found.append({
                "kind": "validation_better_than_train",
                "evidence": f"validation {metric} {val:.3f} is better than the honest training {metric} {train:.3f}",
                "advice": "check the validation split (too small or easier than training, duplicates across "
                          "splits); or the regularization is strong enough to hurt the fit itself: try weaker"})
    gaps = history.get(f"gap_{metric}", [])
    if gaps and kept and len(gaps) - kept >= 3:
        after = gaps[kept - 1:]
        growth = after[-1] - after[0]
        threshold = _GROWTH if _higher_is_better(metric) else _GROWTH * max(abs(history.get(f"val_{metric}",
                                                                                             [1.0])[-1]), 1e-12)
        if growth > threshold and after[-1] >= max(after[:-1]) - 1e-12:
            found.append({
                "kind": "gap_growing_after_kept",
                "evidence": f"gap in {metric} {after[0]:+.3f} at the kept epoch {kept}, {after[-1]:+.3f} at epoch "
                            f"{len(gaps)}, still at its widest",
                "advice": "the later epochs overfit (the trial kept the earlier weights): early stopping or fewer "
                          "epochs saves the time; stronger regularization would let it train longer"})
    vals = history.get(f"val_{metric}", [])
    if len(vals) >= 6 and metrics.get("best_epoch") == len(vals):
        tail = vals[-max(3, len(vals) // 5):]
        if _relative(metric, tail[-1], tail[0]) > (0.005 if _higher_is_better(metric) else 0.01):
            found.append({
                "kind": "still_improving",
                "evidence": f"validation {metric} improved from {tail[0]:.4f} to {tail[-1]:.4f} over the last "
                            f"{len(tail)} epochs and was best at the last one ({len(vals)})",
                "advice": "train longer (training.epochs): the budget, not the model, set this result"})
    return found
