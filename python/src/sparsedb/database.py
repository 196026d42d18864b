"""Database and Collection: the Python face of the Swift engine's Database and VectorCollection."""
from __future__ import annotations

import json
import os
import threading
import weakref
from ctypes import byref, c_char_p, c_int64, c_uint32, c_void_p, cast
from typing import Any, Dict, List, Mapping, Optional, Sequence, Union

from ._convert import CSR, Payloads, Strings, string_list, to_csr
from ._lib import (
    ALGORITHMS,
    CREATE_EXIST_OK,
    INGEST_ALLOW_MISMATCH,
    INGEST_NO_COMPACT,
    INGEST_REPLACE,
    OPEN_NO_CREATE,
    OPEN_READ_ONLY,
    SEARCH_ALLOW_MODEL_MISMATCH,
    SEARCH_NO_PAYLOADS,
    call,
    lib,
    raise_error,
    slots,
    take_string,
)
from ._results import Document, Hit, SearchArrays, read_documents, read_results
from .encoder import Encoder
from .errors import InvalidInputError

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
        self, name: str, dimensions: int = 30522, *, fields: Optional[Mapping[str, int]] = None, exist_ok: bool = False
    ) -> "Collection":
        """Creates collection ``name`` with one sparse field of ``dimensions`` dimensions (indices
        ``0 .. dimensions-1``; 30522 is BERT's vocabulary, which SPLADE models use), or with
        several named sparse fields: ``fields={"title": 30522, "body": 30522}``.

        Args:
            exist_ok: return the collection when it already exists with the same schema.

        Raises:
            AlreadyExistsError: it exists (and not ``exist_ok``).
            InvalidInputError: a bad name or schema, or (``exist_ok``) it exists with another one.
        """
        if fields is None:
            fields = {"vector": dimensions}
        if not isinstance(fields, Mapping) or not fields:
            raise InvalidInputError("fields must be a non-empty mapping of field name to dimensions")
        names = [_name(f, "field name") for f in fields]
        dims = []
        for f, d in fields.items():
            if isinstance(d, bool) or not isinstance(d, int) or not 1 <= d < (1 << 32):
                raise InvalidInputError(f"field '{f}': dimensions must be an integer from 1 to 2^32 - 1, got {d!r}")
            dims.append(d)
        name_array = (c_void_p * len(names))(*[_keep(n) for n in names])
        dim_array = (c_uint32 * len(dims))(*dims)
        out = c_void_p()
        call(
            lib.sdb_database_create_collection, self._handle, _name(name, "collection name"), len(names),
            name_array, dim_array, CREATE_EXIST_OK if exist_ok else 0, out,
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


def _algorithm(algorithm: str) -> int:
    try:
        return ALGORITHMS[algorithm]
    except (KeyError, TypeError):
        raise InvalidInputError(f"algorithm must be one of {', '.join(ALGORITHMS)}, got {algorithm!r}") from None


def _search_numbers(k: int, max_query_terms: Optional[int], heap_factor: float, threads: int):
    if isinstance(k, bool) or not isinstance(k, int):
        raise InvalidInputError(f"k must be an integer, got {k!r}")
    if max_query_terms is not None and (isinstance(max_query_terms, bool) or not isinstance(max_query_terms, int) or max_query_terms < 1):
        raise InvalidInputError(f"max_query_terms must be a positive integer or None, got {max_query_terms!r}")
    try:
        heap_factor = float(heap_factor)
    except (TypeError, ValueError):
        raise InvalidInputError(f"heap_factor must be a number >= 1, got {heap_factor!r}") from None
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 0:
        raise InvalidInputError(f"threads must be 0 (all cores) or a positive integer, got {threads!r}")
    return k, max_query_terms or 0, heap_factor, threads


class Collection:
    """A named set of documents with sparse vectors, searched exactly by dot product.

    Obtain one from :meth:`Database.create_collection` or :meth:`Database.collection`. Every
    write (:meth:`upsert`, :meth:`delete`) is one ACID transaction: all of it or nothing.
    Thread-safe; searches run with the GIL released.
    """

    def __init__(self, database: Database, handle: c_void_p):
        self.database = database
        self._handle = handle
        self._finalizer = weakref.finalize(self, lib.sdb_collection_free, handle)
        out = c_void_p()
        call(lib.sdb_collection_info_json, handle, out)
        info = json.loads(take_string(out))
        self.name: str = info["name"]
        #: Dimensions of the only (or ``vector``) field: valid indices are ``0 .. dimensions-1``.
        self.dimensions: int = info["dimensions"]
        #: Field name -> dimensions.
        self.fields: Dict[str, int] = {f["name"]: f["dimensions"] for f in info["fields"]}
        self._encoder_lock = threading.Lock()
        self._query_encoder: Optional[Encoder] = None

    def __repr__(self) -> str:
        return f"Collection({self.name!r}, fields={self.fields})"

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
        *,
        fields: Optional[Mapping[str, Any]] = None,
    ) -> None:
        """Inserts documents, replacing stored ones with the same ids, in one transaction.

        Args:
            ids: the documents' ids (str, 1..500 UTF-8 bytes, unique within the call); one str
                for a single document.
            vectors: one row per id, as a ``scipy.sparse`` matrix (CSR or any format), a list of
                ``{dimension: weight}`` dicts, a torch sparse tensor (COO or CSR, e.g. from
                ``SparseEncoder.encode(..., convert_to_sparse_tensor=True)``), or a dense numpy
                array / tensor (its non-zeros). Weights must be finite, >= 0 and <= 1e9.
            payloads: optional, one per id: any JSON-serializable value (stored as JSON and
                returned with hits), ``bytes`` (stored as they are), or None.
            fields: for collections with several fields, ``{field name: vectors}`` instead of
                ``vectors``; every document gets a vector in every field given.

        Raises:
            InvalidInputError: a shape, type, weight, dimension or id is not acceptable; nothing
                is written.
        """
        id_list = string_list(ids, "ids")
        n = len(id_list)
        if (vectors is None) == (fields is None):
            raise InvalidInputError("give either vectors or fields={name: vectors}")
        given: Dict[Optional[str], Any] = {None: vectors} if fields is None else dict(fields)
        matrices: List[CSR] = []
        names: List[Optional[bytes]] = []
        for field, value in given.items():
            what = "vectors" if field is None else f"field '{field}'"
            m = to_csr(value, what)
            if m.single and n == 1:
                pass
            elif m.single:
                raise InvalidInputError(f"{what}: one vector for {n} ids")
            if m.rows != n:
                raise InvalidInputError(f"{what}: {m.rows} vectors for {n} ids")
            matrices.append(m)
            names.append(None if field is None else _name(field, "field name"))
        if n == 0:
            return
        packed_ids = Strings(id_list, "ids")
        packed_payloads = Payloads(payloads, n)
        count = len(matrices)
        name_array = (c_void_p * count)(*[None if f is None else _keep(f) for f in names])
        addresses = [m.addresses for m in matrices]
        indptrs = (c_void_p * count)(*[a[0] for a in addresses])
        indices = (c_void_p * count)(*[a[1] for a in addresses])
        values = (c_void_p * count)(*[a[2] for a in addresses])
        id_data, id_offsets = packed_ids.addresses
        p_data, p_offsets, p_present = packed_payloads.addresses
        call(
            lib.sdb_collection_upsert, self._handle, n, id_data, id_offsets, count, name_array, indptrs, indices, values,
            p_data, p_offsets, p_present,
        )
        # `names`, `matrices`, `packed_*` were alive for the whole call.
        del names, matrices

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
        """The stored document(s): for one id a :class:`Document` (id, payload, vector as
        ``{dimension: weight}``) or None; for a list of ids a list of those."""
        single = isinstance(ids, str)
        id_list = string_list(ids, "ids")
        packed = Strings(id_list, "ids")
        out = c_void_p()
        data, offsets = packed.addresses
        call(
            lib.sdb_collection_get, self._handle, None if field is None else _name(field, "field name"), packed.count,
            data, offsets, out,
        )
        docs = read_documents(out, id_list)
        return docs[0] if single else docs

    def search(
        self,
        queries: Any,
        k: int = 10,
        algorithm: str = "maxscore",
        max_query_terms: Optional[int] = None,
        heap_factor: float = 1.0,
        *,
        field: Optional[str] = None,
        with_payload: bool = True,
        return_arrays: bool = False,
        threads: int = 0,
    ):
        """Exact top-k documents by dot product, for one query or a batch.

        Args:
            queries: one query (a ``{dimension: weight}`` dict, a 1-D sparse tensor or array) or
                a batch (a ``scipy.sparse`` matrix, a list of dicts, a 2-D tensor or array).
            k: hits per query.
            algorithm: ``"maxscore"`` (default), ``"wand"``, ``"bmw"`` (Block-Max WAND) or
                ``"exhaustive"``: all return the same hits with the same scores.
            max_query_terms: approximate: keep only this many largest query weights.
            heap_factor: approximate: > 1 prunes documents whose bound is below heap_factor x
                the current k-th score (1 = exact).
            field: the field to search (default: the only field, or ``vector``).
            with_payload: load each hit's payload (False is faster).
            return_arrays: return :class:`SearchArrays` (numpy ``ids`` and ``scores``, shape
                (queries, m)) instead of lists of :class:`Hit`: for large batches.
            threads: a batch is spread over this many threads inside the engine (0 = one per
                core, 1 = the calling thread only).

        Returns:
            For one query, a list of :class:`Hit` (``id``, ``score``, ``payload``), best first;
            for a batch, one such list per query (or :class:`SearchArrays`).

        Raises:
            InvalidInputError: a query has a NaN, negative or too large weight, a dimension
                outside the field, or ``k`` < 1, ``heap_factor`` < 1.
        """
        k, max_terms, heap_factor, threads = _search_numbers(k, max_query_terms, heap_factor, threads)
        flags = 0 if with_payload and not return_arrays else SEARCH_NO_PAYLOADS
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
        encoder: Union[Encoder, str, None] = None,
        payloads: Optional[Sequence[Any]] = None,
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
                recorded encoder.
            payloads: optional, one per document (see :meth:`upsert`).
            replace: re-encode and replace ids already stored. By default they are skipped, so
                that calling ingest again after an interruption resumes it.
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
        if isinstance(encoder, (str, os.PathLike)):
            encoder = Encoder(encoder)
        elif encoder is not None and not isinstance(encoder, Encoder):
            raise InvalidInputError(f"encoder must be a sparsedb.Encoder, a model folder or None, got {type(encoder).__name__}")
        packed_ids = Strings(id_list, "ids")
        packed_texts = Strings(text_list, "texts")
        packed_payloads = Payloads(payloads, len(id_list))
        flags = (INGEST_REPLACE if replace else 0) | (INGEST_ALLOW_MISMATCH if allow_model_mismatch else 0)
        flags |= 0 if compact else INGEST_NO_COMPACT
        progress = c_void_p()
        id_data, id_offsets = packed_ids.addresses
        text_data, text_offsets = packed_texts.addresses
        p_data, p_offsets, p_present = packed_payloads.addresses
        call(
            lib.sdb_collection_ingest, self._handle, None if encoder is None else encoder._handle,
            None if field is None else _name(field, "field name"), len(id_list), id_data, id_offsets, text_data,
            text_offsets, p_data, p_offsets, p_present, batch_size, max_active_dims or 0, flags, progress,
        )
        return json.loads(take_string(progress))

    def search_text(
        self,
        texts: Union[str, Sequence[str]],
        k: int = 10,
        algorithm: str = "maxscore",
        max_query_terms: Optional[int] = None,
        heap_factor: float = 1.0,
        *,
        encoder: Optional[Encoder] = None,
        field: Optional[str] = None,
        with_payload: bool = True,
        return_arrays: bool = False,
        threads: int = 0,
        max_active_dims: Optional[int] = None,
        allow_model_mismatch: bool = False,
    ):
        """Encodes query texts (natively, in one batch) and searches them, as :meth:`search`.

        Uses the encoder the collection was built with (:meth:`query_encoder`) unless
        ``encoder`` is given (which must be the same model unless ``allow_model_mismatch``).
        One str gives a list of hits; a list of str gives one list per text.

        Raises:
            InvalidInputError: an empty text, or the collection was not built from text and no
                encoder is given.
            ModelMismatchError: ``encoder`` is another model than the recorded one.
        """
        single = isinstance(texts, str)
        k, max_terms, heap_factor, threads = _search_numbers(k, max_query_terms, heap_factor, threads)
        if max_active_dims is not None and (not isinstance(max_active_dims, int) or max_active_dims < 1):
            raise InvalidInputError(f"max_active_dims must be a positive integer, got {max_active_dims!r}")
        if encoder is None:
            encoder = self.query_encoder(field)
        elif not isinstance(encoder, Encoder):
            raise InvalidInputError(f"encoder must be a sparsedb.Encoder, got {type(encoder).__name__}")
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


__all__ = ["Database", "Collection", "Hit", "Document", "SearchArrays"]
