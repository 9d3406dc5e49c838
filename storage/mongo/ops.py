"""Store operations as data: what the crawler writes, journaled when it cannot be written.

Every write of a crawl is an :class:`Op` (kind + payload + the instant it stands for):
``upsert`` an article, ``touch`` one seen again (last_seen, sections and URLs merged),
``relink`` a republication to its original (``near_duplicate_of``), ``run`` a
``crawl_runs`` document. :class:`BatchWriter` applies them in order and, when the
database cannot take them, appends them to the spool (storage.mongo.spool), which the
next run replays in the same order. Each kind is idempotent (upserts by URL with a fixed
``now``, ``$addToSet``, ``$set``, replace by ``_id``), so a retried or replayed op that
had already reached the server changes nothing.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from storage.mongo.articles import ArticleRepository, UpsertResult
from storage.mongo.runs import RunRepository

UPSERT = "upsert"
TOUCH = "touch"
RELINK = "relink"
RUN = "run"
KINDS = (UPSERT, TOUCH, RELINK, RUN)


@dataclass(frozen=True)
class Op:
    """One write. ``now`` None: stamped by the writer with its batch's instant."""

    kind: str
    payload: Mapping[str, Any]
    now: datetime | None = None

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown store operation {self.kind!r}")

    @classmethod
    def upsert(cls, doc: Mapping[str, Any], now: datetime | None = None) -> Op:
        return cls(UPSERT, {"doc": dict(doc)}, now)

    @classmethod
    def touch(cls, url: str, sections: Sequence[str], urls: Sequence[str] = (),
              unchanged: bool = False, now: datetime | None = None) -> Op:
        """Seen again: ``unchanged`` for a 304 (last_seen moves), else a section merge."""
        return cls(TOUCH, {"url": url, "sections": list(sections), "urls": list(urls),
                           "unchanged": bool(unchanged)}, now)

    @classmethod
    def relink(cls, url: str, original: str, now: datetime | None = None) -> Op:
        return cls(RELINK, {"url": url, "original": original}, now)

    @classmethod
    def run(cls, doc: Mapping[str, Any], now: datetime | None = None) -> Op:
        if "_id" not in doc:
            raise ValueError("a crawl_runs document needs its _id (RunRepository.document)")
        return cls(RUN, {"doc": dict(doc)}, now)

    @property
    def url(self) -> str | None:
        """The article URL the op is about (None for a run)."""
        if self.kind == UPSERT:
            value = self.payload["doc"].get("url")
            return str(value) if value is not None else None
        if self.kind in (TOUCH, RELINK):
            return str(self.payload["url"])
        return None

    @property
    def doc(self) -> dict[str, Any]:
        """The document of an upsert or run op."""
        value: dict[str, Any] = self.payload["doc"]
        return value

    def stamped(self, now: datetime) -> Op:
        return self if self.now is not None else replace(self, now=now)

    # -- the spool's form ----------------------------------------------------------------
    def entry(self) -> dict[str, Any]:
        """``{"kind", "now", "payload"}``: one spool line (Extended JSON)."""
        return {"kind": self.kind, "now": self.now or datetime.now(UTC),
                "payload": dict(self.payload)}

    @classmethod
    def from_entry(cls, entry: Mapping[str, Any]) -> Op:
        """A spool line back; the first format ``{"now", "doc"}`` was an article upsert."""
        if "kind" not in entry and "doc" in entry:
            return cls.upsert(entry["doc"], entry.get("now"))
        return cls(str(entry["kind"]), dict(entry["payload"]), entry.get("now"))


@dataclass
class Applied:
    """What applying a group of ops did."""

    result: UpsertResult = field(default_factory=UpsertResult)  # article upserts
    written: list[Op] = field(default_factory=list)
    refused: list[Op] = field(default_factory=list)   # the server refused them (kept)
    missing: list[Op] = field(default_factory=list)   # written, but matched no article


class Applier:
    """Applies ops to the articles and crawl_runs of one database."""

    def __init__(self, repo: ArticleRepository) -> None:
        self.repo = repo
        self.runs = RunRepository(repo.db)

    def apply(self, ops: Sequence[Op]) -> Applied:
        """Apply *ops* (one kind; upserts of one ``now``) in order.

        Raises pymongo's errors (connection, write concern: the caller retries or
        spools); article upserts the server refuses come back in ``refused``.
        """
        out = Applied()
        if not ops:
            return out
        kind = ops[0].kind
        if kind == UPSERT:
            now = ops[0].now or datetime.now(UTC)
            result = self.repo.upsert_many([op.doc for op in ops], now)
            failed = set(result.failed)
            result.errors, result.failed = 0, []
            out.result = result
            for op in ops:
                (out.refused if op.url in failed else out.written).append(op)
            return out
        for op in ops:
            if not self._one(op):
                out.missing.append(op)
            out.written.append(op)
        return out

    def _one(self, op: Op) -> bool:
        p = op.payload
        if op.kind == TOUCH:
            return self.repo.touch(p["url"], p["sections"], p["urls"], now=op.now) > 0
        if op.kind == RELINK:
            return self.repo.set_near_duplicate(p["url"], p["original"]) > 0
        self.runs.save(op.doc)
        return True


def groups(ops: Iterable[Op], batch_size: int) -> list[list[Op]]:
    """Consecutive upserts of one ``now`` in batches of *batch_size*; other ops alone."""
    out: list[list[Op]] = []
    for op in ops:
        last = out[-1] if out else None
        if (last is not None and op.kind == UPSERT and last[0].kind == UPSERT
                and last[0].now == op.now and len(last) < batch_size):
            last.append(op)
        else:
            out.append([op])
    return out
