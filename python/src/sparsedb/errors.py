"""The exceptions of sparsedb: one class per error code of the engine.

Every failure of the engine arrives as a subclass of :class:`Error` carrying the engine's own
message (what, where, and what to do, e.g. ``document 'd7': weight for dimension 2054 is NaN``)
and its code. Input that Python refuses before calling the engine (a wrong shape or type) raises
:class:`InvalidInputError` as well, so ``except sparsedb.Error`` catches everything.
"""
from __future__ import annotations

from typing import Dict, Type

__all__ = [
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


class Error(Exception):
    """Base class of every sparsedb error.

    Attributes:
        code: the engine's status code (``SDB_*`` in sparsedb.h), e.g. 1 for invalid input.
        message: the engine's message.
        lmdb_code: LMDB's return code when LMDB reported the failure, else 0.
    """

    code = 100

    def __init__(self, message: str, *, code: int | None = None, lmdb_code: int = 0):
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        self.lmdb_code = lmdb_code


class InvalidInputError(Error, ValueError):
    """A vector, id, payload, argument or option is not acceptable; nothing was written."""

    code = 1


class NotFoundError(Error, LookupError):
    """A collection, database, model or file that was asked for does not exist."""

    code = 2


class AlreadyExistsError(Error):
    """A collection that must be new already exists."""

    code = 3


class CorruptError(Error):
    """Stored bytes failed a check (checksum, length, structure)."""

    code = 4


class FormatError(Error):
    """The directory's format cannot be used as it is (see the subclasses)."""


class ForeignFormatError(FormatError):
    """The directory holds something that is not a SparseDB database."""

    code = 5


class NewerFormatError(FormatError):
    """The database was written by a newer SparseDB."""

    code = 6


class OlderFormatError(FormatError):
    """The database was written by an older format: ``sparsedb upgrade --db DIR`` converts it."""

    code = 7


class StorageError(Error):
    """LMDB reported an error (see ``lmdb_code``)."""

    code = 8


class CompressionError(Error):
    """zstd reported an error."""

    code = 9


class ModelError(Error):
    """A model folder or weight file is missing, malformed or unsupported."""

    code = 10


class FileError(Error, OSError):
    """A file could not be read or written."""

    code = 11

    def __init__(self, message: str, *, code: int | None = None, lmdb_code: int = 0):
        Error.__init__(self, message, code=code, lmdb_code=lmdb_code)

    def __str__(self) -> str:
        return self.message


class ModelMismatchError(Error):
    """A collection was built with a different encoder than the one given."""

    code = 12


class ClosedError(Error):
    """The database was closed."""

    code = 13


class DiskFullError(Error):
    """The file system is full; committed data is intact and the failed write left nothing."""

    code = 14


class InternalError(Error):
    """Anything else: a bug in sparsedb (please report the message)."""

    code = 100


_BY_CODE: Dict[int, Type[Error]] = {
    cls.code: cls
    for cls in (
        InvalidInputError, NotFoundError, AlreadyExistsError, CorruptError, ForeignFormatError,
        NewerFormatError, OlderFormatError, StorageError, CompressionError, ModelError, FileError,
        ModelMismatchError, ClosedError, DiskFullError, InternalError,
    )
}


def error_for(code: int, message: str, lmdb_code: int = 0) -> Error:
    """The exception for an engine status code (unknown codes: :class:`Error`)."""
    cls = _BY_CODE.get(code, Error)
    return cls(message, code=code, lmdb_code=lmdb_code)
