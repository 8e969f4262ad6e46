"""``kreg.tune``: your model, your data, a search space -> keras-tuner -> MLflow -> the search summary.

Everything is checked before any MLflow run exists: the settings and the
space (``ConfigError``), the data (``DataError``), the objective against the
task, and the model itself: the baseline and the largest plan of the space
are built once, so a technique that does not fit the model fails now with
a clear message instead of as a failed trial. Then a failed trial is
recorded and the search goes on; whatever happens, the parent run is closed
with everything logged so far and the summary of the trials that ran.

A search owns its signals (``signals``): SIGINT, SIGTERM and SIGHUP stop it
within a training batch, the running trial's run and the parent end KILLED
with what was done, and ``SearchInterrupted`` carries one line saying how to
resume. ``resume=True`` / ``resume="<parent run id>"`` continues an
unfinished search in its own parent run (``resume``): finished trials are
read back, not rerun, and an interrupted trial runs again.

``workers=N`` runs the trials side by side in N worker processes, and
``chief="HOST:PORT"`` lets workers on other machines join (``parallel``,
``chief``, ``worker``): they resolve the search with ``prepare`` from the
chief's ``Request`` (``tune``'s keywords as the settings objects, built by
``request`` first thing), and the chief closes it with ``finish_search``.
"""

from __future__ import annotations

import inspect

from kreg.lab.errors import ConfigError
from kreg.lab.search import signals
# The search's parts, re-exported here where their users have always found them.
from kreg.lab.search.finish import SearchSummary, finish_search, interrupted_line, one_line, start_budget
from kreg.lab.search.prepare import Objective, Prepared, Request, Search, prepare, request, resolve_objective
from kreg.lab.search.run import run_search
from kreg.lab.analysis.selection import pick_best

__all__ = ["Objective", "Prepared", "Request", "Search", "SearchSummary", "finish_search", "pick_best", "prepare",
           "request", "resolve_objective", "run_search", "start_budget", "tune"]

_one_line, _interrupted_line = one_line, interrupted_line  # their names before the split


@signals.owning_signals
def tune(model, data, *, techniques: dict | None = None, exclusive=(), max_active: int | None = None,
         epochs: int = 30, batch_size: int | None = None, learning_rate: float = 1e-3, optimizer: str = "adam", precise_bn="auto",
         tuner: str = "bayesian", max_trials: int | None = None, budget=None, objective: str | None = None, gap_penalty: float = 1.0,
         initial_points: int | None = None, hyperband_factor: int = 3, max_consecutive_failed_trials: int = 3,
         cv="auto", repeats: int | None = None, select: str = "auto", refit: bool = True,
         register: str | None = None, prune="median", task=None, loss=None, metrics=None,
         model_args: dict | None = None, monitor: dict | None = None,
         train_eval_samples: int | None = 500, seed: int = 0, name: str | None = None,
         experiment: str | None = None, tracking_uri: str | None = None, verbose: int = 1, reporter=None,
         config: dict | None = None, config_text: str | None = None, source: str | None = None,
         resume: bool | str = False, resume_command: str | None = None, workers: int = 1,
         chief: str | None = None, worker_timeout: float = 30.0, **data_options) -> SearchSummary:
    """Searches which regularization ``model`` needs on ``data``, and logs every trial to MLflow.

    Args:
        model: A built-in name (``"mlp"``, ``"cnn1d"``, ``"cnn2d"``, sized by
            ``model_args``); a function returning a plain Keras model (the
            plan is applied to it with ``kreg.regularize``); a function taking
            the ``RegularizationPlan`` (it places the techniques itself, with
            the plan's helpers); a ``keras.Model`` (cloned per trial with
            fresh weights); or ``"module:function"``.
        data: Splits from ``kreg.data`` (``from_arrays``, ``from_csv``,
            ``from_datasets``, ...), a packaged or ``"tfds:<name>"`` dataset
            name, a ``"module:function"`` loader, a ``.npz``/``.csv`` path, or
            ``(x, y)`` / ``(x_train, y_train, x_test, y_test)`` arrays.
            ``data_options`` go to the data source (``validation_fraction``,
            ``standardize``, ``target``, ``modality``, ``num_classes``, ...).
        techniques: The search space: technique name -> range(s), e.g.
            ``{"l2": {"min": 1e-6, "max": 1e-2, "scale": "log"}, "early_stopping": {"patience": 20}}``.
            Each technique is switched on and off; settings (``batch_size``,
            ``learning_rate``) are tuned, never off. Default None (or
            ``"auto"``): kreg's default space, the techniques that fit the
            model's structure, the data's modality and size, and the task
            (``kreg.lab.search.default_space``; the console says which);
            ``{}``: nothing, the baseline alone.
        exclusive: Groups of techniques of which at most one is on.
        max_active: At most this many techniques in one trial.
        epochs, batch_size, learning_rate, optimizer: How every trial trains.
            ``batch_size`` None (default): from the training set's size, the
            largest power of two at most an eighth of it, between 8 and 64
            (``kreg.lab.search.defaults``; the console says which).
        precise_bn: ``"auto"`` (default): a model with BatchNormalization gets
            its statistics re-estimated with the final weights over the
            training split (``kreg.training.recompute_batch_norm_statistics``)
            before every validation and at the end; ``False``: Keras' moving
            averages as they are.
        tuner: ``"random"``, ``"bayesian"``, ``"hyperband"`` or ``"grid"``.
        max_trials: Trials, the baseline (trial 0) included. Default: 10, or as
            many as ``budget`` holds when a budget is given.
        budget: The wall time the whole search may take, the refit included:
            ``"20m"``, ``"1h30m"``, ``"90s"`` or seconds. The clock starts
            with this call; no trial starts that would not end in time with
            room for the refit, and a trial that would overrun it stops at an
            epoch's end (PRUNED, "stopped by the budget"). The summary's
            ``budget`` line says how it was spent. Default None: no limit.
        objective: ``val_<metric>`` of the task or ``"gap_penalized"``
            (``val_m + gap_penalty * max(0, val_m - train_m)`` with ``m`` the
            data loss: ``nll`` or ``mse``, free of weight penalties). Default:
            ``val_accuracy`` (classification), ``val_mse`` (regression; Keras'
            ``val_loss`` includes the weight penalties, so it would favour weak ones).
        cv: Score each trial by cross-validation of training + validation:
            the number of folds, or ``{"folds": 5, "repeats": 2, "scheme":
            "auto" | "stratified" | "kfold" | "forward"}``; None: the holdout
            validation split. Default ``"auto"``: 3-fold cross-validation
            (2 repeats under 100 pooled examples) when the validation split
            has fewer than 400 examples, the holdout split otherwise
            (``kreg.lab.search.defaults`` says why). ``repeats``: new folds
            this many times.
        select: ``"best"`` or ``"one_se"``: the most regularized trial
            within one standard error of the best (needs ``cv``). Default
            ``"auto"``: ``one_se`` whenever there are folds, else ``best``.
            Ties go to the more regularized plan, never to trial order.
        refit: Refit the answer and the baseline on training + validation,
            test both once and compare them on the same test examples
            (default True): ``summary.model`` (takes your raw inputs),
            ``summary.comparison``, ``summary.model_uri`` (the MLflow model).
        register: Register the answer in MLflow's Model Registry under this
            name (a new version each search). Default None.
        prune: Stop trials whose validation curve says they will not win:
            ``"median"`` (default), ``"asha"``, ``"none"``, or a mapping
            ``{"rule": "median", "warmup_trials": 5, "warmup_epochs": 10}`` /
            ``{"rule": "asha", "min_epochs": 1, "eta": 3}``. A pruned trial
            is recorded PRUNED with its curves so far; the baseline is never
            pruned; cross-validated trials are not pruned by epoch.
        task: ``"classification"``, ``"regression"`` or a ``kreg.lab.task``
            object. Default: inferred from the labels.
        loss, metrics: Your own loss and metrics instead of the task's (then
            label smoothing and the confidence penalty are not available).
        monitor: ``{"weights": bool, "sharpness": {...} | True}``.
        train_eval_samples: Training examples of the honest train figures.
        seed: Seed of the splits, the initialization and the oracle.
        name: Name of the search (parent run tag ``kreg.pipeline``, default experiment).
        experiment, tracking_uri: Where in MLflow (default: the project's sqlite store).
        verbose: 1 (default) shows progress on the console as ``kreg tune``
            does (trial k of N, epoch, validation figure and gap, a line per
            trial, the baseline-vs-best table); 0 is silent.
        reporter: A progress reporter of your own instead (the methods of
            ``kreg.lab.trial.runner.NullReporter``).
        resume: ``True`` continues the latest unfinished (interrupted,
            failed or killed) search of this name in this experiment; a parent
            run id continues that one. Its finished trials are not rerun, an
            interrupted trial runs again, and the summary covers them all. A
            search whose settings, space, data or model changed since is
            refused (``kreg.lab.errors.ResumeError`` naming the change).
        resume_command: How to resume, shown when a signal stops the search
            (``{}`` is the parent run id; the CLI passes its command line).
        workers: Trials run side by side in this many worker processes on
            this machine (keras-tuner's distributed mode: this process
            serves the oracle on loopback and trains nothing; each worker
            gets ``cores // workers`` TensorFlow threads). 1 (default): one
            process, no workers. The arguments must be picklable (a model
            function at a module's top level, arrays or a dataset name).
        chief: ``"HOST:PORT"``: serve the oracle there for ``kreg worker``
            processes on other machines too (``workers`` local ones beside
            them, 0 for none). See docs/guide/parallel.md ("A team: many
            machines").
        worker_timeout: Seconds without a heartbeat after which a worker is
            given up for dead: its trial runs again on another worker.

    Signals: called from the main thread, the search owns SIGINT, SIGTERM and
    SIGHUP while it runs; one of them stops it cleanly (the running trial's
    run and the parent end KILLED, the summary of the finished trials is
    written) and raises ``kreg.lab.search.signals.SearchInterrupted`` (a
    ``KeyboardInterrupt``) with ``.summary`` and the line to resume.

    Returns:
        A ``SearchSummary``: ``.best``, ``.baseline``, ``.records`` (each
        with ``.plan``, ``.metrics``, ``.run_id``), ``.parent_run_id``.

    Example:
        >>> data = kreg.data.from_arrays(x_train, y_train, x_test=x_test, y_test=y_test)
        >>> result = kreg.tune(build, data, techniques={"l2": {"min": 1e-6, "max": 1e-2, "scale": "log"}},
        ...                    max_trials=8, epochs=50)
        >>> result.best.plan, result.best.metrics["test_accuracy"]
    """
    keywords = {k: v for k, v in locals().items() if k not in _HOW_IT_RUNS}  # first: nothing else is local yet
    from kreg.lab.search.budget import take_start

    started = take_start()  # a budget counts from here (or from the start of the `kreg tune` command)
    # A misspelled keyword (max_trails=3) or a data option the data cannot take (validation_fraction with
    # prepared splits) is a TypeError naming it here, not ignored or blamed on the data source's function.
    from kreg.lab.data.resolve import check_data_options

    check_data_options(data, data_options, "tune", parameters=inspect.signature(tune).parameters)
    if not (isinstance(resume, bool) or (isinstance(resume, str) and resume.strip())):
        raise ConfigError("resume", resume, "True, False or a parent run id")
    asked = request(**keywords, **data_options)  # the settings objects, every value checked (ConfigError)
    if workers != 1 or chief is not None:  # this process becomes the chief of worker processes
        from kreg.lab.search.parallel import run_parallel

        return run_parallel(asked, workers=workers, chief=chief,
                            worker_timeout=worker_timeout, verbose=verbose, reporter=reporter, resume=resume,
                            resume_command=resume_command, started=started)
    from kreg.lab.trial import memory

    # Everything that exists before the search (TensorFlow, Keras, MLflow, the caller's objects) is out of the
    # garbage collector's sight from here to the end: each clear_session (the preflight's builds, every trial,
    # the refit) then collects only what the search made (was 0.3-0.4 s a call, four calls in a small search).
    with memory.frozen():
        prepared = prepare(asked)
        if reporter is None and verbose:
            import logging

            import mlflow  # noqa: F401  (configures its loggers on import; quiet them after)

            from kreg.lab.tracking.console import RichReporter

            logging.getLogger("mlflow").setLevel(logging.WARNING)  # its INFO lines drown the progress
            reporter = RichReporter()
        return run_search(prepared.search, reporter=reporter, config=prepared.config,
                          config_text=prepared.config_text, resume=resume, resume_command=resume_command,
                          structure=prepared.structure, started=started)


# tune()'s keywords that say how the search runs, not what it is: the rest become the request's objects.
_HOW_IT_RUNS = ("verbose", "reporter", "resume", "resume_command", "workers", "chief", "worker_timeout",
                "data_options")
