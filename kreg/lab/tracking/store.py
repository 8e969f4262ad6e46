"""Where runs go: the project's local sqlite MLflow store by default.

MLflow >= 3.7 would otherwise create ``mlflow.db`` in whatever directory the
user happens to be in, and the file store is refused from 3.13, so kreg points
MLflow at ``sqlite:///<project>/mlruns/mlflow.db`` with artifacts under
``<project>/mlruns/artifacts``. ``--tracking-uri`` or ``MLFLOW_TRACKING_URI``
override it.
"""

from __future__ import annotations

import os
from pathlib import Path


def project_root() -> Path:
    """``$KREG_HOME``, else the source checkout kreg runs from, else the cwd."""
    if os.environ.get("KREG_HOME"):
        return Path(os.environ["KREG_HOME"]).resolve()
    checkout = Path(__file__).resolve().parents[3]  # kreg/lab/tracking/store.py
    if (checkout / "pyproject.toml").is_file() and (checkout / "kreg").is_dir():
        return checkout
    return Path.cwd().resolve()


def store_dir(root: Path | None = None) -> Path:
    return (root or project_root()) / "mlruns"


def default_tracking_uri(root: Path | None = None) -> str:
    return f"sqlite:///{store_dir(root) / 'mlflow.db'}"


def resolve_tracking_uri(uri: str | None = None) -> str:
    """Explicit URI, else ``MLFLOW_TRACKING_URI``, else the project's sqlite store."""
    return uri or os.environ.get("MLFLOW_TRACKING_URI") or default_tracking_uri()


def local_store_path(uri: str) -> Path | None:
    """The directory of a ``sqlite:///`` store, None for other stores."""
    prefix = "sqlite:///"
    if uri.startswith(prefix):
        return Path(uri[len(prefix):]).resolve().parent
    return None


def artifact_root_for(uri: str) -> str | None:
    """Artifact location for new experiments in a local sqlite store: beside it."""
    directory = local_store_path(uri)
    return (directory / "artifacts").as_uri() if directory else None
