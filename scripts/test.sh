#!/usr/bin/env bash
# Fresh machine -> .venv with the dev extra -> the whole test suite.
# Extra arguments go to pytest.
set -euo pipefail
KREG_EXTRAS=dev
source "$(dirname "${BASH_SOURCE[0]}")/_setup.sh"
python -m pytest "$@"
