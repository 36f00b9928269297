"""Progress on the terminal: subjects done / total, rate, failures by reason; a summary at the end."""

from __future__ import annotations

import sys
import time
from collections import Counter
from typing import Any, TextIO

from checks.verdict import Status


class Progress:
    def __init__(
        self, total: int, done: int = 0, stream: TextIO | None = None, every_s: float = 2.0, label: str = ""
    ) -> None:
        self.total = total
        self.done_before = done
        self.done = 0
        self.requests = 0
        self.sites = 0
        self.started = time.monotonic()
        self.stream = stream if stream is not None else sys.stderr
        self.every_s = every_s
        self.last = 0.0
        self.label = label
        self.by_status: Counter[str] = Counter()
        self.problems: Counter[str] = Counter()

    def record(self, result: Any) -> None:
        self.done += 1
        self.requests += int(getattr(result, "requests", 0))
        if str(result.subject).startswith("site:"):
            self.sites += 1
        for v in result.verdicts:
            self.by_status[str(v.status)] += 1
            if v.status in (Status.FAIL, Status.UNKNOWN):
                self.problems[v.reason] += 1

    @property
    def rate(self) -> float:
        return self.done / max(time.monotonic() - self.started, 1e-6)

    def line(self) -> str:
        done = self.done_before + self.done
        pct = 100.0 * done / self.total if self.total else 100.0
        # Reason codes belong in --json and the logs; the operator's terminal counts in words.
        fails, unknowns = self.by_status[str(Status.FAIL)], self.by_status[str(Status.UNKNOWN)]
        tail = f"  不合规 {fails} 项，暂无法判定 {unknowns} 项" if fails or unknowns else ""
        return f"{self.label}{done}/{self.total} ({pct:.1f}%)  每秒 {self.rate:.1f} 个{tail}"

    def maybe_print(self) -> None:
        now = time.monotonic()
        if now - self.last >= self.every_s:
            self.last = now
            print(self.line(), file=self.stream, flush=True)

    def summary(self) -> dict[str, Any]:
        elapsed = time.monotonic() - self.started
        return {
            "subjects": self.done,
            "subjects_before_resume": self.done_before,
            "total": self.total,
            "sites": self.sites,
            "requests": self.requests,
            "elapsed_s": round(elapsed, 2),
            "subjects_per_s": round(self.done / elapsed, 2) if elapsed > 0 else 0.0,
            "by_status": dict(self.by_status),
            "problems": dict(self.problems.most_common()),
        }
