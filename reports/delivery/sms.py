"""SMS through an HTTP gateway.

``sms_url`` either contains ``{mobile}`` and ``{text}`` placeholders (filled in URL-encoded and
requested with GET), or is a plain URL that receives a POST of JSON ``{"mobile": …, "text": …}``.
The text comes from ``sms_template`` (``{unit}``, ``{message}``). Any 2xx answer counts as accepted.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass

from reports.delivery.mail import DeliveryError
from storage.config import Config


@dataclass(frozen=True, slots=True)
class SmsSettings:
    url: str
    template: str
    timeout_s: float = 15.0

    @classmethod
    def from_config(cls, cfg: Config) -> SmsSettings:
        return cls(cfg.sms_url, cfg.sms_template, max(cfg.timeout_s, 5.0))

    def text(self, unit: str, message: str) -> str:
        try:
            return self.template.format(unit=unit, message=message)
        except (KeyError, IndexError, ValueError) as exc:
            raise ValueError(f"短信模板 sms_template 无效（可用 {{unit}}、{{message}}）：{exc}") from exc


def send_sms(settings: SmsSettings, mobile: str, text: str) -> str:
    """Send one SMS; returns the gateway's answer, raises :class:`DeliveryError` when not accepted."""
    if not settings.url:
        raise DeliveryError("未配置短信网关地址（BADGEWATCH_SMS_URL）")
    if "{mobile}" in settings.url or "{text}" in settings.url:
        url = settings.url.replace("{mobile}", urllib.parse.quote(mobile, safe="")).replace(
            "{text}", urllib.parse.quote(text, safe="")
        )
        request = urllib.request.Request(url, method="GET")
    else:
        body = json.dumps({"mobile": mobile, "text": text}, ensure_ascii=False).encode("utf-8")
        request = urllib.request.Request(
            settings.url,
            data=body,
            method="POST",
            headers={"Content-Type": "application/json; charset=utf-8"},
        )
    try:
        # No proxies: the gateway is addressed directly (and tests must never leave loopback).
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        with opener.open(request, timeout=settings.timeout_s) as resp:
            answer: bytes = resp.read(4096)
            return answer.decode("utf-8", "replace")
    except urllib.error.HTTPError as exc:
        raise DeliveryError(
            f"短信网关返回 HTTP {exc.code}: {exc.read(500).decode('utf-8', 'replace')}"
        ) from exc
    except (urllib.error.URLError, OSError) as exc:
        raise DeliveryError(f"短信网关无法访问: {exc}") from exc
