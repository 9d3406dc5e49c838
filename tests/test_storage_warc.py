"""storage.warc without a crawl: writer, digests, recovery, index, verify, WACZ, replay.

Writers are opened as the crawl opens them (the project's WARC_* settings and the
middleware's warcinfo); only record ids, dates, host and pid are fixed."""

from __future__ import annotations

import functools
import gzip
import itertools
import json
import os
import urllib.request
import zipfile
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from warcio.archiveiterator import ArchiveIterator

from crawler.archive.config import WarcConfig
from crawler.archive.middleware import WarcArchiveMiddleware
from storage.warc import index as warc_index
from storage.warc.digests import DigestIndex
from storage.warc.errors import ToolNotFound, WarcWriterClosed
from storage.warc.exchange import HttpExchange, RecordLocation
from storage.warc.index import (
    index_files,
    index_lines,
    line_filename,
    read_index,
    rebuild_index,
    remove_from_index,
    segment_paths,
    update_index,
)
from storage.warc.pack import pack_wacz, pages_from_index, validate_wacz
from storage.warc.recovery import recover_open_files, scan_whole_records
from storage.warc.replay import find_pywb_tool, replay_url, start_replay
from storage.warc.verify import verify_directory, verify_file
from storage.warc.writer import (
    PROFILE_IDENTICAL_PAYLOAD,
    PROFILE_SERVER_NOT_MODIFIED,
    WarcWriter,
    sha1_digest,
)
from tests.helpers import project_crawler

T0 = datetime(2026, 1, 2, 3, 4, 5, 678000, tzinfo=UTC)
GZ_BODY = gzip.compress("<html><body>貴州 page</body></html>".encode(), mtime=0)


@functools.cache
def project_warc() -> tuple[WarcConfig, dict[str, str]]:
    """The WARC_* settings users get and the warcinfo fields a crawl at them writes."""
    crawler = project_crawler()
    config = WarcConfig.from_settings(crawler.settings)
    return config, WarcArchiveMiddleware(crawler, config).warcinfo()


def make_writer(directory: Path, max_size: int | None = None,
                on_close: Callable[[Path], None] | None = None, pid: int = 4242,
                ) -> WarcWriter:
    """A writer as the crawl opens one (WARC_PREFIX, WARC_MAX_SIZE, its warcinfo),
    with fixed record ids, dates, host and pid; *max_size* only for rotation tests."""
    config, warcinfo = project_warc()
    ids = itertools.count()
    ticks = itertools.count()
    return WarcWriter(
        directory, config.prefix, config.max_size if max_size is None else max_size,
        warcinfo, on_close=on_close,
        clock=lambda: T0 + timedelta(seconds=next(ticks)),
        record_id_factory=lambda: f"<urn:uuid:00000000-0000-0000-0000-{next(ids):012d}>",
        hostname="host-a", pid=pid)


def exchange(path: str = "/a", status: int = 200, body: bytes = GZ_BODY,
             headers: list[tuple[str, str]] | None = None) -> HttpExchange:
    return HttpExchange(
        url=f"http://example.org{path}", method="GET",
        request_headers=[("Host", "example.org"), ("Accept-Encoding", "gzip")],
        request_body=b"", http_version="HTTP/1.1", status=status, reason="OK",
        response_headers=headers if headers is not None else [
            ("Content-Type", "text/html; charset=utf-8"), ("Content-Encoding", "gzip"),
            ("Transfer-Encoding", "chunked")],
        body=body, date=T0, ip_address="192.0.2.1")


def read_records(path: Path) -> list[tuple[str, dict[str, str], bytes, int]]:
    out = []
    with open(path, "rb") as fh:
        it = ArchiveIterator(fh, check_digests="raise")
        for record in it:
            body = record.raw_stream.read()
            out.append((record.rec_type, dict(record.rec_headers.headers), body,
                        it.get_record_offset()))
    return out


def test_exchange_records(tmp_path: Path) -> None:
    writer = make_writer(tmp_path)
    loc = writer.write_exchange(exchange())
    assert writer.current_path is not None
    prefix = project_warc()[0].prefix
    assert writer.current_path.name == \
        f"{prefix}-20260102030405678-00000-host_a-4242.warc.gz.open"
    assert not list(tmp_path.glob("*.warc.gz"))
    writer.close()
    with pytest.raises(WarcWriterClosed):
        writer.write_exchange(exchange())
    path = tmp_path / f"{prefix}-20260102030405678-00000-host_a-4242.warc.gz"
    assert loc.file == path.name and path.exists()
    records = read_records(path)
    assert [r[0] for r in records] == ["warcinfo", "response", "request"]
    info, resp, req = records
    warcinfo = project_warc()[1]
    for name in ("software", "operator", "http-header-user-agent", "robots"):
        assert f"{name}: {warcinfo[name]}\r\n".encode() in info[2], name
    assert info[1]["WARC-Filename"] == path.name
    assert resp[3] == loc.offset and loc.record_id == resp[1]["WARC-Record-ID"]
    assert resp[1]["WARC-Concurrent-To"] == req[1]["WARC-Record-ID"]
    assert req[1]["WARC-Concurrent-To"] == resp[1]["WARC-Record-ID"]
    assert resp[1]["WARC-Date"] == "2026-01-02T03:04:05Z"
    assert resp[1]["WARC-IP-Address"] == "192.0.2.1"
    assert resp[1]["WARC-Payload-Digest"] == sha1_digest(GZ_BODY)
    assert resp[1]["WARC-Block-Digest"].startswith("sha1:")
    # body kept encoded, chunking header renamed
    with open(path, "rb") as fh:
        for record in ArchiveIterator(fh):
            if record.rec_type == "response":
                assert record.http_headers.get_header("Content-Encoding") == "gzip"
                assert record.http_headers.get_header("Transfer-Encoding") is None
                assert record.http_headers.get_header(
                    "X-Archive-Orig-Transfer-Encoding") == "chunked"
                assert record.raw_stream.read() == GZ_BODY
    # deterministic: same inputs, same bytes
    other = tmp_path / "again"
    w2 = make_writer(other)
    w2.write_exchange(exchange())
    w2.close()
    assert (other / path.name).read_bytes() == path.read_bytes()


def test_revisits_and_companions(tmp_path: Path) -> None:
    writer = make_writer(tmp_path)
    first = writer.write_exchange(exchange())
    rev = writer.write_revisit(exchange(), "http://example.org/a", first.date,
                               PROFILE_IDENTICAL_PAYLOAD, refers_to_record_id=first.record_id)
    nm = writer.write_revisit(exchange(status=304, body=b"", headers=[("ETag", '"x"')]),
                              "http://example.org/a", first.date, PROFILE_SERVER_NOT_MODIFIED,
                              payload_digest=first.payload_digest)
    meta = writer.write_metadata("http://example.org/a", [("outlink", "http://example.org/b")],
                                 concerning=first.record_id)
    conv = writer.write_conversion("http://example.org/a", b"<html>dom</html>", "text/html",
                                   first.record_id)
    writer.write_resource("http://example.org/r", b"x", "text/plain")
    writer.close()
    records = read_records(tmp_path / first.file)
    types = [r[0] for r in records]
    assert types == ["warcinfo", "response", "request", "revisit", "request", "revisit",
                     "request", "metadata", "conversion", "resource"]
    by_offset = {r[3]: r for r in records}
    r = by_offset[rev.offset][1]
    assert r["WARC-Profile"] == PROFILE_IDENTICAL_PAYLOAD
    assert r["WARC-Refers-To-Target-URI"] == "http://example.org/a"
    assert r["WARC-Refers-To-Date"] == first.date
    assert r["WARC-Refers-To"] == first.record_id
    assert r["WARC-Payload-Digest"] == first.payload_digest
    n = by_offset[nm.offset][1]
    assert n["WARC-Profile"] == PROFILE_SERVER_NOT_MODIFIED
    assert b"outlink: http://example.org/b" in by_offset[meta.offset][2]
    assert by_offset[meta.offset][1]["WARC-Concerning"] == first.record_id
    assert by_offset[conv.offset][1]["WARC-Refers-To"] == first.record_id
    assert by_offset[conv.offset][1]["Content-Type"] == "text/html"


def test_rotation(tmp_path: Path) -> None:
    closed: list[Path] = []
    # a 1,500-byte WARC_MAX_SIZE: a few records a file, so six exchanges rotate
    writer = make_writer(tmp_path, max_size=1500, on_close=closed.append)
    locations = [writer.write_exchange(exchange(f"/p{i}")) for i in range(6)]
    writer.close()
    files = sorted(tmp_path.glob("*.warc.gz"))
    assert len(files) >= 3 and closed == files
    assert not list(tmp_path.glob("*.open"))
    assert sorted(p.name for p in files) == [p.name for p in files]
    serials = [p.name.split("-")[2] for p in files]
    assert serials == [f"{i:05d}" for i in range(len(files))]
    for path in files:
        records = read_records(path)
        assert records[0][0] == "warcinfo"
        assert records[1][0] == "response" and records[2][0] == "request"
    for loc in locations:
        assert (tmp_path / loc.file).exists()


def _crashed_file(tmp_path: Path, n: int = 3) -> tuple[Path, list[int]]:
    writer = make_writer(tmp_path)
    for i in range(n):
        writer.write_exchange(exchange(f"/p{i}"))
    assert writer._fh is not None
    writer._fh.flush()
    path = writer.current_path
    assert path is not None
    writer._fh.close()  # the writer's process dies: the kernel drops its lock
    # record boundaries, from a finished copy of the same bytes
    data = path.read_bytes()
    ends = []
    with open(path, "rb") as fh:
        it = ArchiveIterator(fh)
        for _ in it:
            it.read_to_end()
            ends.append(it.get_record_offset() + it.get_record_length())
    assert ends[-1] == len(data)
    return path, ends


def test_recovery_truncates_to_last_whole_record(tmp_path: Path) -> None:
    path, ends = _crashed_file(tmp_path)
    data = path.read_bytes()
    cut = ends[4] + (ends[5] - ends[4]) // 2   # in the middle of record 6
    path.write_bytes(data[:cut])
    assert scan_whole_records(path) == (ends[4], 5)
    [report] = recover_open_files(tmp_path)
    assert report.action == "truncated" and report.records == 5
    assert report.bytes_dropped == cut - ends[4]
    final = report.final
    assert final is not None and final.name == path.name.removesuffix(".open")
    assert final.read_bytes() == data[: ends[4]]
    assert len(read_records(final)) == 5
    assert not path.exists()


@pytest.mark.parametrize("where", ["header", "gzip-trailer", "boundary", "after-response",
                                   "nothing-whole"])
def test_recovery_cuts(tmp_path: Path, where: str) -> None:
    # records: warcinfo, response, request, response, request
    path, ends = _crashed_file(tmp_path, n=2)
    data = path.read_bytes()
    cut = {"header": ends[2] + 10, "gzip-trailer": ends[3] - 3, "boundary": ends[2],
           "after-response": ends[3], "nothing-whole": ends[0] - 5}[where]
    path.write_bytes(data[:cut])
    [report] = recover_open_files(tmp_path)
    if where == "nothing-whole":
        assert report.action == "deleted" and not list(tmp_path.iterdir())
        return
    assert report.final is not None
    assert report.action == ("renamed" if where == "boundary" else "truncated")
    # a whole response whose request never reached the disk goes as well
    assert report.records == 3 and report.bytes_kept == ends[2]
    assert [r[0] for r in read_records(report.final)] == ["warcinfo", "response", "request"]
    [verified] = verify_directory(tmp_path)
    assert verified.ok, verified


def test_recovery_keeps_a_response_followed_by_another_record(tmp_path: Path) -> None:
    """Only a *trailing* unpaired response is cut: one followed by something other
    than its request (a file another tool wrote) is a whole record and stays."""
    path, ends = _crashed_file(tmp_path, n=2)
    data = path.read_bytes()
    # warcinfo, response 1, response 2, request 2: response 1 has no request after it
    path.write_bytes(data[: ends[1]] + data[ends[2]:])
    assert scan_whole_records(path) == (len(data) - (ends[2] - ends[1]), 4)
    path.write_bytes(data[: ends[1]] + data[ends[2]: ends[3]])   # ... response 2 last
    assert scan_whole_records(path) == (ends[1], 2)   # response 1 stays, 2 goes


def test_digest_index(tmp_path: Path) -> None:
    db = tmp_path / "state" / "d.sqlite3"
    index = DigestIndex(db)
    assert index.lookup("http://x/", "sha1:A") is None
    index.add("http://x/", "sha1:A", "<urn:1>", "2026-01-01T00:00:00Z", "f.warc.gz", 10)
    index.add("http://x/", "sha1:B", "<urn:2>", "2026-01-02T00:00:00Z", "f.warc.gz", 99)
    index.close()
    index = DigestIndex(db)  # persisted
    hit = index.lookup("http://x/", "sha1:A")
    assert hit is not None and (hit.uri, hit.date) == ("http://x/", "2026-01-01T00:00:00Z")
    assert index.lookup("http://y/", "sha1:A") is None
    latest = index.latest("http://x/")
    assert latest is not None and latest.record_id == "<urn:2>"
    assert index.forget("f.warc.gz", 50) == 1
    assert index.lookup("http://x/", "sha1:B") is None
    index.close()


def test_index_lines_and_merge(tmp_path: Path) -> None:
    writer = make_writer(tmp_path, max_size=1500, on_close=update_index)  # several files
    locs = [writer.write_exchange(exchange(f"/p{i}")) for i in range(4)]
    writer.close()
    lines = read_index(tmp_path / "index.cdxj")
    assert lines == sorted(lines)
    # cdxj-indexer also lists each warcinfo record, under the key "-"
    assert len([line for line in lines if not line.startswith("- ")]) == 4
    for loc in locs:
        match = [json.loads(line.split(" ", 2)[2]) for line in lines
                 if line_filename(line) == loc.file and f'"offset": "{loc.offset}"' in line]
        assert len(match) == 1 and match[0]["status"] == "200"
        assert match[0]["digest"] == loc.payload_digest
    assert [line for line in lines if not line.startswith("- ")][0].startswith(
        "org,example)/p0 20260102030405 ")
    # idempotent and equal to a rebuild
    update_index(tmp_path / locs[0].file)
    assert read_index(tmp_path / "index.cdxj") == lines
    rebuild_index(tmp_path, tmp_path / "rebuilt.cdxj")
    assert (tmp_path / "rebuilt.cdxj").read_text().splitlines() == lines
    assert index_lines(tmp_path / locs[0].file)


def _close_files(directory: Path, n: int, pid: int = 4242) -> list[RecordLocation]:
    """*n* closed files of one response each (a rotation after every record), indexed."""
    writer = make_writer(directory, max_size=1, on_close=update_index, pid=pid)
    locs = [writer.write_exchange(exchange(f"/p{i}")) for i in range(n)]
    writer.close()
    assert len({loc.file for loc in locs}) == n
    return locs


@pytest.mark.parametrize("tier_bytes", [1 << 20, 1500])  # one tier / several (runs)
def test_index_by_segments_answers_as_a_rebuild(tmp_path: Path, tier_bytes: int,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(warc_index, "TIER_BYTES", tier_bytes)
    n = 3 * warc_index.FANOUT + 5
    locs = _close_files(tmp_path, n)
    index = tmp_path / "index.cdxj"
    lines = read_index(index)
    rebuild_index(tmp_path, tmp_path / "rebuilt.cdxj")
    assert lines == (tmp_path / "rebuilt.cdxj").read_text().splitlines()
    # every file's record is looked up through the segments
    for loc in locs:
        assert [line for line in lines if line_filename(line) == loc.file
                and f'"offset": "{loc.offset}"' in line and not line.startswith("- ")]
    files = index_files(index)
    assert files[0] == index and len(files) < n          # compacted ...
    assert len(segment_paths(index)) >= 1                # ... but not rewritten whole
    for path in files:                                   # each sorted, as pywb needs
        own = path.read_text().splitlines()
        assert own == sorted(own) and path.stat().st_mode & 0o777 == 0o644
    if tier_bytes < 1 << 20:
        assert any(".m-" in p.name for p in files)       # a run of merged segments
    # removal reaches the segments and the main
    remove_from_index(locs[0].file, index)
    remove_from_index(locs[-1].file, index)
    gone = {locs[0].file, locs[-1].file}
    assert read_index(index) == [line for line in lines if line_filename(line) not in gone]
    # `gzarchive warc index`: one sorted main again, no segment
    rebuild_index(tmp_path)
    assert index_files(index) == [index] and read_index(index) == lines


_KILLED_WRITER = """
import os, signal, sys
from pathlib import Path
from storage.warc import index as ix

def lines():
    for i in range(50_000):
        if i == 40_000:
            os.kill(os.getpid(), signal.SIGKILL)
        yield f"org,example)/killed{i:06d} 20260102030405 {{}}"

ix._replace(Path(sys.argv[1]), lines())
"""


def test_index_survives_a_writer_killed_mid_write(tmp_path: Path) -> None:
    import subprocess
    import sys

    locs = _close_files(tmp_path, 3)
    index = tmp_path / "index.cdxj"
    before = read_index(index)
    # a writer SIGKILLed while writing a segment leaves a partial temporary file
    proc = subprocess.run([sys.executable, "-c", _KILLED_WRITER,
                           str(tmp_path / "index.f-killed.warc.gz.cdxj")],
                          cwd=Path(__file__).resolve().parents[1], check=False)
    assert proc.returncode == -9
    [tmp] = tmp_path.glob(".index.*.tmp")
    assert tmp.stat().st_size > 0 and not tmp.name.endswith((".cdx", ".cdxj"))  # not pywb's
    assert read_index(index) == before
    # a compaction killed between replacing its output and unlinking its inputs: lines
    # twice on disk, once in the index; the next write repairs it
    segment = segment_paths(index)[0]
    dup = tmp_path / "index.m-00000000000000000001-1.cdxj"
    dup.write_text(segment.read_text())
    assert read_index(index) == before
    _close_files(tmp_path, 1, pid=4343)
    assert not list(tmp_path.glob(".index.*.tmp"))       # the leftover is swept
    rebuild_index(tmp_path, tmp_path / "rebuilt.cdxj")
    assert read_index(index) == (tmp_path / "rebuilt.cdxj").read_text().splitlines()
    assert len(read_index(index)) > len(before) and locs


def test_verify(tmp_path: Path) -> None:
    writer = make_writer(tmp_path)
    loc = writer.write_exchange(exchange())
    writer.write_revisit(exchange(), "http://example.org/a", loc.date)
    writer.write_metadata("http://example.org/a", [("outlink", "http://example.org/b")])
    writer.close()
    path = tmp_path / loc.file
    good = verify_file(path)
    assert good.ok and good.records == 6 and good.by_type["request"] == 2
    # corrupt the response payload inside its gzip member: block + payload digests fail
    records = []
    with open(path, "rb") as fh:
        it = ArchiveIterator(fh)
        for _ in it:
            it.read_to_end()
            records.append((it.get_record_offset(), it.get_record_length()))
    data = path.read_bytes()
    off, length = records[1]
    member = gzip.decompress(data[off:off + length]).replace(GZ_BODY[-8:], b"X" * 8)
    bad = data[:off] + gzip.compress(member) + data[off + length:]
    # a lone request (its response dropped)
    off2, len2 = records[3]
    bad_dir = tmp_path / "bad"
    bad_dir.mkdir()
    (bad_dir / path.name).write_bytes(bad[: len(bad) - (len(data) - off2)] + data[off2 + len2:])
    (bad_dir / "x.warc.gz.open").write_bytes(b"")
    reports = verify_directory(bad_dir)
    assert len(reports) == 2
    report, open_report = reports
    assert not report.ok
    assert any("block digest" in f for f in report.digest_failures)
    assert any("payload digest" in f for f in report.digest_failures)
    assert len(report.requests_without_response) == 1
    assert open_report.open_file and not open_report.ok


def test_pack_wacz(tmp_path: Path) -> None:
    warc_dir = tmp_path / "warc"
    writer = make_writer(warc_dir, on_close=update_index)
    writer.write_exchange(exchange("/a", headers=[("Content-Type", "text/html")],
                                   body=b"<html>a</html>"))
    writer.write_exchange(exchange("/b", headers=[("Content-Type", "text/html")],
                                   body=b"<html>b</html>"))
    writer.close()
    pages = pages_from_index(warc_dir / "index.cdxj")
    assert [p["url"] for p in pages] == ["http://example.org/a", "http://example.org/b"]
    assert pages[0]["ts"] == "2026-01-02T03:04:05Z"
    out = pack_wacz(warc_dir, tmp_path / "out" / "archive.wacz", title="test")
    assert validate_wacz(out)
    with zipfile.ZipFile(out) as zf:
        names = zf.namelist()
        lines = zf.read("pages/pages.jsonl").decode().splitlines()
    assert any(n.startswith("archive/") and n.endswith(".warc.gz") for n in names)
    assert json.loads(lines[0])["format"] == "json-pages-1.0"
    assert json.loads(lines[1])["url"] == "http://example.org/a"


def test_find_pywb_tool_missing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GZARCHIVE_PYWB_BIN", str(tmp_path))
    tool = tmp_path / "wayback"
    tool.write_text("#!/bin/sh\n")
    tool.chmod(0o755)
    assert find_pywb_tool("wayback") == tool
    with pytest.raises(ToolNotFound):
        find_pywb_tool("no-such-pywb-tool")


def _has_pywb() -> bool:
    try:
        find_pywb_tool("wayback")
    except ToolNotFound:
        return False
    return True


@pytest.mark.slow
@pytest.mark.skipif(not _has_pywb(), reason="pywb not installed (see storage/warc/replay.py)")
def test_replay_with_pywb(tmp_path: Path) -> None:
    warc_dir = tmp_path / "warc"
    # pages spread over the main index, merged segments and per-file segments
    writer = make_writer(warc_dir, max_size=1500, on_close=update_index)
    pages = [f"/a{i}" for i in range(warc_index.FANOUT + 3)]
    for page in pages:
        writer.write_exchange(exchange(page, headers=[("Content-Type", "text/html"),
                                                      ("Content-Encoding", "gzip")]))
    writer.close()
    assert len(index_files(warc_dir / "index.cdxj")) > 1
    proc = start_replay(warc_dir, root=tmp_path / "pywb")

    def replayed(page: str) -> bytes:
        url = replay_url(port, f"http://example.org{page}", "2026", modifier="id_")
        with urllib.request.urlopen(url, timeout=30) as resp:
            body = resp.read()
            if resp.headers.get("Content-Encoding") == "gzip":
                body = gzip.decompress(body)
        return bytes(body)

    try:
        port = int(proc.args[proc.args.index("-p") + 1])  # type: ignore[union-attr]
        for page in pages:
            assert "貴州 page".encode() in replayed(page), page
        # a file closed while pywb runs is replayed without a restart
        writer = make_writer(warc_dir, on_close=update_index, pid=4343)
        writer.write_exchange(exchange("/late", headers=[("Content-Type", "text/html"),
                                                         ("Content-Encoding", "gzip")]))
        writer.close()
        assert "貴州 page".encode() in replayed("/late")
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    assert os.path.exists(tmp_path / "pywb" / "config.yaml")
    # pywb's "Dir … unchanged" line per lookup is dropped; the rest of its log is kept
    log = (tmp_path / "pywb" / "wayback.log").read_text(errors="replace")
    assert "unchanged" not in log and "pywb" in log.lower(), log[-2000:]


def test_recovery_leaves_a_live_writers_file_alone(tmp_path: Path) -> None:
    closed: list[Path] = []
    writer = make_writer(tmp_path, on_close=closed.append)
    writer.write_exchange(exchange("/live"))
    path = writer.current_path
    assert path is not None
    before = path.read_bytes()
    [report] = recover_open_files(tmp_path)
    assert report.action == "in-use" and not report.recovered and report.final is None
    assert path.read_bytes() == before
    writer.write_exchange(exchange("/after"))
    writer.close()
    assert not path.exists() and closed and verify_file(closed[0]).ok
    assert len(read_records(closed[0])) == 5


def test_a_failed_write_leaves_a_whole_closed_file(tmp_path: Path) -> None:
    import resource
    import signal

    closed: list[Path] = []
    writer = make_writer(tmp_path, on_close=closed.append)
    writer.write_exchange(exchange("/first"))
    path = writer.current_path
    assert path is not None
    big = os.urandom(200_000)  # incompressible: the record cannot fit under the limit
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    old_handler = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (path.stat().st_size + 50_000, hard))
    try:
        with pytest.raises(OSError):
            writer.write_exchange(exchange("/big", body=big))
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        signal.signal(signal.SIGXFSZ, old_handler)
    assert not path.exists() and len(closed) == 1
    report = verify_file(closed[0])
    assert report.ok and report.records == 3, report
    assert writer.records_written == 3
    writer.write_exchange(exchange("/next"))  # a new file
    writer.close()
    assert len(closed) == 2 and all(verify_file(p).ok for p in closed)


def test_replay_index_leaves_out_304_revisits(tmp_path: Path) -> None:
    writer = make_writer(tmp_path, on_close=update_index)
    loc = writer.write_exchange(exchange("/a"))
    from dataclasses import replace

    same = replace(exchange("/a"), date=T0 + timedelta(days=1))
    not_modified = replace(exchange("/a", status=304, body=b"", headers=[("ETag", '"x"')]),
                           date=T0 + timedelta(days=2))
    writer.write_revisit(same, "http://example.org/a", loc.date, PROFILE_IDENTICAL_PAYLOAD)
    writer.write_revisit(not_modified, "http://example.org/a", loc.date,
                         PROFILE_SERVER_NOT_MODIFIED, payload_digest=loc.payload_digest)
    writer.close()
    index = tmp_path / "index.cdxj"
    assert all(p.stat().st_mode & 0o777 == 0o644 for p in index_files(index))
    lines = [json.loads(line.split(" ", 2)[2]) for line in read_index(index)
             if not line.startswith("- ")]
    assert sorted((d["mime"], d["status"]) for d in lines) == [
        ("text/html", "200"), ("warc/revisit", "200")]
    # the page is offered at its latest capture: the identical-payload revisit
    [page] = pages_from_index(index)
    assert page["ts"] == "2026-01-03T03:04:05Z"
