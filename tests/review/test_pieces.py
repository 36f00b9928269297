"""The console's pure parts: password hashing, signing, highlighting, charts (login throttling:
test_auth_throttle.py)."""

from __future__ import annotations

import time

import pytest
from hypothesis import given
from hypothesis import strategies as st

from review.charts import bar_chart
from review.evidence import _locate, _windows, highlight
from review.security import Signer, hash_password, verify_password


def test_passwords_are_argon2id_and_verified() -> None:
    h = hash_password("a long enough password")
    assert h.startswith("$argon2id$") and "m=65536" in h  # memory-hard: 64 MiB per hash
    assert verify_password(h, "a long enough password")
    assert not verify_password(h, "a long enough passworD")
    assert not verify_password("", "anything")
    assert not verify_password("not-a-hash", "anything")
    with pytest.raises(ValueError, match="至少需要8个字符"):
        hash_password("short")


def test_signed_payloads_refuse_tampering_other_purposes_and_age() -> None:
    s = Signer("k" * 32)
    now = int(time.time())
    token = s.sign("session", {"uid": 7, "iat": now})
    assert s.unsign("session", token) == {"uid": 7, "iat": now}
    assert s.unsign("login", token) is None  # signed for another purpose
    body, mac = token.rsplit(".", 1)
    assert s.unsign("session", body + "." + mac[:-1] + ("A" if mac[-1] != "A" else "B")) is None
    assert Signer("x" * 32).unsign("session", token) is None
    old = s.sign("session", {"uid": 7, "iat": int(time.time()) - 100})
    assert s.unsign("session", old, max_age=50) is None
    assert s.unsign("session", old, max_age=500) is not None
    assert s.unsign("session", "garbage") is None and s.unsign("session", ".") is None


def test_highlight_escapes_and_marks_exact_spans() -> None:
    text = '<p>备案：冀ICP备12345678号</p><script>alert("x")</script>'
    start = text.index("冀")
    out = str(highlight(text, [(start, start + len("冀ICP备12345678号"), "hl-icp", "ICP")]))
    assert '<mark id="hl-1" class="hl-icp" title="ICP">冀ICP备12345678号</mark>' in out
    assert "<script>" not in out and "&lt;script&gt;" in out


@given(
    st.text(min_size=1, max_size=200),
    st.lists(st.tuples(st.integers(0, 200), st.integers(1, 60)), max_size=6),
)
def test_highlight_never_loses_or_invents_text(text: str, raw: list[tuple[int, int]]) -> None:
    spans = [(a, min(a + n, len(text)), "c", "t") for a, n in raw if a < len(text)]
    out = str(highlight(text, spans))
    import html
    import re

    plain = html.unescape(re.sub(r"</?mark[^>]*>", "", out))
    assert plain == text


def test_locate_uses_offsets_or_falls_back_to_the_excerpt() -> None:
    text = "abc 冀ICP备1号 def 冀ICP备1号"
    second = text.rindex("冀")
    assert _locate(text, {"excerpt": "冀ICP备1号", "start": second, "end": second + 7}) == (
        second,
        second + 7,
    )
    # Offsets that no longer match the text: found by the excerpt instead.
    assert _locate(text, {"excerpt": "冀ICP备1号", "start": 0, "end": 7}) == (4, 11)
    assert _locate(text, {"excerpt": "absent", "start": None, "end": None}) is None


def test_long_pages_are_cut_around_the_highlights() -> None:
    text = "x" * 100_000 + "TARGET" + "y" * 100_000
    at = text.index("TARGET")
    shown, spans = _windows(text, [(at, at + 6, "c", "t")])
    assert len(shown) < 10_000
    ((s, e, _, _),) = spans
    assert shown[s:e] == "TARGET"


def test_bar_chart_escapes_names_and_scales() -> None:
    svg = str(bar_chart([("<b>市直</b>", 50), ("易县", 103), ("空", None)]))
    assert "&lt;b&gt;市直&lt;/b&gt;" in svg and "<b>" not in svg
    assert 'fill="#b3261e"' in svg  # over 100% drawn as an alert
    assert "—" in svg
