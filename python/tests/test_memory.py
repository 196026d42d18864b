"""No leaks across the boundary: anonymous RSS stays flat over many calls of every kind
(python/benchmarks/leaks.py runs the same with a million calls)."""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

import leaks  # noqa: E402


def test_rss_stays_flat_over_many_calls():
    growth = leaks.run(10_000, verbose=False)
    # A leak of even 128 bytes per call would show as > 1 MiB here.
    assert all(kib < 1024 for kib in growth.values()), growth
