"""Times as officials read them: in the configured zone (``timezone`` setting, default Beijing time).

The database keeps timezone-aware UTC (:mod:`storage.types`); every surface an official reads (console,
lists, e-mails, terminal summaries) formats through :func:`fmt_time` so that one setting decides the
zone everywhere and no page says "UTC". ISO strings in ``--json`` output stay as they are.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

DEFAULT_TIMEZONE = "Asia/Shanghai"
# Zones whose clocks read Beijing time all year (what officials call 北京时间).
_BEIJING = {"Asia/Shanghai", "Asia/Chongqing", "Asia/Chungking", "Asia/Harbin", "PRC"}


class TimezoneError(ValueError):
    """The ``timezone`` setting names no known zone."""


@lru_cache(maxsize=32)
def zone(name: str = DEFAULT_TIMEZONE) -> ZoneInfo:
    """The zone called ``name`` (an IANA name such as ``Asia/Shanghai``)."""
    try:
        return ZoneInfo(name or DEFAULT_TIMEZONE)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise TimezoneError(f"时区设置 timezone 无效：{name!r}（应为 Asia/Shanghai 这样的时区名）") from exc


def zone_label(name: str = DEFAULT_TIMEZONE) -> str:
    """How the zone is named beside a time: 北京时间 for China's zone, else the zone's name."""
    return "北京时间" if (name or DEFAULT_TIMEZONE) in _BEIJING else f"{name}时间"


def local(at: datetime, tz: str = DEFAULT_TIMEZONE) -> datetime:
    """``at`` in the zone ``tz`` (a naive value is taken as UTC, as the database stores it)."""
    if at.tzinfo is None:
        at = at.replace(tzinfo=UTC)
    return at.astimezone(zone(tz))


def fmt_time(
    at: datetime | date | None, tz: str = DEFAULT_TIMEZONE, *, seconds: bool = False, label: bool = False
) -> str:
    """``2026-12-04 23:05`` in the zone ``tz`` ("" when ``at`` is None); with ``label``, followed by the
    zone's name (``（北京时间）``). A plain date prints as it is."""
    if at is None:
        return ""
    if not isinstance(at, datetime):
        return at.isoformat()
    text = local(at, tz).strftime("%Y-%m-%d %H:%M:%S" if seconds else "%Y-%m-%d %H:%M")
    return f"{text}（{zone_label(tz)}）" if label else text


def fmt_date(at: datetime | date | None, tz: str = DEFAULT_TIMEZONE) -> str:
    """The calendar day of ``at`` in the zone ``tz``, written ``2026年12月4日`` ("" when None)."""
    if at is None:
        return ""
    day = local(at, tz).date() if isinstance(at, datetime) else at
    return f"{day.year}年{day.month}月{day.day}日"


def local_date(at: datetime, tz: str = DEFAULT_TIMEZONE) -> date:
    """The calendar day of ``at`` in the zone ``tz`` (a scan started at 17:30 UTC ran the next day)."""
    return local(at, tz).date()
