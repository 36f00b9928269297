"""Rule settings the checks take as input (built from the configuration by the caller).

Facts not settled in law (see docs/configuration.md) are settings here, never hard-coded law.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Rules:
    # Compare ICP numbers without the "-n" site index.
    icp_ignore_suffix: bool = False
    # Hosts of CONAC's hosted red pages (网络红页); not found in public material.
    red_page_hosts: tuple[str, ...] = ()
    # A domain expiring within this many days is a warning.
    expiring_days: int = 30
    # The unit's province as a 2-digit GB code when the registry entry carries none.
    default_province_code: str = ""
    # CONAC hosts: badge scripts/images and verification pages.
    conac_script_hosts: tuple[str, ...] = ("dcs.conac.cn",)
    conac_verify_hosts: tuple[str, ...] = ("bszs.conac.cn",)
    # How many sub-resources of each kind the badge check may ask for per page (the crawler also caps
    # the total with Config.max_subresources).
    badge_max_scripts: int = 6
    badge_max_frames: int = 3
    badge_max_images: int = 2
    # Checks the suite skips (names of checks.suite.CHECKS), e.g. ("site_code",).
    disabled_checks: tuple[str, ...] = ()


DEFAULT_RULES = Rules()
