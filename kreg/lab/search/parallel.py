"""Parallel trials on one machine: ``kreg tune PIPELINE --workers N`` / ``kreg.tune(..., workers=N)``.

The calling process becomes the search's chief (``chief``: the parent run,
keras-tuner's oracle served over gRPC on loopback, the summary) and starts N
worker processes (``LocalPool``) that run the trials (``worker``). Each
worker is a fresh Python process (multiprocessing's ``spawn``: nothing of
the chief's TensorFlow state is forked) given the same ``kreg.tune``
arguments, which it resolves again (data, model, space) and checks against
the chief's fingerprint before it runs anything.

The workers share the cores instead of fighting for them: each gets
``TF_NUM_INTRAOP_THREADS = max(1, cores // N)``, ``TF_NUM_INTEROP_THREADS =
1`` and ``OMP_NUM_THREADS`` in its environment before TensorFlow loads.
The chief trains no trial (its oracle's numerical libraries get one
thread), but once every worker is done it refits the chosen plan, so its
TensorFlow keeps every core (the worker that ran the baseline refit that
one already, while the others ran trials: ``worker``).

The workers write their child runs to the same store. On the default local
sqlite store that is several writers on one file: kreg measured it holds
(``tests/test_parallel.py``: writers in separate processes, many more writes
a second than a search makes, every write there; MLflow waits up to 20 s for
sqlite's lock and kreg writes a trial's epochs at most every 5 s), so no
tracking server is started for a local search. Searches across machines use
a shared tracking server (docs/guide/parallel.md, "A team: many machines").

Each worker's output goes to ``workers/<label>.log`` in the search's state
directory; its last lines are shown if it dies.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import pickle
import re
import signal
from pathlib import Path

_TF_NOISE = re.compile(r"^([IWE]\d{4} |WARNING: All log messages before absl)")  # TensorFlow's C++ start-up lines


def cores() -> int:
    """CPU cores this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def thread_environment(threads: int) -> dict:
    """TensorFlow's and OpenMP's thread counts for one worker (set before TensorFlow loads)."""
    return {"TF_NUM_INTRAOP_THREADS": str(threads), "TF_NUM_INTEROP_THREADS": "1", "OMP_NUM_THREADS": str(threads)}


def quiet_chief_threads() -> None:
    """The chief's oracle (numpy, scikit-learn) gets one OpenMP thread (unless the user set it), before they
    load. TensorFlow keeps every core: the chief's only training is the refit at the end, when the workers
    are done (one thread made it the slowest part of a small search's end)."""
    os.environ.setdefault("OMP_NUM_THREADS", thread_environment(1)["OMP_NUM_THREADS"])


@contextlib.contextmanager
def _environment(values: dict):
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


class LocalPool:
    """N worker processes on this machine, started once the chief serves (``start``)."""

    def __init__(self, count: int, asked, *, worker_timeout_s: float = 30.0, threads: int | None = None):
        self.count = count
        self.threads = threads or max(1, cores() // count)
        self.worker_timeout_s = worker_timeout_s
        try:
            self.payload = pickle.dumps(asked)  # the search's Request (kreg.lab.search.prepare.request)
        except Exception as exc:
            from kreg.lab.errors import ConfigError

            raise ConfigError("workers", count, "arguments a worker process can receive (picklable: a model "
                              "function defined at a module's top level, arrays or a dataset name, not a "
                              f"tf.data pipeline; or run `kreg tune PIPELINE --workers N`). Pickling failed: "
                              f"{type(exc).__name__}: {exc}") from None
        self.processes: dict[str, multiprocessing.Process] = {}
        self.logs: dict[str, Path] = {}
        self.log_dir: Path | None = None
        self._reported: set[str] = set()

    def start(self, host: str, port: int) -> None:
        """Starts the workers (spawned: each gets this process's environment and import path, ``sys.path``).

        Their logs go to a temporary directory until the chief knows the
        search's state directory (``keep_logs``).
        """
        import tempfile

        log_dir = self.log_dir = Path(tempfile.mkdtemp(prefix="kreg-workers-"))
        context = multiprocessing.get_context("spawn")
        env = {**thread_environment(self.threads), "TF_CPP_MIN_LOG_LEVEL": os.environ.get("TF_CPP_MIN_LOG_LEVEL", "2"),
               "PYTHONUNBUFFERED": "1"}
        with _environment(env):  # a spawned process starts with this process's environment
            for i in range(1, self.count + 1):
                label = f"w{i}"
                self.logs[label] = log_dir / f"{label}.log"
                process = context.Process(
                    target=_local_worker, name=f"kreg-{label}", daemon=False,
                    args=(self.payload, host, port, label, str(self.logs[label]), self.worker_timeout_s))
                process.start()
                self.processes[label] = process

    def exited(self) -> list[tuple[str, int, list[str]]]:
        """Workers that exited since the last call: (label, exit code, last lines of their log)."""
        out = []
        for label, process in self.processes.items():
            if label not in self._reported and process.exitcode is not None:
                self._reported.add(label)
                out.append((label, process.exitcode, self.tail(label)))
        return out

    def alive(self) -> int:
        return sum(p.is_alive() for p in self.processes.values())

    def tail(self, label: str, lines: int = 5) -> list[str]:
        path = self.logs.get(label)
        try:
            text = path.read_text(errors="replace") if path else ""
        except OSError:
            return []
        return [line for line in text.splitlines() if line.strip() and not _TF_NOISE.match(line)][-lines:]

    def last_words(self) -> str:
        """`` (w1: exit 1: <its last line>; ...)`` for the workers that failed."""
        parts = []
        for label, process in self.processes.items():
            if process.exitcode not in (None, 0):
                tail = self.tail(label, 1)
                parts.append(f"{label}: exit {process.exitcode}" + (f": {tail[-1]}" if tail else ""))
        return f" ({'; '.join(parts)})" if parts else ""

    def signal(self, signum: int) -> None:
        for process in self.processes.values():
            if process.is_alive():
                _signal_group(process.pid, signum)

    def stop(self, signum: int | None = None, wait_s: float = 30.0) -> None:
        """Signals every worker (SIGTERM by default), waits, deletes the logs."""
        self.signal(signum or signal.SIGTERM)
        self.wait(wait_s)
        self.keep_logs(None)

    def keep_logs(self, directory: Path | None) -> None:
        """Moves the workers' logs to ``directory`` (None: deletes them)."""
        import shutil

        if self.log_dir is None:
            return
        if directory is not None:
            Path(directory).mkdir(parents=True, exist_ok=True)
            for label, path in self.logs.items():
                with contextlib.suppress(OSError):
                    shutil.copyfile(path, Path(directory) / path.name)
                self.logs[label] = Path(directory) / path.name
        shutil.rmtree(self.log_dir, ignore_errors=True)
        self.log_dir = None

    def kill(self, label: str) -> None:
        process = self.processes.get(label)
        if process is not None and process.is_alive():
            _signal_group(process.pid, signal.SIGKILL)

    def wait(self, timeout_s: float) -> None:
        """Waits for every worker to exit (``timeout_s`` in all), then kills those left."""
        import time

        deadline = time.monotonic() + timeout_s
        for process in self.processes.values():
            process.join(max(0.0, deadline - time.monotonic()))
        for process in self.processes.values():
            if process.is_alive():
                _signal_group(process.pid, signal.SIGKILL)
                process.join(5.0)


def _signal_group(pid: int, signum: int) -> None:
    """The worker's process group (it leads one: its own session), else the process."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        try:
            os.killpg(pid, signum)
        except ProcessLookupError:
            os.kill(pid, signum)


def _local_worker(payload: bytes, host: str, port: int, label: str, log_path: str, lost_after_s: float):
    """A local worker process's body: its own session, output to its log, the worker's exit code."""
    import sys

    os.setsid()  # the chief forwards signals; a Ctrl-C meant for the chief reaches it alone
    fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)
    code = join(pickle.loads(payload), host, port, tuner_id=label, echo=False, lost_after_s=lost_after_s)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)  # every write is done: skip TensorFlow's and gRPC's slow interpreter teardown


def join(asked, host: str, port: int, *, tuner_id: str, echo: bool = True, lost_after_s: float = 30.0,
         wait_s: float = 600.0, tracking_uri: str | None = None) -> int:
    """Joins the chief at ``host:port`` with the search's request; returns the worker's exit code.

    ``asked``: the chief's ``Request`` (``kreg.lab.search.prepare.request``), or a function of the chief's
    ``Info`` returning ``kreg.tune`` keywords (``kreg worker`` adopts the chief's overrides; ``request``
    turns them into the objects as ``tune`` does); ``tracking_uri``: the store this worker writes to
    (default: the chief's).
    """
    import dataclasses
    import sys

    from kreg.lab.errors import ConfigError, DataError
    from kreg.lab.search import signals
    from kreg.lab.search.rpc import ChiefLost, Connection, quiet_mlflow
    from kreg.lab.search.prepare import prepare, request
    from kreg.lab.search.worker import EXIT_FAILED, EXIT_REFUSED, JoinError, run_worker

    quiet_mlflow()
    with signals.owned_signals():
        connection = Connection(host, port)
        try:
            if callable(asked):  # the keywords depend on the chief's settings: ask first
                info = connection.info(wait_s)
                prepared = prepare(request(**{**asked(info), "experiment": info["experiment"],
                                              "tracking_uri": tracking_uri or info["tracking_uri"]}))
            else:  # the chief's own request: prepare while the chief starts
                prepared = prepare(dataclasses.replace(asked, tracking_uri=tracking_uri) if tracking_uri else asked)
                info = connection.info(wait_s)
            return run_worker(prepared, connection, info, tuner_id=tuner_id, echo=echo, lost_after_s=lost_after_s)
        except (ConfigError, DataError, JoinError) as exc:
            print(f"kreg worker {tuner_id}: error: {exc}", file=sys.stderr, flush=True)
            return EXIT_REFUSED
        except ChiefLost as exc:
            print(f"kreg worker {tuner_id}: {exc}", file=sys.stderr, flush=True)
            return EXIT_FAILED
        except signals.SearchInterrupted as exc:  # before the first trial
            print(f"kreg worker {tuner_id}: {exc.message}", file=sys.stderr, flush=True)
            return exc.exit_code
        finally:
            connection.close()


LOOPBACK = ("127.0.0.1", "localhost", "::1")


def check_workers(workers, chief, worker_timeout) -> None:
    """``ConfigError`` for a worker count, chief address or timeout that cannot work."""
    from kreg.lab.errors import ConfigError
    from kreg.lab.search.rpc import parse_address

    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 0 or (workers == 0 and chief is None):
        raise ConfigError("workers", workers, "a positive number of worker processes (0 only beside `chief`)")
    if chief is not None:
        try:
            parse_address(str(chief))
        except ValueError:
            raise ConfigError("chief", chief, "HOST:PORT to serve the oracle on, e.g. 0.0.0.0:8470") from None
    if isinstance(worker_timeout, bool) or not isinstance(worker_timeout, (int, float)) or worker_timeout <= 0:
        raise ConfigError("worker_timeout", worker_timeout, "a positive number of seconds")


def free_port(host: str) -> int:
    """A port nobody listens on now (the chief binds it a few seconds later; its workers already know it)."""
    import socket

    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def run_parallel(asked, *, workers: int, chief: str | None = None, worker_timeout: float = 30.0,
                 verbose: int = 1, reporter=None, resume=False, resume_command: str | None = None,
                 started: float | None = None):
    """``kreg.tune`` with ``workers``/``chief``: this process is the chief; returns the ``SearchSummary``.

    The local workers start first, so their imports and data loading overlap
    the chief's own checks; they wait for the chief's oracle to come up.
    """
    import sys

    from kreg.lab.search.rpc import parse_address
    from kreg.lab.search.prepare import prepare

    check_workers(workers, chief, worker_timeout)
    host, port = parse_address(chief) if chief else ("127.0.0.1", 0)
    if host not in LOOPBACK:
        print(f"kreg: warning: serving the oracle on {host}:{port}: anyone who can reach it can ask for trials and "
              "report results (keras-tuner's protocol has no login); keep it inside a trusted network",
              file=sys.stderr)
    port = port or free_port(host)
    pool = LocalPool(workers, asked, worker_timeout_s=worker_timeout) if workers > 0 else None
    if pool is not None:
        pool.start("127.0.0.1" if host in ("0.0.0.0", "::") else host, port)
    try:
        return _chief(asked, prepare(asked), host=host, port=port, pool=pool, remote=chief is not None,
                      worker_timeout=worker_timeout, verbose=verbose, reporter=reporter, resume=resume,
                      resume_command=resume_command, started=started)
    except BaseException:
        # A bad setting or data (the workers meet the same), or a store the chief could not open: the workers
        # are waiting for an oracle that will never serve. Stop them now, or this process would wait for them
        # at exit (multiprocessing joins its children). After a search ran they have exited already.
        if pool is not None:
            pool.stop()
        raise


def _chief(asked, prepared, *, host: str, port: int, pool, remote: bool, worker_timeout: float,
           verbose: int, reporter, resume, resume_command: str | None, started: float | None = None):
    from kreg.lab.search.chief import run_chief

    if reporter is None and verbose:
        import logging

        import mlflow  # noqa: F401  (configures its loggers on import; quiet them after)

        from kreg.lab.tracking.workers import ParallelReporter

        logging.getLogger("mlflow").setLevel(logging.WARNING)
        reporter = ParallelReporter()
    source = asked.source
    join_command = (f"kreg worker {source} --oracle {{}}" if source and str(source).endswith((".yaml", ".yml"))
                    else "kreg worker PIPELINE --oracle {}")
    return run_chief(prepared, host=host, port=port, pool=pool, remote=remote,
                     worker_timeout_s=worker_timeout, reporter=reporter, resume=resume,
                     resume_command=resume_command, join_command=join_command, started=started)
