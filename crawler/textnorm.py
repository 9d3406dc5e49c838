"""Text normalisation shared by extraction and pipelines.

Script folding (OpenCC ``t2s``), whitespace cleaning, navigation-label matching and
parsing of the Chinese date strings the portal writes (Beijing time, no zone).
"""

from __future__ import annotations

import logging
import re
import unicodedata
from datetime import datetime, timedelta, timezone
from functools import lru_cache
from typing import Any

logger = logging.getLogger(__name__)

BEIJING = timezone(timedelta(hours=8), "Asia/Shanghai")

# Characters str.strip() leaves alone but that pad CRI text (zero-width, BOM).
_EDGE_JUNK = "\u200b\u200c\u200d\u2060\ufeff"
_ASCII_WS_RUN = re.compile(r"[ \t\r\n\f\v]+")
_ANY_WS = re.compile(r"\s+")

_DATE_RE = re.compile(
    r"(?P<y>\d{4})\s*[-/.年]\s*(?P<m>\d{1,2})\s*[-/.月]\s*(?P<d>\d{1,2})\s*日?"
    r"(?:\s*T?\s*(?P<H>\d{1,2})\s*[:時时点點]\s*(?P<M>\d{1,2})\s*分?"
    r"(?:\s*[:]\s*(?P<S>\d{1,2})\s*秒?)?)?"
)


@lru_cache(maxsize=1)
def _converter() -> Any:
    """The process-wide OpenCC converter, built on first use (not at import)."""
    import opencc

    logger.debug("loading OpenCC t2s converter")
    return opencc.OpenCC("t2s")


def to_simplified(s: str) -> str:
    """Traditional -> simplified Chinese (OpenCC ``t2s``); other text is unchanged."""
    if not s:
        return s
    # The gateway writes 産 (U+7523) for 产; t2s maps it, but be explicit about it.
    return str(_converter().convert(s)).replace("産", "产")


def fold_label(s: str) -> str:
    """A key to compare navigation labels in either script and either width.

    ``fold_label("Hi,貴州!") == fold_label("Hi，贵州！") == fold_label("hi,贵州!")``
    """
    folded = unicodedata.normalize("NFKC", to_simplified(s or "")).casefold()
    return _ANY_WS.sub("", folded)


def clean_text(s: str) -> str:
    """Strip whitespace (including U+3000 and nbsp) at both ends; collapse ASCII runs."""
    if not s:
        return ""
    s = s.replace("\r\n", "\n")
    s = _ASCII_WS_RUN.sub(" ", s)
    return s.strip().strip(_EDGE_JUNK).strip()


def find_cn_datetime(s: str) -> re.Match[str] | None:
    """The first date(-time) written the way the portal writes it, as a regex match."""
    if not s:
        return None
    return _DATE_RE.search(s)


def parse_cn_datetime(s: str) -> datetime | None:
    """Parse ``2025-07-06 16:21:55`` / ``2025年07月06日 16:21`` / ``2025-07-06`` as +08:00.

    Returns None when *s* holds no valid date.
    """
    if not s:
        return None
    match = find_cn_datetime(unicodedata.normalize("NFKC", s))
    if match is None:
        return None
    parts = {k: int(v) if v is not None else 0 for k, v in match.groupdict().items()}
    try:
        return datetime(parts["y"], parts["m"], parts["d"], parts["H"], parts["M"],
                        parts["S"], tzinfo=BEIJING)
    except ValueError:
        return None


__all__ = ["BEIJING", "clean_text", "find_cn_datetime", "fold_label", "parse_cn_datetime",
           "to_simplified"]
