"""Bring a store to the search-index layout at start-up (``ensure_indexes``).

- A store of the ``search_postings`` layout (keyword postings in MongoDB, no search
  marks, no index): its index is built from the articles (``rebuild``: progress with a
  time estimate in the log, resumable after an interruption), then ``search_postings``
  is dropped (~154 KB of its ~182 KB per article).
- A store that names no index yet (a new store): the same build, instant.
- An unfinished build (the process was interrupted): resumed.
- A store whose index lives in another data directory (several machines on one
  MONGODB_URI): left alone, said once; this directory's searches read every article
  until ``gzarchive search reindex`` makes its index the store's.

Another process building at the same moment: this one goes on without waiting (its
writes are marked pending and indexed by whoever finishes last).
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

from pymongo.collection import Collection

from storage.search import layout
from storage.search.layout import IndexBusy, SearchDir
from storage.search.rebuild import rebuild, unfinished

logger = logging.getLogger(__name__)

#: The keyword postings of the previous layout (storage/mongo/postings.py, removed).
LEGACY_COLLECTION = "search_postings"


def upgrade(articles: Collection[dict[str, Any]], root: Path) -> None:
    """Build, resume or leave the store's search index as the module docstring says."""
    db = articles.database
    meta = db["store_meta"]
    legacy = LEGACY_COLLECTION in db.list_collection_names()
    name = layout.registered(meta)
    ours = SearchDir(root).current(meta) is not None
    if name is not None and not ours and not unfinished(root):
        logger.warning("the search index of this store is %s, not in %s: searches from here "
                       "read every article (`gzarchive search reindex` builds one here)",
                       name, root)
        return
    if name is None or unfinished(root):
        if legacy:
            logger.warning("upgrading the article store: building the search index in %s "
                           "from its %d articles (then %s is dropped); interrupted, it "
                           "resumes at the next start", root,
                           articles.estimated_document_count(), LEGACY_COLLECTION)
        try:
            rebuild(articles, root)
        except IndexBusy as exc:
            logger.warning("search index not built by this process: %s", exc)
            return
    if legacy and layout.registered(meta) is not None:
        started = time.monotonic()
        db.drop_collection(LEGACY_COLLECTION)
        logger.warning("dropped %s (the previous keyword index) in %.0f s", LEGACY_COLLECTION,
                       time.monotonic() - started)
