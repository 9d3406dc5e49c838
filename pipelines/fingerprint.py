"""Script-insensitive content fingerprints: the gateway twin and the simplified page of
one story hash alike (OpenCC t2s, whitespace and punctuation folded, 産 -> 产)."""

from __future__ import annotations

import functools
import hashlib
import unicodedata

from crawler.textnorm import to_simplified

_EXTRA_FOLDS = str.maketrans({"産": "产"})


def _dropped(ch: str) -> bool:
    return ch.isspace() or unicodedata.category(ch).startswith(("P", "S", "Z", "C"))


@functools.cache
def _drop_table() -> dict[int, None]:
    """str.translate table deleting every dropped character of the BMP (~35 ms once)."""
    return {cp: None for cp in range(0x10000) if _dropped(chr(cp))}


@functools.lru_cache(maxsize=128)  # items in flight between the two pipelines
def fold_text(text: str) -> str:
    """Simplified script, NFKC, no whitespace or punctuation, lower-cased.

    The last few results are kept: an article's title and body are folded for its
    content hash (normalise) and again for the near-duplicate check (dedup)."""
    simplified = to_simplified(text.translate(_EXTRA_FOLDS))
    normalised = unicodedata.normalize("NFKC", simplified).casefold()
    # One pass in C for the BMP; characters past it (emoji, CJK extension B) one by one.
    kept = normalised.translate(_drop_table())
    if kept.isascii() or max(kept) <= "\uffff":
        return kept
    return "".join(ch for ch in kept if not _dropped(ch))


def item_text(title: str | None, body: str | None) -> str:
    """The folded text of an article that the near-duplicate index compares: that of
    ``title + "\n" + body``, folded part by part (nothing folds across the line break;
    tests/test_pipelines_fingerprint.py), so the content hash's folds are reused."""
    return fold_text(title or "") + fold_text(body or "")


def content_hash(title: str, body: str) -> str:
    """sha256 (hex) of the folded title and body."""
    folded = fold_text(title) + "\x00" + fold_text(body)
    return hashlib.sha256(folded.encode("utf-8")).hexdigest()
