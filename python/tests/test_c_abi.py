"""The C ABI as a C host sees it: the header matches the library's exports, and a C program
compiled against the installed header runs a round trip (under valgrind when it is installed)."""
from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

import sparsedb

PACKAGE = Path(sparsedb.__file__).resolve().parent
LIBRARY = Path(sparsedb._lib.lib._name)
HEADER = PACKAGE / "sparsedb.h"
if not HEADER.is_file():  # running against a library outside the package (SPARSEDB_LIBRARY)
    HEADER = Path(__file__).resolve().parents[2] / "Sources" / "SparseDBCAPI" / "include" / "sparsedb.h"


def test_header_declares_exactly_the_exported_functions():
    nm = shutil.which("nm")
    if nm is None:
        pytest.skip("nm (binutils) is not installed")
    declared = set(re.findall(r"\b(sdb_[a-z_0-9]+)\(", HEADER.read_text()))
    out = subprocess.run([nm, "-D", "--defined-only", str(LIBRARY)], check=True, capture_output=True, text=True).stdout
    exported = {line.split()[-1] for line in out.splitlines() if re.search(r" T sdb_", line)}
    assert declared == exported


def test_c_host_round_trip(tmp_path):
    cc = shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")
    if cc is None:
        pytest.skip("no C compiler")
    exe = tmp_path / "c_smoke"
    source = Path(__file__).with_name("c_smoke.c")
    subprocess.run(
        [cc, "-std=c11", "-Wall", "-Wextra", "-Werror", "-o", str(exe), str(source), f"-I{HEADER.parent}",
         str(LIBRARY), f"-Wl,-rpath,{LIBRARY.parent}", "-lm"],
        check=True,
    )
    run = subprocess.run([str(exe), str(tmp_path / "db")], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    lines = run.stdout.splitlines()
    assert lines[0] == 'apple 2.000 {"color":"red"}'
    assert lines[1] == "banana 1.500 null"
    assert lines[2].startswith("status 1 code 1: document 'cherry': weight for dimension")
    assert lines[3] == "status 1: collection handle is null"
    assert lines[4] == "count 2"
    assert lines[5] == 'collections ["docs"]'
    assert lines[6] == "filtered 1 hit: banana 1.400"
    assert lines[7] == "into 1 hit: banana 1.400"
    assert lines[8] == "call 1 hit: banana 1.400"
    assert lines[9] == "status 1: result buffer capacity must be at least 48 bytes, got 8"
    assert lines[10] == 'get e[2] 1.0 0.0 [{"lang":"en"}]'
    # ABI 5: sdb_search_options.candidates through sdb_collection_search_call, its checks, hybrid.
    assert lines[11] == "candidates 0: a 0.500"
    assert lines[12] == "candidates 2: b 1.300"
    assert lines[13] == "status 1 code 1: candidates must be between k (1) and 2^20, got 1048577"
    assert lines[14] == "status 1 code 1: candidates must be between k (2) and 2^20, got 1"
    assert lines[15] == "hybrid candidates 2: b"
    assert len(lines) == 16
