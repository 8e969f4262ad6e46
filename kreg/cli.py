"""The ``kreg`` command: tune, validate, ui."""

from __future__ import annotations

import argparse
import logging
import os
import subprocess
import sys
from pathlib import Path

from kreg.config import ConfigError, load_pipeline
from kreg.data.names import DataError

EXIT_CONFIG = 2


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

    validate = sub.add_parser("validate", help="check a pipeline file and show its search space")
    validate.add_argument("pipeline")

    ui = sub.add_parser("ui", help="MLflow UI over the project's store")
    ui.add_argument("--port", type=int, default=5000)
    ui.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    ui.add_argument("--tracking-uri", help="store to show (default: the project's)")
    return parser


def _load(args):
    cfg = load_pipeline(args.pipeline)
    overrides = {k: getattr(args, k, None) for k in ("max_trials", "epochs", "seed", "tracking_uri", "experiment")}
    return cfg.with_overrides(**overrides)


def _cmd_validate(args) -> int:
    cfg = _load(args)
    search = cfg.search
    print(f"{args.pipeline}: valid pipeline '{cfg.name}'")
    print(f"  data: {cfg.data.dataset}  model: {cfg.model.type} {cfg.model.capacity()}")
    print(f"  search: {search.tuner}, {search.max_trials} trials x {cfg.training.epochs} epochs, "
          f"objective {search.objective}" + (f" (gap penalty {search.gap_penalty})" if search.objective == "gap_penalized" else ""))
    for name, tech in search.techniques.items():
        kind = "switchable" if tech.optional else "always on"
        print(f"    {name:<22} {kind:<11} {tech.model_dump(mode='json', exclude_none=True)['params']}")
    for group in search.exclusive:
        print(f"  at most one of: {', '.join(group)}")
    if search.max_active is not None:
        print(f"  at most {search.max_active} techniques per trial")
    return 0


def _cmd_tune(args) -> int:
    cfg = _load(args)  # a bad config exits before anything is imported or logged
    import mlflow  # noqa: F401  (configures its loggers on import; quiet them after)

    from kreg.pipeline import tune
    from kreg.reporting import RichReporter

    logging.getLogger("mlflow").setLevel(logging.WARNING)  # its INFO lines drown the progress

    config_text = Path(args.pipeline).read_text()
    summary = tune(cfg, reporter=RichReporter(), config_text=config_text)
    return 0 if summary.status == "FINISHED" and summary.best is not None else 1


def _cmd_ui(args) -> int:
    from kreg.tracking.store import local_store_path, resolve_tracking_uri

    uri = resolve_tracking_uri(args.tracking_uri)
    store = local_store_path(uri)
    if store is not None:
        store.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-m", "mlflow", "ui", "--backend-store-uri", uri,
               "--host", args.host, "--port", str(args.port)]
    print(f"MLflow UI on http://{args.host}:{args.port} over {uri} (Ctrl-C to stop)")
    try:
        return subprocess.call(command, env=os.environ.copy())
    except KeyboardInterrupt:
        return 0


def main(argv=None) -> int:
    args = _parser().parse_args(argv)
    try:
        return {"tune": _cmd_tune, "validate": _cmd_validate, "ui": _cmd_ui}[args.command](args)
    except ConfigError as exc:
        print(f"kreg: error: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    except DataError as exc:  # raised while loading data, before any run is created
        print(f"kreg: error: {exc}", file=sys.stderr)
        return EXIT_CONFIG


if __name__ == "__main__":
    sys.exit(main())
