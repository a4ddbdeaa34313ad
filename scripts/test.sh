#!/usr/bin/env bash
# Run the test suite as CI does. Extra arguments go to pytest (e.g. -k warc -x).
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${R1DATA_VENV:-$(pwd)/.venv}
export PATH="$VENV/bin:$PATH"
exec "$VENV/bin/python" -m pytest "$@"
