"""SparseDB for Python: an embedded sparse-vector database with exact top-k search.

The same engine as the Swift library and the ``sparsedb`` command (LMDB, compressed posting
lists, MaxScore / WAND / Block-Max WAND, a native SPLADE encoder), through its C ABI.

>>> import sparsedb
>>> with sparsedb.Database("my.sdb") as db:
...     docs = db.create_collection("docs", dimensions=30522)
...     docs.upsert(["d1", "d2"], [{2054: 1.2, 7592: 0.5}, {2054: 0.3}])
...     docs.search({2054: 1.0}, k=1)
[Hit(id='d1', score=1.2000000476837158, payload=None)]

Collections hold fields of every kind (:class:`SparseField`, :class:`DenseField`,
:class:`CSRField`) and payload attributes that filters test:

>>> docs = db.create_collection("articles", fields=[sparsedb.SparseField("splade", 30522),
...     sparsedb.DenseField("minilm", 384, metric="cosine")], attributes={"lang": "keyword", "year": "integer"})
>>> docs.upsert(ids, {"splade": sparse_rows, "minilm": embeddings}, attributes=[{"lang": "en", "year": 2019}, ...])
>>> docs.search(embedding, k=10, field="minilm", filter={"lang": "en", "year": {"gte": 2000}})
>>> docs.search_hybrid({"splade": sparse_query, "minilm": embedding}, k=10, filter={"lang": "en"})

See the README (python/README.md) for complete examples, with sentence-transformers and with the
native encoders.
"""
from ._lib import version as _native_version
from ._results import Document, Hit, HybridHit, SearchArrays
from .database import Collection, Database
from .encoder import Encoder
from .schema import CSRField, DenseField, Field, SparseField
from .errors import (
    AlreadyExistsError,
    ClosedError,
    CompressionError,
    CorruptError,
    DiskFullError,
    Error,
    FileError,
    ForeignFormatError,
    FormatError,
    InternalError,
    InvalidInputError,
    ModelError,
    ModelMismatchError,
    NewerFormatError,
    NotFoundError,
    OlderFormatError,
    StorageError,
)

__version__ = "0.1.0"
#: The version of the native library (libSparseDBC) in use.
native_version = _native_version()

__all__ = [
    "Database",
    "Collection",
    "Encoder",
    "Field",
    "SparseField",
    "DenseField",
    "CSRField",
    "Hit",
    "HybridHit",
    "Document",
    "SearchArrays",
    "Error",
    "InvalidInputError",
    "NotFoundError",
    "AlreadyExistsError",
    "CorruptError",
    "FormatError",
    "ForeignFormatError",
    "NewerFormatError",
    "OlderFormatError",
    "StorageError",
    "CompressionError",
    "ModelError",
    "FileError",
    "ModelMismatchError",
    "ClosedError",
    "DiskFullError",
    "InternalError",
]
