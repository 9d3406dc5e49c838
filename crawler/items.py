"""Items the spider yields: one article, or a late section membership."""

from __future__ import annotations

import scrapy


class ArticleItem(scrapy.Item):
    """One article as extracted (all pages merged); pipelines normalise and store it."""

    url = scrapy.Field()            # canonical URL
    urls = scrapy.Field()           # every URL it was seen at (canonical first)
    title = scrapy.Field()
    published_at = scrapy.Field()   # raw on-page text; NormalisePipeline makes it a datetime
    source = scrapy.Field()
    editor = scrapy.Field()
    chief_editor = scrapy.Field()
    sections = scrapy.Field()       # simplified labels
    body = scrapy.Field()           # str (paragraphs joined by "\n") once normalised
    paragraphs = scrapy.Field()     # list[str] before normalisation
    images = scrapy.Field()         # [{"url", "caption"}]
    warc = scrapy.Field()           # {"file", "offset"} of the first page's response record
    fetched_at = scrapy.Field()     # datetime (UTC)
    template = scrapy.Field()
    pages = scrapy.Field()
    script = scrapy.Field()         # "simplified" | "traditional" (page fetched)
    content_hash = scrapy.Field()
    near_duplicate_of = scrapy.Field()
    near_duplicates_found = scrapy.Field()  # earlier-crawled republications of this one
    near_duplicate_unchecked = scrapy.Field()  # True: the check could not run (store down)
    http_validators = scrapy.Field()  # {"etag", "last_modified"} of the first page


class SectionLinkItem(scrapy.Item):
    """An article already stored or emitted, seen again: merge sections and URLs.

    ``unchanged`` is true for a 304 answer to a conditional request (touch last_seen).
    """

    url = scrapy.Field()
    sections = scrapy.Field()
    urls = scrapy.Field()
    unchanged = scrapy.Field()
