"""Text for the pages: search snippets with the matched words marked, and side-by-side
diffs of two versions of an article.

Both return plain data (lists of ``(text, marked)`` segments, rows of cells) that the
templates render with autoescaping on: archived text never becomes markup here.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from dataclasses import dataclass

from storage.mongo.search import split_words
from storage.mongo.terms import to_simplified

Segments = list[tuple[str, bool]]


def _folded(text: str) -> str:
    """Simplified script, lower case, one character per character of ``text``."""
    folded = to_simplified(text).lower()
    if len(folded) == len(text):
        return folded
    return "".join(to_simplified(ch).lower()[:1] or ch for ch in text)


def _spans(text: str, words: Sequence[str]) -> list[tuple[int, int]]:
    folded = _folded(text)
    spans: list[tuple[int, int]] = []
    for word in {_folded(w) for w in words if w}:
        start = folded.find(word)
        while start >= 0:
            spans.append((start, start + len(word)))
            start = folded.find(word, start + len(word))
    spans.sort()
    merged: list[tuple[int, int]] = []
    for a, b in spans:
        if merged and a <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(b, merged[-1][1]))
        else:
            merged.append((a, b))
    return merged


def highlight(text: str, query: str | None) -> Segments:
    """``text`` cut into segments, the matches of the query words marked (either script)."""
    words = split_words(query) if query else []
    spans = _spans(text, words) if words else []
    out: Segments = []
    pos = 0
    for a, b in spans:
        if a > pos:
            out.append((text[pos:a], False))
        out.append((text[a:b], True))
        pos = b
    if pos < len(text):
        out.append((text[pos:], False))
    return out


def snippet(body: str, query: str | None, width: int = 120) -> Segments:
    """About ``width`` characters of ``body`` around its first match, matches marked."""
    body = " ".join(body.split())
    words = split_words(query) if query else []
    spans = _spans(body, words) if words else []
    first = spans[0][0] if spans else 0
    start = max(0, first - width // 3)
    end = min(len(body), start + width)
    segments = highlight(body[start:end], query)
    if start > 0:
        segments.insert(0, ("…", False))
    if end < len(body):
        segments.append(("…", False))
    return segments


@dataclass(frozen=True)
class DiffRow:
    """One row of a side-by-side diff: ``kind`` is equal, replace, delete or insert."""

    kind: str
    old: Segments
    new: Segments


def _inline(old: str, new: str) -> tuple[Segments, Segments]:
    matcher = difflib.SequenceMatcher(None, old, new, autojunk=False)
    left: Segments = []
    right: Segments = []
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            left.append((old[i1:i2], False))
            right.append((new[j1:j2], False))
            continue
        if i2 > i1:
            left.append((old[i1:i2], True))
        if j2 > j1:
            right.append((new[j1:j2], True))
    return left, right


def side_by_side(old: str, new: str) -> list[DiffRow]:
    """Paragraph rows of two texts; changed paragraphs get their changed characters marked."""
    a = (old or "").split("\n")
    b = (new or "").split("\n")
    rows: list[DiffRow] = []
    matcher = difflib.SequenceMatcher(None, a, b, autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            rows += [DiffRow("equal", [(x, False)], [(x, False)]) for x in a[i1:i2]]
        elif tag == "replace":
            olds, news = a[i1:i2], b[j1:j2]
            for k in range(max(len(olds), len(news))):
                if k < len(olds) and k < len(news):
                    left, right = _inline(olds[k], news[k])
                    rows.append(DiffRow("replace", left, right))
                elif k < len(olds):
                    rows.append(DiffRow("delete", [(olds[k], True)], []))
                else:
                    rows.append(DiffRow("insert", [], [(news[k], True)]))
        elif tag == "delete":
            rows += [DiffRow("delete", [(x, True)], []) for x in a[i1:i2]]
        else:
            rows += [DiffRow("insert", [], [(x, True)]) for x in b[j1:j2]]
    return rows
