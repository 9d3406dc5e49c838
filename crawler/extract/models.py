"""Dataclasses returned by the extractors (docs/architecture.md fixes their shape)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class NavLink:
    """One link of the home-page navigation; ``label`` as written on the page."""

    label: str
    url: str


@dataclass(frozen=True)
class ListingEntry:
    """One article link of a section listing (absolute URL)."""

    url: str
    title: str | None
    image: str | None


@dataclass(frozen=True)
class Listing:
    """A section listing page: its article links and the link to its next page."""

    entries: list[ListingEntry]
    next_page: str | None
    has_scripts: bool
    method: str  # "site-selectors" | "fallback"


@dataclass(frozen=True)
class ImageRef:
    """An image of an article body (absolute URL) and its caption, if any."""

    url: str
    caption: str | None


@dataclass(frozen=True)
class ArticlePage:
    """What one page of an article holds; a split article has several."""

    title: str
    published_at: str | None
    source: str | None
    editor: str | None
    chief_editor: str | None
    paragraphs: list[str]
    images: list[ImageRef]
    next_page: str | None
    template: str  # "new" | "old" | "fallback"
    warnings: list[str]


@dataclass(frozen=True)
class DecodedHtml:
    """A response body decoded to text, and how."""

    text: str
    encoding: str
    declared: str | None
    lied: bool
