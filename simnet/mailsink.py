"""A mail server of the simulated internet: SMTP on loopback that keeps every message as a ``.eml`` file.

Used by ``badgewatch demo`` so delivery runs for real (SMTP over a socket) without reaching anyone.
"""

from __future__ import annotations

import socket
from pathlib import Path
from types import TracebackType
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session


class _Keep:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.count = 0

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        self.count += 1
        rcpt = "_".join(str(r) for r in envelope.rcpt_tos)[:80].replace("/", "_")
        data: Any = envelope.original_content or envelope.content or b""
        (self.directory / f"{self.count:04d}-{rcpt}.eml").write_bytes(
            data if isinstance(data, bytes) else str(data).encode()
        )
        return "250 OK"


class MailSink:
    """Context manager: an SMTP server on 127.0.0.1 (ephemeral port) writing messages into ``directory``."""

    def __init__(self, directory: str | Path, host: str = "127.0.0.1") -> None:
        self.directory = Path(directory)
        self.host = host
        self.port = 0
        self._controller: Controller | None = None

    def __enter__(self) -> MailSink:
        self.directory.mkdir(parents=True, exist_ok=True)
        with socket.socket() as s:
            s.bind((self.host, 0))
            self.port = int(s.getsockname()[1])
        self._controller = Controller(_Keep(self.directory), hostname=self.host, port=self.port)
        self._controller.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def received(self) -> list[Path]:
        return sorted(self.directory.glob("*.eml"))
