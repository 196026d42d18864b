#!/usr/bin/env bash
# Sets up (apt packages, default model) and runs every test: `swift test` builds the library, the
# CLI and the example host program, and runs the suites against ../shared.
set -euo pipefail
cd "$(dirname "$0")/.."
SPARSEDB_SKIP_BUILD=1 tools/setup.sh
export OPENBLAS_NUM_THREADS=1
swift build --build-tests
swift test
