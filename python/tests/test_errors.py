"""Bad input raises sparsedb.Error (the engine's message, the right subclass) and leaves the
database exactly as it was."""
from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.sparse

import sparsedb


@pytest.fixture
def filled(db):
    c = db.create_collection("docs", dimensions=100)
    c.upsert(["a", "b", "c"], [{1: 1.0, 5: 2.0}, {1: 0.5}, {7: 3.0}], payloads=[{"n": 1}, None, "text"])
    return db, c


def snapshot(db, c):
    """Everything a bad call could have changed."""
    return (
        db.collections(),
        len(c),
        c.get(["a", "b", "c", "x", "y"]),
        c.search([{1: 1.0}, {5: 1.0, 7: 1.0}], k=10),
        c.statistics(),
    )


BAD_UPSERTS = {
    "nan": (["x"], [{1: math.nan}], "NaN"),
    "infinite": (["x"], [{1: math.inf}], "infinite"),
    "negative": (["x"], [{1: -0.5}], "negative"),
    "too large": (["x"], [{1: 2e9}], "above the limit"),
    "float32 overflow": (["x"], scipy.sparse.csr_matrix(np.array([[0, 1e39]])), "infinite"),
    "dimension out of range": (["x"], [{100: 1.0}], "out of range"),
    "negative dimension": (["x"], [{-1: 1.0}], "out of range"),
    "dimension above 2^32": (["x"], [{1 << 32: 1.0}], "out of range"),
    "non-integer dimension": (["x"], [{"paris": 1.0}], "not an integer"),
    "float dimension": (["x"], [{1.5: 1.0}], "not an integer"),
    "string weight": (["x"], [{1: "heavy"}], "real numbers"),
    "complex weights": (["x"], scipy.sparse.csr_matrix(np.array([[1 + 1j, 0]])), "real numbers"),
    "repeated dimension": (["x"], scipy.sparse.csr_matrix(([1.0, 2.0], [3, 3], [0, 2]), shape=(1, 100)), "more than once"),
    "more vectors than ids": (["x"], [{1: 1.0}, {2: 1.0}], "2 vectors for 1 ids"),
    "fewer vectors than ids": (["x", "y"], [{1: 1.0}], "1 vectors for 2 ids"),
    "one vector for two ids": (["x", "y"], {1: 1.0}, "one vector for 2 ids"),
    "3-D array": (["x"], np.zeros((1, 2, 3)), "1 or 2 dimensions"),
    "unknown type": (["x"], "not a vector", "expected a scipy.sparse matrix"),
    "id repeated": (["x", "x"], [{1: 1.0}, {2: 1.0}], "more than once"),
    "empty id": ([""], [{1: 1.0}], "id"),
    "non-string id": ([7], [{1: 1.0}], "strings"),
    "id too long": (["x" * 501], [{1: 1.0}], "id"),
    "lone surrogate id": (["\ud800"], [{1: 1.0}], "Unicode"),
    # The last document of a batch is bad: none of the batch is written.
    "bad last document": (["x", "y", "z"], [{1: 1.0}, {2: 1.0}, {3: math.nan}], "document 'z'"),
}


@pytest.mark.parametrize("case", list(BAD_UPSERTS))
def test_bad_upsert_is_refused_and_changes_nothing(filled, case):
    db, c = filled
    before = snapshot(db, c)
    ids, vectors, words = BAD_UPSERTS[case]
    with pytest.raises(sparsedb.InvalidInputError) as info:
        c.upsert(ids, vectors)
    assert isinstance(info.value, sparsedb.Error) and isinstance(info.value, ValueError)
    assert words.lower() in str(info.value).lower(), str(info.value)
    assert info.value.code == 1
    assert snapshot(db, c) == before


def test_bad_payloads_are_refused(filled):
    db, c = filled
    before = snapshot(db, c)
    with pytest.raises(sparsedb.InvalidInputError, match="JSON"):
        c.upsert(["x"], [{1: 1.0}], payloads=[object()])
    with pytest.raises(sparsedb.InvalidInputError, match="2 payloads for 1"):
        c.upsert(["x"], [{1: 1.0}], payloads=[None, None])
    assert snapshot(db, c) == before


BAD_SEARCHES = {
    "nan": ({1: math.nan}, {}, "NaN"),
    "negative": ({1: -1.0}, {}, "negative"),
    "out of range": ({100: 1.0}, {}, "out of range"),
    "k zero": ({1: 1.0}, {"k": 0}, "k must be at least 1"),
    "k not int": ({1: 1.0}, {"k": 2.5}, "k must be an integer"),
    "heap factor below 1": ({1: 1.0}, {"heap_factor": 0.5}, "heapFactor"),
    "heap factor nan": ({1: 1.0}, {"heap_factor": math.nan}, "heapFactor"),
    "max query terms zero": ({1: 1.0}, {"max_query_terms": 0}, "max_query_terms"),
    "unknown algorithm": ({1: 1.0}, {"algorithm": "quantum"}, "algorithm"),
    "unknown field": ({1: 1.0}, {"field": "nope"}, "no field 'nope'"),
    "threads negative": ({1: 1.0}, {"threads": -1}, "threads"),
    "batch with one bad query": ([{1: 1.0}, {2: 1.0}, {3: -1.0}], {}, "query 2"),
}


@pytest.mark.parametrize("case", list(BAD_SEARCHES))
def test_bad_search_is_refused(filled, case):
    db, c = filled
    before = snapshot(db, c)
    query, options, words = BAD_SEARCHES[case]
    with pytest.raises(sparsedb.InvalidInputError) as info:
        c.search(query, **options)
    assert words.lower() in str(info.value).lower(), str(info.value)
    assert snapshot(db, c) == before


def test_unknown_collection_and_names(filled, tmp_path):
    db, c = filled
    before = snapshot(db, c)
    with pytest.raises(sparsedb.NotFoundError, match="no collection 'nope'") as info:
        db.collection("nope")
    assert isinstance(info.value, LookupError) and info.value.code == 2
    with pytest.raises(sparsedb.NotFoundError):
        db.drop_collection("nope")
    with pytest.raises(sparsedb.AlreadyExistsError):
        db.create_collection("docs", dimensions=100)
    with pytest.raises(sparsedb.InvalidInputError):
        db.create_collection("docs", dimensions=50, exist_ok=True)  # another schema
    assert db.create_collection("docs", dimensions=100, exist_ok=True).name == "docs"
    for bad in ("", "a\0b", 7):
        with pytest.raises(sparsedb.InvalidInputError):
            db.create_collection(bad)
    with pytest.raises(sparsedb.InvalidInputError):
        db.create_collection("zero", dimensions=0)
    assert "nope" not in db and "docs" in db
    assert snapshot(db, c) == before
    with pytest.raises(sparsedb.NotFoundError):
        sparsedb.Database(tmp_path / "absent", create=False)
    (tmp_path / "file").write_text("x")
    with pytest.raises(sparsedb.ForeignFormatError):
        sparsedb.Database(tmp_path / "file")


def test_dropped_collection_and_closed_database(tmp_path):
    db = sparsedb.Database(tmp_path / "db")
    c = db.create_collection("gone", dimensions=10)
    db.drop_collection("gone")
    with pytest.raises(sparsedb.NotFoundError):
        len(c)
    c2 = db.create_collection("kept", dimensions=10)
    c2.upsert("a", {1: 1.0})
    with sparsedb.Database(tmp_path / "db") as again:  # the same environment, closed on exit
        assert len(again.collection("kept")) == 1
    with pytest.raises(sparsedb.ClosedError):
        c2.search({1: 1.0})
    with pytest.raises(sparsedb.ClosedError):
        db.collections()
    db.close()
    db.close()
    reopened = sparsedb.Database(tmp_path / "db", read_only=True)
    assert reopened.collection("kept").search({1: 1.0})[0].id == "a"
    with pytest.raises(sparsedb.Error):
        reopened.collection("kept").upsert("b", {1: 1.0})
    reopened.close()


def test_error_subclasses_map_every_code():
    for code in range(1, 15):
        e = sparsedb.errors.error_for(code, "m")
        assert type(e) is not sparsedb.Error and e.code == code and e.message == "m"
    assert type(sparsedb.errors.error_for(999, "m")) is sparsedb.Error


def test_empty_batches(filled):
    db, c = filled
    c.upsert([], [])
    assert c.search([], k=3) == []
    assert c.delete([]) == 0
    assert c.search({}, k=3) == []
    assert c.search({1: 0.0}, k=3) == []


@pytest.mark.parametrize("faulthandler", [True, False])
def test_faults_outside_lmdb_still_reach_the_host(tmp_path, faulthandler):
    """The engine installs SIGSEGV/SIGBUS handlers (format-spec.md §14: LMDB's faults on damaged
    pages become errors); any other fault must still reach the host's handler (Python's
    faulthandler) or the default action, not be swallowed or loop."""
    import subprocess
    import sys

    script = (
        "import ctypes, sparsedb\n"
        f"db = sparsedb.Database({str(tmp_path / 'db')!r})\n"
        "db.create_collection('c', dimensions=10).upsert(['a'], [{1: 1.0}])\n"
        "print('opened', flush=True)\n"
        "ctypes.string_at(0)\n"
    )
    args = [sys.executable] + (["-X", "faulthandler"] if faulthandler else []) + ["-c", script]
    r = subprocess.run(args, capture_output=True, text=True, timeout=120)
    assert r.stdout.strip() == "opened", r.stderr
    assert r.returncode == -11, (r.returncode, r.stderr[-2000:])
    assert ("Fatal Python error: Segmentation fault" in r.stderr) == faulthandler, r.stderr[-2000:]
