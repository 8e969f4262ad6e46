"""The wire between a chief and its workers: keras-tuner's oracle service plus kreg's own two calls.

keras-tuner's distributed mode serves the oracle over gRPC (service
``OracleService``: ``CreateTrial``, ``UpdateTrial``, ``EndTrial``, ...): the
chief holds the oracle, each worker's tuner asks it for a trial, trains it
and reports the result. kreg keeps that protocol as it is and adds one small
service beside it on the same port (``kreg.Search``, JSON payloads):

- ``Info``: what a worker needs to join: the parent run, the tracking URI,
  the experiment, the search's fingerprint and spec (a worker whose own
  pipeline resolves to another search is refused, naming the change), the
  chief's command-line overrides.
- ``Beat``: a worker's heartbeat, every few seconds, with its progress (the
  trial, the epoch, the validation figure and gap) and each finished
  trial's line for the chief's console. The answer can tell the worker to
  stop (the chief is closing, or gave the worker up for dead).

Two policies differ from keras-tuner's own server (``oracle_chief``):

- A worker that asks for a trial when none is left while others still run
  theirs hears ``IDLE`` (ask again soon), not ``STOPPED``: if one of those
  workers dies, its trial goes back to the queue and an idle worker takes it.
- Only the chief decides when the search ends (``Board.done``); it polls
  every fraction of a second instead of keras-tuner's 20 s.
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
from concurrent import futures

import grpc

from kreg.errors import KregError
from kreg.lab.search import _keras_tuner as _kt
from kreg.lab.search._keras_tuner import OracleServicer, Trial, protos, synchronized

SERVICE = "kreg.Search"
RUNNING, IDLE, STOPPED = _kt.TrialStatus.RUNNING, _kt.TrialStatus.IDLE, _kt.TrialStatus.STOPPED


def quiet_mlflow() -> None:
    """No progress bars when trials are read back, no "View run at" line per run on a tracking server."""
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    os.environ.setdefault("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")


def address(host: str, port: int) -> str:
    """``host:port`` as gRPC takes it (IPv6 literals in brackets)."""
    return f"[{host}]:{port}" if ":" in host and not host.startswith("[") else f"{host}:{port}"


def parse_address(text: str) -> tuple[str, int]:
    """``HOST:PORT`` (or ``[v6]:PORT``) -> (host, port); ValueError otherwise."""
    host, sep, port = text.strip().rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"expected HOST:PORT, got {text!r}")
    return host.strip("[]"), int(port)


def _encode(data) -> bytes:
    return json.dumps(data, default=str).encode()


def _decode(raw: bytes):
    return json.loads(raw.decode() or "null")


# ------------------------------------------------------------------ the chief's side
class Board:
    """What the chief knows of its workers: when each was last heard, what it runs, lines to show.

    Every method is thread-safe (gRPC calls arrive on the server's threads).
    """

    def __init__(self, oracle, info: dict):
        self.oracle, self.info = oracle, info
        self.lock = threading.Lock()
        self.last_seen: dict[str, float] = {}
        self.progress: dict[str, dict] = {}
        self.lines: list[tuple[str, str]] = []
        self.dead: set[str] = set()  # given up for dead: told to stop if heard again
        self.left: set[str] = set()  # left on their own (finished, or stopped by a signal)
        self.stop_reason: str | None = None  # the chief is closing: every worker is told to stop
        self.stop_triggered = False  # the oracle has proposed its last trial
        self.failure: str | None = None  # the oracle stopped the search (too many failed trials in a row)

    def heard(self, tuner_id: str) -> None:
        with self.lock:
            self.last_seen[tuner_id] = time.monotonic()

    def beat(self, payload: dict) -> dict:
        tuner_id = str(payload.get("tuner_id", "?"))
        with self.lock:
            self.last_seen[tuner_id] = time.monotonic()
            if "trial_id" in payload:
                self.progress[tuner_id] = {k: payload.get(k) for k in ("trial_id", "epoch", "epochs", "val", "gap")}
            for line in payload.get("lines") or []:
                self.lines.append((tuner_id, str(line)))
            if payload.get("leaving"):
                self.left.add(tuner_id)
                self.progress.pop(tuner_id, None)
            if tuner_id in self.dead:
                return {"stop": f"the chief gave {tuner_id} up for dead (no heartbeat in time); "
                                "its trial runs elsewhere"}
            return {"stop": self.stop_reason}

    def take_lines(self) -> list[tuple[str, str]]:
        with self.lock:
            lines, self.lines = self.lines, []
        return lines

    def silent(self, timeout_s: float) -> list[str]:
        """Workers the oracle counts on (asked for trials, not finished) not heard for ``timeout_s``."""
        now = time.monotonic()
        known = _counted(self.oracle)
        with self.lock:
            return sorted(t for t in known if t not in self.dead
                          and now - self.last_seen.get(t, now) > timeout_s)

    def done(self) -> bool:
        """The oracle proposed its last trial, none is running or queued, and every worker heard so."""
        return _done(self.oracle, self.stop_triggered)


@synchronized
def _counted(oracle) -> set[str]:
    return set(oracle.tuner_ids) | set(oracle.ongoing_trials)


@synchronized
def _done(oracle, stop_triggered: bool) -> bool:
    return (stop_triggered and not oracle.ongoing_trials and not oracle.tuner_ids
            and not _kt.retry_queue(oracle))


@synchronized
def _create_trial(oracle, tuner_id: str):
    """keras-tuner's ``create_trial``, but ``IDLE`` instead of ``STOPPED`` while other trials still run."""
    trial = oracle.create_trial(tuner_id)
    if trial.status == STOPPED and oracle.ongoing_trials:
        oracle.tuner_ids.add(tuner_id)  # create_trial let it go; it waits for the others instead
        trial.status = IDLE
    return trial


def _locked(name: str):
    """keras-tuner's handler ``name``, run under ``synchronized``: an error answers that call, never holds the lock."""
    method = getattr(OracleServicer, name)

    def handler(self, request, context):
        return synchronized(lambda oracle: method(self, request, context))(self.oracle)

    handler.__name__ = name
    return handler


class Servicer(OracleServicer):
    """keras-tuner's oracle service, with heartbeats on every call and kreg's end-of-search policy."""

    GetSpace, UpdateSpace, UpdateTrial, GetTrial, GetBestTrials = (
        _locked(n) for n in ("GetSpace", "UpdateSpace", "UpdateTrial", "GetTrial", "GetBestTrials"))

    def __init__(self, oracle, board: Board):
        super().__init__(oracle)
        self.board = board

    def CreateTrial(self, request, context):
        tuner_id = request.tuner_id
        self.board.heard(tuner_id)
        if tuner_id in self.board.dead or self.board.stop_reason:
            trial = Trial(self.oracle.get_space(), status=STOPPED)
        else:
            trial = _create_trial(self.oracle, tuner_id)
            if trial.status == STOPPED:
                self.board.stop_triggered = True
        return protos.get_service().CreateTrialResponse(trial=trial.to_proto())

    def EndTrial(self, request, context):
        failure = _end_trial(self.oracle, Trial.from_proto(request.trial))
        if failure:  # keras-tuner's limit of consecutive failed trials: the search stops
            self.board.failure = failure
        return protos.get_service().EndTrialResponse()


@synchronized
def _end_trial(oracle, trial) -> str | None:
    """Ends ``trial``; the error keras-tuner raises when too many trials failed in a row, if it does."""
    try:
        oracle.end_trial(trial)
    except RuntimeError as exc:  # raised once the trial is in end_order, before keras-tuner finishes ending it
        for tuner_id, ongoing in list(oracle.ongoing_trials.items()):
            if ongoing.trial_id == trial.trial_id:
                del oracle.ongoing_trials[tuner_id]
        _kt.save_trial(oracle, oracle.trials[trial.trial_id])
        oracle.save()
        text = str(exc).strip()
        return text.splitlines()[0] if text else "RuntimeError"
    return None


def serve(oracle, board: Board, host: str, port: int) -> tuple[grpc.Server, int]:
    """Starts the oracle's gRPC server on ``host:port`` (0: a free port); returns it and the bound port."""
    _kt.apply_patches()  # keras-tuner's patches, where they are needed: the process that serves the oracle
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4, thread_name_prefix="kreg-oracle"))
    protos.get_service_grpc().add_OracleServicer_to_server(Servicer(oracle, board), server)
    handlers = {
        "Info": grpc.unary_unary_rpc_method_handler(lambda raw, context: _encode(board.info)),
        "Beat": grpc.unary_unary_rpc_method_handler(lambda raw, context: _encode(board.beat(_decode(raw) or {}))),
    }
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE, handlers),))
    try:
        bound = server.add_insecure_port(address(host, port))
    except RuntimeError as exc:  # grpc raises when it cannot bind
        raise OSError(f"cannot serve the oracle on {address(host, port)}: {exc}") from None
    if not bound:
        raise OSError(f"cannot serve the oracle on {address(host, port)} (address in use or not this machine's)")
    server.start()
    return server, bound


# ------------------------------------------------------------------ the worker's side
class ChiefLost(KregError, RuntimeError):
    """The chief stopped answering, or told this worker to stop."""

    exit_code = 1


class Connection:
    """A worker's channel to the chief: keras-tuner's oracle stub and kreg's ``Info``/``Beat``."""

    def __init__(self, host: str, port: int):
        _kt.apply_patches()  # keras-tuner's patches, where they are needed: a process that talks to a chief
        self.target = address(host, port)
        self.channel = grpc.insecure_channel(self.target)
        self.stub = protos.get_service_grpc().OracleStub(self.channel)
        self._info = self.channel.unary_unary(f"/{SERVICE}/Info")
        self._beat = self.channel.unary_unary(f"/{SERVICE}/Beat")

    def info(self, wait_s: float) -> dict:
        """The chief's ``Info``, waiting up to ``wait_s`` for it to come up."""
        try:
            return _decode(self._info(b"", timeout=wait_s, wait_for_ready=True))
        except grpc.RpcError as exc:
            raise ChiefLost(f"no chief answered at {self.target} within {wait_s:g} s ({exc.code().name})") from None

    def beat(self, payload: dict, timeout_s: float = 10.0) -> dict:
        return _decode(self._beat(_encode(payload), timeout=timeout_s)) or {}

    def close(self) -> None:
        self.channel.close()


class OracleClient:
    """keras-tuner's ``OracleClient`` over a ``Connection``: what a worker's tuner holds as its oracle.

    Calls time out after ``timeout_s`` (keras-tuner waits an hour); an
    ``IDLE`` answer (no trial yet: others still run) waits ``idle_s``
    before the tuner asks again.
    """

    def __init__(self, oracle, connection: Connection, tuner_id: str, timeout_s: float = 120.0,
                 idle_s: float = 1.0):
        self._oracle, self.connection, self.tuner_id = oracle, connection, tuner_id
        self.timeout_s, self.idle_s = timeout_s, idle_s
        self.multi_worker, self.should_report = False, True

    def __getattr__(self, name):
        if name in ("objective", "max_trials", "allow_new_entries", "tune_new_entries"):
            return getattr(self._oracle, name)
        raise AttributeError(f"the chief's oracle has no attribute {name!r} here")

    def _call(self, method: str, request):
        try:
            return getattr(self.connection.stub, method)(request, timeout=self.timeout_s, wait_for_ready=True)
        except grpc.RpcError as exc:
            raise ChiefLost(f"the chief at {self.connection.target} did not answer {method} "
                            f"({exc.code().name})") from None

    def get_space(self):
        response = self._call("GetSpace", protos.get_service().GetSpaceRequest())
        return _kt.HyperParameters.from_proto(response.hyperparameters)

    def update_space(self, hyperparameters):
        self._call("UpdateSpace", protos.get_service().UpdateSpaceRequest(hyperparameters=hyperparameters.to_proto()))

    def create_trial(self, tuner_id):
        response = self._call("CreateTrial", protos.get_service().CreateTrialRequest(tuner_id=tuner_id))
        trial = Trial.from_proto(response.trial)
        if trial.status == IDLE:
            time.sleep(self.idle_s)
        return trial

    def update_trial(self, trial_id, metrics, step=0):
        response = self._call("UpdateTrial", protos.get_service().UpdateTrialRequest(
            trial_id=trial_id, metrics=metrics, step=step))
        return Trial.from_proto(response.trial)

    def end_trial(self, trial):
        self._call("EndTrial", protos.get_service().EndTrialRequest(trial=trial.to_proto()))

    def get_trial(self, trial_id):
        response = self._call("GetTrial", protos.get_service().GetTrialRequest(trial_id=trial_id))
        return Trial.from_proto(response.trial)

    def get_best_trials(self, num_trials=1):
        response = self._call("GetBestTrials", protos.get_service().GetBestTrialsRequest(num_trials=num_trials))
        return [Trial.from_proto(t) for t in response.trials]


def default_tuner_id() -> str:
    """``<host>-<pid>``: unique among the workers of a search."""
    return f"{socket.gethostname()}-{os.getpid()}"
