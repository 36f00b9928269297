"""Times as officials read them: one helper, one ``timezone`` setting, Beijing time by default."""

from __future__ import annotations

import datetime as dt

import pytest

from storage.config import Config, ConfigError
from storage.timefmt import TimezoneError, fmt_date, fmt_time, local_date, zone_label

LATE = dt.datetime(2026, 11, 30, 17, 30, tzinfo=dt.UTC)  # 01:30 the next morning in Beijing


def test_default_is_beijing_time_with_its_name() -> None:
    assert Config().timezone == "Asia/Shanghai"
    assert fmt_time(LATE) == "2026-12-01 01:30"
    assert fmt_time(LATE, seconds=True, label=True) == "2026-12-01 01:30:00（北京时间）"
    assert fmt_date(LATE) == "2026年12月1日" and local_date(LATE) == dt.date(2026, 12, 1)
    assert fmt_time(None) == "" and fmt_date(dt.date(2026, 1, 2)) == "2026年1月2日"
    # A naive value is read as the database stores it: UTC.
    assert fmt_time(LATE.replace(tzinfo=None)) == "2026-12-01 01:30"


def test_another_zone_is_named_and_a_bad_one_is_refused() -> None:
    assert (
        fmt_time(LATE, "Asia/Urumqi") == "2026-11-30 23:30" and zone_label("Asia/Urumqi") == "Asia/Urumqi时间"
    )
    cfg = Config.load(env={"BADGEWATCH_TIMEZONE": "Europe/Berlin"})
    assert fmt_time(LATE, cfg.timezone, label=True) == "2026-11-30 18:30（Europe/Berlin时间）"
    with pytest.raises(TimezoneError, match="Mars/Olympus"):
        fmt_time(LATE, "Mars/Olympus")
    with pytest.raises(ConfigError):
        Config.load(env={"BADGEWATCH_RECTIFY_DAYS": "two weeks"})
