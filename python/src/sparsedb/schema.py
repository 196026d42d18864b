"""Field and attribute declarations of a collection (the Swift engine's ``CollectionSchema``).

>>> db.create_collection(
...     "docs",
...     fields=[
...         sparsedb.SparseField("splade", 30522),
...         sparsedb.DenseField("minilm", 384, metric="cosine", precision="f16"),
...         sparsedb.CSRField("code", 4096, active_dimensions=32, index="flat"),
...     ],
...     attributes={"lang": "keyword", "year": "integer", "score": float, "draft": bool},
... )
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Dict, List, Mapping, Optional, Sequence, Union

import numpy as np

from .errors import InvalidInputError

__all__ = ["Field", "SparseField", "DenseField", "CSRField", "ATTRIBUTE_TYPES"]

#: The attribute types a collection can declare (filters test them).
ATTRIBUTE_TYPES = ("keyword", "integer", "float", "bool")
_PYTHON_TYPES = {str: "keyword", int: "integer", float: "float", bool: "bool"}
_PRECISIONS = {"f32": "f32", "float32": "f32", "f16": "f16", "float16": "f16", "half": "f16"}


def _precision(value: Any) -> str:
    if isinstance(value, type) or isinstance(value, np.dtype):
        value = np.dtype(value).name
    try:
        return _PRECISIONS[str(value).lower()]
    except KeyError:
        raise InvalidInputError(f"precision must be 'f32' or 'f16' (or numpy.float32 / numpy.float16), got {value!r}") from None


def _dimensions(value: Any, what: str, limit: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not 1 <= int(value) <= limit:
        raise InvalidInputError(f"{what}: dimensions must be an integer from 1 to {limit:,}, got {value!r}")
    return int(value)


class Field:
    """Base class of the vector field declarations :class:`SparseField`, :class:`DenseField` and
    :class:`CSRField`. ``kind`` is ``"sparse"``, ``"dense"`` or ``"csr"``."""

    kind = ""
    name: str
    dimensions: int

    def _json(self) -> Dict[str, Any]:
        raise NotImplementedError


@dataclass(frozen=True)
class SparseField(Field):
    """A sparse vector field (SPLADE and friends) searched through an inverted index.

    Args:
        name: the field's name (1..200 bytes); ``"vector"`` is the default field of
            single-field calls.
        dimensions: the vocabulary size: valid indices are ``0 .. dimensions-1`` (30522 for BERT
            vocabularies, which SPLADE models use).

    Vectors and queries: ``scipy.sparse`` matrices, ``{dimension: weight}`` dicts, torch sparse
    tensors; weights finite, >= 0 and <= 1e9. Searched with ``algorithm`` maxscore, wand, bmw
    or exhaustive (all exact).
    """

    name: str = "vector"
    dimensions: int = 30522
    kind = "sparse"

    def __post_init__(self):
        object.__setattr__(self, "dimensions", _dimensions(self.dimensions, f"field '{self.name}'", (1 << 32) - 1))

    def _json(self) -> Dict[str, Any]:
        return {"name": self.name, "kind": "sparse", "dimensions": self.dimensions}


@dataclass(frozen=True)
class DenseField(Field):
    """A dense embedding field: fixed-length float rows, scanned exactly (flat).

    Args:
        name: the field's name.
        dimensions: the row length (e.g. 384 for all-MiniLM-L6-v2), at most 65,536.
        metric: ``"dot"`` (the dot product, default) or ``"cosine"`` (rows normalised when
            stored, queries when searched).
        precision: storage of the rows: ``"f32"`` (default) or ``"f16"`` (half the bytes;
            values rounded to half precision when stored, scores exact for the stored values).

    Vectors: a 2-D ``numpy`` float array of shape (documents, dimensions) (or a list of 1-D
    arrays, or a torch tensor); a query is a 1-D array, a batch a 2-D one. Values finite.
    """

    name: str = "vector"
    dimensions: int = 384
    metric: str = "dot"
    precision: str = "f32"
    kind = "dense"

    def __post_init__(self):
        object.__setattr__(self, "dimensions", _dimensions(self.dimensions, f"field '{self.name}'", 65536))
        metric = str(self.metric).lower()
        if metric not in ("dot", "cosine"):
            raise InvalidInputError(f"field '{self.name}': metric must be 'dot' or 'cosine', got {self.metric!r}")
        object.__setattr__(self, "metric", metric)
        object.__setattr__(self, "precision", _precision(self.precision))

    def _json(self) -> Dict[str, Any]:
        return {"name": self.name, "kind": "dense", "dimensions": self.dimensions, "metric": self.metric, "precision": self.precision}


@dataclass(frozen=True)
class CSRField(Field):
    """A field of k-sparse codes (e.g. CSR / sparse autoencoder embeddings): at most
    ``active_dimensions`` non-zeros over a few thousand dimensions.

    Args:
        name: the field's name.
        dimensions: valid indices are ``0 .. dimensions-1`` (at most 65,536; default 4096).
        active_dimensions: k, the most non-zeros a code holds (1..256).
        keep_largest: a code with more non-zeros keeps its k largest instead of being refused.
        precision: ``"f32"`` or ``"f16"`` storage of flat rows.
        index: ``"flat"`` (exact scan of fixed-width rows), ``"inverted"`` (posting lists, searched
            like a sparse field) or ``"automatic"`` (default: chosen from k and the dimensions).

    Vectors and queries as for :class:`SparseField` (weights finite, >= 0 and <= 1e9); searched
    exactly whatever the index (``algorithm`` applies to an inverted one).
    """

    name: str = "vector"
    dimensions: int = 4096
    active_dimensions: int = 32
    keep_largest: bool = False
    precision: str = "f32"
    index: str = "automatic"
    kind = "csr"

    def __post_init__(self):
        object.__setattr__(self, "dimensions", _dimensions(self.dimensions, f"field '{self.name}'", 65536))
        k = self.active_dimensions
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not 1 <= int(k) <= 256:
            raise InvalidInputError(f"field '{self.name}': active_dimensions must be an integer from 1 to 256, got {k!r}")
        object.__setattr__(self, "active_dimensions", int(k))
        object.__setattr__(self, "keep_largest", bool(self.keep_largest))
        object.__setattr__(self, "precision", _precision(self.precision))
        index = str(self.index).lower()
        if index not in ("flat", "inverted", "automatic"):
            raise InvalidInputError(f"field '{self.name}': index must be 'flat', 'inverted' or 'automatic', got {self.index!r}")
        object.__setattr__(self, "index", index)

    def _json(self) -> Dict[str, Any]:
        return {
            "name": self.name, "kind": "csr", "dimensions": self.dimensions, "active_dimensions": self.active_dimensions,
            "keep_largest": self.keep_largest, "precision": self.precision, "index": self.index,
        }


FieldsArgument = Union[None, Mapping[str, Any], Sequence[Field]]


def _attribute_type(name: str, t: Any) -> str:
    if isinstance(t, type) and t in _PYTHON_TYPES:
        return _PYTHON_TYPES[t]
    if isinstance(t, str) and t.lower() in ATTRIBUTE_TYPES:
        return t.lower()
    if isinstance(t, str) and t.lower() in ("str", "string", "int", "bool", "boolean", "double"):
        return {"str": "keyword", "string": "keyword", "int": "integer", "boolean": "bool", "bool": "bool", "double": "float"}[t.lower()]
    raise InvalidInputError(f"attribute '{name}': type must be one of {', '.join(ATTRIBUTE_TYPES)} (or str, int, float, bool), got {t!r}")


def schema_json(dimensions: int, fields: FieldsArgument, attributes: Optional[Mapping[str, Any]]) -> str:
    """The schema JSON of sdb_database_create_collection_schema."""
    declared: List[Field] = []
    if fields is None:
        declared = [SparseField("vector", dimensions)]
    elif isinstance(fields, Mapping):
        for name, spec in fields.items():
            if isinstance(spec, Field):
                if spec.name not in (name, "vector"):
                    raise InvalidInputError(f"fields: key '{name}' names a field declared as '{spec.name}'")
                declared.append(_renamed(spec, name))
            else:
                declared.append(SparseField(name, spec))
    elif isinstance(fields, (list, tuple)):
        for spec in fields:
            if not isinstance(spec, Field):
                raise InvalidInputError(
                    f"fields: expected sparsedb.SparseField, DenseField or CSRField objects, got {type(spec).__name__}")
            declared.append(spec)
    else:
        raise InvalidInputError("fields must be a list of SparseField / DenseField / CSRField, or a mapping name -> dimensions")
    if not declared:
        raise InvalidInputError("a collection needs at least one field")
    for f in declared:
        if not isinstance(f.name, str):
            raise InvalidInputError(f"field name must be a string, got {type(f.name).__name__}")
    attrs = []
    if attributes is not None:
        if not isinstance(attributes, Mapping):
            raise InvalidInputError("attributes must be a mapping name -> type, e.g. {'lang': 'keyword', 'year': 'integer'}")
        for name, t in attributes.items():
            if not isinstance(name, str):
                raise InvalidInputError(f"attribute name must be a string, got {type(name).__name__}")
            attrs.append({"name": name, "type": _attribute_type(name, t)})
    return json.dumps({"fields": [f._json() for f in declared], "attributes": attrs}, ensure_ascii=False)


def _renamed(spec: Field, name: str) -> Field:
    from dataclasses import replace

    return replace(spec, name=name)


def field_from_info(info: Dict[str, Any]) -> Field:
    """A field declaration from sdb_collection_info_json."""
    kind = info.get("kind")
    if kind == "dense":
        return DenseField(info["name"], info["dimensions"], metric=info.get("metric", "dot"), precision=info.get("precision", "f32"))
    if kind == "csr":
        return CSRField(
            info["name"], info["dimensions"], active_dimensions=info.get("active_dimensions") or 1,
            keep_largest=info.get("keep_largest", False), precision=info.get("precision", "f32"), index=info.get("index", "automatic"),
        )
    return SparseField(info["name"], info["dimensions"])
