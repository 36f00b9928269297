"""A scan's counters and its progress on the terminal.

The counters live in one place, Scrapy's ``crawler.stats`` (keys ``badgewatch/…``): the store pipeline
counts each subject's result there (:class:`Counters`), the spider its errors and, when it closes, its
renders and DNS lookups; the runners read their summary from there. :class:`Progress` adds the
terminal: a line every few seconds — done / total, rate, problems — and, once every subject has
started, what the scan still waits for (so the end of a scan does not look frozen at 999/1000).
"""

from __future__ import annotations

import sys
import time
from typing import Any, Protocol, TextIO

from scrapy import signals as scrapy_signals
from twisted.internet import task

from checks.verdict import Status
from storage.subjects import SubjectKind, kind_of

PREFIX = "badgewatch/"
STATUS = PREFIX + "status/"
PROBLEM = PREFIX + "problems/"
IN_FLIGHT = PREFIX + "in_flight"  # subjects started and not yet ended (set by the spider)
SUBJECT_ERRORS = PREFIX + "subject_errors"
RENDERS = PREFIX + "renders"
DNS_LOOKUPS = PREFIX + "dns_lookups"


class Stats(Protocol):
    """What counters need of Scrapy's stats collector."""

    def get_value(self, key: str, default: Any = None) -> Any: ...
    def set_value(self, key: str, value: Any) -> None: ...
    def inc_value(self, key: str, count: int = 1, start: int = 0) -> None: ...
    def get_stats(self) -> dict[str, Any]: ...


class MemoryStats:
    """Counters without a crawler (tests, a pipeline used on its own): Scrapy's collector's methods."""

    def __init__(self) -> None:
        self._stats: dict[str, Any] = {}

    def get_value(self, key: str, default: Any = None) -> Any:
        return self._stats.get(key, default)

    def set_value(self, key: str, value: Any) -> None:
        self._stats[key] = value

    def inc_value(self, key: str, count: int = 1, start: int = 0) -> None:
        self._stats[key] = self._stats.setdefault(key, start) + count

    def get_stats(self) -> dict[str, Any]:
        return self._stats


class Counters:
    """A scan's counts of results, kept in a stats collector."""

    def __init__(self, stats: Stats | None = None) -> None:
        self.stats: Stats = stats if stats is not None else MemoryStats()

    def record(self, result: Any) -> None:
        """Count one subject's final result."""
        st = self.stats
        st.inc_value(PREFIX + "subjects")
        st.inc_value(PREFIX + "requests", int(getattr(result, "requests", 0)))
        if kind_of(str(result.subject)) == SubjectKind.SITE:
            st.inc_value(PREFIX + "sites")
        self._verdicts(result.verdicts, 1)

    def restate(self, original: Any, stand_in: Any) -> None:
        """Count what is stored: the stand-in's verdicts instead of the refused ones."""
        self._verdicts(original.verdicts, -1)
        self._verdicts(stand_in.verdicts, 1)

    def _verdicts(self, verdicts: Any, step: int) -> None:
        for v in verdicts:
            self.stats.inc_value(STATUS + str(v.status), step)
            if v.status in (Status.FAIL, Status.UNKNOWN):
                self.stats.inc_value(PROBLEM + v.reason, step)

    def _by(self, prefix: str) -> dict[str, int]:
        items = (
            (k.removeprefix(prefix), v) for k, v in self.stats.get_stats().items() if k.startswith(prefix)
        )
        return {k: int(v) for k, v in items if v > 0}

    @property
    def done(self) -> int:
        return int(self.stats.get_value(PREFIX + "subjects", 0))

    @property
    def by_status(self) -> dict[str, int]:
        return self._by(STATUS)

    @property
    def problems(self) -> dict[str, int]:
        return dict(sorted(self._by(PROBLEM).items(), key=lambda kv: -kv[1]))


class Progress(Counters):
    """Counters with a total, printed on ``stream`` every ``every_s`` seconds while the crawler runs."""

    def __init__(
        self,
        total: int,
        done: int = 0,
        stream: TextIO | None = None,
        every_s: float = 2.0,
        label: str = "",
        stats: Stats | None = None,
        timeout_s: float = 0.0,
    ) -> None:
        super().__init__(stats)
        self.total = total
        self.done_before = done
        self.started = time.monotonic()
        self.stream = stream if stream is not None else sys.stderr
        self.every_s = every_s
        self.label = label
        self.timeout_s = timeout_s
        self._ticker: task.LoopingCall | None = None
        self._crawler: Any = None

    def attach(self, crawler: Any) -> None:
        """Read ``crawler.stats`` (the scan's one place for counters: the store pipeline counts there)
        and print while the engine runs. Scrapy makes the collector when the crawl begins: until the
        engine starts (or if it never does) the counts are this object's own zeros."""
        self._crawler = crawler
        crawler.signals.connect(self._start, signal=scrapy_signals.engine_started, weak=False)
        crawler.signals.connect(self._stop, signal=scrapy_signals.engine_stopped, weak=False)

    def _start(self) -> None:
        self.stats = self._crawler.stats
        self._ticker = task.LoopingCall(self.print_line)
        self._ticker.start(self.every_s, now=False)

    def _stop(self) -> None:
        if self._ticker is not None and self._ticker.running:
            self._ticker.stop()

    @property
    def rate(self) -> float:
        return self.done / max(time.monotonic() - self.started, 1e-6)

    def line(self) -> str:
        done = self.done_before + self.done
        pct = 100.0 * done / self.total if self.total else 100.0
        # Reason codes belong in --json and the logs; the operator's terminal counts in words.
        by_status = self.by_status
        fails, unknowns = by_status.get(str(Status.FAIL), 0), by_status.get(str(Status.UNKNOWN), 0)
        tail = f"  不合规 {fails} 项，暂无法判定 {unknowns} 项" if fails or unknowns else ""
        return f"{self.label}{done}/{self.total} ({pct:.1f}%)  每秒 {self.rate:.1f} 个{tail}{self.waiting()}"

    def waiting(self) -> str:
        """What the scan waits for once every subject has started: the slow ones still running."""
        in_flight = int(self.stats.get_value(IN_FLIGHT, 0))
        done = self.done_before + self.done
        if in_flight <= 0 or done + in_flight < self.total:
            return ""
        limit = f"，每个请求最长 {self.timeout_s:g} 秒" if self.timeout_s else ""
        return f"  等待最后 {in_flight} 个网站或域名的回应{limit}"

    def print_line(self) -> None:
        print(self.line(), file=self.stream, flush=True)

    def summary(self) -> dict[str, Any]:
        elapsed = time.monotonic() - self.started
        out: dict[str, Any] = {
            "subjects": self.done,
            "subjects_before_resume": self.done_before,
            "total": self.total,
            "sites": int(self.stats.get_value(PREFIX + "sites", 0)),
            "requests": int(self.stats.get_value(PREFIX + "requests", 0)),
            "elapsed_s": round(elapsed, 2),
            "subjects_per_s": round(self.done / elapsed, 2) if elapsed > 0 else 0.0,
            "by_status": self.by_status,
            "problems": self.problems,
        }
        for key, name in ((RENDERS, "renders"), (DNS_LOOKUPS, "dns_lookups")):
            value = self.stats.get_value(key)
            if value is not None:
                out[name] = int(value)
        return out
