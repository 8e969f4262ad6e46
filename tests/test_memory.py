"""Issue 19, item 2: a trial leaves nothing of itself in memory (keras-tuner #395, #873, #1031).

The resident-memory figure is measured by ``scripts/bench_memory.py`` (docs/measured.md);
these tests pin the mechanism: after a trial, none of its traced graphs is
still registered in TensorFlow's runtime, and TensorFlow's retracing
warnings stay off the console while trials train.
"""

from __future__ import annotations

import gc
import logging

import pytest

from kreg.lab.plan import RegularizationPlan
from kreg.lab.trial import memory


def _runtime_functions() -> int:
    """Functions registered in TensorFlow's eager runtime: every traced step of a live graph is one."""
    from tensorflow.python.eager import context

    gc.collect()
    return len(context.context().list_function_names())


def test_a_trial_leaves_no_graph_behind(tmp_path):
    """Each trial traces a new model's steps; once it ended, none of them stays (was: the whole training
    graph of every trial, kept by TensorFlow's registry of custom gradients: about 8 MiB a trial)."""
    from kreg.lab.search.tune import prepare, request
    from kreg.lab.trial.runner import TrialRunner

    search = prepare(request("mlp", "wine", techniques={"dropout": {"min": 0.1, "max": 0.5}}, epochs=2, batch_size=16,
                             model_args={"width": 8, "depth": 1}, train_eval_samples=None,
                             tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}", cv=None)).search
    runner = TrialRunner(search.problem)
    registry = memory._gradient_registry()
    assert registry is not None  # the pinned TensorFlow keeps it where trial_scope looks

    def custom_gradients() -> int:
        return sum(str(k).startswith("CustomGradient-") for k in registry)

    registered = custom_gradients()
    counts = []
    for i, plan in enumerate([RegularizationPlan(), RegularizationPlan(dropout=0.2)] * 2):
        record = runner.run(str(i), {}, plan)
        assert record.status == "COMPLETED", record.reason
        counts.append(_runtime_functions())
    assert counts[3] <= counts[1], counts  # the same plans again: nothing added (was about 30 functions a trial)
    assert custom_gradients() == registered  # each trial's were released when it ended


class _Lines(logging.Handler):
    def __init__(self):
        super().__init__()
        self.lines: list[str] = []

    def emit(self, record):
        self.lines.append(record.getMessage())


@pytest.fixture
def tensorflow_lines():
    import tensorflow  # noqa: F401  (sets up its logger)

    logger, handler = logging.getLogger("tensorflow"), _Lines()
    level = logger.level
    logger.setLevel(logging.WARNING)  # whatever an earlier test in this process left
    logger.addHandler(handler)
    yield logger, handler.lines
    logger.removeHandler(handler)
    logger.setLevel(level)


def test_retracing_warnings_stay_off_the_console_while_a_trial_trains(tensorflow_lines):
    logger, lines = tensorflow_lines
    retracing = ("5 out of the last 9 calls to <function TensorFlowTrainer._make_function.<locals>.one_step_on_data> "
                 "triggered tf.function retracing. Tracing is expensive ...")
    with memory.trial_scope():
        logger.warning(retracing)
        logger.warning("Gradients do not exist for variables ['dense/kernel'] when minimizing the loss.")
    logger.warning(retracing)  # outside a trial, TensorFlow's logging is the user's
    assert lines == ["Gradients do not exist for variables ['dense/kernel'] when minimizing the loss.", retracing]


def test_only_the_registrations_made_during_the_scope_are_released():
    registry = memory._gradient_registry()
    assert registry is not None
    registry["CustomGradient-kreg-before"] = {"type": None, "location": None}
    try:
        with memory.trial_scope():
            registry["CustomGradient-kreg-during"] = {"type": None, "location": None}
            registry["kreg-not-a-custom-gradient"] = {"type": None, "location": None}
        assert "CustomGradient-kreg-during" not in registry
        assert "CustomGradient-kreg-before" in registry and "kreg-not-a-custom-gradient" in registry
    finally:
        for key in ("CustomGradient-kreg-before", "CustomGradient-kreg-during", "kreg-not-a-custom-gradient"):
            registry.pop(key, None)
