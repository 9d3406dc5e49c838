"""Canonical URLs and the request fingerprinter (crawler/urls.py): unit and
property-based (hypothesis) tests."""

from __future__ import annotations

from urllib.parse import parse_qsl, quote, urlsplit

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scrapy import Request

from crawler.urls import (
    DEFAULT_TRACKING_PARAMS,
    CanonicalRequestFingerprinter,
    canonicalize,
    gateway_target,
    gateway_twin,
    is_gateway,
)
from tests.helpers import project_crawler, project_settings

ARTICLE = "https://gz.cri.cn/n/20250722/c3454b1a-5f9e-11f8-4679-bfd1f116995f.html"
TWIN = "https://big5.cri.cn/gate/big5/gz.cri.cn/n/20250722/c3454b1a-5f9e-11f8-4679-bfd1f116995f.html"


# -- unit tests --------------------------------------------------------------------------

def test_gateway_target_and_twin() -> None:
    assert gateway_target(TWIN) == ARTICLE
    assert gateway_target(ARTICLE) is None
    assert is_gateway(TWIN) and not is_gateway(ARTICLE)
    assert gateway_twin(ARTICLE, "https://big5.cri.cn") == TWIN
    assert gateway_twin(TWIN, "https://big5.cri.cn/") == TWIN   # never nests
    assert gateway_target("https://big5.cri.cn/gate/big5/gz.cri.cn") == "https://gz.cri.cn/"


@pytest.mark.parametrize("url", [
    ARTICLE,
    TWIN,
    "https://GZ.CRI.CN/n/20250722/c3454b1a-5f9e-11f8-4679-bfd1f116995f.html",
    "https://gz.cri.cn:443/n/20250722/c3454b1a-5f9e-11f8-4679-bfd1f116995f.html",
    ARTICLE + "?utm_source=wechat&utm_medium=share&spm=a.b.c#comment",
    TWIN + "?from=timeline&isappinstalled=0",
    "https://BIG5.cri.cn/GATE/BIG5/GZ.cri.cn/n/20250722/c3454b1a-5f9e-11f8-4679-bfd1f116995f.html?SPM=1",
    # a twin of a twin (gateway pages rewrite links that already are gateway URLs)
    "https://big5.cri.cn/gate/big5/big5.cri.cn/gate/big5/gz.cri.cn/n/20250722/"
    "c3454b1a-5f9e-11f8-4679-bfd1f116995f.html",
    "  " + ARTICLE + "  ",
])
def test_forms_of_one_article_collapse(url: str) -> None:
    assert canonicalize(url) == ARTICLE


def test_non_tracking_params_kept_and_sorted() -> None:
    got = canonicalize("https://gz.cri.cn/list.html?page=2&id=7&utm_campaign=x")
    assert got == "https://gz.cri.cn/list.html?id=7&page=2"


def test_tracking_list_is_configurable() -> None:
    url = "https://gz.cri.cn/a.html?from=x&keep=1"
    assert canonicalize(url, tracking=["keep"]) == "https://gz.cri.cn/a.html?from=x"
    assert canonicalize(url, tracking=[]) == "https://gz.cri.cn/a.html?from=x&keep=1"


def test_gbk_query_values_survive() -> None:
    url = "https://gz.cri.cn/search?q=%D6%D0%CE%C4&spm=1"
    assert canonicalize(url) == "https://gz.cri.cn/search?q=%D6%D0%CE%C4"


def test_escaped_gateway_path_is_still_idempotent() -> None:
    url = "https://big5.cri.cn/%67ate/big5/gz.cri.cn/a.html"
    once = canonicalize(url)
    assert once == "https://gz.cri.cn/a.html" and canonicalize(once) == once


def test_replica_form() -> None:
    twin = "http://127.0.0.1:8123/gate/big5/127.0.0.1:8123/2025-06-18/x.html?utm_source=a"
    assert canonicalize(twin) == "http://127.0.0.1:8123/2025-06-18/x.html"


# -- property-based tests ---------------------------------------------------------------

segment = st.text(
    alphabet=st.sampled_from("abcdefghijklmnopqrstuvwxyz0123456789-_.~中文貴州老外"),
    min_size=1, max_size=12,
).filter(lambda s: s not in (".", ".."))
paths = st.lists(segment, min_size=1, max_size=4).map(lambda parts: "/" + "/".join(parts))
names = st.text(alphabet="abcdefghijklmnopqrstuvwxyz", min_size=1, max_size=8).filter(
    lambda n: not any(n == p or (p.endswith("*") and n.startswith(p[:-1]))
                      for p in DEFAULT_TRACKING_PARAMS))
values = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")),
                 max_size=8)
queries = st.lists(st.tuples(names, values), max_size=4, unique_by=lambda kv: kv[0])
tracking = st.lists(st.tuples(
    st.sampled_from(["utm_source", "utm_medium", "UTM_Campaign", "spm", "SPM", "from",
                     "share_token", "wxshare", "fbclid"]),
    st.text(alphabet="abc123", max_size=5)), max_size=3)
hosts = st.sampled_from(["gz.cri.cn", "news.cri.cn", "127.0.0.1:{port}", "localhost:{port}"])
ports = st.integers(min_value=1024, max_value=65535)


def _query(pairs: list[tuple[str, str]]) -> str:
    return "&".join(f"{quote(k)}={quote(v)}" for k, v in pairs)


def _mix(plain: list[tuple[str, str]], noise: list[tuple[str, str]], seed: int) -> str:
    pairs = plain + noise
    if pairs:
        cut = seed % (len(pairs) + 1)
        pairs = pairs[cut:] + pairs[:cut]
    return _query(pairs)


@st.composite
def twin_forms(draw: st.DrawFn) -> tuple[str, list[str]]:
    """A plain URL and every form it may be linked under."""
    port = draw(ports)
    host = draw(hosts).format(port=port)
    scheme = "https" if host.endswith("cri.cn") else "http"
    path = draw(paths)
    plain_q, noise_q = draw(queries), draw(tracking)
    seed = draw(st.integers(0, 100))
    query = _query(plain_q)
    plain = f"{scheme}://{host}{path}" + (f"?{query}" if query else "")
    messy = _mix(plain_q, noise_q, seed)
    tail = path + (f"?{messy}" if messy else "")
    fragment = draw(st.sampled_from(["", "#top", "#comment-3"]))
    gateway_origin = ("https://big5.cri.cn" if host.endswith("cri.cn")
                      else f"http://{host}")   # the replica serves its own gateway
    forms = [
        plain,
        f"{scheme}://{host.upper()}{tail}{fragment}",
        f"{scheme}://{host}{tail}{fragment}",
        f"{gateway_origin}/gate/big5/{host}{tail}{fragment}",
        f"{gateway_origin.upper()}/gate/big5/{host.upper()}{tail}",
        gateway_twin(plain, gateway_origin),
        f"{gateway_origin}/gate/big5/{gateway_origin.split('://')[1]}/gate/big5/{host}{tail}",
    ]
    return plain, forms


@given(twin_forms())
@settings(max_examples=300, deadline=None)
def test_every_form_maps_to_one_canonical_url(case: tuple[str, list[str]]) -> None:
    plain, forms = case
    canonical = {canonicalize(form) for form in forms}
    assert canonical == {canonicalize(plain)}
    (only,) = canonical
    assert not is_gateway(only) and "#" not in only
    names = [name.lower() for name, _ in parse_qsl(urlsplit(only).query,
                                                    keep_blank_values=True)]
    assert not [n for n in names if n.startswith("utm_") or n == "spm"]  # values may say so


@given(twin_forms())
@settings(max_examples=200, deadline=None)
def test_non_tracking_params_are_kept(case: tuple[str, list[str]]) -> None:
    plain, _ = case
    canonical = canonicalize(plain)
    plain_names = {kv.split("=")[0] for kv in plain.partition("?")[2].split("&") if kv}
    kept = {kv.split("=")[0] for kv in canonical.partition("?")[2].split("&") if kv}
    assert kept == plain_names


@given(st.one_of(
    twin_forms().flatmap(lambda case: st.sampled_from(case[1])),
    st.from_regex(r"\Ahttps?://[A-Za-z0-9.\-]{1,20}(:[0-9]{1,5})?(/[ -~]{0,30})?\Z"),
    st.text(max_size=40).map(lambda s: "https://gz.cri.cn/" + s),
))
@settings(max_examples=500, deadline=None)
def test_canonicalize_is_idempotent(url: str) -> None:
    once = canonicalize(url)
    assert canonicalize(once) == once


# -- request fingerprinter ------------------------------------------------------------

def _fingerprinter(**overrides: object) -> CanonicalRequestFingerprinter:
    # The fingerprinter a crawl gets: REQUEST_FINGERPRINTER_CLASS and
    # PORTAL_TRACKING_PARAMS from crawler/settings.py, plus the test's overrides.
    fingerprinter = project_crawler(**overrides).request_fingerprinter
    assert isinstance(fingerprinter, CanonicalRequestFingerprinter)
    return fingerprinter


def test_fingerprinter_is_the_configured_one() -> None:
    crawler = project_crawler()
    assert type(crawler.request_fingerprinter) is CanonicalRequestFingerprinter
    assert crawler.settings.getlist("PORTAL_TRACKING_PARAMS") == project_settings().getlist(
        "PORTAL_TRACKING_PARAMS")


@given(twin_forms())
@settings(max_examples=100, deadline=None)
def test_fingerprints_of_twins_equal(case: tuple[str, list[str]]) -> None:
    plain, forms = case
    fp = _FP_DEFAULT
    expected = fp.fingerprint(Request(plain))
    assert all(fp.fingerprint(Request(form)) == expected for form in forms)


@given(twin_forms())
@settings(max_examples=100, deadline=None)
def test_archive_both_scripts_keeps_twins_apart(case: tuple[str, list[str]]) -> None:
    plain, forms = case
    fp = _FP_BOTH
    simplified = {fp.fingerprint(Request(form)) for form in forms if not is_gateway(form)}
    gateway = {fp.fingerprint(Request(form)) for form in forms if is_gateway(form)}
    # each script collapses on its own (tracking params, case, fragments, nesting) ...
    assert len(simplified) == 1 and len(gateway) == 1
    # ... but the two scripts are fetched separately
    assert simplified != gateway


_FP_DEFAULT = _fingerprinter()
_FP_BOTH = _fingerprinter(PORTAL_ARCHIVE_BOTH_SCRIPTS=True)


def test_fingerprinter_settings() -> None:
    fp = _fingerprinter(PORTAL_TRACKING_PARAMS=["session"])
    assert fp.fingerprint(Request(ARTICLE + "?session=1")) == fp.fingerprint(Request(ARTICLE))
    assert fp.fingerprint(Request(ARTICLE + "?spm=1")) != fp.fingerprint(Request(ARTICLE))
    raw = Request(TWIN, meta={"portal_raw_fingerprint": True})
    assert _FP_DEFAULT.fingerprint(raw) != _FP_DEFAULT.fingerprint(Request(ARTICLE))


def test_fingerprint_still_sees_method_and_body() -> None:
    fp = _FP_DEFAULT
    assert fp.fingerprint(Request(ARTICLE, method="POST", body=b"a")) != \
        fp.fingerprint(Request(ARTICLE))
