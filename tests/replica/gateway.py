"""The traditional-script gateway: ``/gate/big5/<host>/<path>`` twins of every page.

Like big5.cri.cn it converts with OpenCC s2t, writes 産 (U+7523) for 产, and rewrites
the links inside the page into gateway form.
"""

from __future__ import annotations

import re
from functools import lru_cache

import opencc

PREFIX = "/gate/big5/"


@lru_cache(maxsize=1)
def _s2t() -> opencc.OpenCC:
    return opencc.OpenCC("s2t")


def to_traditional(text: str) -> str:
    return _s2t().convert(text.replace("产", "産")).replace("產", "産")


def split(path: str) -> tuple[str, str] | None:
    """``/gate/big5/host:port/n/x.html`` -> ("host:port", "/n/x.html"); None if not a gateway path."""
    if not path.startswith(PREFIX):
        return None
    host, _, rest = path[len(PREFIX):].partition("/")
    return (host, "/" + rest) if host else None


def convert(text: str, base: str, netloc: str) -> str:
    """Traditional script, links in gateway form, charset declared as utf-8."""
    prefix = f"{PREFIX}{netloc}"
    text = to_traditional(text)
    text = re.sub(re.escape(base) + r"(?=/)(?!/gate/)", base + prefix, text)
    text = re.sub(r'((?:href|src)=")/(?!gate/)', rf"\1{prefix}/", text)
    text = text.replace('fetch("/api/', f'fetch("{prefix}/api/')
    return re.sub(r"charset=gb2312", "charset=utf-8", text, flags=re.I)
