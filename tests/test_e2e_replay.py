"""End to end: after recrawls answered 304 (and one edit), every article replays with
its text at its latest capture, through pywb (`gzarchive warc replay`) and through the
index of the WACZ (`gzarchive warc pack`), resolved the way a replayer does."""

from __future__ import annotations

import gzip
import io
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import zipfile
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest
from warcio.archiveiterator import ArchiveIterator
from warcio.timeutils import iso_date_to_timestamp

from crawler.extract.article import parse_article
from crawler.extract.charset import decode_html
from crawler.textnorm import clean_text
from storage.warc.replay import find_pywb_tool, free_port, wait_for_port
from tests.helpers import ROOT, crawl, run_cli

pytestmark = pytest.mark.slow


def _page_urls(truth: dict[str, Any]) -> list[str]:
    stem = truth["url"].removesuffix(".html")
    return [truth["url"]] + [f"{stem}_{n}.html" for n in range(2, truth["pages"] + 1)]


def _paragraphs(body: bytes, content_type: str, url: str) -> list[str]:
    charset = None
    if "charset=" in content_type:
        charset = content_type.split("charset=", 1)[1].split(";")[0].strip()
    page = parse_article(decode_html(body, charset).text, url)
    return [p for p in (clean_text(p) for p in page.paragraphs) if p]


def _text_ok(pages: list[list[str]], truth: dict[str, Any]) -> bool:
    return "\n".join(p for page in pages for p in page) == truth["body"]


def _latest_capture(warc_dir: Path) -> dict[str, tuple[str, str]]:
    """URL -> (14-digit timestamp, HTTP status) of its last response or revisit record."""
    latest: dict[str, tuple[str, str]] = {}
    for path in warc_dir.glob("*.warc.gz"):
        with path.open("rb") as fh:
            for record in ArchiveIterator(fh):
                if record.rec_type not in ("response", "revisit"):
                    continue
                url = record.rec_headers.get_header("WARC-Target-URI")
                ts = iso_date_to_timestamp(record.rec_headers.get_header("WARC-Date"))
                status = record.http_headers.get_statuscode() if record.http_headers else ""
                latest[url] = max(latest.get(url, ("", "")), (ts, status))
    return latest


@pytest.fixture(scope="module")
def recrawled(tmp_path_factory: pytest.TempPathFactory) -> Any:
    from tests.replica import Replica, ReplicaConfig

    rep = Replica(ReplicaConfig(js_section=None)).start()
    data = tmp_path_factory.mktemp("replay")
    try:
        for _ in range(3):  # the first crawl, then two recrawls of the unchanged replica
            proc = crawl(rep.url, data)
            assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
        target = next(t for t in rep.ground_truth() if t["pages"] == 1)
        before = target["body"]
        edited = rep.edit_article(target["url"])
        assert edited["body"] != before
        proc = crawl(rep.url, data)
        assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
        yield {"data": data, "truth": rep.ground_truth(), "edited": edited, "old_body": before,
               "latest": _latest_capture(data / "warc")}
    finally:
        rep.stop()


def test_the_latest_capture_of_most_articles_is_a_304(recrawled: dict[str, Any]) -> None:
    """The situation under test: unchanged articles were last seen as 304 answers."""
    urls = [t["url"] for t in recrawled["truth"]]
    not_modified = [u for u in urls if recrawled["latest"][u][1] == "304"]
    print(f"{len(not_modified)} of {len(urls)} articles last captured as a 304 revisit")
    assert len(not_modified) > len(urls) / 2
    assert recrawled["latest"][recrawled["edited"]["url"]][1] == "200"


def _fetch(url: str) -> tuple[int, bytes, str]:
    try:
        with urllib.request.urlopen(url, timeout=30) as resp:
            return resp.status, resp.read(), resp.headers.get("Content-Type", "")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read(), exc.headers.get("Content-Type", "")


def test_every_article_replays_with_text_in_pywb(recrawled: dict[str, Any]) -> None:
    try:
        find_pywb_tool("wayback")
    except Exception as exc:  # noqa: BLE001 - pywb is an optional tool of its own venv
        pytest.skip(str(exc))
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k != "MONGODB_URI"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "crawler", "warc", "replay", "--port", str(port),
         "--data-dir", str(recrawled["data"])],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_for_port(port, timeout=60)
        good, bad = 0, []
        for truth in recrawled["truth"]:
            pages = []
            for url in _page_urls(truth):
                ts = recrawled["latest"][url][0]
                status, body, ctype = _fetch(f"http://127.0.0.1:{port}/gzarchive/{ts}id_/{url}")
                pages.append(_paragraphs(body, ctype, url) if status == 200 and body else [])
            if _text_ok(pages, truth):
                good += 1
            else:
                bad.append(truth["url"])
        print(f"pywb: {good} of {len(recrawled['truth'])} articles replayed with their text "
              "at their latest capture")
        assert not bad, bad[:5]
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise
    # SIGTERM stops pywb too: nothing serves the port any more
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
        except OSError:
            break
        time.sleep(0.2)
    else:
        pytest.fail(f"pywb still serves 127.0.0.1:{port} after SIGTERM to `warc replay`")


class WaczReplayer:
    """Resolve captures from a WACZ's own CDXJ the way pywb and ReplayWeb.page do."""

    def __init__(self, path: Path) -> None:
        self.zip = zipfile.ZipFile(path)
        names = self.zip.namelist()
        index = next(n for n in names if n.startswith("indexes/") and n.endswith(".cdx.gz"))
        text = gzip.decompress(self.zip.read(index)).decode("utf-8")
        self.captures: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for line in text.splitlines():
            if not line.strip() or line.startswith("!"):
                continue
            _key, ts, blob = line.split(" ", 2)
            data = json.loads(blob)
            data["timestamp"] = ts
            self.captures[data["url"]].append(data)

    def _record(self, cdx: dict[str, Any]) -> Any:
        with self.zip.open("archive/" + cdx["filename"]) as fh:
            raw = fh.read()
        start, length = int(cdx["offset"]), int(cdx["length"])
        record = next(iter(ArchiveIterator(io.BytesIO(raw[start:start + length]))))
        return record

    def replay(self, url: str, ts: str) -> tuple[int, bytes, str]:
        """(status, body, content type) of ``url`` as replayed at ``ts`` (closest)."""
        caps = self.captures.get(url)
        if not caps:
            return 404, b"", ""
        cdx = min(caps, key=lambda c: (abs(int(c["timestamp"]) - int(ts)), -int(c["timestamp"])))
        record = self._record(cdx)
        status = int(record.http_headers.get_statuscode() or 200)
        if record.rec_type != "revisit":
            return status, record.content_stream().read(), \
                record.http_headers.get_header("Content-Type") or ""
        if 300 <= status < 400:  # both replayers answer a 3xx revisit as it is, no payload
            return status, b"", ""
        ref_uri = record.rec_headers.get_header("WARC-Refers-To-Target-URI")
        ref_date = record.rec_headers.get_header("WARC-Refers-To-Date")
        if not ref_uri:
            return 404, b"", ""
        ref_ts = iso_date_to_timestamp(ref_date) if ref_date else cdx["timestamp"]
        originals = [c for c in self.captures.get(ref_uri, []) if c.get("mime") != "warc/revisit"
                     and c.get("digest") == cdx.get("digest")]
        if not originals:
            return 404, b"", ""
        orig = min(originals, key=lambda c: abs(int(c["timestamp"]) - int(ref_ts)))
        original = self._record(orig)
        return status, original.content_stream().read(), \
            original.http_headers.get_header("Content-Type") or ""


def test_every_article_replays_with_text_from_the_wacz(recrawled: dict[str, Any],
                                                      tmp_path: Path) -> None:
    out = tmp_path / "crawl.wacz"
    proc = run_cli("warc", "pack", "-o", str(out), "--data-dir", str(recrawled["data"]))
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    replayer = WaczReplayer(out)
    good, bad = 0, []
    for truth in recrawled["truth"]:
        pages = []
        for url in _page_urls(truth):
            status, body, ctype = replayer.replay(url, recrawled["latest"][url][0])
            pages.append(_paragraphs(body, ctype, url) if status == 200 and body else [])
        if _text_ok(pages, truth):
            good += 1
        else:
            bad.append(truth["url"])
    print(f"WACZ: {good} of {len(recrawled['truth'])} articles replayed with their text "
          "at their latest capture")
    assert not bad, bad[:5]
    assert proc.stdout.strip() == str(out), proc.stdout[-2000:]  # no library chatter


def test_the_edited_article_replays_its_new_text(recrawled: dict[str, Any],
                                                 tmp_path: Path) -> None:
    out = tmp_path / "crawl.wacz"
    assert run_cli("warc", "pack", "-o", str(out), "--data-dir",
                   str(recrawled["data"])).returncode == 0
    edited = recrawled["edited"]
    url = edited["url"]
    status, body, ctype = WaczReplayer(out).replay(url, recrawled["latest"][url][0])
    assert status == 200
    text = "\n".join(_paragraphs(body, ctype, url))
    assert text == edited["body"] != recrawled["old_body"]
