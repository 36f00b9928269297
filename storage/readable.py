"""What a program wrote, as an official reads it: exception texts and fetch error kinds in plain Chinese.

A finding's ``detail`` is written by the crawler and the checks for the log and ``--json``; for a
timeout or a broken connection it is the exception's text (``ResponseNeverReceived: [<twisted…``).
Every surface an official reads (console, lists, e-mails, spreadsheets) shows
:func:`readable_detail` instead, so no exception text reaches them.
"""

from __future__ import annotations

import re

# Fetch errors by what their text (an exception's, or a fetch error kind) says, in the order tried.
_ERROR_EXPLAINED: tuple[tuple[str, str], ...] = (
    (r"internal_error", "巡检程序处理该网站时出错，已记录，由技术人员处理"),
    (r"too_large|max ?size|exceeds", "网页超过巡检读取上限"),
    (r"address_refused|private|reserved|guard", "网站地址指向内部或保留地址，按安全策略未访问"),
    (r"tls_sm2|tlcp|sm2", "网站只支持国密加密连接，巡检程序暂不支持"),
    (r"timeout|timed ?out|took longer", "网站在规定时间内没有应答（超时）"),
    (r"refused", "网站服务器拒绝连接"),
    (r"\bdns\b|nxdomain|dnslookup|resolv|no address", "网站域名无法解析"),
    (r"\btls\b|ssl|certificate|handshake", "加密连接（HTTPS）建立失败"),
    (r"redirect_loop|redirect", "网站跳转出错（循环或地址无效）"),
    (r"bad_url|invalid url|unsupported url", "登记的网站地址无效"),
    (r"protocol|malformed|invalid status|parse|badstatus|status code", "网站服务器的应答不符合 HTTP 协议"),
    (
        r"reset|responsenever|connectionlost|connectiondone|aborted|dataloss|closed",
        "连接建立后服务器中断了连接，没有返回网页",
    ),
)
# Text that is a program's, not a person's: an exception class, a traceback, a Python/Twisted repr.
_TECHNICAL = re.compile(
    r"[A-Z][A-Za-z]+(Error|Exception|Received|Failed|Failure|Lost|Done|Timeout)\b|<[a-z_.]+\.[A-Za-z]+|Traceback|errno"
)


def is_technical(text: str) -> bool:
    """Whether ``text`` reads as a program's message (exception names, reprs) rather than a sentence."""
    return bool(_TECHNICAL.search(text))


def explain_error(text: str) -> str:
    """A network error (an exception's text or a fetch error kind) in plain Chinese."""
    low = text.lower()
    for pattern, words in _ERROR_EXPLAINED:
        if re.search(pattern, low):
            return words
    return "网站访问出错（技术记录见巡检日志）"


def readable_detail(detail: str) -> str:
    """``detail`` as an official reads it: a sentence as it is, a program's message explained."""
    if not detail or not is_technical(detail):
        return detail
    return explain_error(detail)
