"""Fit one plan: build and compile the model, assemble the callbacks, train.

Callback order matters: the honest gap first (the others read its figures),
then the monitors, the plan's procedures, early stopping, precise batch-norm
statistics, and the caller's own (the epoch logger) last. Under early stopping with ``restore_best`` and
SWA, SWA runs after early stopping restores its weights, so the average wins.
"""

from __future__ import annotations

import dataclasses
import math
import random

import keras
import numpy as np

from kreg.errors import KregError
from kreg.callbacks import GeneralizationGap, SharpnessProbe, WeightMonitor
from kreg.lab import timing
from kreg.lab.trial import signals
from kreg.lab.trial.procedures import build_for_plan, precise_bn, precise_bn_tag, procedure_callbacks, train_data
from kreg.lab.trial.problem import Problem


class Diverged(KregError, RuntimeError):
    """The training loss became NaN or infinite."""


class StopOnNaN(keras.callbacks.Callback):
    """Keras' ``TerminateOnNaN`` without its console line: the trial says ``Diverged`` once, itself."""

    def on_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(float(loss)):
            self.model.stop_training = True


class SignalCheckpoint(keras.callbacks.Callback):
    """Where a signal stops any training of a search (a trial, a fold, the refit, an ensemble member):
    after a batch, never inside a write (``kreg.lab.trial.signals``)."""

    def on_train_batch_end(self, batch, logs=None):
        signals.checkpoint()


@dataclasses.dataclass
class Fitted:
    """A trained model and what its training left behind."""

    model: object
    built: object  # kreg.lab.models.source.Built: placements, output activation
    history: dict
    gap: GeneralizationGap
    early: object | None
    swa: object | None
    scheduled: int
    precise_bn: object | None = None  # the PreciseBatchNorm callback (None: off, or no BatchNormalization)
    precise_bn_tag: str = ""  # what the trial run's tag kreg.precise_bn says


def monitors(problem: Problem, train_sample) -> list:
    """The per-epoch figures the problem's ``monitor`` settings ask for."""
    callbacks = []
    if problem.monitor.weights:
        callbacks.append(WeightMonitor())
    s = problem.monitor.sharpness
    if s is not None:
        callbacks.append(SharpnessProbe(train_sample, rho=s.rho, samples=s.samples, every=s.every,
                                        adversarial=s.adversarial, seed=problem.seed))
    return callbacks


class FoldStart:
    """One built and compiled model for every fold of a cross-validated trial, put back to where it started
    before each fold.

    The folds of a trial train one plan from one initialization. Building a new model for every fold
    (``clear_session``, the seed, build, compile) gives that, and makes TensorFlow trace (JAX compile) the
    training, evaluation and precise-BN steps again for every fold: on 30 to 180 examples more than half of a
    fold's time (``scripts/bench_small_data.py --breakdown``). Here the first fold builds and compiles the model
    and builds its optimizer, and the value of every variable of both is kept: weights, batch-norm statistics,
    seed-generator states, the optimizer's slots, its step counter and learning rate. Each later fold assigns
    those values back, so it starts exactly where a freshly built model would, with the functions already
    traced. Callbacks, the data pipeline and the honest-gap sample are made anew for each fold by ``fit_plan``.

    Plans that wrap the model, change it outside its variables or train other models keep a new model per fold
    (``reusable``): SAM (a wrapper with its own step), SWA (averages weights outside the optimizer), a
    regularization schedule (changes layer attributes), a bagged ensemble (trains other members), and any
    technique with a ``wrap_model`` or ``callbacks`` hook. So do other
    backends than TensorFlow: under JAX a reset model started fold 2 with the same variables as a new one and
    still trained differently (the test's model: first-batch loss 1.136 against 1.090, honest training loss
    after 2 epochs 1.14155 against 1.14165), a cause not found yet; a fold's figures must not depend on the
    fold before.
    """

    def __init__(self):
        self.model = self.built = None
        self._variables: list = []
        self._initial: list = []

    @staticmethod
    def reusable(plan) -> bool:
        """Whether ``plan``'s folds can share one model: under TensorFlow, when no technique of the plan wraps
        the model or adds its own training callbacks (``wrap_model`` / ``callbacks`` hooks: SAM, SWA, the
        schedule, and any new technique that does) and the plan is no bagged ensemble."""
        if keras.backend.backend() != "tensorflow" or (plan.ensemble and plan.ensemble > 1):
            return False
        from kreg.lab.techniques import placing
        from kreg.lab.techniques.base import Technique

        return not any(type(tech).wrap_model is not Technique.wrap_model or type(tech).callbacks is not
                       Technique.callbacks for tech, _ in placing.switched_on(plan))

    @staticmethod
    def _state(model) -> list:
        seen, out = set(), []
        for v in [*model.variables, *model.optimizer.variables]:
            if id(v) not in seen:
                seen.add(id(v))
                out.append(v)
        return out

    def model_for(self, problem: Problem, plan, seed: int):
        """``(model, built)``: built, compiled and remembered the first time; the same, reset, after."""
        if self.model is not None:
            for variable, value in zip(self._variables, self._initial):
                variable.assign(value)
            return self.model, self.built
        model, built = build_for_plan(problem, plan, seed=seed)
        if not model.built or not model.trainable_variables:  # a model that builds in fit: nothing to keep yet
            return model, built
        if not model.optimizer.built:  # its slots exist now, so they are part of the start
            model.optimizer.build(model.trainable_variables)
        self._variables = self._state(model)
        self._initial = [keras.ops.convert_to_numpy(v.value) for v in self._variables]
        self.model, self.built = model, built
        return model, built

    @staticmethod
    def reseed(seed: int) -> None:
        """The global seeds for a fold on the kept model: Python's and NumPy's as ``keras.utils.set_random_seed``
        sets them. TensorFlow's global seed stays what the trial set (the same value): setting it again clears
        TensorFlow's kernel caches, so the kept model's traced steps would be instantiated again (about 0.8 s a
        fold, more than the training of a small fold). Every random op of a fold has its own seed: the
        seed-generator variables (reset with the model) and the data pipeline's shuffle seed."""
        random.seed(seed)
        np.random.seed(seed)

    def intact(self) -> bool:
        """Whether the next fold can take the kept model: it exists and has exactly the variables it started
        with (training created none). If not, it is let go and the next fold builds a new one."""
        if self.model is not None and [id(v) for v in self._state(self.model)] == [id(v) for v in self._variables]:
            return True
        self.__init__()
        return False


def _timed(fn, name):
    def timed(*args, **kwargs):
        with timing.section(name):
            return fn(*args, **kwargs)

    return timed


def fit_plan(problem: Problem, plan, epochs: int, train_sample, *, seed: int, last_callbacks=(),
             start: FoldStart | None = None) -> Fitted:
    """Trains ``plan`` for ``epochs`` on the problem's splits; raises ``Diverged`` on NaN losses.

    ``start``: the model of a cross-validated trial's earlier folds, reset (``FoldStart``); None builds one."""
    splits = problem.splits
    with timing.section("fit.build_compile"):
        model, built = start.model_for(problem, plan, seed) if start is not None else \
            build_for_plan(problem, plan, seed=seed)
    with timing.section("fit.data"):
        data, mixers = train_data(splits, plan, plan.batch_size or problem.training.batch_size, seed)
    gap = GeneralizationGap(train_sample, penalty=problem.penalty, penalty_metric=problem.penalty_metric)
    callbacks = [SignalCheckpoint(), gap, StopOnNaN(), *monitors(problem, train_sample)]
    procedures, swa, scheduled = procedure_callbacks(plan, model, epochs, train_sample, mixers)
    callbacks += procedures
    early = None
    if plan.early_stopping is not None:
        early = keras.callbacks.EarlyStopping(
            monitor=problem.objective.name, mode=problem.objective.direction,
            patience=plan.early_stopping.patience, restore_best_weights=plan.early_stopping.restore_best,
        )
        callbacks.append(early)
    if swa is not None and early is not None:
        callbacks.remove(swa)
        callbacks.append(swa)
    # Precise batch-norm statistics: before each validation (Keras validates before any on_epoch_end, so the
    # gap, early stopping and pruning read figures of these statistics), and at the end after early stopping
    # restored its weights and SWA averaged (end hooks run in list order): the end figures and the saved model.
    precise, precise_tag = precise_bn(problem, model, splits, plan.batch_size or problem.training.batch_size, seed,
                                      epoch_data=train_sample[0])
    if precise is not None:
        if timing.enabled():  # its passes (before each validation, at the end) under their own section
            precise.recompute = _timed(precise.recompute, "fit.precise_bn")
        callbacks.append(precise)
    callbacks += list(last_callbacks)
    history = model.fit(data, validation_data=splits.eval_dataset("validation"), epochs=epochs,
                        callbacks=callbacks, shuffle=False, verbose=0)  # the tf.data pipeline shuffles itself
    hist = {k: [float(x) for x in v] for k, v in history.history.items()}
    losses = hist.get("loss", [])
    if not losses or any(not math.isfinite(x) for x in losses):
        bad = next((i + 1 for i, x in enumerate(losses) if not math.isfinite(x)), len(losses))
        raise Diverged(f"training loss became NaN or infinite at epoch {bad}")
    return Fitted(model, built, hist, gap, early, swa, scheduled, precise, precise_bn_tag(precise, precise_tag))
