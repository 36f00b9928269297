"""DNS and domain-usage classification against simnet's ground truth, over real packets on loopback.

simnet runs (authoritative DNS over UDP/TCP and the web farm, 127.0.0.0/8 only) with the catalogue
sample. Every Chinese and English domain is resolved with dnspython as the crawler resolves and
classified (``dns``); every Chinese domain that resolves is fetched over HTTP (redirects followed)
and its use classified (``usage``). Verdicts must equal the ground truth.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote, urljoin, urlsplit

import dns.exception
import dns.resolver
import lxml.html
import pytest

from checks.dns import (
    DnsResult,
    UsageObservation,
    ascii_host,
    classify_dns,
    classify_usage,
    result_from_exception,
    result_from_message,
)
from checks.expected import Expected, UnitKind
from checks.rules import Rules
from simnet.runtime import SimNet


@pytest.fixture(scope="module")
def net(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimNet]:
    sim = SimNet("catalogue", workdir=tmp_path_factory.mktemp("simnet-net"))
    sim.start()
    try:
        yield sim
    finally:
        sim.stop()


def make_resolver(sim: SimNet) -> dns.resolver.Resolver:
    host, _, port = sim.nameserver.rpartition(":")
    resolver = dns.resolver.Resolver(configure=False)
    resolver.nameservers = [host]
    resolver.port = int(port)
    resolver.timeout = 2.5
    resolver.lifetime = 3.0
    return resolver


def resolve(resolver: dns.resolver.Resolver, qname: str) -> DnsResult:
    """What the crawler does for one name (A records)."""
    try:
        answer = resolver.resolve(qname, "A", raise_on_no_answer=False)
    except (dns.exception.DNSException, OSError) as exc:
        return result_from_exception(qname, exc, str(resolver.nameservers[0]))
    return result_from_message(qname, answer.response, str(resolver.nameservers[0]))


def read_capped(resp: http.client.HTTPResponse, limit: int = 8_000_000, seconds: float = 5.0) -> bytes:
    """The body, at most ``limit`` bytes and ``seconds`` long (endless and slow-drip responses end)."""
    chunks: list[bytes] = []
    size = 0
    deadline = time.monotonic() + seconds
    while size < limit and time.monotonic() < deadline:
        chunk = resp.read1(65536)
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks)


def fetch(sim: SimNet, resolver: dns.resolver.Resolver, url: str, hops: int = 5) -> dict[str, Any]:
    """GET ``url`` following redirects, every host resolved through simnet; the last response."""
    chain = [url]
    for _ in range(hops + 1):
        try:
            parts = urlsplit(url)
            host = ascii_host(parts.hostname or "")
        except ValueError:  # a malformed Location
            return {"url": url, "error": "bad_redirect", "chain": chain}
        result = resolve(resolver, host)
        if not result.addresses:
            return {"url": url, "error": "dns", "chain": chain}
        conn = http.client.HTTPConnection(result.addresses[0], sim.http_port, timeout=2.0)
        try:
            conn.request("GET", parts.path or "/", headers={"Host": host, "User-Agent": "badgewatch-test"})
            resp = conn.getresponse()
            body = read_capped(resp)
        except ConnectionRefusedError:
            return {"url": url, "error": "refused", "chain": chain}
        except TimeoutError:
            return {"url": url, "error": "timeout", "chain": chain}
        except ConnectionResetError:
            return {"url": url, "error": "reset", "chain": chain}
        except (OSError, http.client.HTTPException) as exc:
            return {"url": url, "error": f"other: {exc}", "chain": chain}
        finally:
            conn.close()
        location = resp.getheader("Location")
        if resp.status in (301, 302, 303, 307, 308) and location:
            # Raw UTF-8 bytes in a Location are sent percent-encoded, as browsers do.
            raw = location.encode("latin-1").decode("utf-8", "replace")
            try:
                url = urljoin(url, quote(raw, safe=":/?#[]@!$&'()*+,;=%"))
            except ValueError:  # a malformed Location
                return {"url": url, "error": "bad_redirect", "chain": chain}
            chain.append(url)
            continue
        return {"url": url, "status": resp.status, "body": body, "chain": chain}
    return {"url": url, "error": "redirect_loop", "chain": chain}


# Uses decided by where a browser ends up (frames, meta and script forwarding, https:// after a closed
# port 80, the same page under another name): this test's plain client does not follow those; the
# crawler's catalogue scan compares them with the truth.
_FOLLOWED_BY_THE_CRAWLER = frozenset(
    {"forward_frameset", "forward_meta", "forward_js", "https_only", "own_site_dynamic"}
)


def observe(sim: SimNet, resolver: dns.resolver.Resolver, domain: str, qname: str) -> UsageObservation:
    dns_result = resolve(resolver, qname)
    if classify_dns(dns_result).reason != "dns.ok":
        return UsageObservation(domain, dns=dns_result)
    got = fetch(sim, resolver, f"http://{qname}/")
    if "error" in got:
        return UsageObservation(domain, got["url"], None, got["error"], redirects=tuple(got["chain"][1:]),
                                dns=dns_result)  # fmt: skip
    body: bytes = got["body"]
    title, text = "", ""
    if body.strip():
        tree = lxml.html.fromstring(body)
        title = (tree.findtext(".//title") or "").strip()
        text = " ".join(tree.text_content().split())[:500]
    return UsageObservation(
        domain, got["url"], got["status"], None, title, text, hashlib.sha256(body).hexdigest(), len(body),
        tuple(got["chain"][1:]), dns_result,
    )  # fmt: skip


def test_dns_and_usage_match_ground_truth(net: SimNet) -> None:
    truth = json.loads(Path(net.truth_path).read_text(encoding="utf-8"))
    resolver = make_resolver(net)
    rules = Rules(red_page_hosts=tuple(net.red_page_hosts))
    sites = {s["id"]: s for s in truth["sites"]}
    own_bodies: dict[str, str] = {}
    domains = [d for d in truth["domains"] if d["checks"].get("dns")]
    assert len(domains) > 100
    wrong: list[str] = []
    seen: set[str] = set()
    for d in domains:
        want = d["checks"]["dns"]
        v = classify_dns(resolve(resolver, d["ascii"]))
        seen.add(v.reason)
        if (str(v.status), v.reason) != (want["status"], want["reason"]):
            wrong.append(f"dns {d['ascii']}: {v.status} {v.reason} != {want['status']} {want['reason']}")
        elif want["status"] == "pass" and sorted(v.data["addresses"]) != sorted(want["addresses"]):
            wrong.append(f"dns {d['ascii']}: addresses {v.data['addresses']} != {want['addresses']}")
        if d["kind"] == "english" or not d["checks"].get("usage"):
            continue
        if d.get("usage_shape") in _FOLLOWED_BY_THE_CRAWLER:
            continue
        site = sites.get(d["site_id"] or "")
        expected = Expected(
            UnitKind.PARTY_GOV if d["kind"] == ".政务" else UnitKind.INSTITUTION,
            unit_name=d["unit"],
            site_url=site["url"] if site else "",
            cn_domains=(d["domain"],),
            en_domains=tuple(x for x in (site["domains"] if site else []) if x.isascii()),
        )
        own: list[str] = []
        if site and site["checks"]["http"]["status"] != "unknown":
            url = site["checks"]["http"]["final_url"]
            if url not in own_bodies:
                got = fetch(net, resolver, url)
                own_bodies[url] = hashlib.sha256(got.get("body", b"")).hexdigest()
            own = [own_bodies[url]]
        u = classify_usage(observe(net, resolver, d["domain"], d["ascii"]), expected, rules, own)
        seen.add(u.reason)
        want_u = d["checks"]["usage"]
        if (str(u.status), u.reason) != (want_u["status"], want_u["reason"]):
            wrong.append(f"usage {d['domain']}: {u.status} {u.reason} != {want_u['status']} "
                         f"{want_u['reason']} ({u.detail})")  # fmt: skip
    assert not wrong, "\n".join(wrong)
    # Every outcome class of the catalogue was met over the wire.
    assert {
        "dns.ok", "dns.nxdomain", "dns.nodata", "dns.cname_loop", "dns.servfail", "dns.refused",
        "dns.timeout",
        "usage.own_site", "usage.red_page", "usage.parked", "usage.other_site", "usage.not_used",
        "usage.unreachable",
    } <= seen  # fmt: skip
