"""The ``kreg`` command: tune, validate, ui."""

from __future__ import annotations

import argparse
import logging
import shlex
import sys
from pathlib import Path

from kreg.lab.config import import_paths, load_pipeline
from kreg.lab.errors import ConfigError, DataError, ResumeError
from kreg.lab.search.signals import SearchInterrupted, owning_signals

EXIT_CONFIG = 2
EXIT_FAILED = 1


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="kreg", description="Find the regularization a Keras model needs.")
    sub = parser.add_subparsers(dest="command", required=True)

    tune = sub.add_parser("tune", help="search regularization for a pipeline and log every trial to MLflow")
    tune.add_argument("pipeline", help="pipeline YAML file, e.g. pipelines/mnist1d_cnn.yaml")
    tune.add_argument("--max-trials", type=int, help="override search.max_trials")
    tune.add_argument("--epochs", type=int, help="override training.epochs")
    tune.add_argument("--seed", type=int, help="override seed")
    tune.add_argument("--tracking-uri", help="MLflow tracking URI (default: $MLFLOW_TRACKING_URI, "
                                             "else sqlite:///<project>/mlruns/mlflow.db)")
    tune.add_argument("--experiment", help="MLflow experiment (default: the pipeline's name)")
    tune.add_argument("--resume", nargs="?", const=True, default=False, metavar="PARENT_RUN_ID",
                      help="continue the latest unfinished search of this pipeline (or the search with this "
                           "parent run id): finished trials are kept, an interrupted trial runs again")

    validate = sub.add_parser("validate", help="check a pipeline file and show its search space")
    validate.add_argument("pipeline")

    sub.add_parser("techniques", help="list every technique the search offers: parameters, what it acts on, "
                                      "which data and tasks it fits")

    ui = sub.add_parser("ui", help="MLflow UI over the project's store")
    ui.add_argument("--port", type=int, default=5000)
    ui.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    ui.add_argument("--tracking-uri", help="store to show (default: the project's)")
    ui.add_argument("--workers", type=int, default=1, help="server worker processes (default 1: a small machine)")
    ui.add_argument("--allowed-hosts", help="Host headers MLflow accepts (default: MLflow's, loopback and "
                                            "private addresses; '*' when --host is not loopback)")
    return parser


def _load(args):
    cfg = load_pipeline(args.pipeline)
    overrides = {k: getattr(args, k, None) for k in ("max_trials", "epochs", "seed", "tracking_uri", "experiment")}
    return cfg.with_overrides(**overrides)


def _cmd_validate(args) -> int:
    cfg = _load(args)
    search = cfg.search
    model = f"{cfg.model.type} {cfg.model.capacity()}" if cfg.model.type else f"builder {cfg.model.builder} {cfg.model.args}"
    data = cfg.data.spec(cfg.base)
    print(f"{args.pipeline}: valid pipeline '{cfg.name}'")
    print(f"  data: {data}")
    print(f"  model: {model}")
    print(f"  search: {search.tuner}, {search.max_trials} trials x {cfg.training.epochs} epochs, objective "
          f"{search.objective or 'the task default (val_accuracy; val_loss for regression)'}"
          + (f" (gap penalty {search.gap_penalty})" if search.objective == "gap_penalized" else ""))
    space = search.space(args.pipeline)
    for c in space.candidates:
        kind = "switchable" if c.optional else "always on"
        print(f"    {c.name:<22} {kind:<11} {c.spec_dict()}")
    for group in space.exclusive:
        print(f"  at most one of: {', '.join(group)}")
    if space.max_active is not None:
        print(f"  at most {space.max_active} techniques per trial")
    return 0


def _resume_command(args) -> str:
    """This command line with ``--resume {}`` (the parent run id goes in the braces)."""
    words = ["kreg", "tune", args.pipeline]
    for flag in ("max_trials", "epochs", "seed", "tracking_uri", "experiment"):
        if getattr(args, flag, None) is not None:
            words += [f"--{flag.replace('_', '-')}", str(getattr(args, flag))]
    return " ".join(shlex.quote(w).replace("{", "{{").replace("}", "}}") for w in words) + " --resume {}"


@owning_signals  # from the start: Ctrl-C while TensorFlow imports ends as cleanly as during a trial
def _cmd_tune(args) -> int:
    cfg = _load(args)  # a bad config exits before anything is imported or logged
    import mlflow  # noqa: F401  (configures its loggers on import; quiet them after)

    from kreg.lab.search.tune import tune
    from kreg.lab.tracking.console import RichReporter

    logging.getLogger("mlflow").setLevel(logging.WARNING)  # its INFO lines drown the progress

    config_text = Path(args.pipeline).read_text()
    with import_paths(cfg.base, Path.cwd()):
        summary = tune(**cfg.tune_kwargs(source=args.pipeline), reporter=RichReporter(), config_text=config_text,
                       resume=args.resume, resume_command=_resume_command(args))
    return 0 if summary.status == "FINISHED" and summary.best is not None else 1


def _cmd_techniques(args) -> int:
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
        if t.needs in ("conv", "hidden_dense"):
            fits.append({"conv": "models with convolutions", "hidden_dense": "models with hidden dense layers"}[t.needs])
        print(f"{t.name:<24} {params:<44} {t.acts_on:<10} {'; '.join(fits) or 'any'}")
        print(f"{'':<24} {t.summary}")
    return 0


def _cmd_ui(args) -> int:
    from kreg.lab.tracking.store import check_tracking_uri, resolve_tracking_uri
    from kreg.lab.ui import serve

    uri = check_tracking_uri(resolve_tracking_uri(args.tracking_uri))
    return serve(uri, args.host, args.port, workers=args.workers, allowed_hosts=args.allowed_hosts)


def main(argv=None) -> int:
    args = _parser().parse_args(argv)
    try:
        return {"tune": _cmd_tune, "validate": _cmd_validate, "techniques": _cmd_techniques, "ui": _cmd_ui}[args.command](args)
    except ConfigError as exc:
        print(f"kreg: error: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    except DataError as exc:  # raised while loading data, before any run is created
        print(f"kreg: error: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    except ResumeError as exc:  # nothing to resume, or not as asked: before any run changes
        print(f"kreg: error: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    except SearchInterrupted as exc:  # 128 + the signal; the search's own line was printed with its summary
        if exc.summary is None:  # before the search's parent run existed: nothing to resume
            print(f"kreg: {exc.message}", file=sys.stderr)
        return exc.exit_code
    except Exception as exc:  # the store failing at the very start (later, the search summary says it)
        from kreg.lab.tracking.mlflow import StoreError

        if not isinstance(exc, StoreError):
            raise
        print(f"kreg: error: {exc}", file=sys.stderr)
        return EXIT_FAILED


if __name__ == "__main__":
    sys.exit(main())
