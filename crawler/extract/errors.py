"""Exceptions raised by the extractors (the only kind they ever raise)."""

from __future__ import annotations


class ExtractionError(Exception):
    """A page from which nothing usable could be extracted.

    ``reason`` is a short kind used in stats keys and the crawl report:
    ``missing-title``, ``missing-body`` or ``unparseable``.
    """

    def __init__(self, url: str, reason: str, detail: str | None = None) -> None:
        self.url = url
        self.reason = reason
        self.detail = detail
        super().__init__(url, reason)

    def __str__(self) -> str:
        extra = f" ({self.detail})" if self.detail else ""
        return f"cannot extract {self.url}: {self.reason}{extra}"

    def __reduce__(self) -> tuple[type[ExtractionError], tuple[str, str, str | None]]:
        return (type(self), (self.url, self.reason, self.detail))
