#!/usr/bin/env bash
# Fresh machine -> .venv with the dev extra -> the whole test suite.
# Extra arguments go to pytest.
set -euo pipefail
KREG_EXTRAS=dev
source "$(dirname "${BASH_SOURCE[0]}")/_setup.sh"
# Three test processes at a time on 2 cores (pytest-xdist), handing out tests as workers free up
# (--dist worksteal, so no worker idles at the end behind another's queue): much of the suite waits on
# subprocesses it started, on sockets, on sqlite's lock timeouts and on servers starting rather than
# computing, and a third process fills those waits. Two processes took about 0.6x the time of one
# (7m18s against 11m47s for the TensorFlow part). KREG_TEST_PROCESSES=0 runs everything in this process.
PROCESSES="${KREG_TEST_PROCESSES:-3}"
DIST=(--dist worksteal)
[ "$PROCESSES" = 0 ] && DIST=()
# tests/test_report.py renders report.html in headless Chromium (Debian's package, about 25 s to install):
# installed here when missing in a root shell with apt; otherwise that test is skipped and says why.
if ! command -v chromium >/dev/null 2>&1 && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing chromium (headless rendering of report.html)" >&2
    { timeout 300 apt-get install -y --no-install-recommends chromium >/dev/null 2>&1 \
      || { timeout 300 apt-get update >/dev/null 2>&1 \
           && timeout 300 apt-get install -y --no-install-recommends chromium >/dev/null 2>&1; }; } \
      || echo "chromium could not be installed: tests/test_report.py's rendering test will be skipped" >&2
fi
python -m pytest -n "$PROCESSES" "${DIST[@]}" --durations=20 "$@"  # the slowest tests, for keeping the suite in its budget
# The library (layers, regularizers, losses, metrics, augmentation, models)
# is backend-agnostic: run its tests again under JAX, with the lab's end-to-end
# tests (a search with refit and a fresh-process load, cross-validation,
# pruning, kill -9 and resume through `kreg tune`).
KERAS_BACKEND=jax python -m pytest -n "$PROCESSES" "${DIST[@]}" -m "backend_agnostic or lab_e2e" "$@"
