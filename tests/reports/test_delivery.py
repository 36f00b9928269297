"""SMTP (plain, STARTTLS, SSL, login) against aiosmtpd on loopback, and the HTTP SMS gateway client."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from openpyxl import Workbook, load_workbook

from reports.delivery.mail import DeliveryError, SmtpSettings, build_email, send_email
from reports.delivery.sms import SmsSettings, send_sms

from .servers import MailHandler, dropping_server, make_certs, sms_gateway, smtp_server


def _xlsx() -> bytes:
    wb = Workbook()
    ws = wb.active
    assert ws is not None
    ws["A1"] = "易县"
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


def _message(to: str = "office@test.example"):  # type: ignore[no-untyped-def]
    return build_email(
        "badgewatch@test.example",
        to,
        "【网标巡检】测试清单",
        "<p>网站标识缺失</p>",
        "网站标识缺失",
        ("清单.xlsx", _xlsx(), "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"),
    )


@pytest.mark.parametrize("security", ["none", "starttls", "ssl"])
def test_mail_arrives_with_subject_body_and_attachment(security: str, tmp_path: Path) -> None:
    certs = make_certs(tmp_path)
    handler = MailHandler()
    auth = ("bw", "s3cret") if security != "none" else None
    with smtp_server(handler, security=security, certs=certs, auth=auth) as port:
        settings = SmtpSettings(
            "127.0.0.1",
            port,
            "badgewatch@test.example",
            security,
            *(auth or ("", "")),
            ca_file=str(certs.ca),
            timeout_s=10,
        )
        send_email(settings, _message())
    [got] = handler.received
    assert got.rcpt_tos == ["office@test.example"]
    assert got.message["Subject"] == "【网标巡检】测试清单"
    assert got.authenticated == (auth[0] if auth else None)
    html = got.message.get_body(("html",))
    assert html is not None and "网站标识缺失" in html.get_content()
    [att] = list(got.message.iter_attachments())
    assert att.get_filename() == "清单.xlsx"
    wb = load_workbook(io.BytesIO(att.get_content()))
    assert wb.active is not None and wb.active["A1"].value == "易县"


def test_untrusted_certificate_is_refused(tmp_path: Path) -> None:
    certs = make_certs(tmp_path)
    handler = MailHandler()
    with smtp_server(handler, security="starttls", certs=certs) as port:
        settings = SmtpSettings("127.0.0.1", port, "bw@test.example", "starttls", timeout_s=10)  # no CA
        with pytest.raises(DeliveryError, match=r"CERTIFICATE_VERIFY_FAILED|certificate"):
            send_email(settings, _message())
    assert handler.received == []


def test_refusing_and_dropping_servers_raise_delivery_error() -> None:
    with smtp_server(MailHandler(refuse=True)) as port, pytest.raises(DeliveryError, match="554"):
        send_email(SmtpSettings("127.0.0.1", port, "bw@test.example", timeout_s=10), _message())
    with dropping_server() as port, pytest.raises(DeliveryError):
        send_email(SmtpSettings("127.0.0.1", port, "bw@test.example", timeout_s=10), _message())


def test_bad_security_setting_is_named() -> None:
    with pytest.raises(ValueError, match="tls"):
        SmtpSettings("127.0.0.1", 25, "x@y", "tls")


def test_sms_post_and_get_templates() -> None:
    with sms_gateway() as (url, seen):
        send_sms(SmsSettings(url + "/send", "【网标巡检】{unit}：{message}"), "13900000000", "测试 内容&=")
        tmpl = url + "/get?to={mobile}&msg={text}"
        send_sms(SmsSettings(tmpl, ""), "13900000001", "退回：原因 A&B")
    assert seen[0].method == "POST" and seen[0].path == "/send"
    assert seen[0].body == {"mobile": "13900000000", "text": "测试 内容&="}
    assert seen[1].method == "GET" and seen[1].query == {"to": ["13900000001"], "msg": ["退回：原因 A&B"]}
    assert (
        SmsSettings("", "【网标巡检】{unit}：{message}").text("某局", "未通过") == "【网标巡检】某局：未通过"
    )
    with pytest.raises(ValueError, match="sms_template"):
        SmsSettings("", "{nope}").text("a", "b")


def test_sms_gateway_errors_are_delivery_errors() -> None:
    with sms_gateway(status=500) as (url, seen), pytest.raises(DeliveryError, match="500"):
        send_sms(SmsSettings(url, ""), "13900000000", "x")
    assert len(seen) == 1
    with dropping_server() as port, pytest.raises(DeliveryError):
        send_sms(SmsSettings(f"http://127.0.0.1:{port}/", ""), "13900000000", "x")
    with pytest.raises(DeliveryError, match="SMS_URL"):
        send_sms(SmsSettings("", ""), "1", "x")
