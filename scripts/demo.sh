#!/usr/bin/env bash
# Fresh machine -> .venv -> kreg tune on the default pipeline (MNIST-1D CNN),
# logged to the project's sqlite MLflow store in mlruns/. Extra arguments go
# to `kreg tune` (e.g. --max-trials 4).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/_setup.sh"
kreg tune pipelines/mnist1d_cnn.yaml "$@"
