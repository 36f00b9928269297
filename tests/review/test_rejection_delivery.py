"""A rejection in the console reaches the unit: a real SMTP server and SMS gateway on loopback."""

from __future__ import annotations

import email
import email.policy
import http.server
import json
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any, ClassVar

import pytest
import sqlalchemy as sa
from aiosmtpd.controller import Controller

from storage.models import Notification

from .conftest import Served, csrf_of, serve
from .world import build_world


class _Inbox:
    def __init__(self) -> None:
        self.messages: list[tuple[list[str], bytes]] = []

    async def handle_DATA(self, _server: Any, _session: Any, envelope: Any) -> str:
        self.messages.append((list(envelope.rcpt_tos), bytes(envelope.content)))
        return "250 OK"


class _Gateway(http.server.BaseHTTPRequestHandler):
    received: ClassVar[list[dict[str, str]]] = []

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", "0"))
        _Gateway.received.append(json.loads(self.rfile.read(length)))
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"OK")

    def log_message(self, *_args: object) -> None:
        pass


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def delivering(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Served, _Inbox]]:
    inbox = _Inbox()
    smtp = Controller(inbox, hostname="127.0.0.1", port=_port())
    smtp.start()
    gateway = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Gateway)
    threading.Thread(target=gateway.serve_forever, daemon=True).start()
    world = build_world(tmp_path_factory.mktemp("review-delivery"))
    world.cfg.smtp_port = smtp.port
    world.cfg.sms_url = f"http://127.0.0.1:{gateway.server_address[1]}/sms"
    try:
        for base in serve(world):
            yield Served(world, base), inbox
    finally:
        gateway.shutdown()
        smtp.stop()


def test_rejected_unit_gets_email_and_sms(delivering: tuple[Served, _Inbox]) -> None:
    served, inbox = delivering
    w = served.world
    rid = w.ids["report:health"]
    c = served.login("baoding")
    page = c.get(f"/reports/{rid}")
    reason = "网站未加挂网站标识，字段5填报“是”不实"
    r = c.post(
        f"/reports/{rid}/decision",
        data={"decision": "reject", "reason": reason, "csrf_token": csrf_of(page.text), "version": "1"},
        headers={"Origin": served.base},
    )
    assert r.status_code == 303
    deadline = time.monotonic() + 30
    while (len(inbox.messages) < 1 or not _Gateway.received) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert [m[0] for m in inbox.messages] == [["health@unit.example"]]
    msg = email.message_from_bytes(inbox.messages[0][1], policy=email.policy.default)
    assert "涿州市卫生健康局" in str(msg["Subject"])
    body = msg.get_body(preferencelist=("plain", "html"))
    assert body is not None and reason in body.get_content()
    assert [(m["mobile"], reason in m["text"]) for m in _Gateway.received] == [("13800000002", True)]
    with w.session() as s:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            statuses = sorted(s.scalars(sa.select(Notification.status).where(Notification.report_id == rid)))
            if statuses == ["sent", "sent"]:
                break
            s.expire_all()
            time.sleep(0.1)
        assert statuses == ["sent", "sent"]
    c.close()
