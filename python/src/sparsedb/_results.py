"""Reading the owned result objects of the C ABI into Python values (then freeing them)."""
from __future__ import annotations

import ctypes
import json
from itertools import repeat
from struct import Struct, unpack_from
from ctypes import byref, c_int64, c_void_p
from typing import Any, List, NamedTuple, Optional

import numpy as np
import scipy.sparse

from ._convert import decode_payload
from ._lib import lib, slots


class Hit(NamedTuple):
    """One search hit: the document's id, its exact score (dot product), and its payload (the
    stored JSON value, or None)."""

    id: str
    score: float
    payload: Any = None


class SearchArrays(NamedTuple):
    """Hits of a batch as arrays of shape (queries, m), m = the most hits any query got (<= k).

    ``ids`` is an object array of str, ``scores`` float64; rows with fewer hits are padded with
    None and -inf.
    """

    ids: np.ndarray
    scores: np.ndarray


class HybridHit(NamedTuple):
    """One hit of a hybrid search: id, fused score, payload, and the document's exact score in
    each field searched (``{field: score}``)."""

    id: str
    score: float
    payload: Any = None
    field_scores: Optional[dict] = None


class Document(NamedTuple):
    """A stored document.

    Attributes:
        id: its id.
        payload: its payload (parsed JSON, str or bytes), or None.
        vector: the vector of the field asked for (``get(..., field=)``), or of the collection's
            only field (or ``vector``): ``{dimension: weight}`` for sparse and CSR fields, a
            float32 numpy array for dense fields; None when it has none.
        attributes: its attribute values, ``{name: value}`` (attributes it has no value for are
            left out; a keyword list comes back as a list, except that the engine stores a
            list of one keyword as that keyword).
        vectors: every field's vector, ``{field: vector}`` (fields it has no vector in are left
            out).
    """

    id: str
    payload: Any
    vector: Any
    attributes: Optional[dict] = None
    vectors: Optional[dict] = None


def _buffer(address: int, count: int, fmt: str, size: int) -> memoryview:
    return memoryview(ctypes.string_at(address, count * size)).cast(fmt)


def _strings(blob: bytes, offsets: List[int], count: int) -> List[str]:
    text = blob.decode("utf-8")
    if len(text) == len(blob):  # ASCII: byte offsets are character offsets
        return [text[offsets[i] : offsets[i + 1]] for i in range(count)]
    return [blob[offsets[i] : offsets[i + 1]].decode("utf-8") for i in range(count)]


_new_hit = tuple.__new__  # a C-level constructor: Hit's own __new__ is Python code


def read_results(handle: int, single: bool, return_arrays: bool):
    """The hits of a search result handle, which this frees. The result is copied out in one piece
    (sdb_results_packed, layout in sparsedb.h) and parsed from that copy."""
    try:
        lib.sdb_results_packed(handle, slots.out_ref, slots.size_ref)
        raw = ctypes.string_at(slots.out.value, slots.size.value)
    finally:
        lib.sdb_results_free(handle)
    return parse_results(raw, single, return_arrays)


def parse_results(raw: bytes, single: bool, return_arrays: bool):
    """Hits from a copy of a packed result buffer."""
    queries, total, id_bytes, payload_bytes = unpack_from("4q", raw)
    at = 32
    offsets = unpack_from(f"{queries + 1}q", raw, at)
    at += 8 * (queries + 1)
    scores_at = at
    at += 8 * total + ((4 * total + 7) & ~7)  # scores, internal ids
    id_offsets = unpack_from(f"{total + 1}q", raw, at)
    at += 8 * (total + 1)
    payload_offsets_at = at
    at += 8 * (total + 1) + 56 * queries  # payload offsets, statistics
    present_at = at
    at += (total + 7) & ~7
    ids = _strings(raw[at : at + id_bytes], id_offsets, total)
    at += (id_bytes + 7) & ~7
    if return_arrays:
        scores = np.frombuffer(raw, dtype=np.float64, count=total, offset=scores_at)
        counts = np.diff(np.asarray(offsets, dtype=np.int64))
        width = int(counts.max()) if queries else 0
        out_ids = np.full((queries, width), None, dtype=object)
        out_scores = np.full((queries, width), -np.inf, dtype=np.float64)
        rows = np.repeat(np.arange(queries), counts)
        cols = np.arange(total) - np.repeat(np.asarray(offsets[:-1], dtype=np.int64), counts)
        out_scores[rows, cols] = scores
        id_array = np.empty(total, dtype=object)
        id_array[:] = ids
        out_ids[rows, cols] = id_array
        return SearchArrays(out_ids, out_scores)
    scores = unpack_from(f"{total}d", raw, scores_at)
    if payload_bytes or raw.count(1, present_at, present_at + total):
        po = unpack_from(f"{total + 1}q", raw, payload_offsets_at)
        blob = raw[at : at + payload_bytes]
        present = raw[present_at : present_at + total]
        payloads = [decode_payload(blob[po[h] : po[h + 1]]) if present[h] else None for h in range(total)]
        hits = [_new_hit(Hit, t) for t in zip(ids, scores, payloads)]
    else:
        hits = [_new_hit(Hit, t) for t in zip(ids, scores, repeat(None))]
    if single:
        return hits
    return [hits[offsets[q] : offsets[q + 1]] for q in range(queries)]


_HEADER = Struct("=4q")
_scores_structs: dict = {}


def _scores_struct(h: int) -> Struct:
    s = _scores_structs.get(h)
    if s is None:
        s = _scores_structs[h] = Struct(f"={h}d")
    return s


_MAX_OUTPUT = 16 << 20


def parse_hits(s) -> List[Hit]:
    """The hits sdb_collection_search_into wrote into the per-thread buffer ``s.output`` (layout
    in sparsedb.h), or, when they did not fit, those of the result object it returned instead
    (which this frees; the buffer then grows, up to 16 MiB, for the next call)."""
    out = s.output
    h, id_bytes, payload_bytes, payload_count = _HEADER.unpack_from(out)
    if h < 0:
        if id_bytes <= _MAX_OUTPUT:  # header[1]: the size needed
            s.grow_output(id_bytes)
        return read_results(payload_bytes, True, False)  # header[2]: the result object
    scores = (_scores_structs.get(h) or _scores_struct(h)).unpack_from(out, 48)
    present_at = 64 + 24 * h
    at = present_at + ((h + 7) & ~7)
    # Each id is followed by a NUL: one split gives them all, unless an id holds a NUL itself
    # (then there are more pieces than hits, and the offsets say where each one ends).
    ids = out[at : at + id_bytes].decode("utf-8").split("\0")
    ids.pop()
    if len(ids) != h:
        offsets = unpack_from(f"={h + 1}q", out, 48 + 8 * h)
        ids = [out[at + offsets[i] : at + offsets[i + 1] - 1].decode("utf-8") for i in range(h)]
    if payload_count == 0:
        return list(map(_new_hit, repeat(Hit, h), zip(ids, scores, repeat(None))))
    offsets = unpack_from(f"={h + 1}q", out, 56 + 16 * h)
    at += (id_bytes + 7) & ~7
    payloads = [
        decode_payload(bytes(out[at + offsets[i] : at + offsets[i + 1]])) if out[present_at + i] else None for i in range(h)
    ]
    return list(map(_new_hit, repeat(Hit, h), zip(ids, scores, payloads)))


def read_hybrid_results(handle: int, single: bool, return_arrays: bool, names: List[str]):
    """Hits of a hybrid search (HybridHit, with each field's score); frees the handle."""
    try:
        lib.sdb_results_packed(handle, slots.out_ref, slots.size_ref)
        raw = ctypes.string_at(slots.out.value, slots.size.value)
        fields = c_int64()
        scores_p = c_void_p()
        lib.sdb_results_field_scores(handle, byref(fields), byref(scores_p))
        total = unpack_from("q", raw, 8)[0]
        width = fields.value
        field_scores = np.frombuffer(ctypes.string_at(scores_p.value, total * width * 8), dtype=np.float64).reshape(total, width)
    finally:
        lib.sdb_results_free(handle)
    parsed = parse_results(raw, single, return_arrays)
    if return_arrays:
        return parsed
    rows = [{n: s for n, s in zip(names, row) if s == s} for row in field_scores.tolist()]
    lists = [parsed] if single else parsed
    out, h = [], 0
    for hits in lists:
        converted = []
        for hit in hits:
            converted.append(HybridHit(hit.id, hit.score, hit.payload, rows[h]))
            h += 1
        out.append(converted)
    return out[0] if single else out


def _csr_arrays(rows: int, indptr_p: c_void_p, indices_p: c_void_p, values_p: c_void_p):
    indptr = np.frombuffer(ctypes.string_at(indptr_p.value, (rows + 1) * 8), dtype=np.int64)
    nnz = int(indptr[-1])
    indices = np.frombuffer(ctypes.string_at(indices_p.value, nnz * 4), dtype=np.uint32)
    values = np.frombuffer(ctypes.string_at(values_p.value, nnz * 4), dtype=np.float32)
    return indptr, indices, values


def read_vectors(handle: c_void_p, dimensions: int) -> scipy.sparse.csr_matrix:
    """Encoded vectors as a CSR matrix of shape (texts, dimensions); frees the handle."""
    try:
        n = c_int64()
        indptr_p, indices_p, values_p = c_void_p(), c_void_p(), c_void_p()
        lib.sdb_vectors_view(handle, byref(n), byref(indptr_p), byref(indices_p), byref(values_p))
        indptr, indices, values = _csr_arrays(n.value, indptr_p, indices_p, values_p)
    finally:
        lib.sdb_vectors_free(handle)
    index_dtype = np.int32 if dimensions < (1 << 31) and len(indices) < (1 << 31) else np.int64
    return scipy.sparse.csr_matrix(
        (values, indices.astype(index_dtype), indptr.astype(index_dtype)), shape=(n.value, dimensions)
    )


def read_dense_vectors(handle: c_void_p) -> np.ndarray:
    """Embeddings as a float32 array of shape (texts, dimensions); frees the handle."""
    try:
        n, width, values_p = c_int64(), c_int64(), c_void_p()
        lib.sdb_vectors_dense_view(handle, byref(n), byref(width), byref(values_p))
        data = ctypes.string_at(values_p.value, n.value * width.value * 4)
    finally:
        lib.sdb_vectors_free(handle)
    return np.frombuffer(data, dtype=np.float32).reshape(n.value, width.value).copy()


def read_documents(handle: c_void_p, ids: List[str]) -> List[Optional[Document]]:
    """The documents of a get result (None where an id is absent); frees the handle."""
    try:
        n = c_int64()
        found_p, indptr_p, indices_p, values_p = c_void_p(), c_void_p(), c_void_p(), c_void_p()
        payload_p, payload_offsets_p, present_p = c_void_p(), c_void_p(), c_void_p()
        lib.sdb_documents_view(
            handle, byref(n), byref(found_p), byref(indptr_p), byref(indices_p), byref(values_p),
            byref(payload_p), byref(payload_offsets_p), byref(present_p),
        )
        rows = n.value
        found = _buffer(found_p.value, rows, "B", 1).tolist()
        indptr, indices, values = _csr_arrays(rows, indptr_p, indices_p, values_p)
        present = _buffer(present_p.value, rows, "B", 1).tolist()
        payload_offsets = _buffer(payload_offsets_p.value, rows + 1, "q", 8).tolist()
        blob = ctypes.string_at(payload_p.value, payload_offsets[rows])
    finally:
        lib.sdb_documents_free(handle)
    out: List[Optional[Document]] = []
    dims = indices.tolist()
    weights = values.tolist()
    for i in range(rows):
        if not found[i]:
            out.append(None)
            continue
        a, b = int(indptr[i]), int(indptr[i + 1])
        payload = decode_payload(blob[payload_offsets[i] : payload_offsets[i + 1]]) if present[i] else None
        out.append(Document(ids[i], payload, dict(zip(dims[a:b], weights[a:b]))))
    return out


def read_documents_full(handle: c_void_p, ids: List[str], default_field: Optional[str], float_attributes) -> List[Optional[Document]]:
    """The documents of a sdb_collection_get_documents result, every field and attribute (None
    where an id is absent); frees the handle. ``vector`` is ``default_field``'s vector."""
    try:
        n = c_int64()
        found_p, payload_p, payload_offsets_p, present_p = c_void_p(), c_void_p(), c_void_p(), c_void_p()
        lib.sdb_documents_view(
            handle, byref(n), byref(found_p), None, None, None, byref(payload_p), byref(payload_offsets_p), byref(present_p),
        )
        rows = n.value
        found = _buffer(found_p.value, rows, "B", 1).tolist()
        present = _buffer(present_p.value, rows, "B", 1).tolist()
        payload_offsets = _buffer(payload_offsets_p.value, rows + 1, "q", 8).tolist()
        blob = ctypes.string_at(payload_p.value, payload_offsets[rows])
        fields = []
        for f in range(lib.sdb_documents_field_count(handle)):
            name_p, width = c_void_p(), c_int64()
            indptr_p, indices_p, values_p, fpresent_p = c_void_p(), c_void_p(), c_void_p(), c_void_p()
            lib.sdb_documents_field(
                handle, f, byref(name_p), byref(width), byref(indptr_p), byref(indices_p), byref(values_p), byref(fpresent_p)
            )
            fpresent = _buffer(fpresent_p.value, rows, "B", 1).tolist()
            if width.value > 0:
                dense = np.frombuffer(ctypes.string_at(values_p.value, rows * width.value * 4), dtype=np.float32)
                fields.append((ctypes.string_at(name_p.value).decode("utf-8"), fpresent, dense.reshape(rows, width.value), None))
            else:
                indptr, indices, values = _csr_arrays(rows, indptr_p, indices_p, values_p)
                fields.append((ctypes.string_at(name_p.value).decode("utf-8"), fpresent, (indptr.tolist(), indices.tolist(), values.tolist()), True))
        attributes = json.loads(lib.sdb_documents_attributes_json(handle).decode("utf-8"))
    finally:
        lib.sdb_documents_free(handle)
    out: List[Optional[Document]] = []
    for i in range(rows):
        if not found[i]:
            out.append(None)
            continue
        vectors = {}
        for name, fpresent, data, sparse in fields:
            if not fpresent[i]:
                continue
            if sparse:
                indptr, dims, weights = data
                a, b = indptr[i], indptr[i + 1]
                vectors[name] = dict(zip(dims[a:b], weights[a:b]))
            else:
                vectors[name] = data[i].copy()
        attrs = attributes[i] or {}
        for name in float_attributes:
            if isinstance(attrs.get(name), int):
                attrs[name] = float(attrs[name])
        payload = decode_payload(blob[payload_offsets[i] : payload_offsets[i + 1]]) if present[i] else None
        out.append(Document(ids[i], payload, vectors.get(default_field) if default_field else None, attrs, vectors))
    return out
