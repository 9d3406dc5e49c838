"""End-to-end: a real Scrapy crawl through WarcArchiveMiddleware against a local server.

The server (stdlib http.server on 127.0.0.1:0, in a thread of the test process) logs
every request it answers and the exact body bytes it sent; the crawl runs in a
subprocess (one reactor per process). The WARC files are then read back with warcio.
"""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from warcio.archiveiterator import ArchiveIterator

from storage.warc.index import read_index
from storage.warc.verify import verify_directory
from tests.helpers import project_crawler, project_settings

ROOT = Path(__file__).resolve().parents[1]

HOME = b"""<html><head><meta charset="utf-8"><title>home</title></head><body>
<a href="/gzip">gzip</a> <a href="/chunked">chunked</a> <a href="/redirect">redirect</a>
<a href="/missing">missing</a> <a href="/error">error</a> <a href="/img.png">img</a>
</body></html>"""
GZ_HTML = "<html><body><p>壓縮的頁面 gzip page</p></body></html>".encode()
CHUNKS = [b"<html><body>", "<p>分塊 chunked</p>".encode(), b"</body></html>"]
PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        pass

    def _send(self, status: int, headers: list[tuple[str, str]], body: bytes) -> None:
        self.send_response(status)
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
        self.server.log.append({"path": self.path, "status": status, "body": body,
                                "headers": dict(self.headers.items())})

    def do_GET(self) -> None:  # noqa: N802
        path = self.path
        html = [("Content-Type", "text/html; charset=utf-8")]
        if path == "/robots.txt":
            self._send(200, [("Content-Type", "text/plain")], b"User-agent: *\nAllow: /\n")
        elif path == "/":
            self._send(200, html, HOME)
        elif path == "/gzip":
            self._send(200, html + [("Content-Encoding", "gzip")], self.server.gz_body)
        elif path == "/chunked":
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for chunk in CHUNKS:
                self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            self.wfile.write(b"0\r\n\r\n")
            self.server.log.append({"path": path, "status": 200, "body": b"".join(CHUNKS),
                                    "headers": dict(self.headers.items())})
        elif path == "/redirect":
            self._send(301, [("Location", "/target")], b"moved")
        elif path == "/target":
            self._send(200, html, b"<html><body>target</body></html>")
        elif path == "/missing":
            self._send(404, html, b"<html><body>not found</body></html>")
        elif path == "/error":
            self._send(500, html, b"<html><body>server error</body></html>")
        elif path == "/img.png":
            self._send(200, [("Content-Type", "image/png")], PNG)
        elif path == "/cond":
            if self.headers.get("If-None-Match") == '"v1"':
                self.send_response(304)
                self.send_header("ETag", '"v1"')
                self.end_headers()
                self.server.log.append({"path": path, "status": 304, "body": b"",
                                        "headers": dict(self.headers.items())})
            else:
                self._send(200, html + [("ETag", '"v1"')], b"<html><body>cond</body></html>")
        else:
            self._send(404, html, b"no")


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    log: list[dict[str, Any]]
    gz_body: bytes


@pytest.fixture(scope="module")
def server() -> Iterator[_Server]:
    srv = _Server(("127.0.0.1", 0), _Handler)
    srv.log = []
    srv.gz_body = gzip.compress(GZ_HTML, mtime=0)
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()


SPIDER = '''
import json, sys
from scrapy import Request, Spider
from scrapy.crawler import CrawlerProcess
from crawler.archive.signals import archive_outlinks
from tests.helpers import project_settings

BASE, DATA = sys.argv[1], sys.argv[2]

class ArchiveTestSpider(Spider):
    name = "archive_test"

    async def start(self):
        yield Request(BASE + "/", callback=self.parse_home)

    def parse_home(self, response):
        links = [response.urljoin(h) for h in response.css("a::attr(href)").getall()]
        archive_outlinks(self.crawler, response.url, links)
        yield self.item(response)
        for link in links:
            yield Request(link, callback=self.item_cb)
        yield Request(BASE + "/cond", callback=self.parse_cond)

    def parse_cond(self, response):
        yield self.item(response)
        # the same payload again: archived as an identical-payload-digest revisit
        yield Request(BASE + "/gzip", dont_filter=True, callback=self.item_cb, priority=-10)
        yield Request(BASE + "/cond", dont_filter=True, callback=self.item_cb,
                      headers={"If-None-Match": response.headers[b"ETag"].decode()})

    def item_cb(self, response):
        yield self.item(response)

    def item(self, response):
        return {"url": response.url, "status": response.status,
                "warc": response.meta.get("warc_record")}

# The project's settings (throttle, robots.txt, retry middleware, fingerprinter,
# WARC capture), less what this spider is not: it yields plain dicts (no store) and
# renders nothing. One request at a time keeps the order the revisit checks rely on
# (the same payload again, the 304 after its 200); /error answers 500 every time, so
# retries would only add their backoff (they are crawler/retry.py's tests).
process = CrawlerProcess(project_settings(
    DATA_DIR=DATA, WARC_DIR=DATA + "/warc", PORTAL_URL=BASE, PORTAL_RENDER="never",
    ITEM_PIPELINES={}, FEEDS={DATA + "/items.jsonl": {"format": "jsonlines"}},
    HTTPERROR_ALLOW_ALL=True, CONCURRENT_REQUESTS=1, RETRY_ENABLED=False))
crawler = process.create_crawler(ArchiveTestSpider)
process.crawl(crawler)
process.start()
with open(DATA + "/stats.json", "w") as fh:
    json.dump(crawler.stats.get_stats(), fh, default=str)
'''


def _run_crawl(base: str, data: Path) -> None:
    script = data / "run_spider.py"
    script.write_text(textwrap.dedent(SPIDER), encoding="utf-8")
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.run([sys.executable, str(script), base, str(data)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-4000:]


def _records(warc_dir: Path) -> list[dict[str, Any]]:
    out = []
    for path in sorted(warc_dir.glob("*.warc.gz")):
        with open(path, "rb") as fh:
            it = ArchiveIterator(fh)
            for record in it:
                raw = record.raw_stream.read()
                out.append({
                    "type": record.rec_type,
                    "headers": record.rec_headers,
                    "http": record.http_headers,
                    "payload": raw,
                    "file": path.name,
                    "offset": it.get_record_offset(),
                })
    return out


@pytest.fixture(scope="module")
def crawl(server: _Server, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    data = tmp_path_factory.mktemp("crawl")
    base = f"http://127.0.0.1:{server.server_address[1]}"
    _run_crawl(base, data)
    items = [json.loads(line) for line in (data / "items.jsonl").read_text().splitlines()]
    stats = json.loads((data / "stats.json").read_text())
    return {"base": base, "data": data, "warc": data / "warc", "items": items,
            "stats": stats, "records": _records(data / "warc"), "log": list(server.log)}


def test_files_closed_and_indexed(crawl: dict[str, Any]) -> None:
    warc_dir: Path = crawl["warc"]
    assert not list(warc_dir.glob("*.open"))
    files = list(warc_dir.glob("*.warc.gz"))
    assert len(files) == 1
    assert files[0].name.startswith("gzarchive-")
    index = read_index(warc_dir / "index.cdxj")  # main and segments
    assert any("/gzip" in line for line in index)
    first = crawl["records"][0]
    assert first["type"] == "warcinfo"
    info = first["payload"].decode()
    settings = project_settings()
    assert f"http-header-user-agent: {settings['USER_AGENT']}" in info
    assert "robots: obey" in info and f"operator: {settings['WARC_OPERATOR']}" in info


def test_every_server_request_has_a_pair(crawl: dict[str, Any]) -> None:
    records = crawl["records"]
    by_id = {r["headers"].get_header("WARC-Record-ID"): r for r in records}
    requests = [r for r in records if r["type"] == "request"]
    base = crawl["base"]
    for entry in crawl["log"]:
        url = base + entry["path"]
        reqs = [r for r in requests if r["headers"].get_header("WARC-Target-URI") == url]
        assert reqs, f"no request record for {url}"
        for req in reqs:
            partner = by_id[req["headers"].get_header("WARC-Concurrent-To")]
            assert partner["type"] in ("response", "revisit")
            assert partner["headers"].get_header("WARC-IP-Address") == "127.0.0.1"
    assert len(requests) == len(crawl["log"])


def test_bodies_are_the_bytes_sent(crawl: dict[str, Any]) -> None:
    base = crawl["base"]
    responses = {}
    for r in crawl["records"]:
        if r["type"] == "response":
            responses.setdefault(r["headers"].get_header("WARC-Target-URI"), r)
    for entry in crawl["log"]:
        rec = responses.get(base + entry["path"])
        if rec is None or entry["status"] == 304:
            continue
        assert rec["payload"] == entry["body"], entry["path"]
        assert rec["http"].get_statuscode() == str(entry["status"])
    gz = responses[base + "/gzip"]
    assert gz["http"].get_header("Content-Encoding") == "gzip"
    assert gzip.decompress(gz["payload"]) == GZ_HTML
    chunked = responses[base + "/chunked"]
    assert chunked["http"].get_header("Transfer-Encoding") is None
    for status in ("301", "404", "500"):
        assert any(r["http"].get_statuscode() == status for r in responses.values())
    robots = responses[base + "/robots.txt"]
    assert robots["payload"].startswith(b"User-agent")


def test_revisits(crawl: dict[str, Any]) -> None:
    revisits = [r for r in crawl["records"] if r["type"] == "revisit"]
    profiles = {r["headers"].get_header("WARC-Profile").rsplit("/", 1)[1]: r for r in revisits}
    assert "server-not-modified" in profiles
    same = profiles["identical-payload-digest"]
    assert same["headers"].get_header("WARC-Target-URI") == crawl["base"] + "/gzip"
    assert same["headers"].get_header("WARC-Refers-To-Target-URI") == crawl["base"] + "/gzip"
    assert same["headers"].get_header("WARC-Refers-To-Date")
    assert same["http"].get_statuscode() == "200"
    assert same["payload"] == b""  # HTTP headers only, no body
    nm = profiles["server-not-modified"]
    assert nm["http"].get_statuscode() == "304"
    assert nm["headers"].get_header("WARC-Refers-To-Target-URI") == crawl["base"] + "/cond"
    assert crawl["stats"]["archive/warc/revisits"] >= 1


def test_meta_and_stats(crawl: dict[str, Any]) -> None:
    records = crawl["records"]
    positions = {(r["file"], r["offset"]): r for r in records}
    for item in crawl["items"]:
        warc = item["warc"]
        assert warc is not None, item
        record = positions[(warc["file"], warc["offset"])]
        assert record["type"] in ("response", "revisit")
        assert record["headers"].get_header("WARC-Target-URI") == item["url"]
    stats = crawl["stats"]
    assert stats["archive/warc/records"] == len(records)
    assert stats["archive/warc/bytes"] > 0


def test_outlinks_metadata(crawl: dict[str, Any]) -> None:
    meta = [r for r in crawl["records"] if r["type"] == "metadata"]
    assert len(meta) == 1
    assert meta[0]["headers"].get_header("WARC-Target-URI") == crawl["base"] + "/"
    assert meta[0]["headers"].get_header("WARC-Concerning")
    assert f"outlink: {crawl['base']}/gzip".encode() in meta[0]["payload"]


def test_verify_clean(crawl: dict[str, Any]) -> None:
    reports = verify_directory(crawl["warc"])
    assert reports and all(r.ok for r in reports), reports


# --------------------------------------------------------------- without a crawl
def _middleware(tmp_path: Path, **settings: Any) -> Any:
    from crawler.archive.middleware import WarcArchiveMiddleware

    crawler = project_crawler(WARC_DIR=str(tmp_path / "warc"), DATA_DIR=str(tmp_path),
                              **settings)
    crawler.stats.open_spider()
    return WarcArchiveMiddleware.from_crawler(crawler)


def test_warcinfo_describes_the_crawl_users_run(tmp_path: Path) -> None:
    settings = project_settings()
    info = _middleware(tmp_path).warcinfo()
    assert info["isPartOf"] == settings["BOT_NAME"] == "gzarchive"
    assert info["http-header-user-agent"] == settings["USER_AGENT"]
    assert info["operator"] == settings["WARC_OPERATOR"] and info["operator"]
    assert info["robots"] == "obey" and info["autothrottle"] == "True"
    assert info["software"].startswith("gzarchive/")


def test_disabled_raises_not_configured(tmp_path: Path) -> None:
    from scrapy.exceptions import NotConfigured

    with pytest.raises(NotConfigured):
        _middleware(tmp_path, WARC_ENABLED=False)


def test_open_recovers_crashed_file_and_rendering_is_a_conversion(tmp_path: Path) -> None:
    from scrapy import Request
    from scrapy.http import HtmlResponse

    mw = _middleware(tmp_path)
    mw.open()
    req = Request("http://example.org/page")
    mw.process_request(req)
    mw.process_response(req, HtmlResponse(req.url, body=b"<html>raw</html>",
                                          headers={"Content-Type": "text/html"}))
    raw_location = req.meta["warc_record"]
    # simulate a crash: the writer never closes, the last record is cut in half
    open_path = mw.writer.current_path
    mw.writer._fh.flush()
    mw.writer._fh.close()  # the process dies: the kernel drops the writer's lock
    data = open_path.read_bytes()
    open_path.write_bytes(data[:-20])
    mw.writer = None
    mw.digests.close()

    mw2 = _middleware(tmp_path)
    mw2.open()
    assert mw2.stats.get_value("archive/warc/recovered") == 1
    assert not list((tmp_path / "warc").glob("*.open"))
    assert (tmp_path / "warc" / "index.cdxj").exists()
    # the request record was cut, so its response went too (a file ends with a whole
    # exchange) and the digest index forgot it: nothing for a rendering to refer to
    assert mw2.digests.latest("http://example.org/page") is None
    req2 = Request("http://example.org/page", meta={"playwright": True})
    mw2.process_request(req2)
    mw2.process_response(req2, HtmlResponse(req2.url, body=b"<html>dom</html>",
                                            flags=["playwright"]))
    assert "warc_record" not in req2.meta and "warc_conversion" not in req2.meta
    assert mw2.stats.get_value("archive/warc/skipped/unlinked_conversion") == 1
    # the page fetched again: its rendering becomes a conversion referring to it
    req2 = Request("http://example.org/page")
    mw2.process_request(req2)
    mw2.process_response(req2, HtmlResponse(req2.url, body=b"<html>raw</html>",
                                            headers={"Content-Type": "text/html"}))
    raw_location = req2.meta["warc_record"]
    req2 = Request("http://example.org/page", meta={"playwright": True})
    mw2.process_request(req2)
    mw2.process_response(req2, HtmlResponse(req2.url, body=b"<html>dom</html>",
                                            flags=["playwright"]))
    assert req2.meta["warc_record"] == raw_location
    assert "warc_conversion" in req2.meta
    # unlinked rendering: skipped and counted
    req3 = Request("http://example.org/other")
    mw2.process_request(req3)
    mw2.process_response(req3, HtmlResponse(req3.url, body=b"x", flags=["playwright"]))
    assert "warc_record" not in req3.meta
    assert mw2.stats.get_value("archive/warc/skipped/unlinked_conversion") == 2
    mw2.process_exception(req3, TimeoutError())
    assert mw2.stats.get_value("archive/warc/errors/TimeoutError") == 1
    mw2.close()
    types = [r["type"] for r in _records(tmp_path / "warc")]
    assert types.count("conversion") == 1 and types.count("warcinfo") == 2


def test_cli_verify_and_pack(crawl: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> None:
    import argparse

    from crawler.archive import cli

    parser = argparse.ArgumentParser()
    cli.add_parser(parser.add_subparsers())
    data = str(crawl["data"])
    args = parser.parse_args(["warc", "verify", "--data-dir", data])
    assert args.func(args) == 0
    assert "1 files, 0 with problems" in capsys.readouterr().out
    out = crawl["data"] / "out.wacz"
    args = parser.parse_args(["warc", "pack", "--data-dir", data, "-o", str(out)])
    assert args.func(args) == 0
    from storage.warc.pack import validate_wacz

    assert validate_wacz(out)


def test_a_failed_write_is_counted_logged_and_the_file_stays_whole(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """A real write failure (RLIMIT_FSIZE: EFBIG, as a full disk gives ENOSPC)."""
    import resource
    import signal

    from scrapy import Request
    from scrapy.http import HtmlResponse

    mw = _middleware(tmp_path)
    mw.open()
    small = Request("http://example.org/small")
    mw.process_request(small)
    mw.process_response(small, HtmlResponse(small.url, body=b"<html>small</html>"))
    path = mw.writer.current_path
    big = Request("http://example.org/big")
    mw.process_request(big)
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    old_handler = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (path.stat().st_size + 20_000, hard))
    try:
        mw.process_response(big, HtmlResponse(big.url, body=os.urandom(100_000)))
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        signal.signal(signal.SIGXFSZ, old_handler)
    assert mw.stats.get_value("archive/warc/errors/write") == 1
    assert "warc_record" not in big.meta
    assert any("could not write http://example.org/big" in r.getMessage()
               for r in caplog.records if r.levelname == "ERROR")
    mw.close()
    assert not list((tmp_path / "warc").glob("*.open"))
    reports = verify_directory(tmp_path / "warc")
    assert reports and all(r.ok for r in reports), reports
    uris = [r["headers"].get_header("WARC-Target-URI") for r in _records(tmp_path / "warc")
            if r["type"] == "response"]
    assert uris == ["http://example.org/small"]
