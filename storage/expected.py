"""Registry rows → :class:`checks.expected.Expected`, the facts a check compares a page against."""

from __future__ import annotations

from checks.expected import Expected, UnitKind
from storage.models import DomainKind, Website


def expected_for(website: Website) -> Expected:
    """The registry facts of ``website`` (its unit, the unit's office and the site's domains).

    The website's ``unit`` and ``domains`` relationships are read, so load them eagerly when building
    many (``selectinload(Website.unit), selectinload(Website.domains)``).
    """
    unit = website.unit
    return Expected(
        unit_kind=UnitKind(unit.kind),
        unit_name=unit.name,
        uscc=unit.uscc or "",
        division_code=unit.office_code,
        site_name=website.name,
        site_url=website.url,
        icp=website.icp,
        police_record=website.police_record,
        site_code=website.site_code,
        badge_code=website.badge_code,
        badge_verify_id=website.badge_verify_id,
        cn_domains=tuple(sorted(d.name for d in website.domains if d.kind != DomainKind.ENGLISH)),
        en_domains=tuple(sorted(d.name for d in website.domains if d.kind == DomainKind.ENGLISH)),
        is_government_site=website.is_government_site,
        red_page=website.red_page,
    )
