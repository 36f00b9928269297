"""Saved pages for ``badgewatch inspect FILE``: the address the page had, and a fetcher serving the files
saved beside it, so the scan's own procedure (:class:`crawler.flow.Flow`) reads a saved page as it reads
a live one.

Shapes of a saved page:

* a browser's "网页，全部" save: ``name.html`` beside ``name_files/``, the references rewritten to
  ``./name_files/footer.js``; Chrome and IE write ``<!-- saved from url=(0029)http://www.example.gov.cn/ -->``
  near the top;
* a mirrored site (``wget -m``, HTTrack): ``<root>/<host>/<path>``, other hosts' files in their own
  folders beside it (``wget -H``), ``index.html`` for a path ending in ``/``, ``name?query`` (or
  ``name@query``) for a URL with a query;
* a page on its own: relative and root-relative references map under the folder holding it.

The page's address, first found: the ``saved from`` comment; the host folder of a mirror it lies in; an
absolute ``<base href>``; ``--site``; else a stand-in (``http://saved-page.invalid/<name>``). Same-site
decisions (which scripts and frames the checks ask for) rest on that address, so a stand-in keeps
relative and root-relative references same-site, as they were on the live site.

Nothing outside the saved folder (for a mirror: the folder holding the host folders) is ever read:
every path is checked lexically before the file system is touched, and again after symbolic links are
followed. A file that is not there is answered like a 404, so the checks mark the need failed and
answer ``unknown`` (``badge.script_unavailable``, ``*.unconfirmed``), never ``*.missing``.
"""

from __future__ import annotations

import contextlib
import logging
import mimetypes
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote, unquote, urljoin, urlsplit, urlunsplit

from checks.errors import InputError
from crawler.errors import TooLargeError
from crawler.records import RawResponse

log = logging.getLogger(__name__)

#: ``.invalid`` never resolves (RFC 6761): the stand-in can name no real site.
STAND_IN_HOST = "saved-page.invalid"
HEAD_BYTES = 65536  # where the saved-from comment and <base> are looked for
INDEX_NAMES = ("index.html", "index.htm", "default.html", "default.htm")
PAGE_SUFFIXES = (".html", ".htm", ".shtml", ".xhtml")

_SAVED_FROM = re.compile(rb"<!--\s*saved from url=\(\s*(\d{1,5})\s*\)\s*(\S+?)\s*-->", re.I)
_BASE_HREF = re.compile(rb"""<base\s[^>]*?href\s*=\s*["']?\s*(https?://[^"'\s>]+)""", re.I)
# A folder named like a host, as wget and HTTrack name them (``host``, ``host:port``, ``host+port``).
_HOST_LABELS = r"(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+(?:[a-z]{2,63}|xn--[a-z0-9-]{1,59})"
_HOST_DIR = re.compile(rf"({_HOST_LABELS})(?:[:+](\d{{1,5}}))?", re.I)

# What users read about a reference that could not be served.
NOT_SAVED = "保存目录中没有此文件"
OUTSIDE = "在保存目录之外，拒绝读取"
NOT_WEB = "不是 http(s) 地址"


class SavedPageError(InputError, ValueError):
    """A path that is not a page ``inspect`` can read (the message is for users, in Chinese)."""


def host_like(name: str) -> bool:
    """Whether ``name`` is written like a host name (as a mirror's folder or a URL without scheme)."""
    try:
        ascii_name = name.encode("idna").decode("ascii") if not name.isascii() else name
    except UnicodeError:
        return False
    return _HOST_DIR.fullmatch(ascii_name) is not None


def page_file(target: Path) -> Path:
    """The page file a target names: the file itself, or the page of a folder (``index.html`` and the
    like; else its one ``.html`` file, as a "网页，全部" save leaves ``name.html`` beside ``name_files``)."""
    if target.is_file():
        return target
    if not target.is_dir():
        raise SavedPageError(f"文件不存在：{target}")
    for name in INDEX_NAMES:
        if (target / name).is_file():
            return target / name
    pages = sorted(p for p in target.iterdir() if p.is_file() and p.suffix.lower() in PAGE_SUFFIXES)
    if len(pages) == 1:
        return pages[0]
    if not pages:
        raise SavedPageError(f"目录中没有网页文件（index.html 或 *.html）：{target}")
    names = "、".join(p.name for p in pages[:10])
    raise SavedPageError(f"目录中有多个网页文件，请指定其中一个：{names}")


@dataclass(frozen=True)
class SavedPage:
    """A saved page file and the address it is read as.

    ``url_from`` says where ``url`` came from: ``saved_from``, ``mirror``, ``base``, ``site`` or
    ``stand_in``. ``root`` is the folder nothing outside of is read; ``site_root`` the folder the
    page's own site's root-relative paths map into (a mirror's host folder, else the page's folder).
    """

    file: Path
    url: str
    url_from: str
    root: Path
    site_root: Path

    @property
    def host(self) -> str:
        return (urlsplit(self.url).hostname or "").lower()


URL_FROM_ZH = {
    "saved_from": "取自文件开头的 saved from 注释",
    "mirror": "取自镜像目录的主机名文件夹",
    "base": "取自页面的 <base href>",
    "site": "取自 --site",
    "stand_in": "文件中没有原地址，用替代地址读取，相对地址视为同站",
}


def locate(file: Path, site_url: str = "") -> SavedPage:
    """Decide the address of the saved page ``file`` (see the module docstring for the order)."""
    file = file.resolve()
    with file.open("rb") as fh:
        head = fh.read(HEAD_BYTES)
    saved_from = _saved_from(head)
    mirror: Path | None = None
    if saved_from:
        url, source = saved_from, "saved_from"
        # Inside a mirror only if a folder above is named after the host the page was saved from.
        mirror = _host_folder(file, urlsplit(saved_from).hostname or "")
    else:
        # A browser's save (name.html beside name_files/) is no mirror, whatever its folders are called.
        browser_save = any((file.parent / f"{file.stem}{tail}").is_dir() for tail in ("_files", ".files"))
        mirror = None if browser_save else _host_folder(file)
        base = _base_href(head)
        if mirror is not None:
            url, source = _mirror_url(file, mirror), "mirror"
        elif base:
            url, source = urljoin(base, quote(file.name)), "base"
        elif site_url:
            url, source = site_url, "site"
        else:
            url, source = f"http://{STAND_IN_HOST}/{quote(file.name)}", "stand_in"
    root = mirror.parent if mirror is not None else file.parent
    return SavedPage(file, normalise_url(url), source, root, mirror if mirror is not None else file.parent)


def _saved_from(head: bytes) -> str:
    m = _SAVED_FROM.search(head)
    if m is None:
        return ""
    # The number is the URL's length: it tells where the URL ends when no space precedes "-->".
    raw = m.group(2).decode("latin-1")
    n = int(m.group(1))
    url = raw[:n] if 0 < n <= len(raw) else raw
    return url if url.lower().startswith(("http://", "https://")) else ""


def _base_href(head: bytes) -> str:
    m = _BASE_HREF.search(head)
    return m.group(1).decode("latin-1") if m else ""


def _host_folder(file: Path, host: str = "") -> Path | None:
    """The mirror folder holding ``file``: the nearest folder above named like a host (named ``host``
    exactly, when the page's host is known)."""
    for folder in file.parents:
        m = _HOST_DIR.fullmatch(folder.name)
        if m is None:
            continue
        if not host or m.group(1).lower() == host.lower().rstrip("."):
            return folder
    return None


def _mirror_url(file: Path, mirror: Path) -> str:
    m = _HOST_DIR.fullmatch(mirror.name)
    assert m is not None
    netloc = m.group(1).lower() + (f":{m.group(2)}" if m.group(2) else "")
    rel = file.relative_to(mirror)
    return f"http://{netloc}/" + "/".join(quote(part) for part in rel.parts)


def normalise_url(url: str) -> str:
    """``url`` as a browser requests it: scheme and host in lower case (host in A-label form), no
    default port, ``/`` for an empty path, no fragment."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        return url
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower().rstrip(".")
    if host and not host.isascii():
        with contextlib.suppress(UnicodeError):  # left as written: the comparison just fails
            host = host.encode("idna").decode("ascii")
    default = {"http": 80, "https": 443}.get(scheme)
    netloc = host if port in (None, default) else f"{host}:{port}"
    return urlunsplit((scheme, netloc, parts.path or "/", parts.query, ""))


@dataclass
class LocalFetcher:
    """A :class:`crawler.flow.Fetcher` that serves a saved page and the files saved beside it.

    ``loaded`` records what was served (URL → file), ``missing`` what could not be (URL → reason), so
    ``inspect`` can say which references it read and which it could not.
    """

    saved: SavedPage
    loaded: dict[str, Path] = field(default_factory=dict)
    missing: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._page = normalise_url(self.saved.url)
        parts = urlsplit(self._page)
        self._origin = (parts.scheme, parts.netloc)
        self._page_dir = parts.path[: parts.path.rfind("/") + 1] or "/"

    async def get(
        self, url: str, *, maxsize: int, priority: int = 0, headers: Mapping[str, str] | None = None
    ) -> RawResponse:
        # ``headers`` (conditional requests) mean nothing to files: the file is served whole.
        path, why = self.resolve(url)
        if path is None:
            self.missing[url] = why
            log.info("saved page: %s not served (%s)", url, why)
            return RawResponse(url, 404, {"Content-Type": "text/plain; charset=utf-8"}, b"")
        if path.stat().st_size > maxsize:
            raise TooLargeError(f"body larger than max size ({maxsize}): {path}")
        body = path.read_bytes()
        self.loaded[url] = path
        # The page is a page whatever its file is called (a mirror's "index" without a suffix).
        ctype = "text/html" if path == self.saved.file else _content_type(path, url)
        return RawResponse(url, 200, {"Content-Type": ctype}, body)

    def resolve(self, url: str) -> tuple[Path | None, str]:
        """The saved file serving ``url`` (or None and why not)."""
        norm = normalise_url(url)
        if norm == self._page:
            return self.saved.file, ""
        candidates = self._candidates(norm)
        if candidates is None:
            return None, NOT_WEB
        root = self.saved.root
        outside = False
        for candidate in candidates:
            # Lexically first: a crafted "%2e%2e/" or a query holding "/../" never reaches the disk.
            if not Path(os.path.normpath(candidate)).is_relative_to(root):
                outside = True
                continue
            try:
                real = candidate.resolve()  # symbolic links followed: they must stay inside too
            except (OSError, RuntimeError):
                continue
            if not real.is_relative_to(root):
                outside = True
                continue
            if real.is_file():
                return real, ""
        return None, OUTSIDE if outside else NOT_SAVED

    def _candidates(self, url: str) -> list[Path] | None:
        """Files that may hold ``url``, most specific first; None for a URL that is not http(s)."""
        try:
            parts = urlsplit(url)
            port = parts.port
        except ValueError:
            return None
        if parts.scheme not in ("http", "https") or not parts.hostname:
            return None
        host = parts.hostname.lower()
        path = unquote(parts.path) or "/"
        if "\x00" in path:
            return []
        places: list[tuple[Path, str]] = []
        same_host = parts.netloc == self._origin[1]
        if same_host and path.startswith(self._page_dir):
            # Relative to the page, as a "网页，全部" save rewrites references (./name_files/x.js).
            places.append((self.saved.file.parent, path[len(self._page_dir) :]))
        # A mirror's layout: <root>/<host>/<path> (wget names a non-default port host:port or host+port).
        names = [host] + ([f"{host}:{port}", f"{host}+{port}"] if port is not None else [])
        places.extend((self.saved.root / name, path) for name in names)
        if same_host:
            # The page's own site, root-relative: under its host folder, else under the page's folder.
            places.append((self.saved.site_root, path))
        query = unquote(parts.query)
        out: list[Path] = []
        for folder, rel in places:
            rel = rel.lstrip("/")  # never an absolute path: Path("/a") / "/etc" is "/etc"
            target = folder / rel if rel else folder
            if not rel or rel.endswith("/"):
                out.extend(target / name for name in INDEX_NAMES)
                continue
            if query:  # wget keeps the query in the file name (``@`` with Windows-safe names)
                out.extend((Path(f"{target}?{query}"), Path(f"{target}@{query}")))
            out.append(target)
        return list(dict.fromkeys(out))


def _content_type(path: Path, url: str) -> str:
    # No charset: a saved file's own declaration (or detection) decides, as for a fetched one.
    guessed = mimetypes.guess_type(urlsplit(url).path)[0] or mimetypes.guess_type(path.name)[0]
    return guessed or "application/octet-stream"
