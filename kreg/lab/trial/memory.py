"""What TensorFlow would keep of every trial, released when the trial ends (keras-tuner #395, #873, #1031).

Memory grew by about 15 MiB a trial in a search of the digits CNN (8 MiB
for a bare Keras loop of build, fit, ``clear_session``). The models died;
their traced training steps did not. Keras' TensorFlow optimizer sums the
gradients over replicas even without a distribution strategy
(``replica_context.all_reduce``, a ``tf.custom_gradient``), and TensorFlow
registers the gradient function of each ``custom_gradient`` traced into a
graph in its process-wide gradient registry (``CustomGradient-<n>``) and
never removes it. That function's closure holds tensors of the traced step,
so every trace kept its whole graph: the ``FuncGraph``, its concrete and
branch functions and their copies in TensorFlow's runtime.

A trial's graphs are dead when it ends (kreg keeps no trial model; the next
trial starts with ``keras.backend.clear_session()``), so ``trial_scope``
removes the registry entries made while the trial ran: nothing can
differentiate through those graphs again. It also keeps TensorFlow's
"triggered tf.function retracing" warnings off the console while a trial
trains: every trial builds a new model whose steps must be traced once per
input shape, and TensorFlow counts traces per Python function (shared by
every model), so the warning says nothing a search can act on.

TensorFlow's private names are read here only; if they change, the scope
does nothing (``tests/test_memory.py`` pins that it works on the pinned
TensorFlow).
"""

from __future__ import annotations

import contextlib
import logging
import sys

_PREFIX = "CustomGradient-"
_RETRACING = "triggered tf.function retracing"


def _gradient_registry() -> dict | None:
    """TensorFlow's gradient registry (name -> entry), if TensorFlow is loaded and keeps it where 2.21 does."""
    ops = sys.modules.get("tensorflow.python.framework.ops")
    registry = getattr(getattr(ops, "_gradient_registry", None), "_registry", None)
    return registry if isinstance(registry, dict) else None


class _NoRetracingWarning(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return _RETRACING not in record.getMessage()


_FILTER = _NoRetracingWarning()


@contextlib.contextmanager
def trial_scope():
    """A trial's training: its retracing warnings dropped; its graphs' gradient registrations removed after."""
    logger = logging.getLogger("tensorflow")
    logger.addFilter(_FILTER)
    registry = _gradient_registry()  # None before TensorFlow loads: then nothing is released
    before = set(registry) if registry is not None else None
    try:
        yield
    finally:
        logger.removeFilter(_FILTER)
        if before is not None:
            release(before)


def release(before: set) -> int:
    """Removes the ``custom_gradient`` registrations not in ``before``; returns how many."""
    registry = _gradient_registry()
    if registry is None:
        return 0
    stale = [key for key in list(registry) if isinstance(key, str) and key.startswith(_PREFIX) and key not in before]
    for key in stale:
        registry.pop(key, None)
    return len(stale)


@contextlib.contextmanager
def frozen():
    """A search's trials: what exists before them (TensorFlow, Keras, MLflow: about half a million objects)
    is moved out of the garbage collector's sight (``gc.freeze``), after one collection, and put back after
    (``gc.unfreeze``). Every ``clear_session`` between trials runs a full collection, which walked all of
    them (about 0.25 s a trial on 2 cores, 0.7 s on a loaded machine); frozen, it walks only what the search
    made since, so a trial's models are still collected. Does nothing when something has frozen objects already
    (its owner unfreezes them, not kreg)."""
    import gc

    if gc.get_freeze_count():
        yield
        return
    gc.collect()
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()
