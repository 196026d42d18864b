"""Turning what users hold (scipy matrices, dicts, torch tensors, numpy arrays, lists of str) into
the packed arrays the C ABI takes, checking shapes and types on the way.

Every array handed to the library is a C-contiguous numpy array (or bytes) owned by the object
returned here, which the caller keeps alive for the duration of the foreign call. Values the
engine checks itself (NaN, negative or too large weights, dimensions out of range, repeated
dimensions, id lengths) are left to it, so that its messages (naming the document) reach the user.
"""
from __future__ import annotations

import json
import sys
from array import array
from itertools import accumulate, chain
from typing import Any, Iterable, List, Mapping, Optional, Sequence, Tuple

import numpy as np
import scipy.sparse

from .errors import InvalidInputError

_MAX_DIM = 1 << 32


def address(buffer) -> int:
    """The address of a C-contiguous numpy array's or an array.array's first element (0 when
    empty). array.array's buffer_info is ~20x cheaper than numpy's .ctypes.data, which matters
    for one small query."""
    if isinstance(buffer, array):
        return buffer.buffer_info()[0] if len(buffer) else 0
    return buffer.ctypes.data if len(buffer) else 0


class CSR:
    """Rows of sparse vectors as int64 indptr, uint32 indices, float32 values (C-contiguous numpy
    arrays, or array.array('q' / 'I' / 'f') when built from dicts)."""

    __slots__ = ("rows", "indptr", "indices", "values", "single", "addresses")

    def __init__(self, indptr, indices, values, single: bool):
        self.rows = len(indptr) - 1
        self.indptr = indptr
        self.indices = indices
        self.values = values
        self.single = single
        #: (indptr, indices, values) addresses, valid while this object lives.
        self.addresses: Tuple[int, int, int] = (address(indptr), address(indices), address(values))


def _torch():
    return sys.modules.get("torch")


def _is_torch_tensor(x: Any) -> bool:
    torch = _torch()
    return torch is not None and isinstance(x, torch.Tensor)


def _check_values_dtype(values: np.ndarray, what: str) -> np.ndarray:
    if values.dtype.kind not in "fiub":
        raise InvalidInputError(f"{what}: weights must be real numbers, got dtype {values.dtype}")
    with np.errstate(over="ignore"):  # too large for float32 becomes inf, which the engine refuses by name
        return np.ascontiguousarray(values, dtype=np.float32)


def _check_indices(indices: np.ndarray, what: str) -> np.ndarray:
    if indices.dtype.kind not in "iu":
        raise InvalidInputError(f"{what}: dimension indices must be integers, got dtype {indices.dtype}")
    if len(indices):
        if indices.dtype.kind == "i" and indices.min() < 0:
            raise InvalidInputError(f"{what}: dimension index {int(indices.min())} is negative")
        if indices.max() >= _MAX_DIM:
            raise InvalidInputError(f"{what}: dimension index {int(indices.max())} is above 2^32 - 1")
    return np.ascontiguousarray(indices, dtype=np.uint32)


def _from_arrays(indptr, indices, values, single: bool, what: str) -> CSR:
    indptr = np.asarray(indptr)
    if indptr.ndim != 1 or len(indptr) < 1 or indptr.dtype.kind not in "iu":
        raise InvalidInputError(f"{what}: malformed CSR index pointer")
    indptr = indptr.astype(np.int64, copy=False)
    start, end = int(indptr[0]), int(indptr[-1])
    indices = np.asarray(indices)
    values = np.asarray(values)
    if indices.ndim != 1 or values.ndim != 1:
        raise InvalidInputError(f"{what}: CSR indices and values must be one-dimensional")
    if start < 0 or end > len(indices) or end > len(values) or np.any(indptr[1:] < indptr[:-1]):
        raise InvalidInputError(f"{what}: malformed CSR matrix (index pointer out of order or past the data)")
    if start != 0 or end != len(indices) or end != len(values):
        indices, values = indices[start:end], values[start:end]
        indptr = indptr - start
    return CSR(
        np.ascontiguousarray(indptr, dtype=np.int64),
        _check_indices(indices, what),
        _check_values_dtype(values, what),
        single,
    )


def _from_scipy(m, what: str, single: bool = False) -> CSR:
    if getattr(m, "ndim", 2) == 1:  # a 1-D sparse array (scipy >= 1.13): one vector
        m = m.reshape((1, m.shape[0]))
        single = True
    if m.format != "csr":
        m = m.tocsr()
    return _from_arrays(m.indptr, m.indices, m.data, single, what)


def _from_dense(a: np.ndarray, what: str) -> CSR:
    if a.ndim == 1:
        return _from_scipy(scipy.sparse.csr_matrix(a.reshape(1, -1)), what, single=True)
    if a.ndim == 2:
        return _from_scipy(scipy.sparse.csr_matrix(a), what)
    raise InvalidInputError(f"{what}: a dense array must have 1 or 2 dimensions, got shape {a.shape}")


def _from_torch(t, what: str) -> CSR:
    torch = _torch()
    t = t.detach()
    if t.device.type != "cpu":
        t = t.cpu()
    if t.dim() not in (1, 2):
        raise InvalidInputError(f"{what}: a tensor must have 1 or 2 dimensions, got shape {tuple(t.shape)}")
    single = t.dim() == 1
    if t.layout == torch.sparse_coo:
        t = t.coalesce()
        idx = t.indices().numpy()
        vals = t.values().to(torch.float32).numpy()
        if single:
            n, rows, cols = 1, np.zeros(idx.shape[1], dtype=np.int64), idx[0]
        else:
            n, rows, cols = t.shape[0], idx[0], idx[1]
        # A coalesced tensor's entries are sorted by (row, column): rows are contiguous runs.
        indptr = np.zeros(n + 1, dtype=np.int64)
        np.cumsum(np.bincount(rows, minlength=n), out=indptr[1:])
        return _from_arrays(indptr, cols, vals, single, what)
    if t.layout == torch.sparse_csr:
        if single:
            raise InvalidInputError(f"{what}: a sparse CSR tensor must be two-dimensional")
        return _from_arrays(
            t.crow_indices().numpy(), t.col_indices().numpy(), t.values().to(torch.float32).numpy(), False, what
        )
    if t.layout == torch.strided:
        return _from_dense(t.to(torch.float32).numpy(), what)
    raise InvalidInputError(f"{what}: unsupported tensor layout {t.layout}")


def _dict_keys(keys: Iterable[Any], what: str) -> array:
    keys = list(keys)
    try:
        return array("I", keys)
    except (TypeError, OverflowError):
        pass
    out = array("I")
    for k in keys:
        try:
            if isinstance(k, str):
                d = int(k, 10)
            elif isinstance(k, (bool, float)) or not hasattr(k, "__index__"):
                raise TypeError
            else:
                d = k.__index__()
        except (TypeError, ValueError):
            raise InvalidInputError(f"{what}: dimension {k!r} is not an integer index") from None
        if not 0 <= d < _MAX_DIM:
            raise InvalidInputError(f"{what}: dimension index {d} is out of range (0 .. 2^32 - 1)")
        out.append(d)
    return out


def _dict_values(values: Iterable[Any], what: str) -> array:
    try:
        return array("f", values)
    except OverflowError:
        raise InvalidInputError(f"{what}: a weight is too large for a 32-bit float") from None
    except TypeError:
        raise InvalidInputError(f"{what}: weights must be real numbers") from None


def _from_dicts(dicts: Sequence[dict], single: bool, what: str) -> CSR:
    indptr = array("q", [0])
    indptr.extend(accumulate(len(d) for d in dicts))
    if single:
        keys = _dict_keys(dicts[0].keys(), what)
        values = _dict_values(dicts[0].values(), what)
    else:
        keys = _dict_keys(chain.from_iterable(d.keys() for d in dicts), what)
        values = _dict_values(chain.from_iterable(d.values() for d in dicts), what)
    return CSR(indptr, keys, values, single)


def to_csr(vectors: Any, what: str = "vectors") -> CSR:
    """Normalises one vector or a batch. ``single`` says whether one vector (a dict, a 1-D array or
    tensor) was given rather than a batch (a matrix, a 2-D tensor, a list)."""
    if type(vectors) is dict:
        # The common single query: straight into arrays (their constructors check the types and
        # ranges; anything unusual takes the general path, which says what is wrong).
        try:
            keys = array("I", vectors)
            values = array("f", vectors.values())
        except (TypeError, OverflowError):
            return _from_dicts([vectors], True, what)
        return CSR(array("q", (0, len(keys))), keys, values, True)
    if isinstance(vectors, dict):
        return _from_dicts([vectors], True, what)
    if scipy.sparse.issparse(vectors):
        return _from_scipy(vectors, what)
    if isinstance(vectors, np.ndarray):
        return _from_dense(vectors, what)
    if _is_torch_tensor(vectors):
        return _from_torch(vectors, what)
    if isinstance(vectors, (list, tuple)):
        if len(vectors) == 0:
            return CSR(np.zeros(1, dtype=np.int64), np.zeros(0, dtype=np.uint32), np.zeros(0, dtype=np.float32), False)
        if all(isinstance(v, dict) for v in vectors):
            return _from_dicts(vectors, False, what)
        parts = [to_csr(v, what) for v in vectors]
        if all(p.single for p in parts):
            return concat(parts)
        raise InvalidInputError(f"{what}: a list must hold single vectors (dicts, 1-D arrays or tensors)")
    raise InvalidInputError(
        f"{what}: expected a scipy.sparse matrix, a dict {{dimension: weight}}, a list of dicts, a torch "
        f"tensor or a numpy array, got {type(vectors).__name__}"
    )


def concat(parts: List[CSR]) -> CSR:
    # Every part is one row (`single`), so the row pointer is the running total of their lengths.
    indptr = np.zeros(len(parts) + 1, dtype=np.int64)
    np.cumsum([p.indptr[-1] for p in parts], out=indptr[1:])
    return CSR(
        indptr,
        np.concatenate([p.indices for p in parts]).astype(np.uint32, copy=False),
        np.concatenate([p.values for p in parts]).astype(np.float32, copy=False),
        False,
    )


class Strings:
    """n UTF-8 strings packed as bytes + int64 offsets."""

    __slots__ = ("count", "data", "offsets")

    def __init__(self, items: Sequence[str], what: str):
        encoded = []
        for s in items:
            if not isinstance(s, str):
                raise InvalidInputError(f"{what} must be strings, got {type(s).__name__} ({s!r})")
            try:
                encoded.append(s.encode("utf-8"))
            except UnicodeEncodeError as e:
                raise InvalidInputError(f"{what} {s!r} is not valid Unicode text: {e.reason}") from None
        self.count = len(encoded)
        self.data = b"".join(encoded)
        self.offsets = array("q", [0])
        self.offsets.extend(accumulate(len(e) for e in encoded))

    @property
    def addresses(self) -> Tuple[Optional[bytes], int]:
        return (self.data, self.offsets.buffer_info()[0])


def string_list(items: Any, what: str) -> List[str]:
    """A str (one item) or an iterable of str, as a list."""
    if isinstance(items, str):
        return [items]
    if isinstance(items, np.ndarray):
        items = items.tolist()
    try:
        return list(items)
    except TypeError:
        raise InvalidInputError(f"{what} must be a string or a list of strings, got {type(items).__name__}") from None


def encode_payload(p: Any) -> Optional[bytes]:
    """A payload as stored: bytes as they are, None as no payload, anything else as JSON."""
    if p is None:
        return None
    if isinstance(p, (bytes, bytearray, memoryview)):
        return bytes(p)
    try:
        return json.dumps(p, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    except (TypeError, ValueError) as e:
        raise InvalidInputError(f"payload is not JSON-serializable: {e}") from None


def decode_payload(raw: bytes) -> Any:
    """A stored payload: parsed JSON when it is JSON, else text when UTF-8, else bytes."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw
    try:
        return json.loads(text)
    except ValueError:
        return text


class Payloads:
    """Optional payloads packed as bytes + offsets + present flags (or all None for "none")."""

    __slots__ = ("data", "offsets", "present")

    def __init__(self, payloads: Optional[Sequence[Any]], count: int):
        if payloads is None:
            self.data = self.offsets = self.present = None
            return
        if isinstance(payloads, (str, bytes, dict)):
            payloads = [payloads]
        payloads = list(payloads)
        if len(payloads) != count:
            raise InvalidInputError(f"{len(payloads)} payloads for {count} documents")
        encoded = [encode_payload(p) for p in payloads]
        self.data = b"".join(e for e in encoded if e is not None)
        self.offsets = array("q", [0])
        self.offsets.extend(accumulate(len(e) if e is not None else 0 for e in encoded))
        self.present = array("B", [e is not None for e in encoded])

    @property
    def addresses(self) -> Tuple[Optional[bytes], int, int]:
        if self.offsets is None:
            return (None, 0, 0)
        return (self.data, self.offsets.buffer_info()[0], address(self.present))


# -- dense rows, presence, attributes, filters ---------------------------------------------------


class Dense:
    """Dense rows as one C-contiguous float32 array of shape (rows, width)."""

    __slots__ = ("rows", "array", "width", "single", "present")

    def __init__(self, array_2d: np.ndarray, single: bool, present=None):
        self.array = array_2d
        self.rows, self.width = array_2d.shape
        self.single = single
        #: None, or a uint8 array (0 = absent row).
        self.present = present


def _dense_array(a: Any, what: str) -> np.ndarray:
    if isinstance(a, Mapping):
        raise InvalidInputError(f"{what}: a dense field takes float arrays (1-D for one vector, 2-D for a batch), not {{dimension: weight}} dicts")
    if scipy.sparse.issparse(a):
        a = a.toarray()
    elif _is_torch_tensor(a):
        torch = _torch()
        t = a.detach()
        if t.device.type != "cpu":
            t = t.cpu()
        if t.layout != torch.strided:
            t = t.to_dense()
        a = t.to(torch.float32).numpy()
    a = np.asarray(a)
    if a.dtype.kind not in "fiu":
        raise InvalidInputError(f"{what}: dense vectors must be real numbers, got dtype {a.dtype}")
    return a


def to_dense(vectors: Any, what: str = "vectors") -> Dense:
    """One dense vector (1-D) or a batch (2-D array, or a list of 1-D vectors with None for
    absent rows) as float32 rows."""
    if isinstance(vectors, (list, tuple)) and any(v is None or not np.isscalar(v) for v in vectors):
        if len(vectors) == 0:
            return Dense(np.zeros((0, 0), dtype=np.float32), False)
        rows = [None if v is None else _dense_array(v, what).reshape(-1) for v in vectors]
        widths = {r.shape[0] for r in rows if r is not None}
        if len(widths) > 1:
            raise InvalidInputError(f"{what}: dense vectors of different lengths {sorted(widths)}")
        width = widths.pop() if widths else 1
        out = np.zeros((len(rows), width), dtype=np.float32)
        present = np.ones(len(rows), dtype=np.uint8)
        with np.errstate(over="ignore"):
            for i, r in enumerate(rows):
                if r is None:
                    present[i] = 0
                else:
                    out[i] = r
        return Dense(out, False, None if present.all() else present)
    a = _dense_array(vectors, what)
    with np.errstate(over="ignore"):  # too large for float32 becomes inf, which the engine refuses by name
        if a.ndim == 1:
            return Dense(np.ascontiguousarray(a.reshape(1, -1), dtype=np.float32), True)
        if a.ndim == 2:
            return Dense(np.ascontiguousarray(a, dtype=np.float32), False)
    raise InvalidInputError(f"{what}: a dense array must have 1 or 2 dimensions, got shape {a.shape}")


def to_sparse_rows(vectors: Any, what: str) -> Tuple[CSR, Optional[np.ndarray]]:
    """Sparse rows as to_csr, and presence flags when a list holds None for absent rows."""
    if isinstance(vectors, (list, tuple)) and any(v is None for v in vectors):
        present = np.array([v is not None for v in vectors], dtype=np.uint8)
        m = to_csr([{} if v is None else v for v in vectors], what)
        return m, present
    return to_csr(vectors, what), None


def _json_default(o: Any) -> Any:
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, (set, frozenset, tuple)):
        return list(o)
    raise TypeError(f"{type(o).__name__} is not a JSON value")


def attributes_json(attributes: Any, count: int, single: bool) -> Optional[bytes]:
    """Attribute values as the JSON array sdb_collection_upsert_matrix takes: a list of dicts (or
    None) per document, a dict of columns, or (one document) a dict."""
    if attributes is None:
        return None
    if isinstance(attributes, Mapping):
        if single:
            rows = [attributes]
        else:
            columns = {}
            for name, column in attributes.items():
                if isinstance(column, (str, bytes)) or not hasattr(column, "__len__"):
                    raise InvalidInputError(
                        f"attributes: column '{name}' must be a sequence of {count} values (a dict of columns), "
                        "or give a list of one dict per document")
                values = column.tolist() if isinstance(column, np.ndarray) else list(column)
                if len(values) != count:
                    raise InvalidInputError(f"attributes: column '{name}' has {len(values)} values for {count} documents")
                columns[name] = values
            rows = [{name: values[i] for name, values in columns.items()} for i in range(count)]
    elif isinstance(attributes, (list, tuple)):
        rows = list(attributes)
        if len(rows) != count:
            raise InvalidInputError(f"{len(rows)} attribute dicts for {count} documents")
        for r in rows:
            if r is not None and not isinstance(r, Mapping):
                raise InvalidInputError(f"attributes: expected a dict (or None) per document, got {type(r).__name__}")
    else:
        raise InvalidInputError(f"attributes must be a list of dicts or a dict of columns, got {type(attributes).__name__}")
    try:
        return json.dumps([None if r is None else dict(r) for r in rows], default=_json_default, allow_nan=False,
                          ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    except ValueError as e:
        raise InvalidInputError(f"attributes: {e} (values must be finite numbers)") from None
    except TypeError as e:
        raise InvalidInputError(f"attributes: {e}") from None


def filter_json(filter: Any) -> Optional[bytes]:
    """A filter as JSON text (a dict in the CLI's --filter form, or a JSON string)."""
    if filter is None:
        return None
    if isinstance(filter, str):
        return filter.encode("utf-8")
    if isinstance(filter, bytes):
        return filter
    if not isinstance(filter, Mapping):
        raise InvalidInputError(f"filter must be a dict such as {{'lang': 'en', 'year': {{'gte': 2000}}}} or a JSON string, got {type(filter).__name__}")
    try:
        return json.dumps(filter, default=_json_default, allow_nan=False, ensure_ascii=False).encode("utf-8")
    except (TypeError, ValueError) as e:
        raise InvalidInputError(f"filter is not JSON-serializable: {e}") from None
