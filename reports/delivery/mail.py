"""E-mail over SMTP: plain, STARTTLS or implicit TLS (SSL), optional login."""

from __future__ import annotations

import re
import smtplib
import ssl
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from html.parser import HTMLParser

from checks.errors import ServiceError
from storage.config import Config

SECURITY = ("none", "starttls", "ssl")


class DeliveryError(ServiceError):
    """A message could not be delivered this time (the outbox keeps it for a retry)."""


@dataclass(frozen=True, slots=True)
class SmtpSettings:
    host: str
    port: int
    sender: str
    security: str = "none"
    user: str = ""
    password: str = ""
    ca_file: str = ""
    timeout_s: float = 30.0

    @classmethod
    def from_config(cls, cfg: Config) -> SmtpSettings:
        return cls(
            cfg.smtp_host,
            cfg.smtp_port,
            cfg.smtp_from,
            cfg.smtp_security,
            cfg.smtp_user,
            cfg.smtp_password,
            cfg.ca_file,
            max(cfg.timeout_s, 5.0),
        )

    def __post_init__(self) -> None:
        if self.security not in SECURITY:
            raise ValueError(f"smtp_security 应为 none、starttls 或 ssl，不是 {self.security!r}")

    def tls_context(self) -> ssl.SSLContext:
        ctx = ssl.create_default_context()
        if self.ca_file:
            ctx.load_verify_locations(cafile=self.ca_file)
        return ctx


def build_email(
    sender: str,
    to: str,
    subject: str,
    html: str,
    text: str = "",
    attachment: tuple[str, bytes, str] | None = None,
) -> EmailMessage:
    """A multipart message: plain-text and HTML bodies, and an optional (name, bytes, MIME type) file."""
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = to
    msg["Subject"] = subject
    msg["Date"] = formatdate(localtime=False)
    msg["Message-ID"] = make_msgid(domain=sender.rpartition("@")[2] or "badgewatch")
    msg.set_content(text or "请使用支持 HTML 的邮件客户端查看本邮件。", charset="utf-8")
    msg.add_alternative(html, subtype="html", charset="utf-8")
    if attachment is not None:
        name, data, mime = attachment
        maintype, _, subtype = mime.partition("/")
        msg.add_attachment(data, maintype=maintype, subtype=subtype, filename=name)
    return msg


_BLOCKS = {"p", "div", "h1", "h2", "h3", "h4", "table", "ul", "ol", "section", "footer", "header"}
_SKIP = {"style", "script", "head", "title"}


class _Text(HTMLParser):
    """HTML to readable plain text: paragraphs and rows on lines, cells separated, links spelled out."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.out: list[str] = []
        self.skip = 0
        self.cells = 0
        self.in_cell = False
        self.href: list[str] = []
        self.link_text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _SKIP:
            self.skip += 1
        elif tag in _BLOCKS:
            self.out.append("\n")
            self.cells = 0
        elif tag == "br":
            self.out.append(" " if self.in_cell else "\n")  # a row of a table stays one line
        elif tag == "li":
            self.out.append("\n- ")
        elif tag == "tr":
            self.out.append("\n")
            self.cells = 0
        elif tag in ("td", "th"):
            if self.cells:
                self.out.append(" | ")
            self.cells += 1
            self.in_cell = True
        elif tag == "a":
            self.href.append(dict(attrs).get("href") or "")
            self.link_text.append("")

    def handle_endtag(self, tag: str) -> None:
        if tag in _SKIP:
            self.skip = max(0, self.skip - 1)
        elif tag in _BLOCKS:
            self.out.append("\n")
        elif tag in ("td", "th"):
            self.in_cell = False
        elif tag == "a" and self.href:
            href, text = self.href.pop(), self.link_text.pop()
            if href and href != text.strip() and not href.startswith(("#", "mailto:")):
                self.out.append(f"（{href}）")

    def handle_data(self, data: str) -> None:
        if self.skip:
            return
        text = re.sub(r"\s+", " ", data)
        if self.link_text:
            self.link_text[-1] += text
        self.out.append(text)


def html_to_text(html: str) -> str:
    """The text/plain alternative of an HTML e-mail: no markup, no style sheet, links as addresses."""
    parser = _Text()
    parser.feed(html)
    parser.close()
    lines = [line.strip() for line in "".join(parser.out).split("\n")]
    text = "\n".join(lines)
    return re.sub(r"\n{3,}", "\n\n", text).strip() + "\n"


def send_email(settings: SmtpSettings, msg: EmailMessage) -> None:
    """Send one message; raises :class:`DeliveryError` with the server's answer or the socket error."""
    try:
        if settings.security == "ssl":
            client: smtplib.SMTP = smtplib.SMTP_SSL(
                settings.host, settings.port, timeout=settings.timeout_s, context=settings.tls_context()
            )
        else:
            client = smtplib.SMTP(settings.host, settings.port, timeout=settings.timeout_s)
        with client:
            client.ehlo()
            if settings.security == "starttls":
                client.starttls(context=settings.tls_context())
                client.ehlo()
            if settings.user:
                client.login(settings.user, settings.password)
            refused = client.send_message(msg)
            if refused:
                raise DeliveryError(f"邮件服务器拒收收件人: {refused}")
    except smtplib.SMTPResponseException as exc:
        text = (
            exc.smtp_error.decode("utf-8", "replace") if isinstance(exc.smtp_error, bytes) else exc.smtp_error
        )
        raise DeliveryError(f"SMTP {exc.smtp_code}: {text}") from exc
    except (smtplib.SMTPException, OSError, ssl.SSLError) as exc:
        raise DeliveryError(f"SMTP {settings.host}:{settings.port}: {type(exc).__name__}: {exc}") from exc
