"""Loading libSparseDBC.so and declaring its functions for ctypes (see sparsedb.h).

ctypes releases the GIL for the duration of every foreign call, so searches, ingests and
encodes from several Python threads run in parallel inside the engine.
"""
from __future__ import annotations

import ctypes
import os
import platform
import struct
import threading
from threading import get_ident
from ctypes import POINTER, Structure, byref, c_char_p, c_double, c_float, c_int32, c_int64, c_uint8, c_uint32, c_void_p
from pathlib import Path

from .errors import Error, error_for

ABI_VERSION = 5  # 5: sdb_search_options.candidates
LIBRARY_NAME = "libSparseDBC.so"


def _has_avx512() -> bool:
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as f:
            for line in f:
                if line.startswith("flags"):
                    flags = set(line.split())
                    return {"avx512f", "avx512bw", "avx512vl", "avx512dq", "avx512cd"} <= flags
    except OSError:
        pass
    return False


def _load() -> ctypes.CDLL:
    path = os.environ.get("SPARSEDB_LIBRARY") or str(Path(__file__).with_name(LIBRARY_NAME))
    if not Path(path).is_file():
        raise ImportError(
            f"sparsedb: {path} is missing; install the package with `pip install ./python` from a "
            "SparseDB checkout (it builds the library), or point SPARSEDB_LIBRARY at libSparseDBC.so"
        )
    # OpenBLAS reads its settings once, when it loads (as a dependency of libSparseDBC). Like the
    # CLI: one BLAS thread (the encoder parallelises itself) and the AVX-512 kernels where the CPU
    # has them (OpenBLAS 0.3.21 misdetects these EPYCs). The process environment is restored
    # afterwards; SPARSEDB_KEEP_OPENBLAS_ENV=1 keeps it untouched.
    saved = {}
    if os.environ.get("SPARSEDB_KEEP_OPENBLAS_ENV") != "1":
        wanted = {}
        if "OPENBLAS_NUM_THREADS" not in os.environ:
            wanted["OPENBLAS_NUM_THREADS"] = "1"
        core = os.environ.get("OPENBLAS_CORETYPE", "")
        if core.lower() in ("", "haswell") and platform.machine() == "x86_64" and _has_avx512():
            wanted["OPENBLAS_CORETYPE"] = "SkylakeX"
        for key, value in wanted.items():
            saved[key] = os.environ.get(key)
            os.environ[key] = value
    try:
        lib = ctypes.CDLL(path)
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    _declare(lib)
    version = lib.sdb_abi_version()
    if version != ABI_VERSION:
        raise ImportError(f"sparsedb: {path} has C ABI version {version}, this package needs {ABI_VERSION}; reinstall it")
    return lib


class Matrix(Structure):
    """sdb_matrix: the rows of one field (sparse CSR rows, or dense rows of `width` floats)."""

    _fields_ = [
        ("field", c_char_p),
        ("indptr", c_void_p),
        ("indices", c_void_p),
        ("values", c_void_p),
        ("present", c_void_p),
        ("width", c_int64),
    ]


class SearchOptions(Structure):
    """sdb_search_options."""

    _fields_ = [
        ("k", c_int64),
        ("max_query_terms", c_int64),
        ("max_active_dims", c_int64),
        ("truncate_dim", c_int64),
        ("heap_factor", c_double),
        ("filter_json", c_char_p),
        ("algorithm", c_int32),
        ("threads", c_int32),
        ("flags", c_uint32),
        ("candidates", c_uint32),  # ABI 5 (reserved before); 0 = k
    ]


class FusionOptions(Structure):
    """sdb_fusion_options."""

    _fields_ = [
        ("method", c_int32),
        ("reserved", c_int32),
        ("depth", c_int64),
        ("rrf_constant", c_double),
        ("weights", c_void_p),
    ]


P = c_void_p  # handles and data pointers are passed as plain addresses
PP = POINTER(c_void_p)
ERR = POINTER(c_void_p)
I64P = POINTER(c_int64)
CP = POINTER(c_char_p)

_SIGNATURES = {
    "sdb_abi_version": ([], c_int32),
    "sdb_version": ([], c_char_p),
    "sdb_error_code": ([P], c_int32),
    "sdb_error_message": ([P], c_char_p),
    "sdb_error_lmdb_code": ([P], c_int32),
    "sdb_error_free": ([P], None),
    "sdb_string_free": ([P], None),
    "sdb_database_open": ([c_char_p, c_uint32, c_int64, PP, ERR], c_int32),
    "sdb_database_close": ([P], None),
    "sdb_database_free": ([P], None),
    "sdb_database_collection_names": ([P, PP, ERR], c_int32),
    "sdb_database_collection": ([P, c_char_p, PP, ERR], c_int32),
    "sdb_database_create_collection": ([P, c_char_p, c_int64, P, P, c_uint32, PP, ERR], c_int32),
    "sdb_database_drop_collection": ([P, c_char_p, ERR], c_int32),
    "sdb_database_statistics_json": ([P, PP, ERR], c_int32),
    "sdb_database_verify_json": ([P, PP, ERR], c_int32),
    "sdb_database_write_compacted_copy": ([P, c_char_p, ERR], c_int32),
    "sdb_collection_free": ([P], None),
    "sdb_collection_info_json": ([P, PP, ERR], c_int32),
    "sdb_collection_statistics_json": ([P, PP, ERR], c_int32),
    "sdb_collection_count": ([P, I64P, ERR], c_int32),
    "sdb_collection_compact": ([P, ERR], c_int32),
    "sdb_collection_upsert": ([P, c_int64, P, P, c_int64, P, P, P, P, P, P, P, ERR], c_int32),
    "sdb_collection_delete": ([P, c_int64, P, P, I64P, ERR], c_int32),
    "sdb_collection_get": ([P, c_char_p, c_int64, P, P, PP, ERR], c_int32),
    "sdb_documents_view": ([P, I64P, PP, PP, PP, PP, PP, PP, PP], None),
    "sdb_documents_free": ([P], None),
    "sdb_collection_search": (
        [P, c_char_p, c_int64, P, P, P, c_int64, c_int32, c_int64, c_float, c_uint32, c_int32, PP, ERR],
        c_int32,
    ),
    "sdb_results_view": ([P, I64P, PP, PP, PP, PP, PP, PP, PP, PP, PP], None),
    "sdb_results_packed": ([P, PP, I64P], None),
    "sdb_results_free": ([P], None),
    "sdb_database_create_collection_schema": ([P, c_char_p, c_char_p, c_uint32, PP, ERR], c_int32),
    "sdb_collection_upsert_matrix": ([P, c_int64, P, P, c_int64, P, P, P, P, c_char_p, ERR], c_int32),
    "sdb_collection_search_matrix": ([P, P, c_int64, P, PP, ERR], c_int32),
    "sdb_collection_search_into": ([P, P, P, P, P, c_int64, ERR], c_int32),
    "sdb_collection_search_call": ([P], c_int32),
    "sdb_filter_parse": ([c_char_p, PP, ERR], c_int32),
    "sdb_filter_free": ([P], None),
    "sdb_collection_search_hybrid": ([P, c_int64, P, c_int64, P, P, PP, ERR], c_int32),
    "sdb_results_field_scores": ([P, I64P, PP], None),
    "sdb_collection_get_documents": ([P, c_int64, P, P, PP, ERR], c_int32),
    "sdb_documents_field_count": ([P], c_int64),
    "sdb_documents_field": ([P, c_int64, PP, I64P, PP, PP, PP, PP], c_int32),
    "sdb_documents_attributes_json": ([P], c_char_p),
    "sdb_collection_ingest_fields": (
        [P, c_int64, P, P, c_int64, P, P, P, P, P, P, P, c_char_p, c_int64, c_int64, c_uint32, PP, ERR],
        c_int32,
    ),
    "sdb_encoder_open": ([c_char_p, PP, ERR], c_int32),
    "sdb_encoder_free": ([P], None),
    "sdb_encoder_info_json": ([P, PP, ERR], c_int32),
    "sdb_encoder_encode": ([P, c_int64, P, P, c_int32, c_int64, PP, ERR], c_int32),
    "sdb_vectors_view": ([P, I64P, PP, PP, PP], None),
    "sdb_encoder_embed": ([P, c_int64, P, P, c_int32, c_int64, PP, ERR], c_int32),
    "sdb_vectors_dense_view": ([P, I64P, I64P, PP], None),
    "sdb_vectors_free": ([P], None),
    "sdb_collection_encoder_json": ([P, c_char_p, PP, ERR], c_int32),
    "sdb_collection_query_encoder": ([P, c_char_p, c_char_p, c_int32, PP, ERR], c_int32),
    "sdb_collection_search_text": (
        [P, P, c_char_p, c_int64, P, P, c_int64, c_int32, c_int64, c_float, c_uint32, c_int32, c_int64, PP, ERR],
        c_int32,
    ),
    "sdb_collection_ingest": (
        [P, P, c_char_p, c_int64, P, P, P, P, P, P, P, c_int64, c_int64, c_uint32, PP, ERR],
        c_int32,
    ),
}


def _declare(lib: ctypes.CDLL) -> None:
    for name, (argtypes, restype) in _SIGNATURES.items():
        fn = getattr(lib, name)
        fn.argtypes = argtypes
        fn.restype = restype


lib = _load()

# Status codes, algorithms, flags (sparsedb.h).
ALGORITHMS = {"exhaustive": 0, "maxscore": 1, "wand": 2, "bmw": 3}
SEARCH_NO_PAYLOADS = 1
SEARCH_ALLOW_MODEL_MISMATCH = 2
SEARCH_TIME_ENGINE = 4
FUSION_METHODS = {"rrf": 0, "weighted": 1}
OPEN_READ_ONLY = 1
OPEN_NO_CREATE = 2
CREATE_EXIST_OK = 1
INGEST_REPLACE = 1
INGEST_ALLOW_MISMATCH = 2
INGEST_NO_COMPACT = 4
TASK_DOCUMENT = 0
TASK_QUERY = 1


def raise_error(status: int, err: c_void_p) -> None:
    """Turns a failed call's error object into the matching exception (and frees the object)."""
    if err.value:
        try:
            code = lib.sdb_error_code(err)
            raw = lib.sdb_error_message(err) or b""
            lmdb_code = lib.sdb_error_lmdb_code(err)
        finally:
            lib.sdb_error_free(err)
        raise error_for(code, raw.decode("utf-8", "replace"), lmdb_code)
    raise error_for(status, f"sparsedb call failed with status {status}")


def call(fn, *args) -> None:
    """Calls a status-returning function with an error out-parameter appended; raises on failure."""
    err = c_void_p()
    status = fn(*args, byref(err))
    if status:
        raise_error(status, err)


def _check_alignment(address: int) -> None:
    # The layouts' int64 and double sections need 8-byte alignment; a bytearray of this size is
    # malloc'd (16-byte aligned), which this checks rather than assumes.
    if address % 8:
        raise ImportError(f"sparsedb: a bytearray buffer at {address:#x} is not 8-byte aligned")


class _Slots(threading.local):
    """Per-thread out-parameters (a handle and an error) with their byref objects made once: the
    hot paths (a single small search) would otherwise spend a measurable part of their time
    building them. Each value is read right after the call that set it, on the same thread."""

    def __init__(self):
        self.out = c_void_p()
        self.err = c_void_p()
        self.size = c_int64()
        self.out_ref = byref(self.out)
        self.err_ref = byref(self.err)
        self.size_ref = byref(self.size)
        # The structs of sdb_collection_search_matrix, filled in place (building ctypes structs
        # per call costs more than the fields).
        self.matrix = Matrix()
        self.options = SearchOptions()
        self.matrix_ref = byref(self.matrix)
        self.options_ref = byref(self.options)


slots = _Slots()

# The request of sdb_collection_search_call as the one-query path lays it out in its buffer:
# sdb_search_call (64 bytes: collection, query, options, filter, buffer, capacity, error,
# reserved), sdb_matrix (48 bytes: field, indptr, indices, values, present, width),
# sdb_search_options (64 bytes: k, max_query_terms, max_active_dims, truncate_dim, heap_factor,
# filter_json, algorithm, threads, flags, candidates), the query's indptr {0, n} (16 bytes), then
# room for `entries` uint32 dimensions and, after it, `entries` float weights. The arrays have
# fixed places, so the 184 bytes before indptr[1] (the "head") depend on the collection, the
# options, the filter and the output buffer alone and are written only when one of them
# changes; a query writes n, its dimensions and its weights.
_HEAD = struct.Struct("=5QqQQ" "5Qq" "4qdQiiII" "q")
QUERY_AT = _HEAD.size  # indptr[1]
CALL_ERROR_AT = 48  # sdb_search_call.error
_MATRIX_AT = 64
_OPTIONS_AT = 112


class Buffers:
    """One thread's buffers for the one-query path (sdb_collection_search_call): the request and
    the output the hits are written into, each a bytearray pinned by a ctypes array made over it
    (it cannot be resized while that exists, so its address stays valid), and the one ctypes
    object the call takes, made once. Used by one thread only."""

    def __init__(self):
        self.request = self.output = None
        self.head = None
        self.output_address = 0
        self.output_size = 0
        self.grow_request(256)
        self.grow_output(1 << 16)

    def grow_request(self, entries: int) -> None:
        """A request buffer with room for a query of ``entries`` entries."""
        size = QUERY_AT + 8 + 8 * entries
        self.request = bytearray(size)
        self._request_pin = (ctypes.c_char * size).from_buffer(self.request)
        self.request_address = ctypes.addressof(self._request_pin)
        _check_alignment(self.request_address)
        self.entries = entries
        #: The call's only argument, a byref object over the pinned request (ctypes passes it as
        #: it is: no conversion object per call).
        self.request_ref = byref(self._request_pin)
        #: The options the head was last written for (None: not written in this buffer).
        self.head = None
        #: Per query length n: the pack_into of n (indptr[1]) and n uint32 dimensions (at
        #: QUERY_AT), and that of n float weights (at weights_at); see packer().
        self.packers = {}
        self.weights_at = QUERY_AT + 8 + 4 * entries
        #: The dimensions' and the weights' addresses (for _fastpath.search).
        self.dimensions_address = self.request_address + QUERY_AT + 8
        self.weights_address = self.request_address + self.weights_at

    def write_head(self, head: tuple) -> None:
        """Writes the request's head for ``head`` = (collection address, field name address or
        0, k, max_query_terms (0 = all), candidates (0 = k), heap_factor, algorithm code, flags,
        filter address or 0)."""
        collection, field, k, max_terms, candidates, heap_factor, algorithm, flags, filter = head
        base = self.request_address
        self.head = None  # until written: a value that does not pack (struct.error) leaves it so
        _HEAD.pack_into(
            self.request, 0,
            collection, base + _MATRIX_AT, base + _OPTIONS_AT, filter, self.output_address, self.output_size, 0, 0,
            field, base + QUERY_AT - 8, base + QUERY_AT + 8, base + self.weights_at, 0, 0,
            k, max_terms, 0, 0, heap_factor, 0, algorithm, 1, flags, candidates,
            0,
        )
        self.head = head

    def packer(self, n: int) -> tuple:
        """(pack_into of n and n dimensions, pack_into of n weights) for a query of n entries."""
        p = self.packers.get(n)
        if p is None:
            p = self.packers[n] = (struct.Struct(f"=q{n}I").pack_into, struct.Struct(f"={n}f").pack_into)
        return p

    def grow_output(self, size: int) -> None:
        """A result buffer of at least ``size`` bytes (a multiple of 8)."""
        size = (size + 7) & ~7
        self.output = bytearray(size)
        self._output_pin = (ctypes.c_char * size).from_buffer(self.output)
        self.output_address = ctypes.addressof(self._output_pin)
        _check_alignment(self.output_address)
        self.output_size = size
        self.head = None  # the head holds the output's address and size

    def error(self) -> c_void_p:
        """The error object a failed call left in the request (for raise_error, which frees it)."""
        return c_void_p(struct.unpack_from("=Q", self.request, CALL_ERROR_AT)[0] or None)


# The buffers of the thread that imported this module, as a plain object: reading an attribute of
# a threading.local costs more than the rest of the one-query path's bookkeeping, so that path
# takes these on that thread (the common single-threaded case), and other threads their own
# through one thread-local lookup (`buffers()`). A thread id is reused only after its thread has
# ended, so no two live threads share them.
_owner_thread = get_ident()
owner_buffers = Buffers()
_local = threading.local()


def buffers() -> Buffers:
    """The calling thread's buffers for the one-query path."""
    if get_ident() == _owner_thread:
        return owner_buffers
    try:
        return _local.buffers
    except AttributeError:
        b = _local.buffers = Buffers()
        return b


# sdb_collection_search_call for the one-query hot path: its one argument is a Buffers'
# request_ref (a byref object, which ctypes passes as it is). Declared without argtypes: ctypes
# would otherwise call the argtype's from_param in Python. One argument instead of
# sdb_collection_search_into's seven: ctypes converts each argument and classifies its type for
# libffi on every call, about 450 instructions an argument.
search_call_raw = lib["sdb_collection_search_call"]
search_call_raw.restype = c_int32
#: Its address, for the C fast path, which calls it directly.
search_call_address = ctypes.cast(search_call_raw, c_void_p).value

# The one-query path in C (_fastpath.c), when it was built and SPARSEDB_PURE_PYTHON is not 1; else
# None, and Collection._search_one does the same in Python.
fast_search = None
if os.environ.get("SPARSEDB_PURE_PYTHON") != "1":
    try:
        from ._fastpath import search as fast_search
    except ImportError:  # not built (no C compiler or Python headers when installed)
        pass


def take_string(pointer: c_void_p) -> str:
    """The text of a string the library returned, freed afterwards."""
    if not pointer.value:
        return ""
    try:
        return ctypes.string_at(pointer.value).decode("utf-8")
    finally:
        lib.sdb_string_free(pointer)


def version() -> str:
    """The version of the native library."""
    return lib.sdb_version().decode()


__all__ = ["lib", "call", "raise_error", "take_string", "Error"]
