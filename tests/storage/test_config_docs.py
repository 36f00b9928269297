"""docs/configuration.md lists every setting of storage.config.Config."""

from __future__ import annotations

import re
from dataclasses import fields
from pathlib import Path

from storage.config import Config

DOC = Path(__file__).resolve().parents[2] / "docs" / "configuration.md"


def test_every_setting_is_documented() -> None:
    documented = set(re.findall(r"^\| `([a-z_]+)` \|", DOC.read_text(encoding="utf-8"), re.MULTILINE))
    settings = {f.name for f in fields(Config)}
    assert settings - documented == set(), "undocumented settings"
    assert documented - settings == set(), "documented settings that do not exist"
