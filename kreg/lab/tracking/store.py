"""Where runs go: the project's local sqlite MLflow store by default.

MLflow >= 3.7 would otherwise create ``mlflow.db`` in whatever directory the
user happens to be in, and the file store is refused from 3.13, so kreg points
MLflow at ``sqlite:///<project>/mlruns/mlflow.db`` with artifacts under
``<project>/mlruns/artifacts``. ``--tracking-uri`` or ``MLFLOW_TRACKING_URI``
override it.
"""

from __future__ import annotations

import contextlib
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


@contextlib.contextmanager
def file_lock(directory: Path, name: str = ".kreg.lock"):
    """An exclusive inter-process lock on ``directory`` (created if missing), held for the block.

    Two searches starting at once on a fresh store would both create
    MLflow's tables (``table ... already exists``) or the same experiment
    (``UNIQUE constraint failed``), and two preparing the same dataset would
    both write it (``FileExistsError``): the first to take the lock does it,
    the second then finds it done.
    """
    import fcntl

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    with open(directory / name, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


_DATABASES = ("postgresql", "mysql", "mssql", "oracle")


def _write_refused(directory: Path, database: Path) -> str | None:
    """What the system says to a real write (a small file created and removed in ``directory``, the database
    opened for writing if it exists); None when it takes it. Permission bits alone pass ``/proc`` and ``/sys``
    for root and miss read-only mounts."""
    import tempfile

    try:
        handle, name = tempfile.mkstemp(prefix=".kreg-write-check-", dir=directory)
        os.close(handle)
        os.unlink(name)
    except OSError as exc:
        return f"a test file cannot be created in {directory}: {exc.strerror or exc}"
    if database.is_file():
        try:
            with open(database, "r+b"):
                pass
        except OSError as exc:
            return f"{database} cannot be opened for writing: {exc.strerror or exc}"
    return None


def check_tracking_uri(uri: str, timeout: float = 5.0) -> str:
    """Fails fast, before any data loads, on a store kreg cannot use: returns the URI when it can.

    ``sqlite:///<path>``: the directory must be creatable and writable, the
    path not a directory. ``http(s)://``: the server must answer MLflow's
    ``/health`` within ``timeout`` seconds. A database URI
    (``postgresql://`` ...) must accept a connection within ``timeout``
    seconds. Anything else (a plain path, ``file:``, which MLflow 3.13
    refuses) is a ``ConfigError`` naming the field and the value.
    """
    from kreg.lab.errors import ConfigError

    scheme = uri.split(":", 1)[0].lower() if ":" in uri else ""
    base = scheme.split("+", 1)[0]
    if uri.startswith("sqlite:///"):
        path = Path(uri[len("sqlite:///"):])
        if path.is_dir():
            raise ConfigError("tracking_uri", uri, "sqlite:///<path of a database file> (this path is a directory)")
        existing = path.parent  # created when the first run is written, not by a check that may fail later
        while not existing.exists():
            existing = existing.parent
        if not existing.is_dir():
            raise ConfigError("tracking_uri", uri, f"a store whose directory can be created ({existing} is not "
                              "a writable directory)")
        if not os.access(existing, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
            raise ConfigError("tracking_uri", uri, "a writable sqlite store (its file or directory is read-only)")
        problem = _write_refused(existing, path)  # permissions say yes under /proc, /sys, a read-only mount
        if problem:
            raise ConfigError("tracking_uri", uri, f"a writable sqlite store ({problem})")
        return uri
    if base in ("http", "https"):
        import urllib.error
        import urllib.request

        try:
            with urllib.request.urlopen(uri.rstrip("/") + "/health", timeout=timeout) as response:
                response.read(64)
        except urllib.error.HTTPError as exc:  # something answered, but not an MLflow server's health check
            raise ConfigError("tracking_uri", uri, f"an MLflow tracking server ({uri.rstrip('/')}/health "
                              f"answered HTTP {exc.code} {exc.reason})") from None
        except (urllib.error.URLError, OSError, ValueError) as exc:
            reason = getattr(exc, "reason", exc)
            raise ConfigError("tracking_uri", uri, f"a reachable MLflow tracking server (no answer from "
                              f"{uri.rstrip('/')}/health within {timeout:g} s: {reason})") from None
        return uri
    if base in _DATABASES:
        import sqlalchemy

        connect_args = {"connect_timeout": int(timeout)} if base in ("postgresql", "mysql") else {}
        try:
            engine = sqlalchemy.create_engine(uri, connect_args=connect_args)
            with engine.connect():
                pass
            engine.dispose()
        except Exception as exc:  # driver missing, refused, bad credentials, timeout
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ConfigError("tracking_uri", uri, f"a database that accepts a connection ({first})") from None
        return uri
    if base == "databricks":
        return uri
    raise ConfigError("tracking_uri", uri, "sqlite:///<file>, http(s)://<MLflow server> or a database URI "
                      "such as postgresql://... (MLflow 3.13+ refuses plain paths and file: stores)")
