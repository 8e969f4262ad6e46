#!/usr/bin/env bash
# Fresh machine -> .venv with the dev extra -> the whole test suite.
# Extra arguments go to pytest.
set -euo pipefail
KREG_EXTRAS=dev
source "$(dirname "${BASH_SOURCE[0]}")/_setup.sh"
# Two test processes at a time (pytest-xdist): half the suite waits on subprocesses, sockets and sqlite
# rather than computing, so on 2 cores this takes about 0.6x the time of one process (measured: 7m18s
# against 11m47s for the TensorFlow part). KREG_TEST_PROCESSES=0 runs everything in this process.
PROCESSES="${KREG_TEST_PROCESSES:-2}"
python -m pytest -n "$PROCESSES" "$@"
# The library (layers, regularizers, losses, metrics, augmentation, models)
# is backend-agnostic: run its tests again under JAX.
KERAS_BACKEND=jax python -m pytest -n "$PROCESSES" -m backend_agnostic "$@"
