"""Database and Collection: the Python face of the Swift engine's Database and VectorCollection."""
from __future__ import annotations

import copy
import json
import os
import struct
import threading
import weakref
from itertools import repeat
from threading import get_ident
from ctypes import byref, c_char_p, c_double, c_int64, c_uint32, c_void_p, cast
from typing import Any, Dict, List, Mapping, Optional, Sequence, Union

from ._convert import CSR, Dense, Payloads, Strings, attributes_json, filter_json, string_list, to_csr, to_dense, to_sparse_rows
from ._lib import (
    ALGORITHMS,
    CREATE_EXIST_OK,
    FUSION_METHODS,
    FusionOptions,
    Matrix,
    SearchOptions,
    INGEST_ALLOW_MISMATCH,
    INGEST_NO_COMPACT,
    INGEST_REPLACE,
    OPEN_NO_CREATE,
    OPEN_READ_ONLY,
    SEARCH_ALLOW_MODEL_MISMATCH,
    SEARCH_NO_PAYLOADS,
    call,
    lib,
    QUERY_AT,
    _owner_thread,
    buffers,
    owner_buffers,
    raise_error,
    search_call_address,
    search_call_raw,
    fast_search,
    slots,
    take_string,
)
from ._results import (
    _HEADER,
    Document,
    Hit,
    HybridHit,
    SearchArrays,
    _new_hit,
    _scores_struct,
    _scores_structs,
    parse_hits,
    read_documents_full,
    read_hybrid_results,
    read_results,
)
from .schema import Field, field_from_info, schema_json
from .encoder import Encoder
from .errors import InvalidInputError, ModelMismatchError

PathLike = Union[str, "os.PathLike[str]"]


class Database:
    """An embedded SparseDB database: a directory holding any number of collections.

    >>> with sparsedb.Database("my.sdb") as db:
    ...     docs = db.create_collection("docs", dimensions=30522)
    ...     docs.upsert(["d1"], [{2054: 1.2, 7592: 0.5}], payloads=[{"title": "hello"}])
    ...     docs.search({2054: 1.0}, k=10)
    [Hit(id='d1', score=1.2000000476837158, payload={'title': 'hello'})]

    Thread-safe: searches from several threads run concurrently on snapshots (the GIL is
    released inside the engine); writes are serialized. One process shares one open environment
    per directory: :meth:`close` closes it for every ``Database`` object on that directory.

    Args:
        path: the database directory (created when absent, unless ``create=False``).
        read_only: open an existing database without write access.
        create: create the database when absent (default True).
        posting_cache_bytes: memory for decoded posting blocks kept between queries
            (default 512 MiB; 0 disables the cache).

    Raises:
        NotFoundError: no database and ``create`` is false (or ``read_only``).
        ForeignFormatError: the directory holds other files.
        OlderFormatError: written by an older format (``sparsedb upgrade --db DIR``).
    """

    def __init__(self, path: PathLike, *, read_only: bool = False, create: bool = True, posting_cache_bytes: Optional[int] = None):
        self.path = os.fspath(path)
        flags = (OPEN_READ_ONLY if read_only else 0) | (0 if create else OPEN_NO_CREATE)
        handle = c_void_p()
        call(lib.sdb_database_open, os.fsencode(path), flags, -1 if posting_cache_bytes is None else int(posting_cache_bytes), handle)
        self._handle = handle
        self._closed = False
        # The handle is freed when the last Python reference goes (never while a call may use it);
        # close() only closes the environment, which the engine makes safe for concurrent calls.
        self._finalizer = weakref.finalize(self, lib.sdb_database_free, handle)

    # -- life cycle ------------------------------------------------------------------------------

    def close(self) -> None:
        """Closes the database (waits for running searches and writes). Later calls on it or its
        collections raise :class:`ClosedError`. Safe to call more than once."""
        if not self._closed:
            self._closed = True
            lib.sdb_database_close(self._handle)

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` was called on this object."""
        return self._closed

    def __enter__(self) -> "Database":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Database({self.path!r}{', closed' if self._closed else ''})"

    # -- collections -----------------------------------------------------------------------------

    def collections(self) -> List[str]:
        """The names of the collections, sorted."""
        out = c_void_p()
        call(lib.sdb_database_collection_names, self._handle, out)
        return json.loads(take_string(out))

    def collection(self, name: str) -> "Collection":
        """The existing collection ``name``.

        Raises:
            NotFoundError: there is no such collection.
        """
        out = c_void_p()
        call(lib.sdb_database_collection, self._handle, _name(name, "collection name"), out)
        return Collection(self, out)

    __getitem__ = collection

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name in self.collections()

    def create_collection(
        self,
        name: str,
        dimensions: int = 30522,
        *,
        fields: Union[None, Mapping[str, Any], Sequence[Field]] = None,
        attributes: Optional[Mapping[str, Any]] = None,
        exist_ok: bool = False,
    ) -> "Collection":
        """Creates collection ``name``.

        With no ``fields``: one sparse field ``vector`` of ``dimensions`` dimensions (indices
        ``0 .. dimensions-1``; 30522 is BERT's vocabulary, which SPLADE models use). With
        ``fields``: any number of fields of every kind,

        >>> db.create_collection("docs", fields=[
        ...     sparsedb.SparseField("splade", 30522),
        ...     sparsedb.DenseField("minilm", 384, metric="cosine", precision="f16"),
        ...     sparsedb.CSRField("code", 4096, active_dimensions=32, index="flat"),
        ... ], attributes={"lang": "keyword", "year": "integer"})

        or several sparse fields as a mapping ``{"title": 30522, "body": 30522}``.

        Args:
            fields: a list of :class:`SparseField`, :class:`DenseField`, :class:`CSRField`, or
                a mapping field name -> dimensions (sparse) or -> field object.
            attributes: payload attributes that filters can test, name -> type: ``"keyword"``
                (a string or a list of strings), ``"integer"``, ``"float"``, ``"bool"`` (or the
                Python types ``str``, ``int``, ``float``, ``bool``).
            exist_ok: return the collection when it already exists with the same schema.

        Raises:
            AlreadyExistsError: it exists (and not ``exist_ok``).
            InvalidInputError: a bad name or schema, or (``exist_ok``) it exists with another one.
        """
        schema = schema_json(dimensions, fields, attributes)
        out = c_void_p()
        call(
            lib.sdb_database_create_collection_schema, self._handle, _name(name, "collection name"), schema.encode("utf-8"),
            CREATE_EXIST_OK if exist_ok else 0, out,
        )
        return Collection(self, out)

    def drop_collection(self, name: str) -> None:
        """Deletes collection ``name`` and everything in it (one transaction).

        Raises:
            NotFoundError: there is no such collection.
        """
        call(lib.sdb_database_drop_collection, self._handle, _name(name, "collection name"))

    # -- maintenance -----------------------------------------------------------------------------

    def statistics(self) -> Dict[str, Any]:
        """Sizes and counts (what ``sparsedb stats`` prints), as a dict."""
        out = c_void_p()
        call(lib.sdb_database_statistics_json, self._handle, out)
        return json.loads(take_string(out))

    def verify(self) -> List[str]:
        """Checks every stored structure; returns the problems found (empty when sound)."""
        out = c_void_p()
        call(lib.sdb_database_verify_json, self._handle, out)
        return json.loads(take_string(out))

    def write_compacted_copy(self, target: PathLike) -> None:
        """Writes a copy without free pages into ``target`` (a new or empty directory)."""
        call(lib.sdb_database_write_compacted_copy, self._handle, os.fsencode(target))


def _name(name: Any, what: str) -> bytes:
    if not isinstance(name, str):
        raise InvalidInputError(f"{what} must be a string, got {type(name).__name__}")
    try:
        encoded = name.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidInputError(f"{what} {name!r} is not valid Unicode text") from None
    if b"\0" in encoded:
        raise InvalidInputError(f"{what} {name!r} contains a NUL character")
    return encoded


def _keep(encoded: bytes) -> int:
    """The address of a bytes object's buffer (the caller keeps the object alive)."""
    return cast(c_char_p(encoded), c_void_p).value  # type: ignore[return-value]


# Algorithm names -> codes, for the one-query path (anything else goes to _algorithm's message).
_ALGORITHM_CODES = dict(ALGORITHMS)
_unpack_header = _HEADER.unpack_from


def _fast_search_rest(s, result) -> Optional[List[Hit]]:
    """What _fastpath.search's answer other than a list of hits means (see _fastpath.c): None,
    the query does not pack (None: the general path); False, the hits need parse_hits; a
    status, the call failed (its error is raised)."""
    if result is None:
        return None
    if result is False:
        return parse_hits(s)
    raise_error(result, s.error())


def _algorithm(algorithm: str) -> int:
    try:
        return ALGORITHMS[algorithm]
    except (KeyError, TypeError):
        raise InvalidInputError(f"algorithm must be one of {', '.join(ALGORITHMS)}, got {algorithm!r}") from None


def _search_numbers(k: int, max_query_terms: Optional[int], heap_factor: float, threads: int, candidates: Optional[int] = None):
    """The numeric search options checked: (k, max_query_terms (0 = all), heap_factor, threads,
    candidates (0 = k)), as sdb_search_options takes them."""
    if isinstance(k, bool) or not isinstance(k, int):
        raise InvalidInputError(f"k must be an integer, got {k!r}")
    if max_query_terms is not None and (isinstance(max_query_terms, bool) or not isinstance(max_query_terms, int) or max_query_terms < 1):
        raise InvalidInputError(f"max_query_terms must be a positive integer or None, got {max_query_terms!r}")
    if candidates is not None:
        # The engine's rule (SearchOptions.validate) and message, checked here too: the options
        # block holds a uint32 in which 0 means k, so 0 and values beyond it must not reach it.
        if isinstance(candidates, bool) or not isinstance(candidates, int):
            raise InvalidInputError(f"candidates must be an integer from k to 2^20, or None, got {candidates!r}")
        if not (k if 1 <= k <= 1 << 20 else 1) <= candidates <= 1 << 20:  # an invalid k: the engine names k
            raise InvalidInputError(f"candidates must be between k ({k}) and 2^20, got {candidates}")
    try:
        heap_factor = float(heap_factor)
    except (TypeError, ValueError):
        raise InvalidInputError(f"heap_factor must be a number >= 1, got {heap_factor!r}") from None
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 0:
        raise InvalidInputError(f"threads must be 0 (all cores) or a positive integer, got {threads!r}")
    return k, max_query_terms or 0, heap_factor, threads, candidates or 0


def _options(k, algorithm, max_terms, heap_factor, threads, flags, filter, max_active_dims, truncate_dim, candidates) -> SearchOptions:
    """A new sdb_search_options (see _fill_options)."""
    options = SearchOptions()
    _fill_options(options, k, algorithm, max_terms, heap_factor, threads, flags, filter, max_active_dims, truncate_dim, candidates)
    return options


def _same(a: Any, b: Any) -> bool:
    """Equal values of the same types all the way down (True is not 1, 2000 is not 2000.0).
    Loops rather than generators: this runs on every filtered search."""
    t = type(a)
    if t is not type(b):
        return False
    if t is dict:
        if len(a) != len(b):
            return False
        for key, value in a.items():
            if key not in b or not _same(value, b[key]):
                return False
        return True
    if t is list or t is tuple:
        if len(a) != len(b):
            return False
        for x, y in zip(a, b):
            if not _same(x, y):
                return False
        return True
    return a == b


def _fill_options(o: SearchOptions, k, algorithm, max_terms, heap_factor, threads, flags, filter, max_active_dims, truncate_dim,
                  candidates) -> None:
    """Sets the fields of an sdb_search_options (a per-thread one on the hot path). ``filter`` is
    a dict, a JSON string, or its JSON bytes; the numbers as _search_numbers returns them."""
    if max_active_dims is not None or truncate_dim is not None:
        for name, value in (("max_active_dims", max_active_dims), ("truncate_dim", truncate_dim)):
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
                raise InvalidInputError(f"{name} must be a positive integer or None, got {value!r}")
    o.filter_json = filter if filter is None or type(filter) is bytes else filter_json(filter)
    o.algorithm = _algorithm(algorithm)
    o.k = k
    o.max_query_terms = max_terms
    o.max_active_dims = max_active_dims or 0
    o.truncate_dim = truncate_dim or 0
    o.heap_factor = heap_factor
    o.threads = threads
    o.flags = flags
    o.candidates = candidates


def _fill_matrix(matrix: Matrix, field: Optional[str], rows, present) -> None:
    """Sets the fields of a (per-thread) sdb_matrix over converted rows; the caller keeps `rows`
    and `present` alive for the call."""
    matrix.field = None if field is None else _name(field, "field name")
    matrix.present = None if present is None else present.ctypes.data
    if isinstance(rows, Dense):
        matrix.indptr = matrix.indices = None
        matrix.values = rows.array.ctypes.data if rows.array.size else None
        matrix.width = max(rows.width, 1)
    else:
        matrix.indptr, matrix.indices, values = rows.addresses
        matrix.values = values or None
        matrix.width = 0


def _matrix(field: Optional[str], rows, present):
    """An sdb_matrix over converted rows (CSR or Dense), and what it points into (keep it alive)."""
    name = None if field is None else _name(field, "field name")
    flags = None if present is None else present.ctypes.data
    if isinstance(rows, Dense):
        matrix = Matrix(name, None, None, rows.array.ctypes.data if rows.array.size else None, flags, max(rows.width, 1))
    else:
        indptr, indices, values = rows.addresses
        matrix = Matrix(name, indptr or None, indices or None, values or None, flags, 0)
    return matrix, (rows, present, name)


class _ParsedFilter:
    """A filter's JSON (bytes) and its parsed form (an sdb_filter, freed with this object)."""

    __slots__ = ("json", "pointer", "address", "__weakref__")

    def __init__(self, encoded: bytes):
        self.json = encoded
        #: The sdb_filter handle (a c_void_p), and its address.
        self.pointer = c_void_p()
        call(lib.sdb_filter_parse, encoded, self.pointer)
        self.address = self.pointer.value
        weakref.finalize(self, lib.sdb_filter_free, self.pointer.value)


class Collection:
    """A named set of documents with vector fields of every kind (sparse, dense, CSR) and payload
    attributes, searched exactly by dot product (or cosine), optionally filtered.

    Obtain one from :meth:`Database.create_collection` or :meth:`Database.collection`. Every
    write (:meth:`upsert`, :meth:`delete`) is one ACID transaction: all of it or nothing.
    Thread-safe; searches run with the GIL released.
    """

    def __init__(self, database: Database, handle: c_void_p):
        self.database = database
        self._handle = handle
        self._address = handle.value  # for the one-query path's request
        self._finalizer = weakref.finalize(self, lib.sdb_collection_free, handle)
        out = c_void_p()
        call(lib.sdb_collection_info_json, handle, out)
        info = json.loads(take_string(out))
        self.name: str = info["name"]
        #: Dimensions of the only (or ``vector``) field: valid indices are ``0 .. dimensions-1``.
        self.dimensions: int = info["dimensions"]
        #: Field name -> declaration (:class:`SparseField`, :class:`DenseField`, :class:`CSRField`).
        self.fields: Dict[str, Field] = {f["name"]: field_from_info(f) for f in info["fields"]}
        #: Attribute name -> type (keyword, integer, float, bool), in declaration order.
        self.attributes: Dict[str, str] = {a["name"]: a["type"] for a in info.get("attributes", [])}
        #: The field single-field calls use: the only field, else ``vector`` if there is one.
        self.default_field: Optional[str] = (
            next(iter(self.fields)) if len(self.fields) == 1 else ("vector" if "vector" in self.fields else None)
        )
        self._kinds: Dict[Optional[str], str] = {n: f.kind for n, f in self.fields.items()}
        if self.default_field is not None:
            self._kinds[None] = self._kinds[self.default_field]
        self._float_attributes = [n for n, t in self.attributes.items() if t == "float"]
        # Sparse and CSR fields, each with its NUL-terminated name and that name's address (for
        # sdb_collection_search_into; the bytes live as long as this dict): None = the default field.
        self._sparse_names: Dict[Optional[str], tuple] = {}
        for name, kind in self._kinds.items():
            if kind in ("sparse", "csr"):
                encoded = None if name is None else _name(name, "field name")
                self._sparse_names[name] = (encoded, 0 if encoded is None else _keep(encoded))
        self._last_filter: Optional[tuple] = None
        self._parsed_filters: Dict[bytes, _ParsedFilter] = {}
        self._encoder_lock = threading.Lock()
        self._query_encoder: Optional[Encoder] = None

    def __repr__(self) -> str:
        return f"Collection({self.name!r}, fields={list(self.fields.values())}, attributes={self.attributes})"

    # -- counts ----------------------------------------------------------------------------------

    def count(self) -> int:
        """Number of live documents."""
        n = c_int64()
        call(lib.sdb_collection_count, self._handle, byref(n))
        return n.value

    def __len__(self) -> int:
        return self.count()

    def __contains__(self, id: object) -> bool:
        return isinstance(id, str) and self.get(id) is not None

    # -- writes ----------------------------------------------------------------------------------

    def upsert(
        self,
        ids: Union[str, Sequence[str]],
        vectors: Any = None,
        payloads: Optional[Union[Any, Sequence[Any]]] = None,
        attributes: Any = None,
        *,
        field: Optional[str] = None,
        fields: Optional[Mapping[str, Any]] = None,
    ) -> None:
        """Inserts documents, replacing stored ones with the same ids, in one transaction.

        Args:
            ids: the documents' ids (str, 1..500 UTF-8 bytes, unique within the call); one str
                for a single document.
            vectors: one row per id for ``field`` (default: the only field, or ``vector``), or
                a dict ``{field name: rows}`` for several fields at once. Rows of a sparse or
                CSR field: a ``scipy.sparse`` matrix (any format), a list of
                ``{dimension: weight}`` dicts, a torch sparse tensor (COO or CSR, e.g. from
                ``SparseEncoder.encode(..., convert_to_sparse_tensor=True)``), or a dense numpy
                array / tensor (its non-zeros); weights finite, >= 0 and <= 1e9. Rows of a dense
                field: a 2-D float array of shape (len(ids), dimensions) (a numpy array, a torch
                tensor, or a list of 1-D vectors); one 1-D vector for one id. In a list, None
                leaves that document without a vector in that field.
            payloads: optional, one per id: any JSON-serializable value (stored as JSON and
                returned with hits), ``bytes`` (stored as they are), or None.
            attributes: optional values of the collection's declared attributes: a list of one
                dict (or None) per id, or a dict of columns ``{"lang": ["en", "de"], ...}`` (for
                one id, a dict of its values). A keyword is a str or a list of str, an integer an
                int, a float a finite number, a bool a bool; None or a missing key leaves the
                attribute out.
            field: the field ``vectors`` fills, when it is not a dict of fields.
            fields: the same as a dict ``vectors`` (kept for compatibility).

        Raises:
            InvalidInputError: a shape, type, weight, dimension, id or attribute is not
                acceptable; nothing is written.
        """
        single_id = isinstance(ids, str)
        id_list = string_list(ids, "ids")
        n = len(id_list)
        if fields is not None:
            if vectors is not None:
                raise InvalidInputError("give vectors or fields={name: vectors}, not both")
            given: Dict[Optional[str], Any] = dict(fields)
        elif vectors is None:
            raise InvalidInputError("upsert needs vectors: rows for one field, or a dict {field name: rows}")
        elif self._is_field_mapping(vectors):
            if field is not None:
                raise InvalidInputError("field= names one field; vectors is a dict of fields")
            given = dict(vectors)
        else:
            given = {field: vectors}
        parts = []
        for name, value in given.items():
            what = "vectors" if name is None else f"field '{name}'"
            if name is not None and not isinstance(name, str):
                raise InvalidInputError(f"field names must be strings, got {type(name).__name__}")
            m, present = self._rows(name, value, what)
            if m.single and n != 1:
                raise InvalidInputError(f"{what}: one vector for {n} ids")
            if m.rows != n:
                raise InvalidInputError(f"{what}: {m.rows} vectors for {n} ids")
            parts.append(_matrix(name, m, present))
        if n == 0:
            return
        attrs = attributes_json(attributes, n, single_id)
        packed_ids = Strings(id_list, "ids")
        packed_payloads = Payloads(payloads, n)
        count = len(parts)
        matrices = (Matrix * max(count, 1))(*[p[0] for p in parts])
        id_data, id_offsets = packed_ids.addresses
        p_data, p_offsets, p_present = packed_payloads.addresses
        call(
            lib.sdb_collection_upsert_matrix, self._handle, n, id_data, id_offsets, count, matrices,
            p_data, p_offsets, p_present, attrs,
        )
        # `parts` (the arrays the matrices point into) and `packed_*` were alive for the whole call.
        del parts

    def _is_field_mapping(self, vectors: Any) -> bool:
        """Whether ``vectors`` is {field name: rows} rather than one {dimension: weight} vector."""
        return (
            isinstance(vectors, Mapping) and len(vectors) > 0
            and all(isinstance(key, str) and key in self.fields for key in vectors)
        )

    def _filter_bytes(self, filter: Any) -> bytes:
        """The JSON of a filter (see _filter_entry)."""
        return self._filter_entry(filter).json

    def _filter_entry(self, filter: Any) -> "_ParsedFilter":
        """A filter's JSON and its parsed form. The last filter's are kept, so that a loop of
        searches with the same filter encodes and parses it once (compared by value and type, on
        a private copy), and the last 16 parsed ones by their JSON. The caller holds the returned
        object while the library uses it."""
        last = self._last_filter
        if last is not None and _same(last[0], filter):
            return last[1]
        encoded = filter_json(filter)
        # Searches that take turns among a few filters find them parsed, by their JSON.
        entry = self._parsed_filters.get(encoded)
        if entry is None:
            entry = _ParsedFilter(encoded)
            if len(self._parsed_filters) >= 16:  # bounded: a stream of distinct filters keeps 16 at most
                self._parsed_filters.clear()
            self._parsed_filters[encoded] = entry
        if type(filter) in (dict, str, bytes):
            self._last_filter = (copy.deepcopy(filter), entry)
        return entry

    def _kind(self, field: Optional[str]) -> Optional[str]:
        """The kind of ``field`` (None: the default field); None when there is no such field (the
        engine then says so)."""
        return self._kinds.get(field) if field is None or type(field) is str else None

    def _rows(self, field: Optional[str], value: Any, what: str):
        """Rows for ``field`` converted as its kind takes them: (CSR or Dense, presence flags)."""
        if self._kind(field) == "dense":
            d = to_dense(value, what)
            return d, d.present
        return to_sparse_rows(value, what)

    def delete(self, ids: Union[str, Sequence[str]]) -> int:
        """Deletes the documents with these ids in one transaction; returns how many existed."""
        packed = Strings(string_list(ids, "ids"), "ids")
        if packed.count == 0:
            return 0
        deleted = c_int64()
        data, offsets = packed.addresses
        call(lib.sdb_collection_delete, self._handle, packed.count, data, offsets, byref(deleted))
        return deleted.value

    def compact(self) -> None:
        """Removes deleted documents for good and re-packs every posting list (one transaction).
        Search results do not change."""
        call(lib.sdb_collection_compact, self._handle)

    # -- reads -----------------------------------------------------------------------------------

    def get(self, ids: Union[str, Sequence[str]], *, field: Optional[str] = None):
        """The stored document(s): for one id a :class:`Document` (id, payload, vector,
        attributes, vectors) or None; for a list of ids a list of those.

        ``vector`` is the vector of ``field`` (default: the only field, or ``vector``):
        ``{dimension: weight}`` for sparse and CSR fields, a float32 numpy array for dense ones
        (cosine fields store normalised rows); ``vectors`` holds every field's.
        """
        single = isinstance(ids, str)
        if field is not None and field not in self.fields:
            raise InvalidInputError(f"collection '{self.name}' has no field '{field}'")
        id_list = string_list(ids, "ids")
        packed = Strings(id_list, "ids")
        out = c_void_p()
        data, offsets = packed.addresses
        call(lib.sdb_collection_get_documents, self._handle, packed.count, data, offsets, out)
        docs = read_documents_full(out, id_list, field or self.default_field, self._float_attributes)
        return docs[0] if single else docs

    def search(
        self,
        queries: Any,
        k: int = 10,
        algorithm: str = "maxscore",
        max_query_terms: Optional[int] = None,
        heap_factor: float = 1.0,
        *,
        candidates: Optional[int] = None,
        field: Optional[str] = None,
        filter: Union[None, str, Mapping[str, Any]] = None,
        with_payload: bool = True,
        return_arrays: bool = False,
        threads: int = 0,
        max_active_dims: Optional[int] = None,
        truncate_dim: Optional[int] = None,
    ):
        """Exact top-k documents by dot product (cosine for cosine dense fields), for one query
        or a batch, optionally among the documents a filter admits.

        >>> c.search({2054: 1.0}, k=10, filter={"lang": "en", "year": {"gte": 2000}})
        >>> c.search(embedding, k=10, field="minilm")      # a dense field: a 1-D numpy array

        Args:
            queries: for a sparse or CSR field, one query (a ``{dimension: weight}`` dict, a 1-D
                sparse tensor or array) or a batch (a ``scipy.sparse`` matrix, a list of dicts, a
                2-D tensor or array); for a dense field, a 1-D float array (one query) or a 2-D
                one (a batch), of the field's dimensions (or ``truncate_dim``).
            k: hits per query.
            algorithm: ``"maxscore"`` (default), ``"wand"``, ``"bmw"`` (Block-Max WAND) or
                ``"exhaustive"``: all return the same hits with the same scores.
            max_query_terms: approximate: walk only the posting lists of this many largest
                query weights; the hits are still scored exactly with the whole query.
            heap_factor: approximate: > 1 prunes documents whose bound is below heap_factor x
                the current k-th score (1 = exact).
            candidates: with ``max_query_terms``: how many of the best documents of the pruned
                search are rescored with the whole query, the best ``k`` of them returned
                (k <= candidates <= 2**20; None = k). More candidates find documents that rank
                lower on the walked terms than on the whole query (better recall, a little
                slower). Checked also without ``max_query_terms`` (where the search is exact).
            field: the field to search (default: the only field, or ``vector``).
            filter: only documents whose attributes match: a dict in the form of the CLI's
                ``--filter`` (``{"lang": "en"}`` equality, for a keyword list membership;
                ``{"lang": {"in": ["en", "de"]}}``; ``{"year": {"gte": 2000, "lt": 2010}}`` with
                gt / gte / lt / lte; ``{"$and": [...]}``, ``{"$or": [...]}``, ``{"$not": {...}}``;
                several keys mean AND), or the same as a JSON string. The hits are the exact
                top-k among the matching documents; a document without a value for an attribute
                matches no test on it.
            with_payload: load each hit's payload (False is faster).
            return_arrays: return :class:`SearchArrays` (numpy ``ids`` and ``scores``, shape
                (queries, m)) instead of lists of :class:`Hit`: for large batches.
            threads: a batch is spread over this many threads inside the engine (0 = one per
                core, 1 = the calling thread only).
            max_active_dims: CSR fields: keep only the query's K largest entries.
            truncate_dim: dense fields: score on the first D dimensions only (Matryoshka
                truncation, as sentence-transformers' ``truncate_dim``).

        Returns:
            For one query, a list of :class:`Hit` (``id``, ``score``, ``payload``), best first;
            for a batch, one such list per query (or :class:`SearchArrays`).

        Raises:
            InvalidInputError: a query has a NaN, negative or too large weight, a dimension
                outside the field, or ``k`` < 1, ``heap_factor`` < 1, ``candidates`` not an
                integer from ``k`` to 2**20; the filter is malformed,
                names an undeclared attribute or compares it with a value of another type.
        """
        if (
            type(queries) is dict and type(k) is int and max_query_terms is None and candidates is None and type(heap_factor) is float
            and type(threads) is int and threads >= 0 and not return_arrays and max_active_dims is None and truncate_dim is None
        ):
            # One {dimension: weight} query with exact options, the common case, checked above as
            # _search_numbers would (anything else goes on below): one foreign call, no result
            # object. The other arguments are checked where they are used, as below.
            names = self._sparse_names.get(field) if field is None or type(field) is str else None
            code = _ALGORITHM_CODES.get(algorithm) if type(algorithm) is str else None
            if names is not None and code is not None:
                flags = 0 if with_payload else SEARCH_NO_PAYLOADS
                s = owner_buffers if get_ident() == _owner_thread else buffers()
                if (
                    filter is None and fast_search is not None and len(queries) <= s.entries
                    and (self._address, names[1], k, 0, 0, heap_factor, code, flags, 0) == s.head
                ):
                    # _search_one's C path without its call: this thread's request already holds
                    # these options and has room for the query (else _search_one writes them).
                    hits = fast_search(queries, search_call_address, s.request_address, s.dimensions_address, s.weights_address,
                                       s.entries, s.output_address, Hit)
                    if type(hits) is list:
                        return hits
                    if hits is not None:  # None: the query does not pack; the general path below says why
                        return _fast_search_rest(s, hits)
                else:
                    hits = self._search_one(queries, k, code, 0, 0, heap_factor, flags, names[1], filter)
                    if hits is not None:
                        return hits
        k, max_terms, heap_factor, threads, candidates = _search_numbers(k, max_query_terms, heap_factor, threads, candidates)
        flags = 0 if with_payload and not return_arrays else SEARCH_NO_PAYLOADS
        if type(queries) is dict and not return_arrays and max_active_dims is None and truncate_dim is None:
            # One dict query with approximate options, or numbers of other types (numpy
            # scalars, an int heap_factor...): the same one-query path, after the checks.
            names = self._sparse_names.get(field) if field is None or type(field) is str else None
            if names is not None:
                hits = self._search_one(queries, k, _algorithm(algorithm), max_terms, candidates, heap_factor, flags, names[1], filter)
                if hits is not None:
                    return hits
        # sdb_collection_search takes no options block: filters, truncations, candidates and dense
        # fields go through sdb_collection_search_matrix.
        if filter is not None or max_active_dims is not None or truncate_dim is not None or candidates or self._kind(field) == "dense":
            m, present = self._rows(field, queries, "queries")
            s = slots
            if filter is not None:
                filter = self._filter_bytes(filter)
            _fill_options(s.options, k, algorithm, max_terms, heap_factor, threads, flags, filter, max_active_dims, truncate_dim, candidates)
            _fill_matrix(s.matrix, field, m, present)
            status = lib.sdb_collection_search_matrix(self._handle, s.matrix_ref, m.rows, s.options_ref, s.out_ref, s.err_ref)
            s.matrix.field = s.options.filter_json = None  # drop the references to this call's bytes
            if status:
                raise_error(status, s.err)
            return read_results(s.out.value, m.single, return_arrays)
        q = to_csr(queries, "queries")
        indptr, indices, values = q.addresses
        s = slots
        status = lib.sdb_collection_search(
            self._handle, None if field is None else _name(field, "field name"), q.rows, indptr, indices, values, k,
            _algorithm(algorithm), max_terms, heap_factor, flags, threads, s.out_ref, s.err_ref,
        )
        if status:
            raise_error(status, s.err)
        return read_results(s.out.value, q.single, return_arrays)

    def _search_one(self, query: dict, k: int, algorithm: int, max_terms: int, candidates: int, heap_factor: float, flags: int,
                    field_address: int, filter: Any) -> Optional[List[Hit]]:
        """One dict query on a sparse or CSR field through sdb_collection_search_call; None when
        the dict's keys or values do not pack as uint32 and float (the general path then says
        what is wrong, as it always did)."""
        s = owner_buffers if get_ident() == _owner_thread else buffers()  # buffers(), without its call on the common thread
        n = len(query)
        if filter is None:
            parsed = None
            head = (self._address, field_address, k, max_terms, candidates, heap_factor, algorithm, flags, 0)
        else:
            parsed = self._filter_entry(filter)  # held until the call returned
            head = (self._address, field_address, k, max_terms, candidates, heap_factor, algorithm, flags, parsed.address)
        if n > s.entries:
            s.grow_request(n)
        try:
            if head != s.head:  # the collection, options, filter or output buffer changed since this thread's last call
                s.write_head(head)
        except (struct.error, OverflowError, TypeError):
            return None
        if fast_search is not None:
            # The rest in C (_fastpath.c): the same packing, call and hits as below.
            hits = fast_search(query, search_call_address, s.request_address, s.dimensions_address, s.weights_address, s.entries,
                               s.output_address, Hit)
            del parsed
            return hits if type(hits) is list else _fast_search_rest(s, hits)
        try:
            # n and the dimensions, then the weights: one C call each, which checks them as
            # uint32 and float (struct.error or OverflowError otherwise) without a Python loop.
            pack_dimensions, pack_weights = s.packers.get(n) or s.packer(n)
            pack_dimensions(s.request, QUERY_AT, n, *query)
            pack_weights(s.request, s.weights_at, *query.values())
        except (struct.error, OverflowError, TypeError):
            return None
        status = search_call_raw(s.request_ref)
        del parsed
        if status:
            raise_error(status, s.error())
        # parse_hits' common case (hits without payloads), inline: a call costs as much as a step.
        out = s.output
        h, id_bytes, _, payload_count = _unpack_header(out)
        if payload_count == 0 and h > 0:
            at = 64 + 24 * h + ((h + 7) & ~7)  # id_data (sparsedb.h)
            ids = out[at : at + id_bytes].decode("utf-8").split("\0")
            ids.pop()
            if len(ids) == h:  # else an id holds a NUL: parse_hits reads the offsets
                return list(map(_new_hit, repeat(Hit, h), zip(ids, (_scores_structs.get(h) or _scores_struct(h)).unpack_from(out, 48), repeat(None))))
        return parse_hits(s)

    def search_hybrid(
        self,
        queries: Mapping[str, Any],
        k: int = 10,
        *,
        fusion: str = "rrf",
        depth: int = 100,
        weights: Optional[Mapping[str, float]] = None,
        rrf_constant: float = 60.0,
        filter: Union[None, str, Mapping[str, Any]] = None,
        algorithm: str = "maxscore",
        max_query_terms: Optional[int] = None,
        heap_factor: float = 1.0,
        candidates: Optional[int] = None,
        with_payload: bool = True,
        return_arrays: bool = False,
        threads: int = 0,
        max_active_dims: Optional[int] = None,
        truncate_dim: Optional[int] = None,
    ):
        """Hybrid search: several fields searched exactly, their rankings fused.

        >>> c.search_hybrid({"splade": sparse_query, "minilm": embedding}, k=10,
        ...                 fusion="rrf", filter={"lang": "en"})

        Args:
            queries: ``{field name: query or batch}``, each as :meth:`search` takes it for that
                field; every field must get the same number of queries (a batch may hold None
                to leave a field out of one query). When one of them is a single query (a dict,
                a 1-D array), the result is one list of hits.
            k: fused hits per query.
            fusion: ``"rrf"`` (reciprocal rank fusion, sum of 1 / (rrf_constant + rank)) or
                ``"weighted"`` (a weighted sum of min-max normalised exact scores).
            depth: how deep each field's exact ranking goes (default 100).
            weights: ``"weighted"``: ``{field: weight}``; fields not named share the rest equally.
            rrf_constant: RRF's constant (60, as Qdrant, Milvus and OpenSearch use).
            filter: only documents the filter admits, in every field (see :meth:`search`).
            algorithm, max_query_terms, heap_factor, max_active_dims, truncate_dim: as for
                :meth:`search`, applied to every field they concern.
            candidates: with ``max_query_terms``, as for :meth:`search` (k <= candidates <=
                2**20, None = k; k is the fused hits): each sparse field rescores at least
                ``depth`` candidates with its whole query.

        Returns:
            For one query, a list of :class:`HybridHit` (``id``, fused ``score``, ``payload``,
            ``field_scores`` = each field's exact score), best first; for a batch one list per
            query (or :class:`SearchArrays` with the fused scores).
        """
        if not isinstance(queries, Mapping) or not queries:
            raise InvalidInputError("search_hybrid takes a non-empty dict {field name: queries}")
        k, max_terms, heap_factor, threads, candidates = _search_numbers(k, max_query_terms, heap_factor, threads, candidates)
        flags = 0 if with_payload and not return_arrays else SEARCH_NO_PAYLOADS
        options = _options(k, algorithm, max_terms, heap_factor, threads, flags, filter, max_active_dims, truncate_dim, candidates)
        if fusion not in FUSION_METHODS:
            raise InvalidInputError(f"fusion must be one of {', '.join(FUSION_METHODS)}, got {fusion!r}")
        if isinstance(depth, bool) or not isinstance(depth, int) or depth < 1:
            raise InvalidInputError(f"depth must be a positive integer, got {depth!r}")
        names = list(queries)
        parts, count, single = [], None, None
        for name in names:
            if not isinstance(name, str):
                raise InvalidInputError(f"field names must be strings, got {type(name).__name__}")
            m, present = self._rows(name, queries[name], f"queries for field '{name}'")
            if count is None:
                count, single = m.rows, m.single
            elif m.rows != count:
                raise InvalidInputError(f"field '{name}' has {m.rows} queries, field '{names[0]}' {count}: give each field the same number")
            single = single or m.single  # one query (a dict, a 1-D array) with 1-row batches: one list of hits
            parts.append(_matrix(name, m, present))
        weight_array = None
        if weights is not None:
            if not isinstance(weights, Mapping):
                raise InvalidInputError("weights must be a dict {field name: weight}")
            for name in weights:
                if name not in queries:
                    raise InvalidInputError(f"a weight is given for field '{name}', which is not searched")
            try:
                weight_array = (c_double * len(names))(*[float(weights[n]) if n in weights else float("nan") for n in names])
            except (TypeError, ValueError):
                raise InvalidInputError(f"weights must be numbers, got {dict(weights)!r}") from None
        try:
            constant = float(rrf_constant)
        except (TypeError, ValueError):
            raise InvalidInputError(f"rrf_constant must be a number >= 0, got {rrf_constant!r}") from None
        if not constant >= 0:
            raise InvalidInputError(f"rrf_constant must be a number >= 0, got {rrf_constant!r}")
        fusion_options = FusionOptions(
            FUSION_METHODS[fusion], 0, depth, constant,
            cast(weight_array, c_void_p) if weight_array is not None else None,
        )
        matrices = (Matrix * len(parts))(*[p[0] for p in parts])
        out = c_void_p()
        call(lib.sdb_collection_search_hybrid, self._handle, len(parts), matrices, count, byref(options), byref(fusion_options), out)
        del parts, weight_array
        return read_hybrid_results(out.value, single, return_arrays, names)

    # -- text ------------------------------------------------------------------------------------

    def encoder_info(self, field: Optional[str] = None) -> Optional[Dict[str, Any]]:
        """The encoder the field was built with (name, checksum, kind, path), or None when it was
        not built from text."""
        out = c_void_p()
        call(lib.sdb_collection_encoder_json, self._handle, None if field is None else _name(field, "field name"), out)
        return json.loads(take_string(out))

    def query_encoder(self, field: Optional[str] = None) -> Encoder:
        """The encoder the (only) field was built with, loaded once from its recorded folder and
        kept for later :meth:`search_text` calls.

        Raises:
            InvalidInputError: the field was not built from text.
            NotFoundError: the model's folder is gone.
        """
        if field is None and self._query_encoder is not None:
            return self._query_encoder
        with self._encoder_lock:
            if field is None and self._query_encoder is not None:
                return self._query_encoder
            out = c_void_p()
            call(lib.sdb_collection_query_encoder, self._handle, None, None if field is None else _name(field, "field name"), 0, out)
            encoder = Encoder._from_handle(out)
            if field is None:
                self._query_encoder = encoder
            return encoder

    def ingest(
        self,
        ids: Union[str, Sequence[str]],
        texts: Union[str, Sequence[str]],
        encoder: Union[Encoder, str, None, Mapping[str, Union[Encoder, str, None]]] = None,
        payloads: Optional[Sequence[Any]] = None,
        attributes: Any = None,
        *,
        field: Optional[str] = None,
        batch_size: int = 256,
        replace: bool = False,
        max_active_dims: Optional[int] = None,
        allow_model_mismatch: bool = False,
        compact: bool = True,
    ) -> Dict[str, Any]:
        """Encodes texts natively and stores them, ``batch_size`` documents per transaction
        (the next batch is encoded while the previous one commits).

        The first ingest records the encoder on the field; later ones must use the same model
        (unless ``allow_model_mismatch``), and :meth:`search_text` uses it.

        Args:
            ids, texts: one id and one text per document (by convention title + " " + text).
            encoder: an :class:`Encoder`, a model folder or ``"default"``; None = the field's
                recorded encoder. Several fields at once: ``{field name: encoder}`` (each text is
                encoded once per field, every field of a batch written together), e.g.
                ``{"splade": "default", "minilm": Encoder(".../all-MiniLM-L6-v2")}``. A dense
                model fills a dense field.
            payloads: optional, one per document (see :meth:`upsert`).
            attributes: optional attribute values (see :meth:`upsert`).
            replace: re-encode and replace ids already stored (whole documents: every field). By
                default they are skipped, so that calling ingest again after an interruption
                resumes it.
            max_active_dims: keep only this many largest weights per document vector.
            compact: re-pack the posting lists at the end when the batches fragmented them.

        Returns:
            Progress counters: read, committed, skipped, encode/write/elapsed seconds, compacted.

        Raises:
            InvalidInputError: lengths differ, an id repeats, or the encoder does not fit.
            ModelMismatchError: the field was built with another model.
        """
        id_list = string_list(ids, "ids")
        text_list = string_list(texts, "texts")
        if len(id_list) != len(text_list):
            raise InvalidInputError(f"{len(text_list)} texts for {len(id_list)} ids")
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise InvalidInputError(f"batch_size must be a positive integer, got {batch_size!r}")
        if max_active_dims is not None and (not isinstance(max_active_dims, int) or max_active_dims < 1):
            raise InvalidInputError(f"max_active_dims must be a positive integer, got {max_active_dims!r}")
        if isinstance(encoder, Mapping):
            if field is not None:
                raise InvalidInputError("field= names one field; encoder is a dict of fields")
            pairs = list(encoder.items())
            if not pairs:
                raise InvalidInputError("encoder: an empty dict names no field")
        else:
            pairs = [(field, encoder)]
        names, encoders = [], []
        for name, enc in pairs:
            if isinstance(enc, (str, os.PathLike)):
                enc = Encoder(enc)
            elif enc is not None and not isinstance(enc, Encoder):
                raise InvalidInputError(f"encoder must be a sparsedb.Encoder, a model folder or None, got {type(enc).__name__}")
            names.append(None if name is None else _name(name, "field name"))
            encoders.append(enc)
        attrs = attributes_json(attributes, len(id_list), isinstance(ids, str))
        packed_ids = Strings(id_list, "ids")
        packed_texts = Strings(text_list, "texts")
        packed_payloads = Payloads(payloads, len(id_list))
        flags = (INGEST_REPLACE if replace else 0) | (INGEST_ALLOW_MISMATCH if allow_model_mismatch else 0)
        flags |= 0 if compact else INGEST_NO_COMPACT
        progress = c_void_p()
        id_data, id_offsets = packed_ids.addresses
        text_data, text_offsets = packed_texts.addresses
        p_data, p_offsets, p_present = packed_payloads.addresses
        name_array = (c_void_p * len(names))(*[None if n is None else _keep(n) for n in names])
        encoder_array = (c_void_p * len(encoders))(*[None if e is None else e._handle.value for e in encoders])
        call(
            lib.sdb_collection_ingest_fields, self._handle, len(names), name_array, encoder_array, len(id_list), id_data,
            id_offsets, text_data, text_offsets, p_data, p_offsets, p_present, attrs, batch_size, max_active_dims or 0, flags,
            progress,
        )
        del names, encoders
        return json.loads(take_string(progress))

    def search_text(
        self,
        texts: Union[str, Sequence[str]],
        k: int = 10,
        algorithm: str = "maxscore",
        max_query_terms: Optional[int] = None,
        heap_factor: float = 1.0,
        *,
        candidates: Optional[int] = None,
        encoder: Optional[Encoder] = None,
        field: Optional[str] = None,
        with_payload: bool = True,
        return_arrays: bool = False,
        threads: int = 0,
        max_active_dims: Optional[int] = None,
        allow_model_mismatch: bool = False,
        filter: Union[None, str, Mapping[str, Any]] = None,
    ):
        """Encodes query texts (natively, in one batch) and searches them, as :meth:`search`.

        Uses the encoder the collection was built with (:meth:`query_encoder`) unless
        ``encoder`` is given (which must be the same model unless ``allow_model_mismatch``).
        One str gives a list of hits; a list of str gives one list per text. A dense model's
        embeddings search a dense field; ``filter`` and ``candidates`` (with ``max_query_terms``:
        k <= candidates <= 2**20, None = k) as for :meth:`search`.

        Raises:
            InvalidInputError: an empty text, or the collection was not built from text and no
                encoder is given.
            ModelMismatchError: ``encoder`` is another model than the recorded one.
        """
        single = isinstance(texts, str)
        k, max_terms, heap_factor, threads, candidates_value = _search_numbers(k, max_query_terms, heap_factor, threads, candidates)
        if max_active_dims is not None and (not isinstance(max_active_dims, int) or max_active_dims < 1):
            raise InvalidInputError(f"max_active_dims must be a positive integer, got {max_active_dims!r}")
        if encoder is None:
            encoder = self.query_encoder(field)
        elif not isinstance(encoder, Encoder):
            raise InvalidInputError(f"encoder must be a sparsedb.Encoder, got {type(encoder).__name__}")
        if filter is not None or candidates_value:
            # Encode here, then a search with an options block (sdb_collection_search_text takes
            # none: no filter, no candidates): the same checks as the engine's text search.
            text_list = string_list(texts, "texts")
            for i, t in enumerate(text_list):
                if not isinstance(t, str) or not t.strip():
                    raise InvalidInputError(f"query {i}: the query text is empty" if len(text_list) > 1 else "the query text is empty")
            recorded = self.encoder_info(field)
            if recorded is not None and not allow_model_mismatch and recorded.get("checksum") != encoder.checksum:
                raise ModelMismatchError(
                    f"field '{field or self.default_field}' was built with model '{recorded.get('name')}', not '{encoder.name}' "
                    "(allow_model_mismatch=True to search anyway)")
            vectors = encoder.encode(text_list, "query", max_active_dims)
            result = self.search(
                vectors, k, algorithm, max_query_terms, heap_factor, candidates=candidates, field=field, filter=filter,
                with_payload=with_payload, return_arrays=return_arrays, threads=threads)
            return result[0] if single and not return_arrays else result
        packed = Strings(string_list(texts, "texts"), "texts")
        flags = (0 if with_payload and not return_arrays else SEARCH_NO_PAYLOADS)
        flags |= SEARCH_ALLOW_MODEL_MISMATCH if allow_model_mismatch else 0
        out = c_void_p()
        data, offsets = packed.addresses
        call(
            lib.sdb_collection_search_text, self._handle, encoder._handle, None if field is None else _name(field, "field name"),
            packed.count, data, offsets, k, _algorithm(algorithm), max_terms, heap_factor, flags, threads,
            max_active_dims or 0, out,
        )
        return read_results(out.value, single, return_arrays)

    # -- maintenance -----------------------------------------------------------------------------

    def statistics(self) -> Dict[str, Any]:
        """Counts and sizes (documents, postings, bytes per posting, ...). Scans the collection."""
        out = c_void_p()
        call(lib.sdb_collection_statistics_json, self._handle, out)
        return json.loads(take_string(out))


__all__ = ["Database", "Collection", "Hit", "HybridHit", "Document", "SearchArrays"]
