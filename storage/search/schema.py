"""The tantivy schema of the search index and the index document of one article."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import tantivy

from storage.mongo.terms import terms_for

#: The publication-date key of an article without a date: below every real date, so it
#: sorts last newest-first and first oldest-first (as MongoDB sorts null), and no date
#: range includes it.
UNDATED = -(2**62)
#: The article fields an index document is made from.
SOURCE_FIELDS = {"url": 1, "title": 1, "body": 1, "sections": 1, "published_at": 1}


def build_schema() -> tantivy.Schema:
    builder = tantivy.SchemaBuilder()
    builder.add_text_field("url", stored=True, tokenizer_name="raw", index_option="basic")
    # Terms are made by terms_for and joined by spaces: tantivy only splits them again.
    builder.add_text_field("terms", stored=False, tokenizer_name="whitespace",
                           index_option="basic")
    builder.add_text_field("sections", stored=False, tokenizer_name="raw",
                           index_option="basic")
    builder.add_integer_field("published", stored=False, indexed=True, fast=True)
    return builder.build()


SCHEMA = build_schema()


def date_key(value: Any) -> int:
    """Milliseconds since the epoch (BSON's precision), ``UNDATED`` without a date."""
    if not isinstance(value, datetime):
        return UNDATED
    if value.tzinfo is None:  # pymongo without tz_aware: naive means UTC
        value = value.replace(tzinfo=UTC)
    return int(value.timestamp() * 1000)


def document(article: Mapping[str, Any]) -> tantivy.Document:
    """The index document of an article (as stored in MongoDB)."""
    terms = terms_for(f"{article.get('title') or ''}\n{article.get('body') or ''}")
    return tantivy.Document(url=str(article["url"]), terms=" ".join(terms),
                            sections=[str(s) for s in article.get("sections") or []],
                            published=date_key(article.get("published_at")))
