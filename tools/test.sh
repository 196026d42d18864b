#!/usr/bin/env bash
# Sets up (apt packages, the models) and runs every test, twice over the layers that matter:
#   1. the fast, self-contained unit suites in a debug build (assertions on);
#   2. every suite — unit and integration (../shared, the default model, the CLI, the example
#      host program) — against the release build, which is what users run: bad-input,
#      corruption and crash tests must hold there too.
set -euo pipefail
cd "$(dirname "$0")/.."
SPARSEDB_SKIP_BUILD=1 tools/setup.sh
export OPENBLAS_NUM_THREADS=1
swift build --build-tests
swift test --skip-build --filter SparseDBUnitTests
swift build -c release --build-tests
swift test -c release --skip-build
