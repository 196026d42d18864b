#!/usr/bin/env bash
# Sets up (apt packages, the models) and runs every test, twice over the layers that matter:
#   1. the fast, self-contained unit suites in a debug build (assertions on);
#   2. every suite — unit and integration (../shared, the default model, the CLI, the example
#      host program) — against the release build, which is what users run: bad-input,
#      corruption and crash tests must hold there too;
#   3. the Python package, installed into a fresh virtual environment (pytest);
#   4. the benchmark harness's quick mode (SparseDB, PISA and Seismic on the scifact reference
#      vectors, under a minute; it fails when an exact SparseDB search misses recall 1.0 or an
#      engine fails), so that the harness cannot rot;
#   5. a short libFuzzer run of every fuzz target under AddressSanitizer (the seeds are also
#      replayed by the unit tests; tools/fuzz.sh all 600 is the long run, RELIABILITY.md).
# SPARSEDB_FUZZ_SECONDS sets the seconds per fuzz target (default 15; 0 skips step 5).
set -euo pipefail
cd "$(dirname "$0")/.."
SPARSEDB_SKIP_BUILD=1 tools/setup.sh
export OPENBLAS_NUM_THREADS=1
# The Python tests' oracles and inputs (numpy, scipy, torch, sentence-transformers, pytest):
# installed from PyPI only when missing; never runtime dependencies of the engine.
if ! python3 -c "import numpy, scipy, pytest, torch, sentence_transformers" 2>/dev/null; then
  python3 -m pip install --quiet numpy scipy pytest torch sentence-transformers
fi
swift build --build-tests
swift test --skip-build --filter SparseDBUnitTests
swift build -c release --build-tests
swift test -c release --skip-build
tools/python_test.sh -q
# The anchors the harness compares against, from PyPI (tools, not engine dependencies).
if ! python3 -c "import pyterrier_pisa, seismic, matplotlib" 2>/dev/null; then
  python3 -m pip install --quiet python-terrier pyterrier-pisa pyseismic-lsr matplotlib
fi
SPARSEDB_BIN="$PWD/.build/release/sparsedb" tools/bench/harness.py --quick --no-swift-build
fuzz_seconds=${SPARSEDB_FUZZ_SECONDS:-15}
if [ "$fuzz_seconds" != 0 ]; then tools/fuzz.sh all "$fuzz_seconds"; fi
