"""What the registry says about a site: the facts a check compares the page against."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class UnitKind(StrEnum):
    """Kinds of unit, written as users write them."""

    PARTY_GOV = "党政机关"
    INSTITUTION = "事业单位"
    SOCIAL = "社会组织"


@dataclass(frozen=True, slots=True)
class Expected:
    """Registry facts for one website.

    ``unit_kind`` is None only when nobody said (``badgewatch inspect`` without ``--kind`` or a registry
    entry): the badge's kind is then reported, not judged. ``division_code`` is the 6-digit GB division
    code of the unit's office (its first two digits give the province). ``is_government_site`` marks
    政府网站 (those need a 标识码); None when it is not known (no registry entry), so the 标识码
    requirement is not judged either.
    """

    unit_kind: UnitKind | None
    unit_name: str = ""
    uscc: str = ""
    division_code: str = ""
    site_name: str = ""
    site_url: str = ""
    icp: str = ""
    police_record: str = ""
    site_code: str = ""
    badge_code: str = ""
    badge_verify_id: str = ""
    cn_domains: tuple[str, ...] = ()
    en_domains: tuple[str, ...] = ()
    is_government_site: bool | None = False
    red_page: bool = False

    @property
    def province_code(self) -> str:
        return self.division_code[:2]
