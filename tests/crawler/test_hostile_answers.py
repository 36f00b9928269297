"""What the fuzz scan (test_fuzz_scan.py) found, pinned down one by one: how the crawler reads and
classifies answers that are not HTTP as it should be."""

from __future__ import annotations

import asyncio
import gzip
import zlib

import brotli
import pytest
from scrapy.exceptions import DownloadFailedError, ResponseDataLossError
from twisted.internet.error import ConnectionDone, ConnectionLost
from twisted.internet.testing import StringTransport
from twisted.python.failure import Failure
from twisted.web import http
from twisted.web._newclient import (
    BadResponseVersion,
    ParseError,
    Request,
    ResponseFailed,
    ResponseNeverReceived,
)
from twisted.web.http_headers import Headers

from checks.http import FetchError
from checks.rules import Rules
from crawler.download import MAX_HEADER_LINE, _RoomyParser, check_encoded_body
from crawler.errors import MalformedResponseError, classify_exception
from crawler.flow import Flow, RawResponse, Visit

# --- classification ---------------------------------------------------------------------------------


def _failure(exc: BaseException) -> Failure:
    try:
        raise exc
    except BaseException:
        return Failure()


def _wrapped(*reasons: BaseException) -> DownloadFailedError:
    """What Scrapy raises for a response twisted's parser gave up on (see wrap_twisted_exceptions)."""
    inner = ResponseFailed([_failure(r) for r in reasons])
    try:
        raise DownloadFailedError(str(inner)) from inner
    except DownloadFailedError as exc:
        return exc


@pytest.mark.parametrize(
    "refusal",
    [
        ValueError("Invalid response: conflicting Content-Length headers: b'2748,12'"),
        KeyError(b"gzip, chunked"),  # a Transfer-Encoding twisted cannot decode
        BadResponseVersion("not enough values to unpack", b"ICY"),
        ParseError("non-integer status code", b"HTTP/1.1 two hundred OK"),  # type: ignore[no-untyped-call]
        http._MalformedChunkedDataError("Chunk-size must be an integer."),
    ],
)
def test_what_the_parser_refuses_is_a_protocol_error(refusal: BaseException) -> None:
    """Every exception twisted's response parser raises is wrapped with the connection's end; it used
    to read as ``http.reset`` (a dropped connection) unless its text matched a list of names."""
    for exc in (_wrapped(refusal), ResponseFailed([_failure(refusal)])):
        kind, detail = classify_exception(exc)
        assert kind is FetchError.PROTOCOL, (exc, detail)
        assert detail.startswith(type(refusal).__name__), detail


def test_a_body_cut_short_is_a_reset_and_broken_chunks_a_protocol_error() -> None:
    def data_loss(*reasons: BaseException) -> ResponseDataLossError:
        inner = ResponseFailed([_failure(r) for r in reasons])
        try:
            raise ResponseDataLossError() from inner
        except ResponseDataLossError as exc:
            return exc

    cut = data_loss(ConnectionDone(), http._DataLoss())
    assert classify_exception(cut)[0] is FetchError.RESET
    broken = data_loss(http._MalformedChunkedDataError("Chunk-size must be an integer."), http._DataLoss())
    assert classify_exception(broken)[0] is FetchError.PROTOCOL
    # A connection lost before any answer stays a reset.
    assert classify_exception(ResponseNeverReceived([_failure(ConnectionLost())]))[0] is FetchError.RESET


def test_a_body_that_does_not_decode_is_a_protocol_error() -> None:
    for exc in (
        zlib.error("Error -3 while decompressing data: incorrect header check"),
        gzip.BadGzipFile("Not a gzipped file (b'<h')"),
        brotli.error("brotli: decoder failed"),
        MalformedResponseError("invalid status code -200"),
    ):
        assert classify_exception(exc)[0] is FetchError.PROTOCOL, exc


# --- the download handler ---------------------------------------------------------------------------

PAGE = b"<html><body>" + "政务公开".encode() * 5000 + b"<div id=footer>CA05106</div></body></html>"


def test_a_compressed_body_must_be_whole() -> None:
    z = gzip.compress(PAGE)
    check_encoded_body([b"gzip"], z, 10**7)
    check_encoded_body([b"deflate"], zlib.compress(PAGE), 10**7)
    check_encoded_body([b"deflate"], zlib.compress(PAGE)[2:-4], 10**7)  # raw deflate, as IIS sends it
    check_encoded_body([b"br"], brotli.compress(PAGE), 10**7)
    check_encoded_body([b"gzip", b"br"], brotli.compress(gzip.compress(PAGE)), 10**7)
    check_encoded_body([b"x-unknown"], PAGE, 10**7)  # not checked here: Scrapy keeps the body as it is
    # Over the size limit: left to Scrapy, which refuses it as a bomb.
    check_encoded_body([b"gzip"], gzip.compress(b" " * 5_000_000), 10**6)
    for codings, body in (
        ([b"gzip"], z[: len(z) // 2]),  # Scrapy returned "as much as possible": the page without footer
        ([b"gzip"], z[:-4]),
        ([b"gzip"], PAGE),  # Content-Encoding over a plain body
        ([b"x-gzip"], z[:100]),
        ([b"deflate"], zlib.compress(PAGE)[:60]),
        ([b"br"], brotli.compress(PAGE)[:40]),
        ([b"gzip, identity"], z[:200]),
    ):
        with pytest.raises(MalformedResponseError):
            check_encoded_body(codings, body, 10**7)


def _parser() -> tuple[_RoomyParser, list[bytes]]:
    done: list[bytes] = []
    request = Request(b"GET", b"/", Headers(), None)  # type: ignore[no-untyped-call]
    parser = _RoomyParser(request, done.append)  # type: ignore[no-untyped-call]
    parser.makeConnection(StringTransport())  # type: ignore[no-untyped-call]
    return parser, done


def test_header_lines_as_long_as_browsers_read() -> None:
    parser, _done = _parser()
    policy = b"default-src 'self'" + b" x.gov.cn" * 10_000  # 90 kB: longer than twisted's 16 KiB
    parser.dataReceived(b"HTTP/1.1 200 OK\r\nContent-Security-Policy: " + policy + b"\r\nX-A: b\r\n\r\n")
    assert parser.response.headers.getRawHeaders(b"content-security-policy") == [policy]
    assert parser.response.headers.getRawHeaders(b"x-a") == [b"b"]
    parser, _done = _parser()
    with pytest.raises(ParseError):
        parser.dataReceived(b"HTTP/1.1 200 OK\r\nX-Pad: " + b"a" * (MAX_HEADER_LINE + 10) + b"\r\n\r\n")


def test_headers_with_invalid_names_are_skipped_as_browsers_skip_them() -> None:
    parser, _done = _parser()
    parser.dataReceived(
        b"HTTP/1.1 200 OK\r\nBad Name: x\r\n: no name\r\n"
        + "标题: 值".encode()
        + b"\r\nno colon at all\r\nContent-Type: text/html\r\n\r\n"
    )
    headers = dict(parser.response.headers.getAllRawHeaders())
    assert headers == {b"Content-Type": [b"text/html"]}


# --- landing stubs ------------------------------------------------------------------------------------


class _Pages:
    """A fetcher serving fixed answers (a missing URL fails the test: nothing else may be fetched)."""

    def __init__(self, pages: dict[str, tuple[dict[str, str], bytes]]) -> None:
        self.pages = pages
        self.asked: list[str] = []

    async def get(self, url: str, *, maxsize: int, priority: int = 0) -> RawResponse:
        self.asked.append(url)
        headers, body = self.pages[url]
        return RawResponse(url=url, status=200, headers=headers, body=body)


def _visit(pages: dict[str, tuple[dict[str, str], bytes]], url: str) -> tuple[Visit, list[str]]:
    fetcher = _Pages(pages)
    flow = Flow(fetcher, None, None, Rules(), None, max_body=10**6, max_subresources=4)  # type: ignore[arg-type]
    return asyncio.run(flow.visit(url)), fetcher.asked


HTML = {"Content-Type": "text/html; charset=utf-8"}


def test_a_refresh_target_is_taken_as_a_browser_takes_it() -> None:
    """Spaces and raw bytes are percent-encoded (like a Location), not refused as a bad address."""
    stub = (dict(HTML, Refresh="0; url=/new page/index.html"), b"<html><body></body></html>")
    page = (HTML, PAGE)
    visit, asked = _visit(
        {"http://a.gov.cn/": stub, "http://a.gov.cn/new%20page/index.html": page}, "http://a.gov.cn/"
    )
    assert asked == ["http://a.gov.cn/", "http://a.gov.cn/new%20page/index.html"]
    assert (
        visit.fetched.error is None
        and visit.page is not None
        and visit.fetched.final_url.endswith("index.html")
    )


def test_a_landing_target_that_is_no_web_address_is_not_followed() -> None:
    """A browser stays on the page (it used to be fetched and called an invalid *registry* address)."""
    for refresh in ("0; url=http://a.gov.cn:99999/", "0; url=http://[x", "0; url=ftp://ftp.a.gov.cn/pub/"):
        stub = (dict(HTML, Refresh=refresh), b"<html><body></body></html>")
        visit, asked = _visit({"http://a.gov.cn/": stub}, "http://a.gov.cn/")
        assert asked == ["http://a.gov.cn/"]
        assert visit.fetched.error is None and visit.stubs == []
