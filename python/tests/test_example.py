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


def test_fields_example_runs():
    for model in ("splade-tiny", "all-MiniLM-L6-v2"):
        if not (MODELS / model).is_dir():
            pytest.skip(f"model {model} is missing from {MODELS}")
    script = Path(__file__).resolve().parents[1] / "examples" / "fields.py"
    run = subprocess.run([sys.executable, str(script), str(MODELS)], capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr
    out = run.stdout.splitlines()
    assert out[0] == "sparse: ['paris', 'rome']"
    assert out[1] == "dense: ['paris', 'rome']"
    assert out[3] == "en, 2000 or later: ['paris', 'bread', 'solar']"
    assert out[4] == "tagged energy: ['solar']"
    assert out[5] == "not a draft, before 2010 or German: ['rome', 'berlin', 'solar']"
    assert [line.split()[1] for line in out[6:9]] == ["paris", "rome", "berlin"]
    assert out[9].startswith("get: {'lang': 'de', 'tags': ['geo', 'europe'], 'year': 2021} ['code', 'minilm', 'splade']")
    assert out[10] == "refused: document 'new': attribute 'year' is integer, got \"2020\" | documents: 5"
