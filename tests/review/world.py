"""A small registry with scans, stored evidence and annual reports, built through the real storage layer.

Findings are not written by hand: every website's captured page is judged by the real checks
(``checks.suite.run_checks``, fed CONAC's badge script and verification page as simnet serves them),
and every domain's DNS answer by ``checks.dns.classify_dns``. One captured page is hostile: it carries
scripts and an ``onerror`` handler that would rewrite the page if they ever ran.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from checks.dns import DnsResult, classify_dns
from checks.expected import Expected, UnitKind
from checks.page import Document, NeedKind, Page
from checks.suite import run_checks
from reports.annual import derive, submit, transition
from review.accounts import create_user
from simnet.conac import Badge, badge_script, embed_code, verify_page
from simnet.pngs import badge_png
from storage.config import Config
from storage.db import make_engine, upgrade
from storage.evidence import EvidenceStore
from storage.models import Capture, Domain, Finding, Office, Scan, Unit, User, Website, subject_of

PASSWORD = "correct horse battery"
SECRET = "test-secret-key-0123456789abcdef"
YEAR = dt.date.today().year - 1
_USCC = "0123456789ABCDEFGHJKLMNPQRTUWXY"

# What the hostile page's scripts would write if they ran.
SCRIPT_MARK = "SCRIPT RAN"
HANDLER_MARK = "HANDLER RAN"


def uscc(kind_digit: str, division: str, serial: int) -> str:
    body = "1" + kind_digit + division + f"{serial:09d}"
    total = sum(_USCC.index(c) * pow(3, i, 31) for i, c in enumerate(body))
    return body + _USCC[(31 - total % 31) % 31]


def hostile_page(badge: Badge, icp: str) -> str:
    return (
        '<!DOCTYPE html><html><head><meta charset="gbk"><title>涿州市教育局</title>'
        "<script>document.title='PWNED';try{top.document.title='PWNED'}catch(e){}</script></head><body>"
        '<h1>涿州市教育局</h1><p id="m">页面原文</p><p id="m2">图片原文</p>'
        f"<script>document.getElementById('m').textContent='{SCRIPT_MARK}';</script>"
        f"<img src=\"x\" onerror=\"document.getElementById('m2').textContent='{HANDLER_MARK}'\">"
        '<div class="footer"><p>主办：涿州市教育局</p>'
        f"{embed_code(badge, '')}\n"  # protocol-relative: the page is read over https
        f'<p><a href="https://beian.miit.gov.cn/" target="_blank">{icp}</a></p></div></body></html>'
    )


def plain_page(name: str, badge: Badge | None, icp: str) -> str:
    # The pages are served over https: the badge script is protocol-relative (an http:// one would be
    # blocked by browsers as mixed content, a finding of its own).
    badge_html = embed_code(badge, "") if badge else "<!-- 暂未加挂网站标识 -->"
    return (
        f'<!DOCTYPE html><html><head><meta charset="utf-8"><title>{name}</title></head><body>'
        f'<h1>{name}</h1><div class="footer">{badge_html}'
        f'<p>备案号：<a href="https://beian.miit.gov.cn/">{icp}</a></p></div></body></html>'
    )


@dataclass
class World:
    engine: Engine
    cfg: Config
    store: EvidenceStore
    ids: dict[str, int] = field(default_factory=dict)

    def session(self) -> Session:
        return Session(self.engine, expire_on_commit=False)


def _judge(url: str, body: bytes, ctype: str, expected: Expected, badge: Badge | None) -> list[Any]:
    page = Page(url, body, {"Content-Type": ctype})
    for _ in range(6):
        result = run_checks(page, expected)
        if result.final:
            return list(result.verdicts.values())
        for need in result.needs:
            if badge is not None and need.kind is NeedKind.BADGE_SCRIPT:
                page.badge_scripts[need.url] = badge_script(badge)
            elif badge is not None and need.kind is NeedKind.BSZS:
                page.bszs[need.url] = Document(need.url, verify_page(badge))
            else:
                page.mark_failed(need, "not served in this test")
    page.exhausted = True
    return list(run_checks(page, expected).verdicts.values())


def _site_capture(
    s: Session,
    store: EvidenceStore,
    scan: Scan,
    site: Website,
    unit: Unit,
    html: str,
    encoding: str,
    badge: Badge | None,
    screenshot: bool,
) -> None:
    body = html.encode(encoding)
    ctype = f"text/html; charset={encoding}"
    https = site.url.replace("http://", "https://")
    cap = Capture(
        scan_id=scan.id,
        website_id=site.id,
        subject=subject_of(site.id, None),
        url=site.url,
        final_url=https,
        status=200,
        duration=0.21,
        started=scan.started_at,
        http_chain=[
            {"url": site.url, "status": 301, "location": https, "error": ""},
            {"url": https, "status": 200, "location": "", "error": ""},
        ],
        dns={
            "answers": [
                {
                    "qname": site.url.split("/")[2],
                    "rcode": "NOERROR",
                    "error": None,
                    "cname_chain": [],
                    "addresses": ["127.0.0.21"],
                    "elapsed_ms": 1.5,
                }
            ]
        },
        body_blob=store.put(body),
        headers_blob=store.put_json(
            {"url": https, "status": 200, "headers": {"Content-Type": ctype}, "ip": "127.0.0.21"}
        ),
        screenshot_blob=store.put(badge_png("red")) if screenshot else "",
    )
    s.add(cap)
    s.flush()
    expected = Expected(
        UnitKind(unit.kind),
        unit_name=unit.name,
        uscc=unit.uscc or "",
        division_code=unit.office_code,
        site_name=site.name,
        site_url=site.url,
        icp=site.icp,
        badge_code=site.badge_code,
        badge_verify_id=site.badge_verify_id,
    )
    for v in _judge(https, body, ctype, expected, badge):
        s.add(
            Finding(
                scan_id=scan.id,
                website_id=site.id,
                subject=cap.subject,
                check=v.check,
                status=str(v.status),
                reason=v.reason,
                detail=v.detail,
                evidence=[e.to_dict() for e in v.evidence],
                data=_plain(dict(v.data)),
                confirmed=True,
                attempts=2,
                capture_id=cap.id,
            )
        )


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value if isinstance(value, (str, int, float, bool)) or value is None else str(value)


def _domain_finding(s: Session, scan: Scan, dom: Domain, addresses: tuple[str, ...]) -> None:
    answer = DnsResult(
        dom.ascii,
        "NOERROR" if addresses else "NXDOMAIN",
        addresses=addresses,
        nameserver="127.0.0.53",
        elapsed_ms=2.0,
    )
    cap = Capture(
        scan_id=scan.id,
        domain_id=dom.id,
        subject=subject_of(None, dom.id),
        url=f"http://{dom.ascii}/",
        started=scan.started_at,
        dns={
            "answers": [
                {
                    "qname": dom.ascii,
                    "rcode": answer.rcode,
                    "error": None,
                    "cname_chain": [],
                    "addresses": list(addresses),
                    "elapsed_ms": 2.0,
                }
            ]
        },
    )
    s.add(cap)
    s.flush()
    v = classify_dns(answer)
    s.add(
        Finding(
            scan_id=scan.id,
            domain_id=dom.id,
            subject=cap.subject,
            check=v.check,
            status=str(v.status),
            reason=v.reason,
            detail=v.detail,
            evidence=[e.to_dict() for e in v.evidence],
            data=_plain(dict(v.data)),
            confirmed=True,
            attempts=2,
            capture_id=cap.id,
        )
    )


def build_world(tmp: Path, database_url: str | None = None) -> World:
    url = database_url or f"sqlite:///{tmp / 'review.db'}"
    engine = make_engine(url)
    upgrade(engine)
    cfg = Config(
        database_url=url,
        evidence_dir=str(tmp / "evidence"),
        secret_key=SECRET,
        smtp_host="127.0.0.1",
        smtp_port=9,
        sms_url="",
    )
    store = EvidenceStore(cfg.evidence_dir)
    w = World(engine, cfg, store)
    ids = w.ids
    with w.session() as s:
        s.add(Office(code="130000", name="河北省", level="province", roster_count=0))
        s.flush()
        s.add(
            Office(
                code="130600",
                name="保定市",
                parent_code="130000",
                level="city",
                roster_count=10,
                email="bd@bianban.example",
            )
        )
        s.flush()
        s.add_all(
            [
                Office(code="130681", name="涿州市", parent_code="130600", level="county", roster_count=4),
                Office(code="130606", name="莲池区", parent_code="130600", level="county", roster_count=5),
            ]
        )
        s.flush()
        specs = [
            ("edu", "涿州市教育局", "130681", "1"),
            ("health", "涿州市卫生健康局", "130681", "1"),
            ("finance", "莲池区财政局", "130606", "1"),
            ("water", "莲池区水利局", "130606", "1"),
        ]
        units: dict[str, Unit] = {}
        for i, (key, name, office, kind_digit) in enumerate(specs, start=1):
            u = Unit(
                name=name,
                uscc=uscc(kind_digit, office, 100 + i),
                kind=UnitKind.PARTY_GOV.value,
                office_code=office,
                functions_reviewed=True,
                email=f"{key}@unit.example",
                mobile=f"1380000000{i}",
            )
            s.add(u)
            s.flush()
            units[key] = u
            ids[f"unit:{key}"] = u.id
        badges = {
            key: Badge(
                code=f"CA05106{i:04d}4146876{i}0001",  # CA + 21 digits: 05 河北, 106, county, serial
                verify_id=f"{i:02d}" + "ABCDEF0123456789ABCDEF0123456789"[:30],
                kind="党政机关",
                unit_name=units[key].name,
                site_name=units[key].name + "网站",
                domains=(f"{key}.gov.cn",),
            )
            for i, key in enumerate(("edu", "finance", "water"), start=1)
        }
        sites: dict[str, Website] = {}
        for i, key in enumerate(("edu", "health", "finance", "water"), start=1):
            b = badges.get(key)
            site = Website(
                unit_id=units[key].id,
                name=units[key].name + "网站",
                url=f"http://www.{key}.gov.cn/",
                icp=f"冀ICP备{12345670 + i}号-1",
                badge_code=b.code if b else "",
                badge_verify_id=b.verify_id if b else "",
                badge_status="已通过" if b else "未申请",
            )
            s.add(site)
            s.flush()
            sites[key] = site
            ids[f"site:{key}"] = site.id
            dom = Domain(
                name=f"{units[key].name}.政务",
                ascii=f"xn--{key}-test.xn--zfr164b",
                kind=".政务",
                unit_id=units[key].id,
                website_id=site.id,
            )
            s.add(dom)
            s.flush()
            ids[f"domain:{key}"] = dom.id
        now = dt.datetime.now(dt.UTC)
        for n, age in enumerate((8, 1), start=1):
            scan = Scan(
                status="finished",
                started_at=now - dt.timedelta(days=age),
                finished_at=now - dt.timedelta(days=age) + dt.timedelta(hours=1),
                scope={},
            )
            s.add(scan)
            s.flush()
            ids[f"scan:{n}"] = scan.id
            for key, site in sites.items():
                unit = units[key]
                if key == "edu":
                    html, enc = hostile_page(badges["edu"], site.icp), "gbk"
                else:
                    html, enc = plain_page(unit.name, badges.get(key), site.icp), "utf-8"
                _site_capture(
                    s, store, scan, site, unit, html, enc, badges.get(key), screenshot=(key == "edu")
                )
                dom_id = ids[f"domain:{key}"]
                dom = s.get(Domain, dom_id)
                assert dom is not None
                _domain_finding(s, scan, dom, ("127.0.0.21",))
        s.commit()
        # Annual reports: submitted by the units, two of them saying the opposite of what scans show.
        answers = {
            "edu": ("有效", "否"),  # the scans find the badge: field 5 disagrees
            "health": ("有效", "是"),  # no badge on the site: field 5 disagrees
            "finance": ("有效", "是"),
            "water": ("有效", "是"),
        }
        for key, (domains_status, badge) in answers.items():
            unit = units[key]
            report, _ = submit(
                s,
                unit,
                YEAR,
                {
                    "organizer": unit.name,
                    "site_name": unit.name + "网站",
                    "domains_status": domains_status,
                    "functions_reviewed": "是",
                    "badge_displayed": badge,
                },
                "import",
            )
            derive(s, report)
            s.flush()
            ids[f"report:{key}"] = report.id
        hashed = ""
        for key, (code, role) in {
            "zhuozhou": ("130681", "office"),
            "lianchi": ("130606", "office"),
            "baoding": ("130600", "office"),
            "center": (None, "center"),
            "admin": (None, "admin"),
        }.items():
            if not hashed:
                user = create_user(s, key, role, PASSWORD, code)
                hashed = user.password_hash
            else:
                # Argon2 is slow on purpose: the other accounts share the first one's hash (same password).
                user = User(name=key, role=role, office_code=code, password_hash=hashed)
                s.add(user)
                s.flush()
            ids[f"user:{key}"] = user.id
        s.commit()
        # 莲池区财政局's report already passed the office level (taken by the 莲池区 reviewer).
        finance = s.get(type(report), ids["report:finance"])
        assert finance is not None
        transition(s, finance, "office_approve", "lianchi", user_id=ids["user:lianchi"])
        s.commit()
    return w
