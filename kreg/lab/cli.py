"""The ``kreg`` command: tune, worker, validate, techniques, ui."""

from __future__ import annotations

import argparse
import logging
import os
import shlex
import sys
import time
import warnings
from pathlib import Path

from kreg.lab.config import check_sources, import_paths, load_pipeline
from kreg.errors import KregError
from kreg.lab.errors import ConfigError
from kreg.lab.quiet import quiet_tensorflow
from kreg.lab.search.signals import SearchInterrupted, owning_signals

EXIT_CONFIG = 2
EXIT_FAILED = 1


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="kreg", description="Find the regularization a Keras model needs.")
    sub = parser.add_subparsers(dest="command", required=True)

    tune = sub.add_parser("tune", help="search regularization for a pipeline and log every trial to MLflow")
    tune.add_argument("pipeline", help="pipeline YAML file, e.g. pipelines/mnist1d_cnn.yaml")
    tune.add_argument("--max-trials", type=int, help="override search.max_trials")
    tune.add_argument("--budget", metavar="DURATION",
                      help="override search.budget: the wall time the whole search may take, refit included "
                           "(e.g. 20m, 1h30m, 90s); with a budget, max_trials is optional")
    tune.add_argument("--epochs", type=int, help="override training.epochs")
    tune.add_argument("--seed", type=int, help="override seed")
    tune.add_argument("--cv", type=int, metavar="FOLDS",
                      help="score each trial by FOLDS-fold cross-validation of training + validation "
                           "(override search.cv.folds; the pipeline's repeats and scheme are kept)")
    tune.add_argument("--select", choices=("best", "one_se"),
                      help="override search.select: the best trial, or the most regularized within one SE")
    tune.add_argument("--tracking-uri", help="MLflow tracking URI (default: $MLFLOW_TRACKING_URI, "
                                             "else sqlite:///<project>/mlruns/mlflow.db)")
    tune.add_argument("--experiment", help="MLflow experiment (default: the pipeline's name)")
    tune.add_argument("--prune", choices=("median", "asha", "none"),
                      help="override search.prune: stop trials whose validation curve cannot win (default median)")
    tune.add_argument("--register", metavar="NAME",
                      help="register the answer (the refit model over raw inputs) in MLflow's Model Registry "
                           "as a new version of NAME (override tracking.register_as)")
    tune.add_argument("--resume", nargs="?", const=True, default=False, metavar="PARENT_RUN_ID",
                      help="continue the latest unfinished search of this pipeline (or the search with this "
                           "parent run id): finished trials are kept, an interrupted trial runs again")
    tune.add_argument("--workers", type=int, metavar="N",
                      help="run N trials at once in N worker processes on this machine (default 1: one process; "
                           "0 with --chief: workers on other machines only)")
    tune.add_argument("--chief", action="store_true",
                      help="serve the search's oracle for `kreg worker` processes on other machines")
    tune.add_argument("--oracle-host", default=os.environ.get("KERASTUNER_ORACLE_IP", "127.0.0.1"),
                      help="address the oracle binds with --chief (default $KERASTUNER_ORACLE_IP, else 127.0.0.1; "
                           "0.0.0.0 for every interface)")
    tune.add_argument("--oracle-port", type=int, default=os.environ.get("KERASTUNER_ORACLE_PORT", "8470"),
                      help="port of the oracle with --chief (default $KERASTUNER_ORACLE_PORT, else 8470)")
    tune.add_argument("--worker-timeout", type=float, default=30.0, metavar="SECONDS",
                      help="a worker silent this long is given up for dead and its trial runs again (default 30)")

    worker = sub.add_parser("worker", help="run trials for a chief (`kreg tune PIPELINE --chief`) on this machine")
    worker.add_argument("pipeline", help="the chief's pipeline file (the same data and code on this machine)")
    worker.add_argument("--oracle", default=None, metavar="HOST:PORT",
                        help="the chief's oracle (default $KERASTUNER_ORACLE_IP:$KERASTUNER_ORACLE_PORT)")
    worker.add_argument("--tuner-id", default=None,
                        help="this worker's name (default $KERASTUNER_TUNER_ID, else <host>-<pid>)")
    worker.add_argument("--tracking-uri", help="the store to write to (default: the chief's; it must hold the "
                                               "chief's parent run)")
    worker.add_argument("--threads", type=int, help="TensorFlow threads (default: all cores)")
    worker.add_argument("--worker-timeout", type=float, default=30.0, metavar="SECONDS",
                        help="stop when the chief has not answered for this long (default 30)")
    worker.add_argument("--wait", type=float, default=600.0, metavar="SECONDS",
                        help="how long to wait for the chief to come up (default 600)")

    validate = sub.add_parser("validate", help="check a pipeline file and show its search space")
    validate.add_argument("pipeline")

    techniques = sub.add_parser("techniques", help="list every technique the search offers: parameters, what it "
                                                   "acts on, which data and tasks it fits")
    techniques.add_argument("--for", dest="pipeline", metavar="PIPELINE",
                            help="print the space kreg searches for this pipeline's model and data when "
                                 "search.techniques is absent: each technique, its range, why and the source")

    study = sub.add_parser("study", help="measure one of the seeds' claims on a model and data (a learning "
                                         "curve, ensemble size...) and log it to MLflow with its plot")
    study.add_argument("kind", help="the study: " + ", ".join(_study_kinds()))
    study.add_argument("pipeline", nargs="?", help="take the model, data and training settings from this pipeline "
                                                   "(default: the built-in MLP, 64 x 2, on scikit-learn's digits, 60 epochs)")
    study.add_argument("--plan", help="fixed techniques to compare with the baseline, e.g. 'dropout=0.3,l2=1e-4'")
    study.add_argument("--set", action="append", default=[], metavar="OPTION=VALUE",
                       help="a study option, e.g. members=8 or fractions=0.1,0.3,1 (repeatable)")
    study.add_argument("--epochs", type=int)
    study.add_argument("--seed", type=int)
    study.add_argument("--tracking-uri")
    study.add_argument("--experiment", default="kreg-studies")

    ui = sub.add_parser("ui", help="MLflow UI over the project's store")
    ui.add_argument("--port", type=int, default=5000)
    ui.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    ui.add_argument("--tracking-uri", help="store to show (default: the project's)")
    ui.add_argument("--workers", type=int, default=1, help="server worker processes (default 1: a small machine)")
    ui.add_argument("--allowed-hosts", help="Host headers MLflow accepts (default: MLflow's, loopback and "
                                            "private addresses; '*' when --host is not loopback)")
    for command in sub.choices.values():
        command.add_argument("--verbose", action="store_true",
                             help="let TensorFlow's start-up lines and warnings through to stderr "
                                  "(also $KREG_VERBOSE=1; default: kept off the terminal)")
    return parser


def _load(args):
    cfg = load_pipeline(args.pipeline)
    overrides = {k: getattr(args, k, None)
                 for k in ("max_trials", "budget", "epochs", "seed", "cv", "select", "prune", "tracking_uri",
                           "experiment", "register")}
    return cfg.with_overrides(**overrides)


def _cmd_validate(args) -> int:
    cfg = _load(args)
    search = cfg.search
    model = f"{cfg.model.type} {cfg.model.capacity()}" if cfg.model.type else f"builder {cfg.model.builder} {cfg.model.args}"
    data = cfg.data.spec(cfg.base)
    splits = check_sources(cfg)  # files read, functions imported: what kreg tune refuses before training
    print(f"{args.pipeline}: valid pipeline '{cfg.name}'")
    print(f"  data: {data}" + (f" ({splits.describe()})" if splits is not None else ""))
    print(f"  model: {model}")
    how_many = f"{search.trial_limit} trials" if search.trial_limit is not None else "trials"
    if search.budget is not None:
        from kreg.lab.search.budget import show

        how_many += f" within {show(search.budget)} (refit included)"
    print(f"  search: {search.tuner}, {how_many} x {cfg.training.epochs} epochs, objective "
          f"{search.objective or 'the task default (val_accuracy; val_loss for regression)'}"
          + (f" (gap penalty {search.gap_penalty})" if search.objective == "gap_penalized" else ""))
    cv = search.cv
    if cv == "auto":
        from kreg.lab.search.defaults import AUTO_CV_BELOW, AUTO_CV_FOLDS

        scoring = (f"cv auto: {AUTO_CV_FOLDS}-fold cross-validation when the validation split has fewer than "
                   f"{AUTO_CV_BELOW} examples, else the holdout validation split")
    else:
        scoring = (f"{cv.folds}-fold cross-validation{f' x {cv.repeats} repeats' if cv.repeats > 1 else ''} "
                   f"({cv.scheme})" if cv else "the holdout validation split")
    print(f"  scored by {scoring}; answer: select {search.select}"
          + (", refit on training + validation and compared with the baseline" if search.refit else ", no refit"))
    print(f"  pruning: {_pruning(search, cfg.training.epochs)}")
    space = search.space(args.pipeline)
    if search.default_space:
        print(f"  techniques: none given, so kreg's default space for the model and data "
              f"(`kreg techniques --for {args.pipeline}` prints it)")
    for c in space.candidates:
        kind = "switchable" if c.optional else "always on"
        print(f"    {c.name:<22} {kind:<11} {c.spec_dict()}")
    for group in space.exclusive:
        print(f"  at most one of: {', '.join(group)}")
    if space.max_active is not None:
        print(f"  at most {space.max_active} techniques per trial")
    return 0


def _pruning(search, epochs: int) -> str:
    """How the pipeline prunes trials, in words: the pruner the search will build (``pruner_from``)."""
    from kreg.lab.search.pruning import pruner_from

    pruner = pruner_from(search, epochs)
    if pruner is None:
        return ("none: every trial trains to the end" if search.prune.rule == "none" else
                f"{search.prune.rule}, not applied: Hyperband stops trials by its own brackets")
    if pruner.by_fold:
        return pruner.describe()
    if pruner.rule == "median":
        return (f"median rule, from epoch {pruner.median.warmup_epochs + 1}, once {pruner.median.warmup_trials} "
                "trials completed")
    return f"ASHA, rungs at {pruner.asha.rungs(epochs)} epochs, the best 1/{pruner.asha.eta} go on"


def _resume_command(args) -> str:
    """This command line with ``--resume {}`` (the parent run id goes in the braces)."""
    words = ["kreg", "tune", args.pipeline]
    for flag in ("max_trials", "budget", "epochs", "seed", "cv", "select", "prune", "tracking_uri", "experiment",
                 "register", "workers"):
        if getattr(args, flag, None) is not None:
            words += [f"--{flag.replace('_', '-')}", str(getattr(args, flag))]
    if getattr(args, "chief", False):
        words += ["--chief", "--oracle-host", args.oracle_host, "--oracle-port", str(args.oracle_port)]
    return " ".join(shlex.quote(w).replace("{", "{{").replace("}", "}}") for w in words) + " --resume {}"


@owning_signals  # from the start: Ctrl-C while TensorFlow imports ends as cleanly as during a trial
def _cmd_tune(args) -> int:
    cfg = _load(args)  # a bad config exits before anything is imported or logged
    workers = args.workers if args.workers is not None else (0 if args.chief else 1)
    parallel = workers != 1 or args.chief
    if parallel:
        from kreg.lab.search.parallel import check_workers, quiet_chief_threads

        chief = f"{args.oracle_host}:{args.oracle_port}" if args.chief else None
        check_workers(workers, chief, args.worker_timeout)
        quiet_chief_threads()  # before TensorFlow loads: the chief trains nothing
    import mlflow  # noqa: F401  (configures its loggers on import; quiet them after)

    from kreg.lab.search.tune import tune
    from kreg.lab.tracking.console import RichReporter
    from kreg.lab.tracking.workers import ParallelReporter

    logging.getLogger("mlflow").setLevel(logging.WARNING)  # its INFO lines drown the progress

    config_text = Path(args.pipeline).read_text()
    extra = dict(workers=workers, chief=chief, worker_timeout=args.worker_timeout) if parallel else {}
    with import_paths(cfg.base, Path.cwd()):
        summary = tune(**cfg.tune_kwargs(source=args.pipeline), config_text=config_text,
                       reporter=ParallelReporter() if parallel else RichReporter(),
                       resume=args.resume, resume_command=_resume_command(args), **extra)
    return 0 if summary.status == "FINISHED" and summary.best is not None else 1


def _chief_overrides(config: dict) -> dict:
    """The settings a chief's command line may have overridden (seed, epochs, max_trials, cv, select, prune), from its
    config."""
    out = {}
    if isinstance(config, dict):
        if "seed" in config:
            out["seed"] = config["seed"]
        if isinstance(config.get("training"), dict) and "epochs" in config["training"]:
            out["epochs"] = config["training"]["epochs"]
        search = config.get("search")
        if isinstance(search, dict):
            for key in ("max_trials", "budget", "select", "prune"):
                if key in search:
                    out[key] = search[key]
            if isinstance(search.get("cv"), dict) and "folds" in search["cv"]:
                out["cv"] = search["cv"]["folds"]
    return out


@owning_signals
def _cmd_worker(args) -> int:
    from kreg.lab.search.rpc import default_tuner_id, parse_address

    oracle = args.oracle
    if oracle is None and os.environ.get("KERASTUNER_ORACLE_IP"):
        oracle = f"{os.environ['KERASTUNER_ORACLE_IP']}:{os.environ.get('KERASTUNER_ORACLE_PORT', '')}"
    try:
        host, port = parse_address(oracle or "")
    except ValueError:
        raise ConfigError("--oracle", oracle, "HOST:PORT of the chief's oracle (`kreg tune PIPELINE --chief` prints "
                          "it), or $KERASTUNER_ORACLE_IP and $KERASTUNER_ORACLE_PORT") from None
    if args.threads is not None:
        if args.threads < 1:
            raise ConfigError("--threads", args.threads, "a positive number of TensorFlow threads")
        from kreg.lab.search.parallel import thread_environment

        os.environ.update(thread_environment(args.threads))  # before TensorFlow loads
    cfg = load_pipeline(args.pipeline)  # a bad file exits before waiting for the chief
    import mlflow  # noqa: F401  (configures its loggers on import; quiet them after)

    from kreg.lab.search.parallel import join

    logging.getLogger("mlflow").setLevel(logging.WARNING)
    tuner_id = args.tuner_id or os.environ.get("KERASTUNER_TUNER_ID") or default_tuner_id()

    def tune_kwargs(info: dict) -> dict:  # the chief's --max-trials/--epochs/--seed apply here too
        return cfg.with_overrides(**_chief_overrides(info.get("config"))).tune_kwargs(source=args.pipeline)

    with import_paths(cfg.base, Path.cwd()):
        return join(tune_kwargs, host, port, tuner_id=tuner_id, tracking_uri=args.tracking_uri,
                    lost_after_s=args.worker_timeout, wait_s=args.wait)


def _cmd_techniques(args) -> int:
    if getattr(args, "pipeline", None):
        return _default_space_for(args.pipeline)
    from kreg.lab.techniques import MODALITIES, REGISTRY, TASKS, REQUIRED

    print(f"{'technique':<24} {'parameters (kind, default)':<44} {'acts on':<10} fits")
    for t in REGISTRY.values():
        params = ", ".join(f"{p.name} ({p.kind}{'' if p.default is REQUIRED else f', {p.default}'})"
                           for p in t.params) or "-"
        fits = []
        if t.modalities and tuple(t.modalities) != MODALITIES:
            fits.append("/".join(t.modalities))
        if tuple(t.tasks) != TASKS:
            fits.append("/".join(t.tasks))
        needs = {"conv": "models with convolutions", "hidden_dense": "models with hidden dense layers",
                 "residual": "models with skip connections"}
        if t.needs in needs:
            fits.append(needs[t.needs])
        print(f"{t.name:<24} {params:<44} {t.acts_on:<10} {'; '.join(fits) or 'any'}")
        print(f"{'':<24} {t.summary}")
    return 0


def _default_space_for(pipeline: str) -> int:
    """``kreg techniques --for PIPELINE``: the default space for the pipeline's model and data (builds the
    baseline model once; trains nothing, writes nothing to MLflow)."""
    cfg = load_pipeline(pipeline)
    kwargs = cfg.tune_kwargs(source=pipeline)
    from kreg.lab.search.default_space import explain

    with import_paths(cfg.base, Path.cwd()):
        found = explain(kwargs["model"], kwargs["data"], model_args=kwargs["model_args"],
                        tuner=kwargs["tuner"], max_active=cfg.search.max_active if cfg.search.default_space else None,
                        seed=kwargs["seed"])
    print(f"{pipeline}: " + ("search.techniques is absent: `kreg tune` searches kreg's default space"
                             if cfg.search.default_space else
                             "the pipeline searches its own space (search.techniques); without it, kreg would search"))
    print("\n".join(found.lines()))
    return 0


def _study_kinds() -> list[str]:
    from kreg.lab.studies import KINDS  # names only: the studies themselves import Keras

    return sorted(KINDS)


def _value(text: str):
    """``0.3`` -> 0.3, ``8`` -> 8, ``0.1,0.5,1`` -> (0.1, 0.5, 1), anything else as written."""
    import yaml

    if "," in text:
        return tuple(_value(part) for part in text.split(",") if part.strip())
    try:  # YAML 1.1 reads 1e-4 as text: numbers first
        return int(text) if text.strip().lstrip("+-").isdigit() else float(text)
    except ValueError:
        pass
    value = yaml.safe_load(text)
    return value if isinstance(value, (int, float, bool)) else text.strip()


def _pairs(text: str | None, field: str) -> dict:
    out = {}
    for item in [p for p in (text or "").split(",") if p.strip()]:
        if "=" not in item:
            raise ConfigError(field, item, "NAME=VALUE")
        name, value = item.split("=", 1)
        out[name.strip()] = _value(value)
    return out


def _cmd_study(args) -> int:
    from kreg.lab.studies import study

    options = {}
    for item in args.set:
        if "=" not in item:
            raise ConfigError("--set", item, "OPTION=VALUE")
        name, value = item.split("=", 1)
        options[name.strip()] = _value(value)
    kwargs = {"model": "mlp", "data": "digits", "model_args": {"width": 64, "depth": 2}, "epochs": 60}
    if args.pipeline:
        tune = load_pipeline(args.pipeline).tune_kwargs()
        kwargs = {k: tune[k] for k in ("model", "data", "model_args", "epochs", "batch_size", "learning_rate",
                                       "optimizer", "seed", "task") if tune.get(k) is not None}
    for key in ("epochs", "seed"):
        if getattr(args, key) is not None:
            kwargs[key] = getattr(args, key)
    result = study(args.kind, plan=_pairs(args.plan, "--plan"), tracking_uri=args.tracking_uri,
                   experiment=args.experiment, **kwargs, **options)
    del result  # a claim that did not hold is a finding, not an error: exit 0 either way
    return 0


def _cmd_ui(args) -> int:
    from kreg.lab.tracking.store import check_tracking_uri, resolve_tracking_uri
    from kreg.lab.ui import serve

    uri = check_tracking_uri(resolve_tracking_uri(args.tracking_uri))
    return serve(uri, args.host, args.port, workers=args.workers, allowed_hosts=args.allowed_hosts)


def _one_line_warning(message, category, filename, lineno, line=None) -> str:
    """A warning as the user reads it: ``kreg: warning: MESSAGE``, not Python's file, line and source (--verbose)."""
    return f"kreg: warning: {' '.join(str(message).split())}\n"


def main(argv=None) -> int:
    from kreg.lab.search.budget import command_started

    command_started(time.time())  # a search's budget counts from here, TensorFlow's import included
    args = _parser().parse_args(argv)
    if quiet_tensorflow(verbose=args.verbose):  # before anything imports TensorFlow
        warnings.formatwarning = _one_line_warning
    try:
        return {"tune": _cmd_tune, "worker": _cmd_worker, "validate": _cmd_validate, "techniques": _cmd_techniques,
                "study": _cmd_study, "ui": _cmd_ui}[args.command](args)
    except SearchInterrupted as exc:  # 128 + the signal; the search's own line was printed with its summary
        if exc.summary is None:  # before the search's parent run existed: nothing to resume
            print(f"kreg: {exc.message}", file=sys.stderr)
        return exc.exit_code
    except KregError as exc:  # bad input (2: nothing was changed), or the store failing at the very start (1)
        print(f"kreg: error: {exc}", file=sys.stderr)
        return exc.exit_code

if __name__ == "__main__":
    sys.exit(main())
