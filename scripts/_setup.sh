# Shared set-up: a .venv at the repo root with kreg installed (editable).
# Sourced by demo.sh and test.sh. Re-running is cheap: pip skips what is there.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
PYTHON="${PYTHON:-python3.11}"
command -v "$PYTHON" >/dev/null 2>&1 || PYTHON=python3
if [ ! -x .venv/bin/python ]; then
    echo "creating .venv with $PYTHON" >&2
    "$PYTHON" -m venv .venv
fi
# shellcheck disable=SC1091
. .venv/bin/activate
EXTRAS="${KREG_EXTRAS:-}"
STAMP=".venv/.kreg-installed${EXTRAS:+-$EXTRAS}"
if [ ! -f "$STAMP" ] || [ pyproject.toml -nt "$STAMP" ]; then
    python -m pip install --quiet --upgrade pip >&2
    python -m pip install --quiet -e ".${EXTRAS:+[$EXTRAS]}" >&2
    touch "$STAMP"
fi
export TF_CPP_MIN_LOG_LEVEL="${TF_CPP_MIN_LOG_LEVEL:-2}"
