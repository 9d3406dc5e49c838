"""Search terms for Chinese and English text, index friendly.

MongoDB text indexes do not split Chinese (and SecantusDB has none), so articles are
indexed by their terms (``postings.Postings``): character bigrams of every CJK run of the
*simplified* text plus the lower-cased ASCII words, in a plain multikey index. A query word is turned into terms
the same way, so 貴州 and 贵州 give the same term ``贵州``.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from functools import lru_cache

import opencc

# CJK ideographs (unified, extension A, compatibility) : the scripts OpenCC folds.
CJK_RUN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]+")
ASCII_WORD = re.compile(r"[0-9a-z]+")


@lru_cache(maxsize=1)
def _converter() -> opencc.OpenCC:
    # Built lazily (not at import time) and once per process: loading takes ~20 ms.
    return opencc.OpenCC("t2s")


def to_simplified(text: str) -> str:
    """Fold traditional characters to simplified ones (OpenCC t2s), NFKC-normalised."""
    return str(_converter().convert(unicodedata.normalize("NFKC", text)))


def _terms(text: str, *, unigrams: bool) -> list[str]:
    folded = to_simplified(text).lower()
    out: dict[str, None] = {}
    for run in CJK_RUN.findall(folded):
        if len(run) == 1:
            if unigrams:
                out[run] = None
            continue
        for i in range(len(run) - 1):
            out[run[i : i + 2]] = None
    for word in ASCII_WORD.findall(folded):
        out[word] = None
    return list(out)


def terms_for(text: str) -> list[str]:
    """Index terms of a text: CJK character bigrams plus ASCII words, deduplicated.

    >>> terms_for("Hi,貴州! 老外在贵州")
    ['贵州', '老外', '外在', '在贵', 'hi']
    """
    return _terms(text, unigrams=False)


def query_terms(words: Iterable[str]) -> list[str]:
    """Terms a document must all carry to match every one of the query words.

    A lone CJK character gives a one-character term, which no document carries: the
    search leaves such terms out of the index match and checks them on the text.
    """
    out: dict[str, None] = {}
    for word in words:
        for term in _terms(word, unigrams=True):
            out[term] = None
    return list(out)

