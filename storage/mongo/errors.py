"""Exceptions of the MongoDB storage package."""

from __future__ import annotations


class MongoStorageError(Exception):
    """Base class of the errors raised by ``storage.mongo``."""


class StoreUnavailable(MongoStorageError):
    """The database cannot be reached (or the embedded server cannot be started).

    The message is one line, fit to print as the reason of a non-zero exit.
    """


class EmbeddedServerError(StoreUnavailable):
    """The embedded SecantusDB server could not be started, reached or shared."""


class SpoolError(MongoStorageError):
    """The spool file could not be written or read."""


class NoStore(MongoStorageError):
    """A read-only use found no archive where it was pointed (nothing was created)."""


class BadWriteConcern(MongoStorageError, ValueError):
    """MONGODB_WRITE_CONCERN or the URI's write concern cannot be used (one-line message)."""
