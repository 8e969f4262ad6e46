#!/usr/bin/env bash
# Fresh machine -> .venv with the dev extra -> the whole test suite.
# Extra arguments go to pytest.
set -euo pipefail
KREG_EXTRAS=dev
source "$(dirname "${BASH_SOURCE[0]}")/_setup.sh"
python -m pytest "$@"
# The library (layers, regularizers, losses, metrics, augmentation, models)
# is backend-agnostic: run its tests again under JAX.
KERAS_BACKEND=jax python -m pytest -m backend_agnostic "$@"
