"""Article extraction per page: ours (``crawler.extract.article.parse_article``, what the
spider calls) against trafilatura, on the offline replica's article pages, with the
field accuracy of both against the replica's ground truth.

The pages are rendered in process by the replica's own router (no HTTP): every page of
every article of ``--articles N`` stories (both templates, split articles, the seed
story, GB18030 pages declared gb2312), the fault profile's odd pages (unclosed tags,
a charset that lies, a 3 MB inline script, off-site links, a page without a body) and,
for every ``--gateway-every``-th story, its traditional-script gateway twin. Each body is
decoded as the spider decodes it (``crawler.extract.charset.decode_html``) and the same
text goes to both extractors, interleaved page by page; the decoding is not timed.

Ground truth is per page: the story's title and publication time, the paragraphs and
images of that page (in traditional script on a gateway twin). Fields are compared after
NFKC and whitespace folding; body similarity is ``difflib.SequenceMatcher.ratio`` of the
paragraphs joined by newlines (trafilatura's text: its lines, without the ``![](src)``
lines ``include_images`` adds; its images are the ``<graphic>`` elements of its body).

    .venv/bin/python benchmarks/extraction.py [--articles 300] [--gateway-every 5] [--repeat 3]

Needs trafilatura (``pip install '.[bench]'``); without it only our extractor is run.
"""

from __future__ import annotations

import argparse
import difflib
import gc
import os
import re
import statistics
import sys
import threading
import time
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from crawler.extract.article import parse_article, strip_site_suffix  # noqa: E402
from crawler.extract.charset import decode_html  # noqa: E402
from crawler.extract.errors import ExtractionError  # noqa: E402
from tests.replica import gateway  # noqa: E402
from tests.replica.config import ReplicaConfig  # noqa: E402
from tests.replica.content import Article  # noqa: E402
from tests.replica.server import Router  # noqa: E402
from tests.replica.site import Site  # noqa: E402

BASE = "http://127.0.0.1:8765"
SEED_DIR = Path("/work/shared/seed")
_WS = re.compile(r"\s+")
_MD_IMAGE = re.compile(r"!\[[^\]]*\]\([^)]*\)")


@dataclass
class Page:
    """One article page as the spider would hand it over, and what it really holds."""

    url: str
    text: str
    kind: str  # "new" | "old" | "gateway" | a fault role
    title: str = ""
    published: str = ""  # "YYYY-MM-DD HH:MM:SS"
    paragraphs: list[str] = field(default_factory=list)
    images: int = 0
    has_article: bool = True


@dataclass
class Extracted:
    """What one extractor found on one page (None: it found no article)."""

    title: str
    published: str
    lines: list[str]  # body paragraphs as the extractor gives them (normalised when scored)
    images: int


def norm(s: str | None) -> str:
    return _WS.sub(" ", unicodedata.normalize("NFKC", s or "")).strip()


def norm_body(lines: list[str]) -> str:
    return "\n".join(n for n in map(norm, lines) if n)


def _charset(headers: dict[str, str]) -> str | None:
    for part in headers.get("Content-Type", "").split(";")[1:]:
        key, _, value = part.strip().partition("=")
        if key.lower() == "charset" and value:
            return value.strip("\"' ")
    return None


def build_pages(articles: int = 300, gateway_every: int = 5) -> list[Page]:
    """Every article page of a replica of about ``articles`` target stories."""
    site = Site(ReplicaConfig(articles_per_section=max(12, articles // 2), faults=True,
                              js_section=None))
    site.base = BASE
    router = Router(site, threading.RLock())
    out: list[Page] = []
    for i, art in enumerate(site.articles):
        twin = gateway_every > 0 and i % gateway_every == 0 and "private" not in art.roles
        for n in range(1, len(art.pages) + 1):
            out.append(_page(router, art, n, art.page_path(n), traditional=False))
            if twin:
                path = f"/gate/big5/{site.netloc}{art.page_path(n)}"
                out.append(_page(router, art, n, path, traditional=True))
    return out


def _page(router: Router, art: Article, n: int, path: str, traditional: bool) -> Page:
    resp = router._resolve(path)
    if resp.status != 200:
        raise RuntimeError(f"replica answered {resp.status} for {path}")
    conv: Callable[[str], str] = gateway.to_traditional if traditional else (lambda s: s)
    roles = sorted(art.roles - {"error-500", "429", "slow", "private"})
    blocks = art.pages[n - 1]
    return Page(url=BASE + path, text=decode_html(resp.body, _charset(resp.headers)).text,
                kind="gateway" if traditional else (roles[0] if roles else art.template),
                title=conv(art.title), published=f"{art.published:%Y-%m-%d %H:%M:%S}",
                paragraphs=[conv(b.text) for b in blocks if b.kind == "p"],
                images=sum(b.kind == "img" for b in blocks),
                has_article="no-body" not in art.roles)


def ours(page: Page) -> Extracted | None:
    try:
        got = parse_article(page.text, page.url)
    except ExtractionError:
        return None
    return Extracted(got.title, got.published_at or "", got.paragraphs, len(got.images))


def load_trafilatura() -> Callable[[Page], Extracted | None] | None:
    try:
        import trafilatura
    except ImportError:
        return None
    params = {"outputformat": "%Y-%m-%d %H:%M:%S"}

    def run(page: Page) -> Extracted | None:
        doc: Any = trafilatura.bare_extraction(page.text, url=page.url, include_images=True,
                                               with_metadata=True, date_extraction_params=params)
        if doc is None or not doc.text:
            return None
        images = len(list(doc.body.iter("graphic"))) if doc.body is not None else 0
        # include_images also writes each image into the text as ``![alt](src)``: counted
        # above, not body text
        lines = [line for line in doc.text.split("\n") if not _MD_IMAGE.fullmatch(line.strip())]
        return Extracted(doc.title or "", doc.date or "", lines, images)

    return run


def measure(pages: list[Page], extractors: dict[str, Callable[[Page], Extracted | None]],
            repeat: int) -> tuple[dict[str, list[float]], dict[str, float],
                                  dict[str, list[Extracted | None]]]:
    """Per extractor: the fastest of ``repeat`` times per page (s), the CPU s of all the
    calls divided by ``repeat`` (a figure a busy machine disturbs less), and its results."""
    for fn in extractors.values():  # imports, lazy tables, caches of the first call
        fn(pages[0])
    times = {name: [float("inf")] * len(pages) for name in extractors}
    cpu = dict.fromkeys(extractors, 0.0)
    results: dict[str, list[Extracted | None]] = {name: [None] * len(pages) for name in extractors}
    gc.collect()
    for _ in range(repeat):
        for i, page in enumerate(pages):
            for name, fn in extractors.items():
                start, start_cpu = time.perf_counter(), time.process_time()
                got = fn(page)
                took = time.perf_counter() - start
                cpu[name] += (time.process_time() - start_cpu) / repeat
                times[name][i] = min(times[name][i], took)
                results[name][i] = got
    return times, cpu, results


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def similarity(a: str, b: str) -> float:
    return difflib.SequenceMatcher(None, a[:20_000], b[:20_000], autojunk=False).ratio()


def accuracy(pages: list[Page], results: list[Extracted | None]) -> dict[str, Any]:
    """Field accuracy over the pages that hold an article, and refusals of the others."""
    title = cut = day = stamp = body = images = found = 0
    sims: list[float] = []
    scored = [(p, r) for p, r in zip(pages, results, strict=True) if p.has_article]
    for page, got in scored:
        truth_body = norm_body(page.paragraphs)
        if got is None:
            sims.append(0.0)
            continue
        found += 1
        got_body = norm_body(got.lines)
        title += norm(got.title) == norm(page.title)
        cut += norm(strip_site_suffix(got.title)) == norm(page.title)
        day += got.published[:10] == page.published[:10]
        stamp += got.published[:19] == page.published
        body += got_body == truth_body
        images += got.images == page.images
        sims.append(similarity(got_body, truth_body))
    n = len(scored)
    empty = [r for p, r in zip(pages, results, strict=True) if not p.has_article]
    return {"pages": n, "found": found, "title": 100 * title / n, "title_cut": 100 * cut / n, "day": 100 * day / n,
            "stamp": 100 * stamp / n, "body_exact": 100 * body / n,
            "sim_median": statistics.median(sims), "sim_min": min(sims),
            "images": 100 * images / n, "no_body_pages": len(empty),
            "no_body_refused": sum(r is None for r in empty)}


def _seed_note() -> str:
    files = sorted(SEED_DIR.glob("*")) if SEED_DIR.is_dir() else []
    if not files:
        return "seed page: none in /work/shared/seed"
    head = files[0].read_text(encoding="utf-8", errors="replace")[:4000]
    if "<html" in head.lower() or "<body" in head.lower():
        return f"seed page: {files[0].name} is HTML but not wired in (replica truth only)"
    return (f"seed page: {files[0].name} is a text dump, not HTML: not measured; the replica "
            "renders the same story (its seed article, older template) and it is measured")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--articles", type=int, default=300, help="target stories (default 300)")
    ap.add_argument("--gateway-every", type=int, default=5,
                    help="every Nth story also as its traditional-script gateway twin (0: none)")
    ap.add_argument("--repeat", type=int, default=3,
                    help="passes over the pages; the fastest per page counts (default 3)")
    args = ap.parse_args(argv)

    load = os.getloadavg()
    print(f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {os.cpu_count()} cores, "
          f"load average {load[0]:.1f} {load[1]:.1f} {load[2]:.1f}")
    built = time.perf_counter()
    pages = build_pages(args.articles, args.gateway_every)
    kinds: dict[str, int] = {}
    for p in pages:
        kinds[p.kind] = kinds.get(p.kind, 0) + 1
    print(f"{len(pages)} pages rendered in {time.perf_counter() - built:.1f} s "
          f"({', '.join(f'{k} {v}' for k, v in sorted(kinds.items()))}); {_seed_note()}")

    extractors: dict[str, Callable[[Page], Extracted | None]] = {"ours": ours}
    traf = load_trafilatura()
    if traf is None:
        print("trafilatura is not installed: pip install '.[bench]' (only ours is measured)")
    else:
        import trafilatura
        extractors[f"trafilatura {trafilatura.__version__}"] = traf
    times, cpu, results = measure(pages, extractors, max(1, args.repeat))

    print(f"\n{'extractor':<18} {'pages':>5} {'total s':>8} {'ms/page med':>11} "
          f"{'p95':>7} {'max':>7} {'pages/s':>8} {'CPU s':>6}")
    for name, ts in times.items():
        total = sum(ts)
        print(f"{name:<18} {len(ts):>5} {total:>8.2f} {1e3 * statistics.median(ts):>11.2f} "
              f"{1e3 * pct(ts, 0.95):>7.2f} {1e3 * max(ts):>7.1f} {len(ts) / total:>8.0f} {cpu[name]:>6.2f}")
    if traf is not None:
        a, b = times["ours"], next(v for k, v in times.items() if k != "ours")
        cpu_b = next(v for k, v in cpu.items() if k != "ours")
        print(f"ours / trafilatura: total {sum(a) / sum(b):.3f} (ours {sum(b) / sum(a):.1f}x "
              f"faster), median {statistics.median(a) / statistics.median(b):.3f} "
              f"({statistics.median(b) / statistics.median(a):.1f}x), p95 "
              f"{pct(a, 0.95) / pct(b, 0.95):.3f} ({pct(b, 0.95) / pct(a, 0.95):.1f}x), CPU {cpu['ours'] / cpu_b:.3f} "
              f"({cpu_b / cpu['ours']:.1f}x)")

    print(f"\n{'extractor':<18} {'found':>9} {'title =':>8} {'-suffix':>7} {'date =':>7} {'date+time':>9} "
          f"{'body =':>7} {'body sim med/min':>16} {'images =':>8} {'no-body refused':>15}")
    for name, got in results.items():
        acc = accuracy(pages, got)
        print(f"{name:<18} {acc['found']:>4}/{acc['pages']:<4} {acc['title']:>7.1f}% {acc['title_cut']:>6.1f}% "
              f"{acc['day']:>6.1f}% {acc['stamp']:>8.1f}% {acc['body_exact']:>6.1f}% "
              f"{acc['sim_median']:>8.3f}/{acc['sim_min']:.3f} {acc['images']:>7.1f}% "
              f"{acc['no_body_refused']:>11}/{acc['no_body_pages']}")
    print("(% of the pages that hold an article; '=' exact after NFKC and whitespace folding; "
          "-suffix: the title once a trailing '_国际在线' is cut (strip_site_suffix); "
          "date = the day, date+time to the second; body sim = difflib ratio)")
    per_kind: dict[str, list[float]] = {}
    for p, t in zip(pages, times["ours"], strict=True):
        per_kind.setdefault(p.kind, []).append(t)
    print("ours, median ms by page kind: " + ", ".join(
        f"{k} {1e3 * statistics.median(v):.2f}" for k, v in sorted(per_kind.items())))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
