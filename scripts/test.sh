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
# The library (layers, regularizers, losses, metrics, augmentation, models)
# is backend-agnostic: its tests run again under JAX, with the lab's end-to-end
# tests (a search with refit and a fresh-process load, cross-validation,
# pruning, kill -9 and resume through `kreg tune`). That JAX session runs beside
# the TensorFlow one, at a lower priority (nice), so it takes the cores while
# TensorFlow's tests wait on their subprocesses, servers and lock timeouts; its
# report is printed after TensorFlow's. KREG_TEST_PROCESSES=0 runs the two one
# after the other, in this process.
JAX_ARGS=(-m "backend_agnostic or lab_e2e" -p no:cacheprovider)
# Unless a test path was named, only the files that hold such tests are collected (each process imports every
# file it collects: about 6 CPU seconds saved per process).
NAMED_PATH=0
for arg in "$@"; do case "$arg" in -*) ;; *) NAMED_PATH=1 ;; esac; done
if [ "$NAMED_PATH" = 0 ]; then
    mapfile -t JAX_FILES < <(grep -l -E "backend_agnostic|lab_e2e" tests/test_*.py)
    JAX_ARGS+=("${JAX_FILES[@]}")
fi
if [ "$PROCESSES" = 0 ]; then
    python -m pytest --durations=20 "$@"
    KERAS_BACKEND=jax python -m pytest "${JAX_ARGS[@]}" "$@"
    exit 0
fi
JAX_DIR="$(mktemp -d)"
JAX_PID=""
stop_jax() {  # on any exit: the JAX session stopped (if still running), its files removed; the exit code kept
    if [ -n "$JAX_PID" ]; then kill -- "-$JAX_PID" 2>/dev/null || true; fi
    rm -rf "$JAX_DIR"
}
trap stop_jax EXIT
trap 'exit 130' INT TERM
set -m  # the JAX session in its own process group: stopped whole if this script is
KERAS_BACKEND=jax nice -n 10 python -m pytest -n 2 "${DIST[@]}" "${JAX_ARGS[@]}" --basetemp "$JAX_DIR/tmp" "$@" \
    >"$JAX_DIR/report" 2>&1 &
JAX_PID=$!
set +m
TF_STATUS=0
python -m pytest -n "$PROCESSES" "${DIST[@]}" --durations=20 "$@" || TF_STATUS=$?  # the slowest tests, for the budget
JAX_STATUS=0
wait "$JAX_PID" || JAX_STATUS=$?
echo "=== the same library tests and the lab's end-to-end tests under JAX ==="
cat "$JAX_DIR/report"
[ "$TF_STATUS" = 0 ] || exit "$TF_STATUS"
exit "$JAX_STATUS"
