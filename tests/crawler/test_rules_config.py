"""Every check rule is a setting, and a setting no check can use is refused with its name."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import fields
from pathlib import Path

import pytest

from checks.rules import Rules
from crawler.checking import rules_from_config
from storage.config import Config, ConfigError

ROOT = Path(__file__).resolve().parents[2]

# Config's name for each Rules field where the two differ.
RENAMED = {"default_province_code": "province_code"}


def test_every_rule_comes_from_the_configuration() -> None:
    env = {
        "BADGEWATCH_ICP_IGNORE_SUFFIX": "true",
        "BADGEWATCH_RED_PAGE_HOSTS": "Red.Example.cn",
        "BADGEWATCH_EXPIRING_DAYS": "45",
        "BADGEWATCH_PROVINCE_CODE": "11",
        "BADGEWATCH_CONAC_SCRIPT_HOSTS": "dcs.conac.example",
        "BADGEWATCH_CONAC_VERIFY_HOSTS": "bszs.conac.example,bszs2.conac.example",
        "BADGEWATCH_BADGE_MAX_SCRIPTS": "4",
        "BADGEWATCH_BADGE_MAX_FRAMES": "1",
        "BADGEWATCH_BADGE_MAX_IMAGES": "5",
        "BADGEWATCH_DISABLED_CHECKS": "site_code",
    }
    rules = rules_from_config(Config.load(env=env))
    assert rules == Rules(
        icp_ignore_suffix=True,
        red_page_hosts=("red.example.cn",),
        expiring_days=45,
        default_province_code="11",
        conac_script_hosts=("dcs.conac.example",),
        conac_verify_hosts=("bszs.conac.example", "bszs2.conac.example"),
        badge_max_scripts=4,
        badge_max_frames=1,
        badge_max_images=5,
        disabled_checks=("site_code",),
    )
    # Each of them differs from its default: none was left at Rules' own value.
    default = Rules()
    assert [f.name for f in fields(Rules) if getattr(rules, f.name) == getattr(default, f.name)] == []
    names = {f.name for f in fields(Config)}
    assert {RENAMED.get(f.name, f.name) for f in fields(Rules)} <= names


def test_the_defaults_are_the_rules_defaults() -> None:
    assert rules_from_config(Config(province_code="")) == Rules()


@pytest.mark.parametrize(
    ("env", "words"),
    [
        ({"BADGEWATCH_DISABLED_CHECKS": "bagde"}, ["disabled_checks", "bagde", "badge"]),
        ({"BADGEWATCH_BADGE_MAX_SCRIPTS": "-1"}, ["badge_max_scripts"]),
    ],
)
def test_a_rule_no_check_can_use_is_refused(env: dict[str, str], words: list[str]) -> None:
    with pytest.raises(ConfigError) as err:
        rules_from_config(Config.load(env=env))
    for word in words:
        assert word in str(err.value)


def _python(cwd: Path, env: dict[str, str], code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code], cwd=cwd, env=env, capture_output=True, text=True, timeout=120
    )


def test_scrapy_crawl_stops_on_a_broken_configuration(tmp_path: Path) -> None:
    """``scrapy crawl sites`` reads its settings at import: a broken badgewatch.toml stops it with
    the file's name, never falls back to default settings (another database)."""
    (tmp_path / "badgewatch.toml").write_text("database_url = [unclosed\n", encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith("BADGEWATCH_")}
    env["PYTHONPATH"] = str(ROOT)
    proc = _python(tmp_path, env, "import crawler.scrapy_project")
    assert proc.returncode != 0
    assert "配置" in proc.stderr and "badgewatch.toml" in proc.stderr
    assert "Traceback" not in proc.stderr

    (tmp_path / "badgewatch.toml").write_text('database_url = "sqlite:///x.db"\n', encoding="utf-8")
    proc = _python(tmp_path, env, "import crawler.scrapy_project as s; print(s.BOT_NAME, s.CONCURRENT_ITEMS)")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["badgewatch", "1"]
