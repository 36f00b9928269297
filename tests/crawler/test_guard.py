"""crawler.guard: internal and reserved addresses are refused unless configured."""

from __future__ import annotations

import pytest

from crawler.guard import AddressGuard


@pytest.mark.parametrize(
    ("ip", "why"),
    [
        ("10.1.2.3", "private"),
        ("172.16.0.1", "private"),
        ("192.168.1.1", "private"),
        ("169.254.169.254", "link-local"),
        ("127.0.0.1", "loopback"),
        ("0.0.0.0", "unspecified"),
        ("224.0.0.1", "multicast"),
        ("240.0.0.1", "reserved"),
        ("100.64.0.1", "reserved"),
        ("::1", "loopback"),
        ("fe80::1", "link-local"),
        ("fc00::1", "private"),
        ("::ffff:10.0.0.1", "private"),
        ("not-an-ip", "invalid"),
    ],
)
def test_refused_by_default(ip: str, why: str) -> None:
    assert AddressGuard().refusal(ip) == why


@pytest.mark.parametrize("ip", ["202.106.0.20", "8.8.8.8", "2001:4860:4860::8888"])
def test_public_addresses_allowed(ip: str) -> None:
    assert AddressGuard().refusal(ip) is None


def test_loopback_allowed_only_when_configured_and_nothing_else() -> None:
    g = AddressGuard(allow_loopback=True)
    assert g.refusal("127.0.0.9") is None
    assert g.refusal("::1") is None
    assert g.refusal("10.0.0.1") == "private"
    assert g.refusal("169.254.169.254") == "link-local"


def test_explicit_networks() -> None:
    g = AddressGuard(allow_networks=["10.20.0.0/16"])
    assert g.refusal("10.20.3.4") is None
    assert g.refusal("10.21.3.4") == "private"
