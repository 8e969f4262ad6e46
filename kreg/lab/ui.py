"""``kreg ui``: MLflow's UI over the project's store, owned like a long job.

The MLflow server runs in its own process group, so a signal to ``kreg ui``
(Ctrl-C, ``kill``, a closed terminal) stops every process it started; a
busy port is refused before anything starts; binding beyond loopback warns
(MLflow has no login here) and passes MLflow's allowed-hosts setting so a
remote browser is not turned away.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys

LOOPBACK = ("127.0.0.1", "localhost", "::1")
_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def port_problem(host: str, port: int) -> str | None:
    """None when ``host:port`` can be bound, else why not."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            return exc.strerror or str(exc)
    return None


def mlflow_command(uri: str, host: str, port: int, workers: int, allowed_hosts: str | None) -> list[str]:
    command = [sys.executable, "-m", "mlflow", "ui", "--backend-store-uri", uri, "--host", host,
               "--port", str(port), "--workers", str(workers)]
    if allowed_hosts:
        command += ["--allowed-hosts", allowed_hosts]
    return command


def serve(uri: str, host: str, port: int, workers: int = 1, allowed_hosts: str | None = None) -> int:
    """Runs the UI until it exits or a signal stops it; returns the exit code (128+n after signal n)."""
    problem = port_problem(host, port)
    if problem:
        print(f"kreg: error: cannot serve on {host}:{port}: {problem} (another server there? "
              "choose one with --port)", file=sys.stderr)
        return 1
    if host not in LOOPBACK:
        allowed_hosts = allowed_hosts or "*"
        print(f"kreg ui: warning: serving on {host}:{port}: anyone who can reach this machine can read and "
              f"change every run (MLflow asks for no login); allowed hosts: {allowed_hosts}", file=sys.stderr)
    command = mlflow_command(uri, host, port, workers, allowed_hosts)
    shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host
    print(f"MLflow UI on http://{shown}:{port} over {uri} (Ctrl-C to stop)", flush=True)
    for line in _latest_search_lines(uri, f"http://{shown}:{port}"):
        print(line, flush=True)
    env = os.environ.copy()
    # MLflow 3's job runner (GenAI jobs: 8 more processes, about 0.5 GB) has nothing to do for kreg's runs.
    env.setdefault("MLFLOW_SERVER_ENABLE_JOB_EXECUTION", "false")
    server = subprocess.Popen(command, env=env, start_new_session=True)
    received: list[int] = []

    def stop(signum, frame):
        received.append(signum)
        _stop_group(server)

    previous = {s: signal.signal(s, stop) for s in _STOP_SIGNALS}
    try:
        code = server.wait()
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
        _stop_group(server)
    return 128 + received[0] if received else code


_LATEST = """import sys
from kreg.lab.tracking.views import latest_search_lines
print("\\n".join(latest_search_lines(sys.argv[1], sys.argv[2])))
"""


def _latest_search_lines(uri: str, base: str) -> list[str]:
    """``latest_search_lines`` from a short-lived process: importing MLflow here would keep about 220 MiB in the
    supervisor for as long as the UI runs (it holds 50 MiB without). A failure is a warning, not the UI's end."""
    try:
        result = subprocess.run([sys.executable, "-c", _LATEST, uri, base], capture_output=True, text=True,
                                timeout=120)
    except (OSError, subprocess.TimeoutExpired) as exc:
        print(f"kreg ui: warning: could not read the latest search: {exc}", file=sys.stderr)
        return []
    if result.returncode != 0:
        said = (result.stderr.strip().splitlines() or [f"exit {result.returncode}"])[-1]
        print(f"kreg ui: warning: could not read the latest search: {said}", file=sys.stderr)
        return []
    return [line for line in result.stdout.splitlines() if line.strip()]


def _stop_group(server: subprocess.Popen, grace_s: float = 5.0) -> None:
    """SIGTERM to the server's whole process group (its workers too), SIGKILL after ``grace_s``."""
    try:
        os.killpg(server.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        server.wait(timeout=grace_s)
    except subprocess.TimeoutExpired:
        pass
    try:
        os.killpg(server.pid, signal.SIGKILL)  # workers that outlived their parent, or a stuck server
    except ProcessLookupError:
        pass
