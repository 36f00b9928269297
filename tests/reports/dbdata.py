"""Building registries, scans and findings in a real database for report tests."""

from __future__ import annotations

import datetime as dt
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from itertools import count
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from checks.reasons import describe
from storage.db import make_engine, upgrade
from storage.models import Domain, Finding, Office, Scan, Unit, Website, subject_of

from .seed import CODES, seed_table

_ids = count(1)
_USCC_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"


def uscc(kind_digit: str, division: str, serial: int) -> str:
    """A valid USCC (GB 32100-2015 check character) for a test unit."""
    body = "1" + kind_digit + division + f"{serial:09d}"
    weights = [pow(3, i, 31) for i in range(17)]
    total = sum(_USCC_ALPHABET.index(c) * w for c, w in zip(body, weights, strict=True))
    return body + _USCC_ALPHABET[(31 - total % 31) % 31]


_TEMPLATE: list[Path] = []


def new_engine(url: str) -> Engine:
    """A migrated database at ``url``; SQLite files are copied from one migrated template (fast)."""
    if url.startswith("sqlite:///") and not url.endswith(":memory:"):
        target = Path(url.removeprefix("sqlite:///"))
        if not _TEMPLATE:
            template = Path(tempfile.mkdtemp(prefix="bw-reports-")) / "template.db"
            engine = make_engine(f"sqlite:///{template}")
            upgrade(engine)
            with engine.connect() as conn:
                conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
            engine.dispose()
            _TEMPLATE.append(template)
        shutil.copyfile(_TEMPLATE[0], target)
        return make_engine(url)
    engine = make_engine(url)
    upgrade(engine)
    return engine


@contextmanager
def session(engine: Engine) -> Iterator[Session]:
    with Session(engine, expire_on_commit=False) as s:
        yield s
        s.commit()


def build_baoding(engine: Engine) -> None:
    """保定市 and its sub-offices with a registry whose figures are those of the seed's 附件1.

    Noise the counting rules must ignore is added to every row: a 社会组织 with a .公益 domain,
    an English domain, a red page with an approved badge and a site whose badge is still 审核中.
    """
    table = seed_table()
    units: list[dict[str, object]] = []
    domains: list[dict[str, object]] = []
    sites: list[dict[str, object]] = []
    with session(engine) as s:
        s.add(Office(code="130000", name="河北省", parent_code=None, level="province", roster_count=0))
        s.flush()
        s.add(
            Office(
                code="130600",
                name="保定市",
                parent_code="130000",
                level="city",
                roster_count=table.rows["市直"]["institutions"],
            )
        )
        s.flush()
        for name, v in table.rows.items():
            if name == "市直":
                continue
            s.add(
                Office(
                    code=CODES[name],
                    name=name,
                    parent_code="130600",
                    level="county",
                    roster_count=v["institutions"],
                )
            )
        s.flush()
    for name, v in table.rows.items():
        code = CODES[name]
        n_units = max(v["institutions"], v["registered_units"]) + 0
        first = next(_ids)
        ids = [first] + [next(_ids) for _ in range(n_units - 1)]
        for i, uid in enumerate(ids):
            kind = "党政机关" if i % 2 == 0 else "事业单位"
            units.append(
                {
                    "id": uid,
                    "name": f"{name}测试单位{i}",
                    "kind": kind,
                    "office_code": code,
                    "uscc": uscc("1" if kind == "党政机关" else "2", code, uid),
                }
            )
        # Registered units hold one Chinese domain each; the extra domains go to the first of them.
        registered = ids[: v["registered_units"]]
        extra = v["domains"] - v["registered_units"]
        for i, uid in enumerate(registered):
            for j in range(1 + (1 if i < extra else 0)):
                suffix = "xn--zfr164b" if i % 2 == 0 else "xn--55qw42g"
                domains.append(
                    {
                        "name": f"u{uid}-{j}.{'政务' if i % 2 == 0 else '公益'}",
                        "ascii": f"u{uid}-{j}.{suffix}",
                        "kind": ".政务" if i % 2 == 0 else ".公益",
                        "unit_id": uid,
                    }
                )
        party = [u for k, u in enumerate(ids) if k % 2 == 0]
        inst = [u for k, u in enumerate(ids) if k % 2 == 1]
        for count_, owners in ((v["party_badges"], party), (v["institution_badges"], inst)):
            for k in range(count_):
                uid = owners[k % len(owners)]
                sites.append(
                    {
                        "unit_id": uid,
                        "name": f"网站{uid}-{k}",
                        "url": f"http://s{uid}-{k}.example.gov.cn/",
                        "badge_status": "已通过",
                        "red_page": False,
                    }
                )
        # Noise.
        social = next(_ids)
        units.append(
            {
                "id": social,
                "name": f"{name}某协会",
                "kind": "社会组织",
                "office_code": code,
                "uscc": uscc("9", code, social),
            }
        )
        domains.append(
            {"name": f"s{social}.公益", "ascii": f"s{social}.xn--55qw42g", "kind": ".公益", "unit_id": social}
        )
        domains.append(
            {"name": f"e{ids[0]}.gov.cn", "ascii": f"e{ids[0]}.gov.cn", "kind": "英文", "unit_id": ids[0]}
        )
        sites.append(
            {
                "unit_id": ids[0],
                "name": "红页",
                "url": f"http://red{ids[0]}.example/",
                "badge_status": "已通过",
                "red_page": True,
            }
        )
        sites.append(
            {
                "unit_id": ids[-1],
                "name": "审核中",
                "url": f"http://p{ids[-1]}.example/",
                "badge_status": "审核中",
                "red_page": False,
            }
        )
    with engine.begin() as conn:
        conn.execute(sa.insert(Unit), units)
        conn.execute(sa.insert(Domain), domains)
        conn.execute(sa.insert(Website), sites)


@dataclass
class World:
    """A small registry for list, annual-report and notification tests."""

    engine: Engine
    office_codes: tuple[str, str, str]


def small_world(engine: Engine) -> World:
    """One city (130600) with two counties; each office one 党政机关 unit with a site and a .政务 domain."""
    with session(engine) as s:
        s.add(
            Office(
                code="130600",
                name="保定市",
                level="city",
                roster_count=10,
                email="city@office.test",
                mobile="13800000000",
            )
        )
        s.flush()
        s.add_all(
            [
                Office(
                    code="130621",
                    name="满城县",
                    parent_code="130600",
                    level="county",
                    roster_count=5,
                    email="mancheng@office.test",
                    mobile="13800000001",
                ),
                Office(
                    code="130633",
                    name="易县",
                    parent_code="130600",
                    level="county",
                    roster_count=5,
                    email="yixian@office.test",
                    mobile="13800000002",
                ),
            ]
        )
        s.flush()
        for i, code in enumerate(("130600", "130621", "130633")):
            u = Unit(
                name=f"单位{code}",
                kind="党政机关",
                office_code=code,
                uscc=uscc("1", code, i + 1),
                email=f"unit{code}@unit.test",
                mobile=f"1390000000{i}",
            )
            s.add(u)
            s.flush()
            w = Website(
                unit_id=u.id,
                name=f"网站{code}",
                url=f"http://www{code}.example.gov.cn/",
                badge_status="已通过",
            )
            s.add(w)
            s.flush()
            s.add(
                Domain(
                    name=f"单位{code}.政务",
                    ascii=f"d{code}.xn--zfr164b",
                    kind=".政务",
                    unit_id=u.id,
                    website_id=w.id,
                )
            )
    return World(engine, ("130600", "130621", "130633"))


def add_scan(engine: Engine, started: dt.datetime, findings: list[tuple[str, str, str, bool]]) -> int:
    """A finished scan with findings ``(unit office code, reason, status, confirmed)``.

    ``status`` may differ from the reason's catalogue status only if given explicitly; the check
    name is the reason's prefix. Site checks attach to the unit's website, dns/domain/usage to its
    Chinese domain.
    """
    with session(engine) as s:
        scan = Scan(status="finished", started_at=started, finished_at=started + dt.timedelta(hours=1))
        s.add(scan)
        s.flush()
        for code, reason, status, confirmed in findings:
            describe(reason)
            unit = s.scalars(sa.select(Unit).where(Unit.office_code == code, Unit.kind == "党政机关")).first()
            assert unit is not None
            check = reason.split(".")[0]
            if check in ("dns", "domain", "usage"):
                dom = unit.domains[0]
                site_id, dom_id = None, dom.id
            else:
                site_id, dom_id = unit.websites[0].id, None
            s.add(
                Finding(
                    scan_id=scan.id,
                    website_id=site_id,
                    domain_id=dom_id,
                    subject=subject_of(site_id, dom_id),
                    check=check,
                    status=status,
                    reason=reason,
                    confirmed=confirmed,
                    detail=f"detail {reason}",
                )
            )
        return scan.id
