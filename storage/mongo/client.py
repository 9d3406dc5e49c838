"""open_database(): a pymongo client on MONGODB_URI or on the embedded store.

Writes are acknowledged at the write concern the user asked for (MONGODB_WRITE_CONCERN
or the URI's options, see writeconcern.py); when none is given, only once journaled
(``WriteConcern(w=1, j=True)``): with the default concern the embedded store lost
acknowledged writes on SIGKILL.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from pymongo import MongoClient, WriteConcern
from pymongo.database import Database
from pymongo.errors import PyMongoError

from storage.mongo import writeconcern
from storage.mongo.embedded import EmbeddedServer
from storage.mongo.errors import BadWriteConcern, StoreUnavailable

#: The concern used when nothing else is asked for (kept for callers of the first API).
DURABLE = writeconcern.DEFAULT


def redact(uri: str) -> str:
    """The URI without its password, fit for messages."""
    return re.sub(r"(mongodb(?:\+srv)?://[^:/@]+):[^@]*@", r"\1:***@", uri)


def _uri_sets(uri: str, option: str) -> bool:
    """Whether the URI's query gives *option* (MongoDB option names ignore case)."""
    return any(key.lower() == option.lower() for key, _ in parse_qsl(urlsplit(uri).query))


@contextmanager
def open_database(uri: str | None, data_dir: Path | str, db_name: str = "gzarchive", *,
                  server_selection_timeout_ms: int = 5000, idle_seconds: float = 3.0,
                  write_concern: str | WriteConcern | None = None,
                  event_listeners: Sequence[Any] = (),
                  ) -> Iterator[tuple[MongoClient[dict[str, Any]], Database[dict[str, Any]]]]:
    """Yield ``(client, database)``; ``uri`` None means the embedded store of ``data_dir``.

    *write_concern* (a WriteConcern, or MONGODB_WRITE_CONCERN's text) overrides the URI's;
    neither: journaled ``w=1``. *server_selection_timeout_ms* applies unless the URI
    gives its own ``serverSelectionTimeoutMS`` (a keyword would override the URI's).
    *event_listeners*: pymongo monitoring listeners. Raises BadWriteConcern for a bad or
    contradictory one, StoreUnavailable (one-line message) when the server cannot be
    reached.
    """
    if isinstance(write_concern, WriteConcern):
        concern = write_concern
        if not concern.acknowledged:
            raise BadWriteConcern("w=0 is unacknowledged: no write could be known durable")
    else:
        concern = writeconcern.resolve(uri, write_concern)
    with ExitStack() as stack:
        if uri is None:
            lease = stack.enter_context(
                EmbeddedServer.acquire(data_dir, idle_seconds=idle_seconds))
            uri = lease.uri
        timeout: dict[str, Any] = (
            {} if _uri_sets(uri, "serverSelectionTimeoutMS")
            else {"serverSelectionTimeoutMS": server_selection_timeout_ms})
        try:
            client: MongoClient[dict[str, Any]] = MongoClient(
                uri, tz_aware=True, appname="gzarchive", **timeout,
                event_listeners=list(event_listeners),
                **writeconcern.client_options(concern))
        except (PyMongoError, ValueError, TypeError) as exc:
            raise StoreUnavailable(f"bad MongoDB URI {redact(uri)}: {exc}") from exc
        stack.callback(client.close)
        try:
            client.admin.command("ping")
        except PyMongoError as exc:
            reason = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
            raise StoreUnavailable(f"cannot reach MongoDB at {redact(uri)}: {reason}") from exc
        yield client, client.get_database(db_name, write_concern=concern)
