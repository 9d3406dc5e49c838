"""Catch-up: index the articles marked ``search_pending``, then clear their marks.

Run by the crawl after each durable batch (not waiting for the writer lock: a process
that cannot take it leaves the work to the one that holds it) and at the end of the
crawl (a bounded wait), so the last process to finish leaves nothing pending. A mark
is cleared only where it still holds the token that was indexed (``$unset`` filtered
on it), after tantivy's commit: an article rewritten meanwhile stays pending, and a
process killed between commit and clear only indexes those articles again.

While a rebuild (``storage.search.rebuild``) is under way, its builder holds the live
index's lock: catch-ups skip and the marks stay for the new index. A build left
unfinished (its process died) receives the catch-up too, so a resumed build misses
nothing that was cleared in between.
"""

from __future__ import annotations

import logging
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import tantivy
from pymongo import UpdateMany
from pymongo.collection import Collection

from storage.mongo import pending
from storage.search import layout
from storage.search.layout import IndexBusy, SearchDir
from storage.search.progress import in_progress
from storage.search.schema import SOURCE_FIELDS, document

logger = logging.getLogger(__name__)

#: Pending articles indexed per tantivy commit.
BATCH = 1_000
#: Rounds that find fewer than BATCH articles (some rewritten meanwhile) before giving up
#: until the next catch-up.
TAIL_ROUNDS = 5


@dataclass
class CatchUp:
    """What one catch-up did."""

    indexed: int = 0
    cleared: int = 0
    skipped: str | None = None  # why nothing was done (busy, no index)


def add(writers: list[tantivy.IndexWriter], docs: list[dict[str, Any]]) -> None:
    """Replace each article's index document (delete by URL, add) in every writer."""
    made = [document(doc) for doc in docs]
    for index_writer in writers:
        for doc, made_doc in zip(docs, made, strict=True):
            index_writer.delete_documents_by_term("url", str(doc["url"]))
            index_writer.add_document(made_doc)
        index_writer.commit()


def clear(articles: Collection[dict[str, Any]], docs: list[dict[str, Any]]) -> int:
    """Unset the marks of *docs* where they still hold the token read; the count.

    One ``update_many`` per token (a batch of article writes shares one): SecantusDB
    commits each statement of a bulk write as a transaction of its own (an fsync each
    under ``sync_on_commit``), so one statement per article cost a commit per article.
    """
    by_token: dict[str, list[Any]] = {}
    for doc in docs:
        by_token.setdefault(doc[pending.FIELD], []).append(doc["_id"])
    ops = [UpdateMany({"_id": {"$in": ids}, pending.FIELD: token},
                      {"$unset": {pending.FIELD: ""}}) for token, ids in by_token.items()]
    return articles.bulk_write(ops, ordered=False).modified_count


def catch_up(articles: Collection[dict[str, Any]], root: Path, wait: float = 0.0,
             batch: int = BATCH) -> CatchUp:
    """Index the pending articles into the live index (and an unfinished build)."""
    meta = articles.database["store_meta"]
    where = SearchDir(root)
    live = where.current(meta)
    targets = ([live] if live else []) + [p for p in where.others() if in_progress(p)]
    if not targets:
        return CatchUp(skipped="no search index")
    report = CatchUp()
    with ExitStack() as stack:
        writers: list[tantivy.IndexWriter] = []
        try:
            for path in targets:
                index_writer = layout.writer(layout.open_index(path), wait)
                stack.callback(layout.release, index_writer)
                writers.append(index_writer)
        except IndexBusy:
            return CatchUp(skipped="index busy (another process is indexing)")
        tails = 0
        while tails < TAIL_ROUNDS:
            docs = list(articles.find(pending.PENDING, {**SOURCE_FIELDS, pending.FIELD: 1})
                        .limit(batch))
            if not docs:
                break
            add(writers, docs)
            cleared = clear(articles, docs)
            report.indexed += len(docs)
            report.cleared += cleared
            if len(docs) < batch:
                tails += 1
                if cleared == len(docs):
                    break
    if report.indexed:
        logger.debug("search index: %d article(s) indexed, %d mark(s) cleared",
                     report.indexed, report.cleared)
    return report
