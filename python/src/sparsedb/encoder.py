"""Encoder: SparseDB's native text encoder (Swift + OpenBLAS), not PyTorch."""
from __future__ import annotations

import json
import os
import weakref
from ctypes import c_void_p
from typing import Any, Dict, Optional, Sequence, Union

import numpy as np
import scipy.sparse

from ._convert import Strings, string_list
from ._lib import TASK_DOCUMENT, TASK_QUERY, call, lib, take_string
from ._results import read_dense_vectors, read_vectors
from .errors import InvalidInputError


class Encoder:
    """A sentence-transformers model folder, run natively by SparseDB.

    Supports SPLADE (MLMTransformer + SpladePooling), inference-free SPLADE (a Router whose query
    route is an IDF lookup), CSR (sparse autoencoder) models and plain ``*ForMaskedLM`` folders
    (loaded as SPLADE), whose output matches sentence-transformers' ``SparseEncoder`` (float32
    rounding aside); and dense models (Transformer + Pooling (+ Normalize), e.g.
    all-MiniLM-L6-v2, or StaticEmbedding), whose :meth:`encode` returns a float32 numpy array
    as ``SentenceTransformer.encode`` does. ``sparse`` says which.

    >>> enc = sparsedb.Encoder("default")                 # splade-tiny in the model cache
    >>> docs = enc.encode_documents(["The capital of France is Paris."])
    >>> docs.shape
    (1, 30522)

    Encoding runs on all cores with the GIL released; an Encoder is safe to share between threads.

    Args:
        path: a model folder, or ``"default"`` (splade-tiny in ``$SPARSEDB_HOME/models``, else
            ``~/.local/share/sparsedb/models``; ``tools/fetch-model.sh`` puts it there).

    Raises:
        ModelError: the folder is missing, incomplete, malformed or of an unsupported kind.
    """

    def __init__(self, path: Union[str, "os.PathLike[str]"] = "default"):
        handle = c_void_p()
        call(lib.sdb_encoder_open, os.fsencode(path), handle)
        self._adopt(handle)

    @classmethod
    def _from_handle(cls, handle: c_void_p) -> "Encoder":
        self = cls.__new__(cls)
        self._adopt(handle)
        return self

    def _adopt(self, handle: c_void_p) -> None:
        self._handle = handle
        self._finalizer = weakref.finalize(self, lib.sdb_encoder_free, handle)
        out = c_void_p()
        call(lib.sdb_encoder_info_json, handle, out)
        self._info: Dict[str, Any] = json.loads(take_string(out))

    @property
    def info(self) -> Dict[str, Any]:
        """name, kind, path, checksum, dimensions, default_max_active_dims, sparse."""
        return dict(self._info)

    @property
    def name(self) -> str:
        """The model folder's name, e.g. ``splade-tiny``."""
        return self._info["name"]

    @property
    def kind(self) -> str:
        """``splade``, ``inference-free``, ``csr``, ``static`` or ``dense``."""
        return self._info["kind"]

    @property
    def path(self) -> str:
        """The folder the model was loaded from."""
        return self._info["path"]

    @property
    def checksum(self) -> str:
        """A fingerprint of the model's weight and configuration files."""
        return self._info["checksum"]

    @property
    def sparse(self) -> bool:
        """Whether the model makes sparse vectors (scipy CSR) rather than dense embeddings (numpy)."""
        return bool(self._info.get("sparse", True))

    @property
    def dimensions(self) -> int:
        """Output dimensions (the vocabulary size for SPLADE)."""
        return self._info["dimensions"]

    def encode(
        self, texts: Union[str, Sequence[str]], task: str = "document", max_active_dims: Optional[int] = None,
        truncate_dim: Optional[int] = None,
    ) -> Union[scipy.sparse.csr_matrix, np.ndarray]:
        """Encodes texts: a sparse model gives a ``scipy.sparse.csr_matrix`` of shape
        (len(texts), dimensions), a dense model a float32 ``numpy`` array of that shape.

        Args:
            texts: one text or a list of texts (documents: title + " " + text by convention).
            task: ``"document"`` or ``"query"`` (models may use different routes and prompts).
            max_active_dims: sparse models: keep only this many largest weights per vector
                (default: the model's own setting, if any).
            truncate_dim: dense models: keep the first D dimensions (Matryoshka).
        """
        tasks = {"document": TASK_DOCUMENT, "query": TASK_QUERY}
        if task not in tasks:
            raise InvalidInputError(f"task must be 'document' or 'query', got {task!r}")
        if max_active_dims is not None and (not isinstance(max_active_dims, int) or max_active_dims < 1):
            raise InvalidInputError(f"max_active_dims must be a positive integer, got {max_active_dims!r}")
        if truncate_dim is not None and (isinstance(truncate_dim, bool) or not isinstance(truncate_dim, int) or truncate_dim < 1):
            raise InvalidInputError(f"truncate_dim must be a positive integer, got {truncate_dim!r}")
        packed = Strings(string_list(texts, "texts"), "texts")
        out = c_void_p()
        data, offsets = packed.addresses
        if not self.sparse:
            call(lib.sdb_encoder_embed, self._handle, packed.count, data, offsets, tasks[task], truncate_dim or 0, out)
            return read_dense_vectors(out)
        call(lib.sdb_encoder_encode, self._handle, packed.count, data, offsets, tasks[task], max_active_dims or 0, out)
        return read_vectors(out, self.dimensions)

    def encode_documents(self, texts: Union[str, Sequence[str]], max_active_dims: Optional[int] = None, truncate_dim: Optional[int] = None):
        """``encode(texts, task="document")``: what ``encode_document`` of sentence-transformers returns."""
        return self.encode(texts, "document", max_active_dims, truncate_dim)

    def encode_queries(self, texts: Union[str, Sequence[str]], max_active_dims: Optional[int] = None, truncate_dim: Optional[int] = None):
        """``encode(texts, task="query")``: what ``encode_query`` of sentence-transformers returns."""
        return self.encode(texts, "query", max_active_dims, truncate_dim)

    def __repr__(self) -> str:
        return f"Encoder(name={self.name!r}, kind={self.kind!r}, dimensions={self.dimensions}, path={self.path!r})"
