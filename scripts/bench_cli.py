"""How long the ``kreg`` commands that train nothing take to answer, and how much memory ``kreg ui`` holds.

Each command runs ``--repeats`` times as a fresh process (the installed
``kreg`` console script next to this Python); the median wall time is
printed with the modules it loaded (none of Keras, TensorFlow, MLflow). Then
``kreg ui`` is started on a free port over a temporary store, and the resident
memory of its supervisor (the ``kreg`` process) and of the MLflow server it
started are read from ``/proc`` once the server answers.

    python scripts/bench_cli.py --repeats 5
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
KREG = str(Path(sys.executable).with_name("kreg"))
COMMANDS = [["--help"], ["tune", "--help"], ["study", "--help"], ["ui", "--help"], ["techniques"],
            ["validate", "pipelines/mnist1d_cnn.yaml"], ["validate", "pipelines/digits_cnn.yaml"]]
_PROBE = ("import sys, runpy; sys.argv = [sys.argv[1], *sys.argv[2:]]\n"
          "try:\n    runpy.run_path(sys.argv[0], run_name='__main__')\nexcept SystemExit:\n    pass\n"
          "print('LOADED', ','.join(m for m in ('keras', 'tensorflow', 'mlflow') if m in sys.modules), file=sys.stderr)")


def _time(argv: list[str], repeats: int) -> tuple[float, str]:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        subprocess.run([KREG, *argv], cwd=ROOT, capture_output=True, check=False)
        times.append(time.perf_counter() - start)
    probe = subprocess.run([sys.executable, "-c", _PROBE, KREG, *argv], cwd=ROOT, capture_output=True, text=True)
    loaded = next((line[7:] for line in probe.stderr.splitlines() if line.startswith("LOADED ")), "?")
    return statistics.median(times), loaded or "-"


def _rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _descendants(pid: int) -> list[int]:
    out = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        path = task / "children"
        if path.exists():
            for child in (int(p) for p in path.read_text().split()):
                out += [child, *_descendants(child)]
    return out


def _ui_memory(timeout_s: float = 60.0) -> tuple[float, float, int]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with tempfile.TemporaryDirectory() as store:
        env = {**os.environ, "KREG_HOME": store}
        ui = subprocess.Popen([KREG, "ui", "--port", str(port)], env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + timeout_s
            while time.monotonic() < deadline:
                try:
                    urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2)
                    break
                except OSError:
                    time.sleep(0.5)
            server = [_rss_mib(p) for p in _descendants(ui.pid)]
            return _rss_mib(ui.pid), sum(server), len(server)
        finally:
            ui.send_signal(signal.SIGTERM)
            ui.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--no-ui", action="store_true", help="skip the kreg ui memory measurement")
    args = parser.parse_args()
    print(f"{'command':<42} {'median s':>9}  loaded")
    for argv in COMMANDS:
        seconds, loaded = _time(argv, args.repeats)
        print(f"{'kreg ' + ' '.join(argv):<42} {seconds:>9.2f}  {loaded}")
    if not args.no_ui:
        supervisor, server, processes = _ui_memory()
        print(f"kreg ui: supervisor {supervisor:.0f} MiB resident; the MLflow server it started: {processes} "
              f"process(es), {server:.0f} MiB")


if __name__ == "__main__":
    main()
