"""Keyword search over articles: an index-backed aggregate plus an exact check.

SecantusDB (and MongoDB) answer ``{"search_terms": {"$all": [...]}}`` on a multikey index
by scanning the collection, while an equality on one term uses the index. So the pipeline
starts with ``$match`` on the most selective term, then ``$all`` of the rest, then the
filters. Bigrams may all occur without the word itself (贵州 + 州人 without 贵州人), so
``matches()`` confirms every word on the simplified text.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from storage.mongo.terms import CJK_RUN, query_terms, rarest_first, to_simplified


def split_words(search: str | Sequence[str]) -> list[str]:
    """Query words from a string (split on whitespace) or a list of words."""
    words = search.split() if isinstance(search, str) else list(search)
    return [w for w in (w.strip() for w in words) if w]


def index_terms(words: Sequence[str]) -> list[str]:
    """Indexable terms of the words, most selective first (no lone CJK characters)."""
    terms = [t for t in query_terms(words) if not (len(t) == 1 and CJK_RUN.fullmatch(t))]
    return rarest_first(terms)


def pipeline(words: Sequence[str], match: Mapping[str, Any],
             sort: Mapping[str, int]) -> list[dict[str, Any]]:
    """The aggregate pipeline that finds candidate articles for the words."""
    terms = index_terms(words)
    stages: list[dict[str, Any]] = []
    if terms:
        stages.append({"$match": {"search_terms": terms[0]}})
        if len(terms) > 1:
            stages.append({"$match": {"search_terms": {"$all": terms[1:]}}})
    if match:
        stages.append({"$match": dict(match)})
    stages.append({"$sort": dict(sort)})
    stages.append({"$project": {"search_terms": 0, "dedup_keys": 0}})
    return stages


def matches(doc: Mapping[str, Any], words: Sequence[str]) -> bool:
    """Whether every CJK run of every word occurs in the title or body (either script)."""
    text = to_simplified(f"{doc.get('title') or ''}\n{doc.get('body') or ''}").lower()
    for word in words:
        for run in CJK_RUN.findall(to_simplified(word)):
            if run not in text:
                return False
    return True
