"""Settings of ``scrapy crawl sites`` (``scrapy.cfg`` names this module): the settings ``badgewatch scan``
uses (:func:`crawler.settings.build_settings`), from ``badgewatch.toml`` / ``BADGEWATCH_*`` of the
working directory, as module-level names as Scrapy reads them.

Scrapy imports this module before any command of ours runs, so the configuration is loaded here, at
import: a configuration that cannot be used stops ``scrapy crawl`` with its message (never a scan with
default settings against the wrong database).
"""

from __future__ import annotations

import sys

from crawler.settings import build_settings
from storage.config import Config, ConfigError

try:
    _SETTINGS = build_settings(Config.load())
except ConfigError as exc:
    sys.exit(f"badgewatch 配置无法使用：{exc}")

globals().update(_SETTINGS)
