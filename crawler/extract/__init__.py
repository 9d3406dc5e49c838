"""Extraction: pure functions from HTML text (or bytes, for charset) to dataclasses.

No Scrapy here. ``charset.decode_html`` -> ``nav.find_nav_links`` / ``listing.parse_listing``
/ ``article.parse_article``; the only exception they raise is ``errors.ExtractionError``.
"""
