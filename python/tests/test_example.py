"""The README's example (python/examples/quickstart.py) runs and prints what the README says."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from conftest import MODELS


def test_quickstart_example_runs():
    if not (MODELS / "splade-tiny").is_dir():
        pytest.fail("the default model is missing: run tools/fetch-model.sh")
    script = Path(__file__).resolve().parents[1] / "examples" / "quickstart.py"
    run = subprocess.run([sys.executable, str(script), str(MODELS / "splade-tiny")], capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr
    out = run.stdout
    assert "native: paris" in out and "native: rome" in out
    assert "batch: ['paris', 'solar']" in out
    assert "after delete: ['rome'] 3" in out
    assert "refused: document 'bad': weight for dimension 2054 is NaN" in out
    try:
        import sentence_transformers  # noqa: F401
    except ImportError:
        return
    assert "sentence-transformers: paris" in out
