"""Our article extractor against the replica's ground truth on every page kind it serves.

The pages are those of ``benchmarks/extraction.py`` (both templates, split articles,
traditional-script gateway twins, the fault profile's odd pages), rendered by the
replica's router and decoded as the spider decodes them; trafilatura is not needed.
"""

from __future__ import annotations

from benchmarks.extraction import accuracy, build_pages, ours

KINDS = {"new", "old", "gateway", "malformed", "lying-charset", "huge", "offsite", "no-body"}


def test_every_field_of_every_replica_page_is_extracted_exactly() -> None:
    pages = build_pages(articles=60, gateway_every=3)
    assert KINDS <= {p.kind for p in pages}
    acc = accuracy(pages, [ours(p) for p in pages])
    assert acc["pages"] == len(pages) - 1 > 60
    figures = {k: acc[k] for k in ("title", "day", "stamp", "body_exact", "images")}
    assert figures == dict.fromkeys(figures, 100.0)
    assert acc["found"] == acc["pages"]
    assert (acc["sim_min"], acc["no_body_refused"], acc["no_body_pages"]) == (1.0, 1, 1)
