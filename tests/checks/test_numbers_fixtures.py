"""Table-driven: every number-check fixture page against the verdicts written in cases.yaml."""

from __future__ import annotations

import posixpath
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit

import pytest
import yaml

from checks.expected import Expected, UnitKind
from checks.icp import check_icp
from checks.page import Document, Page
from checks.police import check_police
from checks.reading.scripts import same_site
from checks.rules import Rules
from checks.sitecode import check_site_code
from checks.verdict import Verdict

HERE = Path(__file__).parent / "fixtures" / "numbers"
SPEC = yaml.safe_load((HERE / "cases.yaml").read_text(encoding="utf-8"))
CHECKS = {"icp": check_icp, "police": check_police, "site_code": check_site_code}
# Keys of a case's expectation that are not verdict data.
_VERDICT_KEYS = {"status", "reason", "excerpt", "evidence_source"}


def load_page(name: str, case: dict[str, Any]) -> Page:
    """The page as a crawler would capture it: home bytes plus the same-site scripts it runs."""
    url = case.get("url", SPEC["defaults"]["url"])
    page = Page(
        url=url,
        body=(HERE / f"{case.get('file', name)}.html").read_bytes(),
        headers={"Content-Type": "text/html"},
    )
    for el in page.home.tree.iter("script"):
        src = el.get("src")
        if not src:
            continue
        full = urljoin(url, src)
        local = HERE / posixpath.basename(urlsplit(full).path)
        if same_site(full, url) and local.is_file():
            page.scripts[full] = local.read_text(encoding="utf-8")
    if rendered := case.get("rendered"):
        page.rendered = Document(url=url, text=(HERE / rendered).read_text(encoding="utf-8"))
    return page


def expected_for(case: dict[str, Any]) -> Expected:
    reg = {**SPEC["defaults"]["registry"], **case.get("registry", {})}
    reg["unit_kind"] = UnitKind(reg["unit_kind"])
    return Expected(**reg)


def run(name: str, case: dict[str, Any], check: str) -> Verdict:
    return CHECKS[check](load_page(name, case), expected_for(case), Rules(**case.get("rules", {})))


PARAMS = [
    pytest.param(name, case, check, id=f"{name}-{check}")
    for name, case in SPEC["cases"].items()
    for check in CHECKS
    if check in case
]


@pytest.mark.parametrize(("name", "case", "check"), PARAMS)
def test_fixture(name: str, case: dict[str, Any], check: str) -> None:
    want = case[check]
    v = run(name, case, check)
    got = {"status": str(v.status), "reason": v.reason}
    assert got == {"status": want["status"], "reason": want["reason"]}, (v.detail, dict(v.data))
    for key, value in want.items():
        if key in _VERDICT_KEYS:
            continue
        assert v.data.get(key) == value, f"data[{key!r}]: {v.data.get(key)!r} != {value!r} ({v.detail})"
    if "excerpt" in want:
        assert v.evidence and v.evidence[0].excerpt == want["excerpt"]
    if "evidence_source" in want:
        assert v.evidence and v.evidence[0].source == want["evidence_source"]
    # Evidence offsets always quote the document they name.
    page = load_page(name, case)
    for ev in v.evidence:
        if ev.start is not None and ev.end is not None and ev.source in ("home", "rendered"):
            doc = page.home if ev.source == "home" else page.rendered
            assert doc is not None
            assert doc.text[ev.start : ev.end] == ev.excerpt
    if v.status.value == "pass" and check != "site_code":
        assert v.evidence, "a pass rests on evidence"


def test_every_fixture_file_is_used() -> None:
    used = {case.get("file", name) for name, case in SPEC["cases"].items()}
    files = {p.stem for p in HERE.glob("*.html") if not p.name.endswith(".rendered.html")}
    assert files <= used, sorted(files - used)


def test_nothing_in_comments_or_scripts_counts() -> None:
    """Numbers present only in comments, non-writing scripts or hidden markup are never read as shown."""
    hidden_only = (
        "icp_in_comment_only", "icp_in_script_var_only", "police_in_comment_only", "sitecode_commented",
    )  # fmt: skip
    for name in hidden_only:
        case = SPEC["cases"][name]
        for check in CHECKS:
            v = run(name, case, check)
            assert v.status.value != "pass" or v.reason == "site_code.not_required", (name, check, v.reason)
