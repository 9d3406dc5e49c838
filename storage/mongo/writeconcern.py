"""The write concern of every store write, as the user asked for it.

``MONGODB_WRITE_CONCERN`` (e.g. ``majority``, ``2``, ``w=majority,j=true,wtimeout=5000``)
or the URI's own options (``?w=majority&journal=true&wtimeoutMS=5000``) give it; only
when neither does is it journaled ``w=1`` (with the default concern the embedded store
lost acknowledged writes on SIGKILL). Both given and different is a contradiction, and
``w=0`` is refused: an unacknowledged write can never be known durable, so the crawler
could never forget what it wrote.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl, urlsplit

from pymongo import WriteConcern

from storage.mongo.errors import BadWriteConcern

#: Journaled, acknowledged by the primary: the default when nothing is asked for.
DEFAULT = WriteConcern(w=1, j=True)

_TRUE = {"true", "1", "yes", "on"}
_FALSE = {"false", "0", "no", "off"}
# Names people write for each part, folded to lower case.
_KEYS = {"w": "w", "j": "j", "journal": "j", "wtimeout": "wtimeout", "wtimeoutms": "wtimeout"}


def _bool(value: str, where: str) -> bool:
    if value.lower() in _TRUE:
        return True
    if value.lower() in _FALSE:
        return False
    raise BadWriteConcern(f"{where}: journal expects true or false, got {value!r}")


def _w(value: str, where: str) -> int | str:
    if not value:
        raise BadWriteConcern(f"{where}: w is empty")
    if value.lstrip("-").isdigit():
        return int(value)
    return value  # "majority" or a replica-set tag name


def _build(parts: dict[str, str], where: str) -> WriteConcern:
    kwargs: dict[str, Any] = {}
    if "w" in parts:
        kwargs["w"] = _w(parts["w"], where)
    if "j" in parts:
        kwargs["j"] = _bool(parts["j"], where)
    if "wtimeout" in parts:
        try:
            kwargs["wtimeout"] = int(parts["wtimeout"])
        except ValueError:
            raise BadWriteConcern(f"{where}: wtimeout expects milliseconds, got "
                                  f"{parts['wtimeout']!r}") from None
    try:
        concern = WriteConcern(**kwargs)
    except (ValueError, TypeError) as exc:
        raise BadWriteConcern(f"{where}: {exc}") from None
    if not concern.acknowledged:
        raise BadWriteConcern(f"{where}: w=0 is unacknowledged: no write could be known "
                              "durable (use w=1 or more, or majority)")
    return concern


def parse(text: str, where: str = "MONGODB_WRITE_CONCERN") -> WriteConcern:
    """``"majority"``, ``"2"``, ``"w=2,j=true"``, ``"w=majority;wtimeout=5000"``."""
    parts: dict[str, str] = {}
    for token in text.replace(";", ",").split(","):
        token = token.strip()
        if not token:
            continue
        key, sep, value = token.partition("=")
        if not sep:
            key, value = "w", token
        name = _KEYS.get(key.strip().lower())
        if name is None:
            raise BadWriteConcern(f"{where}: unknown option {key.strip()!r} in {text!r} "
                                  "(w, j, wtimeout)")
        parts[name] = value.strip()
    if not parts:
        raise BadWriteConcern(f"{where} is empty")
    return _build(parts, where)


def from_uri(uri: str) -> WriteConcern | None:
    """The write concern the URI's options give (``w``, ``journal``, ``wtimeoutMS``)."""
    query = urlsplit(uri).query
    parts = {_KEYS[key.lower()]: value for key, value in parse_qsl(query)
             if key.lower() in ("w", "journal", "wtimeoutms")}
    return _build(parts, "MONGODB_URI") if parts else None


def resolve(uri: str | None, setting: str | None = None) -> WriteConcern:
    """The concern to write at: the setting's, else the URI's, else :data:`DEFAULT`."""
    given = parse(setting) if setting and setting.strip() else None
    in_uri = from_uri(uri) if uri else None
    if given is not None and in_uri is not None and given.document != in_uri.document:
        raise BadWriteConcern(f"MONGODB_WRITE_CONCERN ({describe(given)}) contradicts the "
                              f"write concern of MONGODB_URI ({describe(in_uri)}): give one")
    return given or in_uri or DEFAULT


def client_options(concern: WriteConcern) -> dict[str, Any]:
    """``MongoClient`` keyword arguments that set *concern*."""
    doc = concern.document
    names = {"w": "w", "j": "journal", "wtimeout": "wTimeoutMS"}
    return {names[key]: value for key, value in doc.items() if key in names}


def describe(concern: WriteConcern) -> str:
    """``w=majority,j=true`` (for messages and the run record)."""
    return ",".join(f"{k}={str(v).lower() if isinstance(v, bool) else v}"
                    for k, v in concern.document.items()) or "server default"
