"""Configuration: the one source of truth for settings.

Values come from defaults, then ``badgewatch.toml`` (working directory or ``--config``), then
``BADGEWATCH_*`` environment variables (``BADGEWATCH_DATABASE_URL`` overrides ``database_url``).
Every setting is a field of :class:`Config`; ``docs/configuration.md`` lists them.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import MISSING, dataclass, field, fields
from pathlib import Path
from typing import Any

from checks.errors import InputError


class ConfigError(InputError, ValueError):
    """A configuration file or variable that cannot be used (says which and why)."""


@dataclass
class Config:
    database_url: str = "sqlite:///badgewatch.db"
    # Nameservers as "host:port" (port 53 if omitted); empty = the system resolver.
    nameservers: list[str] = field(default_factory=list)
    evidence_dir: str = "evidence"
    evidence_retention_days: int = 400
    redis_url: str = "redis://127.0.0.1:6379/0"
    # Prefix of every Redis key of distributed scans (several installations may share one Redis).
    redis_prefix: str = "badgewatch:"
    # Seconds a worker's lease on a subject lasts without renewal (a killed worker's subjects go
    # back to the frontier after this).
    lease_timeout_s: float = 60.0
    # Ports used for bare http:// and https:// URLs (simnet runs on unprivileged ports).
    http_port: int = 80
    https_port: int = 443
    # Allow fetching loopback/private targets (only the simnet configuration does).
    allow_private: bool = False
    # Private networks (CIDR) that may be fetched all the same, e.g. an intranet hosting platform.
    allow_networks: list[str] = field(default_factory=list)
    # CA bundle to trust in addition to the system one (the simnet CA).
    ca_file: str = ""
    # PEM bundle of known intermediate CA certificates (not trusted: used only to complete the chain
    # of a server that does not send its intermediate, as browsers do with their caches).
    intermediates_file: str = ""
    user_agent: str = "badgewatch/0.1 (+https://xn--zfr164b/badgewatch; 网标巡检)"
    concurrency: int = 256
    per_ip_concurrency: int = 8
    # Requests per minute per server address (0: no rate, concurrency only). Consolidation platforms
    # count a client's requests over all their sites (typically 60–300 a minute, then a ban).
    per_ip_rate_per_min: float = 120.0
    # The rate an address that pushes back (429/503, resets, block pages) is never slowed below.
    per_ip_min_rate_per_min: float = 6.0
    # Seconds an address that banned the scanner is left alone (doubling while bans repeat, at most
    # ban_max_s; a Retry-After header says how long instead).
    ban_backoff_s: float = 600.0
    # The longest one ban is waited out (Retry-After included): a site that always answers 429 must not
    # hold the night's end for hours (after three bans the scan stops waiting for the address).
    ban_max_s: float = 1800.0
    # Requests per minute to CONAC's hosts (badge scripts, verification pages): every site's come from
    # them (0: the per-address rate applies).
    conac_rate_per_min: float = 1800.0
    # Keep CONAC's answers (badge scripts, verification pages, badge images) across scans, in the
    # database (shared by distributed workers) with bodies in the evidence store (false: never).
    conac_cache: bool = True
    # Hours a kept answer is used without asking CONAC at all; after that it is revalidated with a
    # conditional request (304: reused). 36: every other night with nightly scans, whatever the start
    # times; a revoked badge or a changed registration shows within 36 h. 0: revalidate on every use.
    conac_cache_max_age_h: float = 36.0
    timeout_s: float = 15.0
    dns_timeout_s: float = 5.0
    max_body_bytes: int = 5 * 1024 * 1024
    # The vantage check (crawler/vantage.py, docs/deployment.md): reference sites fetched before a scan
    # starts (empty: no check). When fewer than vantage_min_ok of them (a fraction; 0: report only) answer
    # within vantage_timeout_s, the scan does not start: this machine does not see what visitors see.
    vantage_urls: list[str] = field(default_factory=list)
    vantage_min_ok: float = 0.5
    vantage_timeout_s: float = 10.0
    max_subresources: int = 8
    confirm_attempts: int = 2
    # Seconds before a failure is tried again in the same scan (the quick retry: it separates transient
    # failures from stable ones and counts as one visit).
    confirm_delay_s: float = 2.0
    # Hours that must lie between the first and the last of the visits a failure was seen on before it
    # is confirmed (listed, notified, counted in annual fields). 20: the next night's scan confirms; 4:
    # a second pass later the same night (the scheduler runs it); 0: the quick retry confirms at once.
    confirm_interval_h: float = 20.0
    render: str = "auto"
    chromium_path: str = "/usr/bin/chromium"
    # --- check rules: every field of checks.rules.Rules (crawler/checking.py: rules_from_config) ---------
    # Hosts of CONAC's hosted "red pages" (网络红页): not confirmed from public material, so configurable.
    red_page_hosts: list[str] = field(default_factory=list)
    # Compare ICP numbers without the "-n" site index.
    icp_ignore_suffix: bool = False
    # The unit's province (2-digit GB code) when its registry entry carries none (default_province_code).
    province_code: str = "13"
    # A domain expiring within this many days is a warning.
    expiring_days: int = 30
    # CONAC's hosts: badge scripts and images; verification pages.
    conac_script_hosts: list[str] = field(default_factory=lambda: ["dcs.conac.cn"])
    conac_verify_hosts: list[str] = field(default_factory=lambda: ["bszs.conac.cn"])
    # Sub-resources of each kind the badge check may ask for per page (max_subresources caps the total).
    badge_max_scripts: int = 6
    badge_max_frames: int = 3
    badge_max_images: int = 2
    # Checks switched off, by name (badge, icp, police, site_code).
    disabled_checks: list[str] = field(default_factory=list)
    # --- end of check rules -------------------------------------------------------------------------------
    smtp_host: str = "127.0.0.1"
    smtp_port: int = 25
    smtp_user: str = ""
    smtp_password: str = ""
    smtp_security: str = "none"  # none | starttls | ssl
    smtp_from: str = "badgewatch@localhost"
    sms_url: str = ""
    sms_template: str = "【网标巡检】{unit}：{message}"
    center_email: str = ""
    secret_key: str = ""
    # The console (review/): host names it answers to (the Host header; empty: loopback names only, and
    # `serve` beyond loopback refuses to start), the reverse proxies whose X-Forwarded-For/-Proto it
    # believes (addresses or networks), session and API token lifetimes, login throttling (failures in
    # login_window_s per address group and account, per address group, per account across addresses)
    # and the most Argon2 password checks run at once (each takes 64 MiB).
    console_hosts: list[str] = field(default_factory=list)
    forwarded_allow_ips: list[str] = field(default_factory=list)
    session_hours: float = 8.0
    api_token_days: int = 90
    login_window_s: float = 900.0
    login_max_per_account_address: int = 5
    login_max_per_address: int = 20
    login_max_per_account: int = 30
    password_checks_max: int = 2
    # --- what officials read (lists, e-mails, console): issue 16 -----------------------------------
    # Zone every time is shown in (IANA name; storage/timefmt.py). Asia/Shanghai prints 北京时间.
    timezone: str = "Asia/Shanghai"
    # The organisation the lists and e-mails come from (their signature), e.g. "河北省机构编制网络管理中心".
    organisation: str = "网上名称管理域名中心"
    # Days an office has to act on a list (the deadline in its e-mail and title page; 0: no deadline).
    rectify_days: int = 15
    # Whom an office asks about a list: a name, a telephone, an address (the lists' 联系人 line).
    contact_text: str = ""
    # The console's address as offices reach it, for the evidence links of lists and e-mails
    # (e.g. "https://wbxj.example.gov.cn"); empty: the lists cite evidence numbers without links.
    console_url: str = ""
    # Marked screenshots of confirmed page-check failures (crawler/screenshots.py): at most this many
    # captures per run (0: none), and how often one whose page would not render is tried again.
    screenshot_limit: int = 500
    screenshot_attempts: int = 2

    @classmethod
    def load(cls, path: str | Path | None = None, env: dict[str, str] | None = None) -> Config:
        """Defaults, then the TOML file (if any), then ``BADGEWATCH_*`` variables."""
        env = dict(os.environ) if env is None else env
        values: dict[str, Any] = {}
        file = Path(path) if path else Path("badgewatch.toml")
        if path and not file.exists():
            raise ConfigError(f"配置文件不存在: {file}")
        if file.exists():
            try:
                raw = tomllib.loads(file.read_text(encoding="utf-8"))
            except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
                raise ConfigError(f"配置文件 {file} 无法读取: {exc}") from exc
            values.update(raw.get("badgewatch", raw))
        known = {f.name: f for f in fields(cls)}
        for key in values:
            if key not in known:
                raise ConfigError(f"配置文件 {file} 中有未知的设置项: {key}")
        for name, f in known.items():
            var = "BADGEWATCH_" + name.upper()
            if var in env:
                default = f.default_factory() if f.default is MISSING else f.default  # type: ignore[operator]
                values[name] = _coerce(var, env[var], default)
        return cls(**values)

    def nameserver_addrs(self) -> list[tuple[str, int]]:
        out = []
        for ns in self.nameservers:
            host, sep, port = ns.rpartition(":")
            if not sep or ":" in host:  # bare host, or an IPv6 address without a port
                host, port = ns, "53"
            out.append((host, int(port)))
        return out


def _coerce(var: str, raw: str, default: Any) -> Any:
    try:
        if isinstance(default, bool):
            if raw.lower() in ("1", "true", "yes", "on"):
                return True
            if raw.lower() in ("0", "false", "no", "off", ""):
                return False
            raise ValueError(raw)
        if isinstance(default, int):
            return int(raw)
        if isinstance(default, float):
            return float(raw)
        if isinstance(default, list):
            return [p.strip() for p in raw.replace(";", ",").split(",") if p.strip()]
    except ValueError as exc:
        raise ConfigError(f"环境变量 {var} 的值无效: {raw!r}") from exc
    return raw
